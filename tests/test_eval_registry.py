"""Metrics as data: MAP@k and HR@k, top-k list metrics, and adding a toy metric through the registry."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from visrec.data import Dataset, Interactions, SplitSpec
from visrec.errors import ConfigError
from visrec.evaluation import (
    EvalResult,
    EvalSettings,
    Metric,
    evaluate,
    evaluate_modes,
    matrix_scorer,
    metrics,
    register,
    validation_score,
)
from visrec.evaluation import lists as lst
from visrec.evaluation import registry as reg

NAN = np.nan


def test_map_and_hit_rate_known_answers():
    ranks = np.array([[0.0, 2.0, NAN], [3.0, 5.0, NAN], [0.5, 0.5, NAN], [4.0, 1.0, 0.0]])
    # AP@2: hits (rank < 2) in rank order j / (r_j + 1), over min(|T|, 2)
    ap = metrics.average_precision_at(ranks, 2)
    assert ap.tolist() == pytest.approx([0.5, 0.0, (1 / 1.5 + 2 / 1.5) / 2, (1 / 1 + 2 / 2) / 2])
    assert metrics.hit_rate_at(ranks, 2).tolist() == [1.0, 0.0, 1.0, 1.0]
    assert metrics.hit_rate_at(ranks, 6).tolist() == [1.0, 1.0, 1.0, 1.0]


def test_top_lists_break_ties_by_item_and_skip_excluded():
    scores = np.array([[1.0, 3.0, 3.0, -np.inf, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    excluded = np.array([[1, -1], [0, 4]])
    lists = lst.top_lists(scores, 3, excluded)
    assert lists.tolist() == [[2, 4, 0], [1, 2, 3]]
    # only the given columns, and fewer candidates than k
    lists = lst.top_lists(scores, 3, np.array([[-1], [-1]]), columns=np.array([3, 4]))
    assert lists.tolist() == [[4, 3, -1], [3, 4, -1]]


def test_novelty_and_diversity_known_answers():
    info = lst.ItemInfo.build(
        popularity=np.array([5.0, 1.0, 0.0, 2.0]),
        features=np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]]),
    )
    # shares (pop + 1) / (8 + 4) = 6/12, 2/12, 1/12, 3/12
    lists = np.array([[0, 1, -1], [2, -1, -1], [0, 1, 2]])
    expected = [(1 + math.log2(6)) / 2, math.log2(12), (1 + math.log2(6) + math.log2(12)) / 3]
    assert lst.novelty(lists, info).tolist() == pytest.approx(expected)
    # cos(0, 1) = 0, cos(0, 2) = cos(1, 2) = 1/sqrt(2); one item -> 0
    third = 1 - (0 + 2 / math.sqrt(2)) / 3
    assert lst.diversity(lists, info).tolist() == pytest.approx([1.0, 0.0, third])
    # a zero feature vector is unlike everything
    assert lst.diversity(np.array([[0, 3]]), info).tolist() == [1.0]


def _dataset():
    rng = np.random.default_rng(2)
    rows = [
        (f"u{u}", f"i{i:02d}", int(t))
        for u in range(12)
        for i, t in zip(rng.choice(15, 6, replace=False), rng.permutation(6), strict=True)
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return Dataset.build(Interactions.from_frame(frame), SplitSpec())


def test_list_metrics_through_the_engine():
    ds = _dataset()
    rng = np.random.default_rng(3)
    scores = np.round(rng.normal(size=(ds.n_users, ds.n_items)), 1)
    features = rng.normal(size=(ds.n_items, 4))
    settings = EvalSettings(
        ks=(2, 5),
        metrics=("AUC", "MAP", "HR", "coverage", "diversity", "novelty"),
        item_features=features,
    )
    res = evaluate(matrix_scorer(scores), ds, split="test", settings=settings)
    assert list(res.means) == [
        "AUC",
        *[f"{m}@{k}" for k in (2, 5) for m in ("MAP", "HR", "coverage", "diversity", "novelty")],
    ]
    assert "coverage@2" not in res.per_user.columns
    # brute force: each user's top-5 unconsumed items, ties by item index
    info = lst.ItemInfo.build(ds.item_popularity(), features)
    seen = []
    for user in res.per_user["user_idx"]:
        consumed = set(ds.profile(user)) | set(
            ds.validation.indices[ds.validation.indptr[user] : ds.validation.indptr[user + 1]]
        )
        order = sorted(
            (i for i in range(ds.n_items) if i not in consumed), key=lambda i: (-scores[user, i], i)
        )
        top = np.array([order[:5]])
        seen.append(order[:2])
        row = res.per_user.set_index("user_idx").loc[user]
        assert row["novelty@5"] == pytest.approx(lst.novelty(top, info)[0])
        assert row["diversity@2"] == pytest.approx(lst.diversity(top[:, :2], info)[0])
    assert res.means["coverage@2"] == len(set(np.ravel(seen))) / ds.n_items
    # shards merge to the same coverage
    users = res.per_user["user_idx"].to_numpy()
    parts = [
        evaluate(matrix_scorer(scores), ds, split="test", settings=settings, users=half)
        for half in np.array_split(users, 2)
    ]
    merged = EvalResult.concat(parts)
    assert merged.means == res.means
    # list metrics are not defined in sampled or tutorial mode
    other = evaluate_modes(
        matrix_scorer(scores), ds, split="test", modes=("sampled", "tutorial"), settings=settings
    )
    assert list(other["tutorial"].means) == ["AUC", "MAP@2", "HR@2", "MAP@5", "HR@5"]
    with pytest.raises(ConfigError, match="item features"):
        evaluate(matrix_scorer(scores), ds, split="test", metrics=("diversity",))


def test_adding_a_toy_metric_is_one_register_call():
    """The "Adding a metric" recipe of docs/evaluation.md: one register() call, nothing else."""
    worst = Metric(
        "WorstRank",
        "rank of the lowest-ranked truth item",
        lambda values, k: np.nanmax(values.ranks, axis=1),
        modes=("full", "cold", "mixed"),
        fmt=".1f",
    )
    register(worst)
    try:
        ds = _dataset()
        scores = np.random.default_rng(4).normal(size=(ds.n_users, ds.n_items))
        res = evaluate(matrix_scorer(scores), ds, split="test", metrics=("AUC", "WorstRank"))
        assert list(res.means) == ["AUC", "WorstRank"]
        full = evaluate(matrix_scorer(scores), ds, split="test")
        assert (res.per_user["WorstRank"] >= full.per_user["first_hit_rank"]).all()
        assert res.per_user["AUC"].equals(full.per_user["AUC"])
        value = validation_score(matrix_scorer(scores), ds, "WorstRank")
        assert (
            value
            == evaluate(
                matrix_scorer(scores), ds, split="validation", metrics=("WorstRank",)
            ).means["WorstRank"]
        )
        assert reg.format_value("WorstRank", 3.14159) == "3.1"
        sampled = evaluate(
            matrix_scorer(scores), ds, split="test", mode="sampled", metrics=("AUC", "WorstRank")
        )
        assert list(sampled.means) == ["AUC[sampled@100]"]
        with pytest.raises(ConfigError, match="already registered"):
            register(worst)
    finally:
        reg.unregister("WorstRank")
    with pytest.raises(ConfigError, match="unknown metric"):
        EvalSettings(metrics=("WorstRank",))


def test_metric_keys_parse_from_the_registry():
    assert reg.parse_key("nDCG@20")[1] == 20
    assert reg.parse_key("AUC") == (reg.REGISTRY["AUC"], None)
    for bad in ("AUC@5", "nDCG", "R@x", "R@0", "XYZ"):
        with pytest.raises(ConfigError, match="unknown metric"):
            reg.parse_key(bad)
    # the default keys are the ones visrec always wrote
    assert reg.keys_for(reg.resolve(None), (20, 100), "full") == metrics.metric_names((20, 100))


def test_docs_table_is_generated_from_the_registry():
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "docs" / "evaluation.md"
    assert reg.reference_table() in doc.read_text(encoding="utf-8")

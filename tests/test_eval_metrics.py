"""Metric functions against hand-computed values, and the engine on hand-made datasets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eval_support import frame_dataset, random_dataset
from visrec.evaluation import evaluate, metrics

NAN = np.nan
L3 = 1.0 / math.log2(3)


def arr(*rows):
    return np.array(rows, dtype=np.float64)


def test_standard_metrics_by_hand():
    ranks = arr([0.0, 1.0], [3.0, NAN], [1.0, 4.0])
    assert metrics.n_truth(ranks).tolist() == [2, 1, 2]
    assert metrics.reciprocal_rank(ranks).tolist() == [1.0, 0.25, 0.5]
    assert metrics.hits_at(ranks, 4).tolist() == [2, 1, 1]
    assert metrics.precision_at(ranks, 4).tolist() == [0.5, 0.25, 0.25]
    assert metrics.recall_at(ranks, 4).tolist() == [1.0, 1.0, 0.5]
    assert metrics.recall_at(ranks, 3).tolist() == [1.0, 0.0, 0.5]
    ndcg = metrics.ndcg_at(ranks, 5)
    assert ndcg[0] == pytest.approx(1.0)
    assert ndcg[1] == pytest.approx(1 / math.log2(5))
    assert ndcg[2] == pytest.approx((L3 + 1 / math.log2(6)) / (1 + L3))


def test_auc_by_hand():
    above = arr([1.0, 3.0], [0.0, NAN], [2.5, NAN])
    n_neg = np.array([4, 7, 5])
    assert metrics.auc(above, n_neg).tolist() == [0.5, 1.0, 0.5]


def test_k_larger_than_candidates_keeps_k_as_divisor():
    ranks = arr([0.0])
    assert metrics.precision_at(ranks, 200).tolist() == [1 / 200]
    assert metrics.recall_at(ranks, 200).tolist() == [1.0]
    assert metrics.ndcg_at(ranks, 200).tolist() == [1.0]


def test_ideal_dcg():
    assert metrics.ideal_dcg(np.array([0, 1, 2])).tolist() == [0.0, 1.0, pytest.approx(1 + L3)]


def test_tutorial_auc_top_and_bottom():
    # N = 10 items, 2 truth items at the top, then at the bottom (no profile item before them)
    assert metrics.tutorial_auc(arr([0.0, 1.0]), 10).tolist() == [1.0]
    assert metrics.tutorial_auc(arr([8.0, 9.0]), 10).tolist() == [0.0]
    # literal formula: [(10-4)-(2-1) + (10-7)-(2-2)] / 8 / 2
    assert metrics.tutorial_auc(arr([3.0, 6.0]), 10)[0] == pytest.approx((5 + 3) / 8 / 2)


def test_tutorial_ndcg_is_normalised_by_hits():
    ranks = arr([5.0, 30.0])
    assert metrics.tutorial_ndcg_at(ranks, 20)[0] == pytest.approx(1 / math.log2(7))
    assert metrics.ndcg_at(ranks, 20)[0] == pytest.approx(1 / math.log2(7) / (1 + L3))
    assert metrics.tutorial_ndcg_at(arr([25.0]), 20).tolist() == [0.0]


def basket_dataset():
    """u: a@1, b@2 (validation), c and d @3 (test basket); v keeps the catalogue at 5 items."""
    rows = [
        ("u", "a", 1),
        ("u", "b", 2),
        ("u", "c", 3),
        ("u", "d", 3),
        ("v", "e", 1),
        ("v", "a", 2),
    ]
    return frame_dataset(rows)


ITEM_SCORES = {"a": 5.0, "b": 0.0, "c": 3.0, "d": 1.0, "e": 2.0}


def by_item(ds, values=ITEM_SCORES):
    row = torch.tensor([values[i] for i in ds.items.ids], dtype=torch.float64)
    return lambda users: row.expand(len(users), -1).clone()


def test_multi_item_basket_full_mode_by_hand():
    ds = basket_dataset()
    res = evaluate(by_item(ds), ds, split="test", ks=(1, 2, 3))
    row = res.per_user.set_index("user_id").loc["u"]
    # candidates: c, d, e (a is train, b the validation basket); ranks c=0, d=2; negative e
    assert row["n_candidates"] == 3 and row["n_targets"] == 2 and row["profile_size"] == 2
    assert row["AUC"] == 0.5 and row["RR"] == 1.0 and row["first_hit_rank"] == 0.0
    assert (row["R@1"], row["P@1"], row["R@2"], row["P@2"]) == (0.5, 1.0, 0.5, 0.5)
    assert row["nDCG@2"] == pytest.approx(1 / (1 + L3))
    assert row["nDCG@3"] == pytest.approx(1.5 / (1 + L3))
    assert res.n_users == 2  # v: test basket {a}, no validation basket (one train timestamp)


def test_multi_item_basket_tutorial_mode_by_hand():
    ds = basket_dataset()
    res = evaluate(by_item(ds), ds, split="test", mode="tutorial", ks=(1, 2))
    row = res.per_user.set_index("user_id").loc["u"]
    # order a c e d b; profile {a, b}; corrected p: c=0, d=2 (docs/evaluation.md, worked example)
    assert row["AUC"] == pytest.approx(((5 - 1) - 1 + (5 - 3) - 0) / 3 / 2)
    assert row["nDCG@2"] == 1.0 and row["R@1"] == 0.5 and row["RR"] == 1.0


def test_validation_split_ranks_the_validation_basket():
    ds = basket_dataset()
    res = evaluate(by_item(ds), ds, split="validation", ks=(1,))
    row = res.per_user.set_index("user_id").loc["u"]
    # candidates b, c, d, e (only a consumed); b scores lowest
    assert row["n_candidates"] == 4 and row["first_hit_rank"] == 3.0 and row["AUC"] == 0.0


def truth_scores(ds, split, truth_value, other_value):
    targets = ds.targets(split).toarray() > 0
    rng = np.random.default_rng(1)
    noise = torch.from_numpy(rng.random(targets.shape))
    table = torch.where(torch.from_numpy(targets), truth_value + noise, other_value + noise)
    return lambda users: table[users]


def test_perfect_reversed_constant_scorers():
    ds = random_dataset(seed=4)
    perfect = evaluate(truth_scores(ds, "test", 10.0, 0.0), ds, split="test")
    assert perfect["AUC"] == 1.0 and perfect["RR"] == 1.0 and perfect["nDCG@20"] == 1.0
    assert (perfect.per_user["n_targets"] > 1).any()
    reversed_ = evaluate(truth_scores(ds, "test", -10.0, 0.0), ds, split="test")
    assert reversed_["AUC"] == 0.0
    constant = evaluate(lambda u: torch.zeros(len(u), ds.n_items), ds, split="test")
    assert constant["AUC"] == 0.5
    assert (constant.per_user["AUC"] == 0.5).all()


def test_user_with_every_item_consumed_is_skipped_and_user_without_targets_not_counted():
    rows = [
        ("full", "a", 1),
        ("full", "b", 1),
        ("full", "c", 2),
        ("ok", "a", 1),
        ("ok", "b", 2),
        ("once", "c", 1),
    ]
    ds = frame_dataset(rows, split=None)
    for mode in ("full", "sampled", "tutorial"):
        res = evaluate(by_item(ds, {"a": 1.0, "b": 2.0, "c": 3.0}), ds, split="test", mode=mode)
        expected_skip = ["full"] if mode != "tutorial" else []
        assert res.skipped == expected_skip
        evaluated = set(res.per_user["user_id"])
        assert "once" not in evaluated and "ok" in evaluated
        assert all(np.isfinite(v) for v in res.means.values())


def test_ties_across_the_cut_off_are_counted_as_written():
    # two truth items tied at the top share the rank 0.5: both are "< 1", so P@1 = 2 (DESIGN.md formulas)
    ranks = arr([0.5, 0.5])
    assert metrics.precision_at(ranks, 1).tolist() == [2.0]
    assert metrics.recall_at(ranks, 1).tolist() == [1.0]
    assert metrics.reciprocal_rank(ranks).tolist() == [1 / 1.5]

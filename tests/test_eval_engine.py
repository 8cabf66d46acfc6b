"""The batched engine against per-user references; block-size, path and device invariance; entry points."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
import torch

from eval_support import random_dataset, reference_full, reference_tutorial
from visrec.errors import ConfigError, VisrecError
from visrec.evaluation import EvalResult, evaluate, evaluate_modes, ranking, validation_score
from visrec.evaluation.candidates import build_history, sample_negatives, user_rng

KS = (1, 5, 20)


@pytest.fixture(scope="module")
def ds():
    return random_dataset(n_users=40, n_items=50, seed=7)


def table_scorer(table: np.ndarray):
    scores = torch.from_numpy(table)
    return lambda users: scores[users]


def continuous(ds, seed=0):
    return np.random.default_rng(seed).standard_normal((ds.n_users, ds.n_items))


def tied(ds, seed=0):
    """Few distinct values, including -inf, so ties are everywhere."""
    table = np.random.default_rng(seed).integers(0, 4, (ds.n_users, ds.n_items)).astype(float)
    table[table == 0] = -np.inf
    return table


def check_against(reference, res, table, ds, split, **kw):
    rows = res.per_user.set_index("user_idx")
    expected_users = []
    for user in np.flatnonzero(np.diff(ds.targets(split).indptr)):
        want = reference(table, ds, int(user), split, KS, **kw)
        if want is None:
            continue
        expected_users.append(user)
        for key, value in want.items():
            assert rows.loc[user, key] == pytest.approx(value, abs=1e-12, rel=1e-9), (user, key)
    assert sorted(rows.index) == expected_users


@pytest.mark.parametrize("split", ["test", "validation"])
@pytest.mark.parametrize("make", [continuous, tied])
def test_full_mode_matches_reference(ds, split, make):
    table = make(ds)
    res = evaluate(table_scorer(table), ds, split=split, ks=KS, block_size=9)
    check_against(reference_full, res, table, ds, split)


@pytest.mark.parametrize("split", ["test", "validation"])
@pytest.mark.parametrize("window", [10, 3])
def test_tutorial_mode_matches_reference(ds, split, window):
    table = continuous(ds, seed=3)
    res = evaluate(
        table_scorer(table),
        ds,
        split=split,
        mode="tutorial",
        ks=KS,
        block_size=9,
        profile_window=window,
    )
    check_against(reference_tutorial, res, table, ds, split, window=window)


@pytest.mark.parametrize("mode", ["full", "sampled", "tutorial"])
def test_identical_for_any_block_size(ds, mode):
    table = tied(ds, seed=2)
    runs = [
        evaluate(table_scorer(table), ds, split="test", mode=mode, n_negatives=10, block_size=b)
        for b in (1, 7, 1024)
    ]
    for other in runs[1:]:
        pd.testing.assert_frame_equal(runs[0].per_user, other.per_user, check_exact=True)
        assert other.means == runs[0].means


def test_sorting_path_equals_comparison_path(ds, monkeypatch):
    table = tied(ds, seed=5)
    direct = evaluate(table_scorer(table), ds, split="test")
    monkeypatch.setattr(ranking, "COMPARE_MAX_TRUTH", 0)
    sorted_ = evaluate(table_scorer(table), ds, split="test")
    pd.testing.assert_frame_equal(direct.per_user, sorted_.per_user, check_exact=True)


def test_tie_counts_paths_agree_with_nan_and_inf():
    ref = torch.tensor(
        [[1.0, np.nan, -np.inf, 1.0, np.inf, -np.inf], [0.0, 0.0, np.nan, 2.0, 3.0, 1.0]]
    )
    queries = torch.tensor([[1.0, -np.inf, np.inf], [0.0, 3.0, np.nan]])
    for method in ("compare", "sort"):
        greater, equal = ranking.tie_counts(ref, queries, method=method)
        assert greater[:, :2].tolist() == [[1, 3], [3, 0]]
        assert equal[:, :2].tolist() == [[2, 2], [2, 1]]
        assert greater[0, 2] == 0 and equal[0, 2] == 1


def test_sampled_mode_with_every_negative_equals_full(ds):
    table = tied(ds, seed=8)
    full = evaluate(table_scorer(table), ds, split="test")
    sampled = evaluate(
        table_scorer(table), ds, split="test", mode="sampled", n_negatives=ds.n_items
    )
    assert sampled.mode == f"sampled@{ds.n_items}"
    assert all(key.endswith(f"[sampled@{ds.n_items}]") for key in sampled.means)
    for key, value in full.means.items():
        assert sampled.means[f"{key}[{sampled.mode}]"] == pytest.approx(value, abs=1e-12)


def test_sampled_mode_is_seeded(ds):
    table = continuous(ds, seed=9)
    runs = [
        evaluate(table_scorer(table), ds, split="test", mode="sampled", n_negatives=8, seed=s)
        for s in (1, 1, 2)
    ]
    assert runs[0].means == runs[1].means
    assert runs[0].means != runs[2].means
    assert (runs[0].per_user["n_candidates"] == runs[0].per_user["n_targets"] + 8).all()


def test_sampled_negatives_avoid_consumed_and_truth(ds):
    history = build_history(ds, "test")
    for user in range(ds.n_users):
        consumed = history.items[history.indptr[user] : history.indptr[user + 1]]
        truth = ds.test[user].indices
        excluded = np.concatenate([consumed, truth])
        neg = sample_negatives(excluded, ds.n_items, 15, user_rng(0, user))
        assert len(set(neg)) == len(neg) == min(15, ds.n_items - len(set(excluded)))
        assert not set(neg) & set(excluded) and neg.min() >= 0 and neg.max() < ds.n_items
    everything = sample_negatives(np.array([1, 3]), 6, 100, user_rng(0, 0))
    assert everything.tolist() == [0, 2, 4, 5]


def test_test_split_history_is_train_then_validation(ds):
    history = build_history(ds, "test")
    for user in range(ds.n_users):
        items = history.items[history.indptr[user] : history.indptr[user + 1]]
        expected = list(ds.profile(user)) + list(ds.validation[user].indices)
        assert items.tolist() == expected


def test_shards_merge_to_the_single_run(ds):
    table = continuous(ds, seed=4)
    whole = evaluate(table_scorer(table), ds, split="test")
    users = np.arange(ds.n_users)
    shards = [evaluate(table_scorer(table), ds, split="test", users=users[r::3]) for r in range(3)]
    merged = EvalResult.concat(shards[::-1])
    assert merged.means == whole.means
    pd.testing.assert_frame_equal(merged.per_user, whole.per_user, check_exact=True)
    with pytest.raises(ConfigError, match="overlap"):
        EvalResult.concat([shards[0], shards[0]])
    sampled = evaluate(table_scorer(table), ds, split="test", mode="sampled", users=users[:5])
    with pytest.raises(ConfigError, match="different settings"):
        EvalResult.concat([shards[0], sampled])


def test_split_is_required_and_validation_score_reads_validation_only(ds):
    assert inspect.signature(evaluate).parameters["split"].default is inspect.Parameter.empty
    table = continuous(ds, seed=6)
    with pytest.raises(TypeError):
        evaluate(table_scorer(table), ds)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="validation"):
        validation_score(table_scorer(table), ds, split="test")
    val = evaluate(table_scorer(table), ds, split="validation", ks=(20, 50))
    test = evaluate(table_scorer(table), ds, split="test")
    assert validation_score(table_scorer(table), ds) == val["AUC"] != test["AUC"]
    assert validation_score(table_scorer(table), ds, metric="R@50") == val["R@50"]
    sampled = validation_score(table_scorer(table), ds, metric="RR", mode="sampled", n_negatives=5)
    assert 0 < sampled <= 1
    with pytest.raises(ConfigError, match="unknown metric"):
        validation_score(table_scorer(table), ds, metric="AUC@20")


def test_bad_scores_and_arguments_are_reported(ds):
    table = continuous(ds)
    table[3, 5] = np.nan
    with pytest.raises(VisrecError, match="NaN scores"):
        evaluate(table_scorer(table), ds, split="test", users=np.array([3]))
    table[3, 5], table[3, 6], table[3, 7] = np.inf, -np.inf, -np.inf  # a NaN row sum, but no NaN
    assert evaluate(table_scorer(table), ds, split="test", users=np.array([3])).n_users == 1
    with pytest.raises(VisrecError, match="shape"):
        evaluate(lambda u: torch.zeros(len(u), 3), ds, split="test")
    with pytest.raises(ConfigError, match="mode"):
        evaluate(table_scorer(table), ds, split="test", mode="fast")
    with pytest.raises(ConfigError, match="split"):
        evaluate(table_scorer(table), ds, split="train")
    with pytest.raises(ConfigError, match="user indices"):
        evaluate(table_scorer(table), ds, split="test", users=np.array([ds.n_users]))


def test_integer_scores_are_accepted(ds):
    counts = torch.from_numpy(ds.item_popularity().astype(np.int64))
    res = evaluate(lambda u: counts.expand(len(u), -1), ds, split="test")
    assert 0 <= res["AUC"] <= 1


@pytest.mark.parametrize("truth_size", ["small", "large"])
def test_the_accelerator_code_path_gives_the_cpu_numbers(ds, monkeypatch, truth_size):
    # the torch operations used for tensors on an accelerator, run here on CPU tensors (so they are
    # tested without a GPU): the same integers, so the same per-user table as the NumPy path
    from visrec.evaluation import engine, scoring

    table = tied(ds, seed=12)
    if truth_size == "large":  # sorting + binary search instead of comparisons
        monkeypatch.setattr(ranking, "COMPARE_MAX_TRUTH", 0)
    modes = ("full", "sampled", "tutorial")
    numpy = evaluate_modes(table_scorer(table), ds, split="test", modes=modes, block_size=7)
    on_torch = lambda a: isinstance(a, torch.Tensor)  # noqa: E731
    for module in (ranking, engine):
        monkeypatch.setattr(module, "on_device", on_torch)
    monkeypatch.setattr(scoring, "_accelerator", lambda device: True)
    name = "_counts_by_sorting_torch" if truth_size == "large" else "_counts_by_comparison_torch"
    calls, original = [], getattr(ranking, name)
    monkeypatch.setattr(ranking, name, lambda *a: calls.append(1) or original(*a))
    forced = evaluate_modes(
        table_scorer(table), ds, split="test", modes=modes, block_size=7, device="cpu"
    )
    assert calls  # the torch operations ran
    for mode in modes:
        pd.testing.assert_frame_equal(numpy[mode].per_user, forced[mode].per_user, check_exact=True)


@pytest.mark.gpu
def test_cuda_matches_cpu(ds):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    table = tied(ds, seed=11)
    for mode in ("full", "sampled", "tutorial"):
        cpu = evaluate(table_scorer(table), ds, split="test", mode=mode, block_size=7)
        gpu = evaluate(
            table_scorer(table), ds, split="test", mode=mode, block_size=7, device="cuda"
        )
        pd.testing.assert_frame_equal(cpu.per_user, gpu.per_user, check_exact=True)

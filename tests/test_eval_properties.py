"""Hypothesis properties of the metrics over arbitrary (tie-heavy) score matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from eval_support import random_dataset
from visrec.evaluation import evaluate, metrics

DS = random_dataset(n_users=12, n_items=15, seed=21)
KS = (1, 2, 3, 5, 8, 13, 20)
MODES = st.sampled_from(["full", "sampled", "tutorial"])
# small integers (as floats): ties are frequent and adding an integer constant stays exact
SCORES = arrays(np.float64, (DS.n_users, DS.n_items), elements=st.integers(-3, 3).map(float))
PROPS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(table: np.ndarray, mode: str, dataset=DS, window: int = 10):
    scores = torch.from_numpy(table)
    return evaluate(
        lambda u: scores[u],
        dataset,
        split="test",
        mode=mode,
        ks=KS,
        n_negatives=6,
        profile_window=window,
    )


def values(res, name):
    return res.per_user[[k for k in res.per_user.columns if k.split("[")[0] == name][0]].to_numpy()


@PROPS
@given(table=SCORES, mode=MODES)
def test_bounds_monotone_recall_and_precision_times_k(table, mode):
    res = run(table, mode)
    assert ((values(res, "AUC") >= 0) & (values(res, "AUC") <= 1)).all()
    recalls = np.stack([values(res, f"R@{k}") for k in KS])
    assert (np.diff(recalls, axis=0) >= 0).all()
    ranks = res.per_user["first_hit_rank"].to_numpy()
    for k in KS:
        precision = values(res, f"P@{k}")
        hits = values(res, f"R@{k}") * res.per_user["n_targets"].to_numpy()
        assert np.allclose(precision * k, np.round(hits), atol=1e-12)
        assert np.allclose(hits, np.round(hits), atol=1e-12)
        assert (values(res, f"nDCG@{k}") >= 0).all() and (values(res, f"R@{k}") <= 1).all()
        assert ((hits > 0) == (ranks < k)).all()


@PROPS
@given(table=SCORES, mode=MODES, shift=st.integers(-1000, 1000))
def test_adding_a_constant_changes_nothing(table, mode, shift):
    base, moved = run(table, mode), run(table + shift, mode)
    pd.testing.assert_frame_equal(base.per_user, moved.per_user, check_exact=True)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=SCORES, mode=st.sampled_from(["full", "tutorial"]), perm=st.permutations(range(15)))
def test_permuting_item_order_changes_nothing(table, mode, perm):
    """Full mode; tutorial mode with a window covering the whole history (a 10-item window cuts
    through same-timestamp items by item id, and sampled negatives are drawn by item index, so
    both legitimately depend on the item order)."""
    perm = np.asarray(perm)
    permuted = permuted_dataset(perm)
    # item i of DS is item perm[i] of the permuted dataset: move its score column there
    moved = np.empty_like(table)
    moved[:, perm] = table
    base, other = run(table, mode, window=1000), run(moved, mode, permuted, window=1000)
    pd.testing.assert_frame_equal(base.per_user, other.per_user, check_exact=True)


def permuted_dataset(perm: np.ndarray):
    from eval_support import frame_dataset

    rows = []
    for u in range(DS.n_users):
        times = DS.profile_times_of(u)
        rows += [
            (DS.users.id(u), f"p{perm[i]:03d}", int(t))
            for i, t in zip(DS.profile(u), times, strict=True)
        ]
        last = int(times.max()) if len(times) else 0
        rows += [(DS.users.id(u), f"p{perm[i]:03d}", last + 1) for i in DS.validation[u].indices]
        rows += [(DS.users.id(u), f"p{perm[i]:03d}", last + 2) for i in DS.test[u].indices]
    return frame_dataset(rows)


def test_permuted_dataset_is_the_same_data():
    perm = np.random.default_rng(0).permutation(DS.n_items)
    other = permuted_dataset(perm)
    assert other.users == DS.users and other.n_items == DS.n_items
    for u in range(DS.n_users):
        assert sorted(perm[DS.profile(u)]) == sorted(other.profile(u))
        assert sorted(perm[DS.test[u].indices]) == other.test[u].indices.tolist()
        assert sorted(perm[DS.validation[u].indices]) == other.validation[u].indices.tolist()


def test_metric_functions_accept_empty_blocks():
    empty = np.zeros((0, 0))
    assert metrics.standard_metrics(empty, empty, np.zeros(0), (5,))["AUC"].shape == (0,)

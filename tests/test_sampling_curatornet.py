"""CuratorNet's guided sampling (Messina et al. 2020, section 3.3): property tests on random datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from visrec.data import Dataset, SplitSpec
from visrec.data.interactions import Interactions
from visrec.sampling.curatornet import STRATEGIES, _collect, guided_triplets, strategy_counts
from visrec.sampling.guided import SamplingContext, build_guided_index
from visrec.sampling.kmeans import kmeans

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def random_case(seed: int, with_groups: bool, split: SplitSpec | None = None):
    """A random dataset (30 users, 60 items, baskets), features with exact duplicates, and groups."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(30):
        items = rng.choice(60, rng.integers(3, 14), replace=False)
        t = 0
        for i in items:
            t += int(rng.random() < 0.7)  # ~30% of items share their predecessor's timestamp
            rows.append((f"u{u}", f"i{i}", t))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    groups = {f"i{i}": f"g{rng.integers(0, 8)}" for i in range(60)} if with_groups else None
    ds = Dataset.build(Interactions.from_frame(frame), split, item_groups=groups)
    features = rng.normal(size=(ds.n_items, 6)).astype(np.float32)
    features[1::7] = features[0::7][: len(features[1::7])] * 3.0  # visually identical pairs
    index = build_guided_index(features, ds.item_groups, n_clusters=5, seed=seed)
    return ds, index


def user_sets(ds: Dataset, split) -> list[set]:
    mat = ds.train if split == "train" else ds.targets(split)
    return [set(mat.indices[mat.indptr[u] : mat.indptr[u + 1]]) for u in range(ds.n_users)]


def run(ds, index, strategy: int, n: int, seed: int):
    ctx = SamplingContext(ds, index, np.random.default_rng(seed), 2, 6, 0.6)
    return _collect(STRATEGIES[strategy - 1], ctx, n)


@SETTINGS
@given(seed=st.integers(0, 10_000), with_groups=st.booleans())
def test_global_properties(seed, with_groups):
    ds, index = random_case(seed, with_groups)
    s = guided_triplets(
        ds,
        300,
        np.random.default_rng(seed),
        index,
        n_negatives=2,
        max_profile=6,
        return_strategy=True,
    )
    train, val, test = user_sets(ds, "train"), user_sets(ds, "validation"), user_sets(ds, "test")
    in_train = np.asarray(ds.train.sum(axis=0)).ravel() > 0
    assert len(s["pos"]) == 300 and s["neg"].shape == (300, 2) and s["profile"].shape == (300, 6)
    assert in_train[s["pos"]].all()  # positives only from train
    assert ((s["profile"] >= 0).sum(1) >= 1).all()
    for u, pos, negs in zip(s["users"], s["pos"], s["neg"], strict=True):
        assert not (index.visual_ids[negs] == index.visual_ids[pos]).any()  # never identical
        if u >= 0:  # real profiles
            assert pos not in val[u] and pos not in test[u]
            assert not set(negs) & train[u]


@SETTINGS
@given(seed=st.integers(0, 10_000), with_groups=st.booleans())
def test_a_cold_split_new_items_are_never_drawn(seed, with_groups):
    ds, index = random_case(
        seed, with_groups, SplitSpec("cold-items", cold_fraction=0.2, seed=seed)
    )
    new = np.union1d(ds.cold_items("test"), ds.cold_items("validation"))
    assert len(new) > 0
    s = guided_triplets(ds, 400, np.random.default_rng(seed), index, n_negatives=3, max_profile=6)
    drawn = np.concatenate([s["profile"].ravel(), s["pos"], s["neg"].ravel()])
    assert not np.isin(drawn, new).any()


@SETTINGS
@given(seed=st.integers(0, 10_000), with_groups=st.booleans())
def test_real_profile_strategy_ranks_a_profile_item_over_a_non_profile_item(seed, with_groups):
    ds, index = random_case(seed, with_groups)
    s = run(ds, index, 1, 100, seed)
    for u, prof, pos, negs in zip(s["users"], s["profile"], s["pos"], s["neg"], strict=True):
        assert list(prof[prof >= 0]) == list(ds.profile(u)[-6:])
        assert pos in prof
        assert not set(negs) & set(ds.profile(u))


@SETTINGS
@given(seed=st.integers(0, 10_000), with_groups=st.booleans())
def test_shared_cell_strategy(seed, with_groups):
    ds, index = random_case(seed, with_groups)
    s = run(ds, index, 3, 100, seed)
    if s is None:
        return
    cl, gr = index.clusters, index.groups
    for u, prof, pos, negs in zip(s["users"], s["profile"], s["pos"], s["neg"], strict=True):
        prof = prof[prof >= 0]
        assert pos not in ds.profile(u)
        same_cell = cl[prof] == cl[pos]
        if gr is not None:
            same_cell &= gr[prof] == gr[pos]
        assert same_cell.any()
        seen_clusters = set(cl[ds.profile(u)])
        assert not set(cl[negs]) & seen_clusters  # the negative's cluster is new to the user
        if gr is not None:
            assert not (set(gr[negs]) - {-1}) & set(gr[ds.profile(u)])


@SETTINGS
@given(seed=st.integers(0, 10_000), with_groups=st.booleans())
def test_fake_profile_strategies(seed, with_groups):
    ds, index = random_case(seed, with_groups)
    one = run(ds, index, 2, 100, seed)
    assert (one["users"] == -1).all() and (one["profile"][:, :-1] == -1).all()
    assert (one["profile"][:, -1] == one["pos"]).all()
    same = run(ds, index, 4, 100, seed)
    label = index.groups if index.groups is not None else index.clusters
    assert (same["profile"][:, -1] != same["pos"]).all()
    assert (label[same["profile"][:, -1]] == label[same["pos"]]).all()
    assert (label[same["neg"]] != label[same["pos"]][:, None]).all()


@SETTINGS
@given(seed=st.integers(0, 10_000))
def test_basket_strategies_use_only_earlier_baskets(seed):
    ds, index = random_case(seed, with_groups=False)
    for strategy in (5, 6):
        s = run(ds, index, strategy, 60, seed)
        if s is None:
            continue
        for u, prof, pos, negs in zip(s["users"], s["profile"], s["pos"], s["neg"], strict=True):
            times = dict(zip(ds.profile(u), ds.profile_times_of(u), strict=True))
            prof = prof[prof >= 0]
            assert pos not in prof and pos in times
            if strategy == 5:
                assert all(times[p] < times[pos] for p in prof)
            else:
                assert all(times[p] <= times[pos] for p in prof)
            assert not set(index.clusters[negs]) & set(index.clusters[ds.profile(u)])


def test_strategy_counts_are_equal_shares_and_sum_to_n():
    assert list(strategy_counts(600, [1] * 6)) == [100] * 6
    counts = strategy_counts(605, [1] * 6)
    assert counts.sum() == 605 and counts.max() - counts.min() == 1
    assert list(strategy_counts(10, [1, 0, 0, 0, 0, 1])) == [5, 0, 0, 0, 0, 5]


def test_same_rng_gives_same_triplets():
    ds, index = random_case(5, True)
    a = guided_triplets(ds, 200, np.random.default_rng(9), index)
    b = guided_triplets(ds, 200, np.random.default_rng(9), index)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_kmeans_recovers_separated_blobs():
    rng = np.random.default_rng(0)
    centers = np.eye(4) * 10
    truth = np.repeat(np.arange(4), 25)
    x = centers[truth] + rng.normal(0, 0.1, (100, 4))
    labels = kmeans(x, 4, np.random.default_rng(1))
    assert len(set(zip(truth, labels, strict=True))) == 4  # a bijection between blobs and labels
    assert np.array_equal(labels, kmeans(x, 4, np.random.default_rng(1)))


def test_identical_items_share_a_visual_id_and_cluster():
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.7, 0.7]], dtype=np.float32)
    index = build_guided_index(x, None, n_clusters=2, seed=0)
    assert index.visual_ids[0] == index.visual_ids[1] != index.visual_ids[2]
    assert index.clusters[0] == index.clusters[1]


@pytest.mark.parametrize("shares", [(0, 0, 1, 0, 0, 0), (0, 0, 0, 0, 1, 1)])
def test_infeasible_strategy_hands_its_share_to_strategy_one(shares):
    rows = [(f"u{u}", f"i{i}", i) for u in range(4) for i in range(8)]  # one cluster, seen by all
    ds = Dataset.build(
        Interactions.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))
    )
    index = build_guided_index(np.eye(ds.n_items, dtype=np.float32), None, 1, 0)
    s = guided_triplets(
        ds, 20, np.random.default_rng(0), index, shares=shares, return_strategy=True
    )
    assert (s["strategy"] == 1).all() and len(s["pos"]) == 20

"""Uniform and profile triplet samplers: property tests on random datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visrec.data import Dataset, Interactions, SplitSpec
from visrec.errors import DataError
from visrec.sampling import last_profiles, pad_profiles, profile_triplets, uniform_triplets

events = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 15), st.integers(0, 6)), min_size=4, max_size=80
)


def _dataset(rows) -> Dataset | None:
    frame = pd.DataFrame(
        [(f"u{u}", f"i{i}", t) for u, i, t in rows], columns=["user_id", "item_id", "timestamp"]
    )
    try:
        return Dataset.build(
            Interactions.from_frame(frame), SplitSpec(), extra_item_ids=[f"i{k}" for k in range(16)]
        )
    except DataError:
        return None


def _heldout(ds: Dataset) -> set[tuple[int, int]]:
    out = set()
    for mat in (ds.test, ds.validation):
        coo = mat.tocoo()
        out |= set(zip(coo.row.tolist(), coo.col.tolist(), strict=True))
    return out


@settings(max_examples=50, deadline=None)
@given(events, st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_uniform_triplets_properties(rows, k, seed):
    ds = _dataset(rows)
    if ds is None:
        return
    sample = uniform_triplets(ds, 200, np.random.default_rng(seed), n_negatives=k)
    users, pos, neg = sample["users"], sample["pos"], sample["neg"]
    assert neg.shape == (200, k)
    train = ds.train.toarray() > 0
    assert train[users, pos].all()  # positives are train interactions
    assert not train[users[:, None], neg].any()  # negatives never in the user's train positives
    held = _heldout(ds)
    assert not any((u, p) in held for u, p in zip(users.tolist(), pos.tolist(), strict=True))


@settings(max_examples=50, deadline=None)
@given(events, st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_profile_triplets_properties(rows, max_profile, seed):
    ds = _dataset(rows)
    if ds is None or (np.diff(ds.profile_indptr) < 2).all():
        return
    s = profile_triplets(ds, 100, np.random.default_rng(seed), max_profile=max_profile)
    train = ds.train.toarray() > 0
    assert train[s["users"], s["pos"]].all()
    assert not train[s["users"][:, None], s["neg"]].any()
    for u, prof, p in zip(s["users"], s["profile"], s["pos"], strict=True):
        history = ds.profile(u).tolist()
        q = history.index(p)
        expected = history[max(0, q - max_profile) : q]
        assert prof[prof >= 0].tolist() == expected  # the items just before the positive
        assert (prof[: max_profile - len(expected)] == -1).all()  # left padding


def test_same_seed_same_sample(demo_dataset):
    a = uniform_triplets(demo_dataset, 500, np.random.default_rng(5), 2)
    b = uniform_triplets(demo_dataset, 500, np.random.default_rng(5), 2)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_last_profiles_and_padding(demo_dataset):
    users = np.array([0, 3])
    prof = last_profiles(demo_dataset, users, 4)
    for row, u in zip(prof, users, strict=True):
        assert row[row >= 0].tolist() == demo_dataset.profile(u)[-4:].tolist()
    assert pad_profiles([np.array([1, 2, 3]), np.array([7])], 2).tolist() == [[2, 3], [-1, 7]]


def test_user_who_consumed_everything_is_skipped_or_reported():
    frame = pd.DataFrame(
        [("u", "a", 1), ("u", "b", 1), ("v", "a", 1)], columns=["user_id", "item_id", "timestamp"]
    )
    ds = Dataset.build(Interactions.from_frame(frame), SplitSpec(validation=False))
    s = uniform_triplets(ds, 50, np.random.default_rng(0))
    assert set(s["users"].tolist()) == {ds.users.index("v")}
    assert (s["neg"] == ds.items.index("b")).all()
    with pytest.raises(DataError, match="profile sampling needs"):
        profile_triplets(ds, 5, np.random.default_rng(0))


def _train(rows: list[list[int]], n_items: int):
    import scipy.sparse as sp

    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.concatenate([np.asarray(r, dtype=np.int32) for r in rows])
    return sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(rows), n_items))


def test_negative_retries_are_bounded_for_users_who_consumed_nearly_everything():
    """Rejection stops after NEGATIVE_ROUNDS; the rows left draw from their user's complement."""
    from visrec.sampling.triplets import sample_negatives

    train = _train([list(range(199)), [0]], 200)  # user 0: only item 199 is free
    users = np.zeros(500, dtype=np.int64)
    neg = sample_negatives(train, users, 2, np.random.default_rng(0))
    assert neg.shape == (500, 2) and (neg == 199).all()


def test_complement_draws_are_uniform_over_the_free_items(monkeypatch):
    from visrec.sampling import triplets

    monkeypatch.setattr(triplets, "NEGATIVE_ROUNDS", 0)  # every rejected row takes the exact path
    train = _train([[0, 1, 2, 3, 4, 5], [0]], 10)
    neg = triplets.sample_negatives(
        train, np.zeros(8000, dtype=np.int64), 1, np.random.default_rng(1), never=np.array([9])
    )
    counts = np.bincount(neg[:, 0], minlength=10)
    assert counts[[0, 1, 2, 3, 4, 5, 9]].sum() == 0
    assert np.all(np.abs(counts[6:9] / 8000 - 1 / 3) < 0.03)  # uniform over items 6, 7, 8


def test_a_user_without_any_allowed_negative_is_an_error_not_a_hang():
    """A cold split's new items are never negatives: a user who consumed every other item used to make
    the rejection loop spin forever."""
    from visrec.sampling.triplets import sample_negatives

    train = _train([[0, 1, 2, 3], [0]], 5)
    with pytest.raises(DataError, match="user index 0 consumed every item that can be a negative"):
        sample_negatives(train, np.array([1, 0]), 1, np.random.default_rng(0), never=np.array([4]))

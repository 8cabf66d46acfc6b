"""The packed-bitmap membership used by the negative sampler agrees with the binary search."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from visrec.sampling import triplets


def random_train(seed: int, n_users: int = 13, n_items: int = 29) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < 0.3
    dense[:, 0] = False  # every user keeps at least one negative
    return sp.csr_matrix(dense.astype(np.float32))


def test_bitmap_membership_equals_search():
    train = random_train(0)
    keys = triplets.consumed_keys(train)
    member = triplets._membership(keys, *train.shape)
    users, items = np.divmod(np.arange(train.shape[0] * train.shape[1]), train.shape[1])
    want = triplets.is_consumed(keys, train.shape[1], users, items)
    np.testing.assert_array_equal(member(users, items), want)
    np.testing.assert_array_equal(want, train.toarray().ravel() > 0)


def test_sampler_draws_the_same_negatives_with_either_path(monkeypatch):
    train = random_train(1)
    users = np.random.default_rng(2).integers(0, train.shape[0], 500)
    fast = triplets.sample_negatives(train, users, 3, np.random.default_rng(7))
    monkeypatch.setattr(triplets, "BITMAP_MAX_CELLS", 0)
    slow = triplets.sample_negatives(train, users, 3, np.random.default_rng(7))
    np.testing.assert_array_equal(fast, slow)
    assert not train.toarray()[users[:, None], fast].any()

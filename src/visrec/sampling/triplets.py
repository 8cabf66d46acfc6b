"""Triplet samplers: small pure functions, vectorised with numpy, randomness only through ``rng``.

A sample is a dict of numpy arrays: ``users`` (N,), ``pos`` (N,), ``neg`` (N, K) and, in profile mode,
``profile`` (N, L) with -1 padding on the left (most recent item last). Positives come only from the train
matrix, so no validation or test item is ever a positive; negatives are never in the user's train positives.
(Held-out items may be drawn as negatives: excluding them would leak the test set into training. The
exception is a cold-item split's new items: they do not exist at training time, so they are never drawn
at all, and a model learns nothing about an item from the fact that nobody interacted with it.)
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from visrec.data.dataset import Dataset
from visrec.errors import DataError


def _row_of(indptr: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))


def consumed_keys(train: sp.csr_matrix) -> np.ndarray:
    """Sorted int64 keys ``user * n_items + item`` of the train matrix (for O(log nnz) membership)."""
    return _row_of(train.indptr) * train.shape[1] + train.indices.astype(np.int64)


def is_consumed(keys: np.ndarray, n_items: int, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Vectorised membership test of (user, item) pairs in the sorted key array."""
    query = users.astype(np.int64) * n_items + items
    pos = np.searchsorted(keys, query)
    pos = np.minimum(pos, len(keys) - 1)
    return keys[pos] == query


BITMAP_MAX_CELLS = 1 << 30
"""Up to this many (user, item) cells, negatives are checked in a packed bitmap (<= 128 MiB, ~10x
faster than the binary search in :func:`is_consumed`); larger matrices fall back to the search."""


def consumed_bitmap(keys: np.ndarray, n_cells: int) -> np.ndarray:
    """Packed bitmap (little bit order) of the cells ``keys`` among ``n_cells``."""
    bitmap = np.zeros((n_cells + 7) // 8, dtype=np.uint8)
    np.bitwise_or.at(bitmap, keys >> 3, np.left_shift(1, keys & 7).astype(np.uint8))
    return bitmap


def _membership(keys: np.ndarray, n_users: int, n_items: int):
    """``member(users, items) -> bool array``: bitmap lookup when small enough, else binary search."""
    if n_users * n_items > BITMAP_MAX_CELLS:
        return lambda users, items: is_consumed(keys, n_items, users, items)
    bitmap = consumed_bitmap(keys, n_users * n_items)

    def member(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        query = users.astype(np.int64) * n_items + items
        return ((bitmap[query >> 3] >> (query & 7).astype(np.uint8)) & 1).astype(bool)

    return member


def new_items(dataset: Dataset) -> np.ndarray | None:
    """Item indices that do not exist at training time: a cold-item split's test and validation cold
    items (None for the other splits)."""
    if not dataset.split.is_cold:
        return None
    return np.union1d(dataset.cold_items("test"), dataset.cold_items("validation"))


def sample_negatives(
    train: sp.csr_matrix,
    users: np.ndarray,
    k: int,
    rng: np.random.Generator,
    keys: np.ndarray | None = None,
    never: np.ndarray | None = None,
) -> np.ndarray:
    """(len(users), k) uniform items that each user has not consumed in train (rejection sampling),
    never one of the items ``never`` (a cold split's new items)."""
    n_items = train.shape[1]
    counts = np.diff(train.indptr)
    if (counts >= n_items).any():  # checked per sampled user only when some user is full
        full = counts[users] >= n_items
        if full.any():
            raise DataError(
                f"user index {int(users[full][0])} consumed every item: no negative exists"
            )
    keys = consumed_keys(train) if keys is None else keys
    member = _membership(keys, train.shape[0], n_items)
    if never is not None and len(never):
        blocked = np.zeros(n_items, dtype=bool)
        blocked[never] = True
        consumed = member

        def member(users: np.ndarray, items: np.ndarray) -> np.ndarray:
            return blocked[items] | consumed(users, items)

    rows = users if k == 1 else np.repeat(users, k)
    neg = rng.integers(0, n_items, len(rows))
    bad = np.flatnonzero(member(rows, neg))
    for _ in range(NEGATIVE_ROUNDS):
        if not len(bad):
            break
        neg[bad] = rng.integers(0, n_items, len(bad))
        bad = bad[member(rows[bad], neg[bad])]
    if len(bad):  # users who consumed nearly every item: draw from what is left, exactly
        neg[bad] = _complement_draws(train, rows[bad], never, rng)
    return neg.reshape(len(users), k)


NEGATIVE_ROUNDS = 64
"""Rejection rounds of :func:`sample_negatives`; rows still rejected after them (only users who consumed
nearly every item get there: a row survives 64 rounds with probability density^64) draw uniformly from
their user's explicit complement instead, the same distribution, so the loop is bounded."""


def _complement_draws(
    train: sp.csr_matrix, rows: np.ndarray, never: np.ndarray | None, rng: np.random.Generator
) -> np.ndarray:
    """One uniform item per entry of ``rows`` among the items its user has not consumed and that are
    not in ``never``; a user with none left is a :class:`DataError`."""
    out = np.empty(len(rows), dtype=np.int64)
    blocked = np.zeros(train.shape[1], dtype=bool)
    if never is not None:
        blocked[never] = True
    for user in np.unique(rows):
        free = ~blocked
        free[train.indices[train.indptr[user] : train.indptr[user + 1]]] = False
        allowed = np.flatnonzero(free)
        if not len(allowed):
            raise DataError(
                f"user index {int(user)} consumed every item that can be a negative "
                "(new items of a cold split excluded): no negative exists"
            )
        at = np.flatnonzero(rows == user)
        out[at] = allowed[rng.integers(0, len(allowed), len(at))]
    return out


def _eligible_train(train: sp.csr_matrix) -> np.ndarray:
    """Train entry positions of users that have at least one possible negative."""
    counts = np.diff(train.indptr)
    ok = np.repeat(counts < train.shape[1], counts)
    return np.flatnonzero(ok)


def uniform_triplets(
    dataset: Dataset, n: int, rng: np.random.Generator, n_negatives: int = 1
) -> dict[str, np.ndarray]:
    """(user, positive, negatives) with (user, positive) uniform over train interactions (BPR, Rendle 2009)."""
    train = dataset.train
    entries = _eligible_train(train)
    if len(entries) == 0:
        raise DataError("no train interaction has a possible negative item")
    pick = entries[rng.integers(0, len(entries), n)]
    users = _row_of(train.indptr)[pick]
    pos = train.indices[pick].astype(np.int64)
    neg = sample_negatives(train, users, n_negatives, rng, never=new_items(dataset))
    return {"users": users, "pos": pos, "neg": neg}


def profile_windows(
    dataset: Dataset, positions: np.ndarray, owner: np.ndarray, max_profile: int
) -> np.ndarray:
    """For positions q in ``dataset.profile_items`` (exclusive ends) of users ``owner``, the (up to)
    ``max_profile`` items before q of the same user, oldest first, left-padded with -1.
    Shape (len(positions), max_profile)."""
    start = dataset.profile_indptr[owner]
    offsets = np.arange(-max_profile, 0)
    idx = positions[:, None] + offsets[None, :]
    valid = idx >= start[:, None]
    out = np.where(valid, dataset.profile_items[np.clip(idx, 0, None)], -1)
    return out.astype(np.int64)


def profile_triplets(
    dataset: Dataset, n: int, rng: np.random.Generator, n_negatives: int = 1, max_profile: int = 10
) -> dict[str, np.ndarray]:
    """(profile, positive, negatives): the positive is a train item that has at least one earlier train
    item of the same user; the profile is the up-to-``max_profile`` items just before it (the tutorial's
    profile mode)."""
    indptr = dataset.profile_indptr
    counts = np.diff(indptr)
    all_pos = np.arange(indptr[-1])
    owner = np.repeat(np.arange(dataset.n_users), counts)
    eligible = all_pos[(all_pos > indptr[owner]) & (counts[owner] < dataset.n_items)]
    if len(eligible) == 0:
        raise DataError("profile sampling needs users with at least 2 train items")
    positions = eligible[rng.integers(0, len(eligible), n)]
    users = owner[positions]
    return {
        "users": users,
        "profile": profile_windows(dataset, positions, users, max_profile),
        "pos": dataset.profile_items[positions].astype(np.int64),
        "neg": sample_negatives(dataset.train, users, n_negatives, rng, never=new_items(dataset)),
    }


def last_profiles(dataset: Dataset, users: np.ndarray, max_profile: int) -> np.ndarray:
    """Each user's last ``max_profile`` train items (left-padded with -1), for scoring."""
    users = np.asarray(users, dtype=np.int64)
    return profile_windows(dataset, dataset.profile_indptr[users + 1], users, max_profile)


def pad_profiles(profiles: list[np.ndarray], max_profile: int | None = None) -> np.ndarray:
    """Left-pad (and truncate to the most recent ``max_profile``) a list of profiles with -1."""
    if max_profile is not None:
        profiles = [np.asarray(p)[-max_profile:] for p in profiles]
    width = max((len(p) for p in profiles), default=0)
    out = np.full((len(profiles), width), -1, dtype=np.int64)
    for row, p in enumerate(profiles):
        if len(p):
            out[row, width - len(p) :] = p
    return out

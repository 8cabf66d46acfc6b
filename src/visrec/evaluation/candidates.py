"""Who is ranked against what: consumed histories, tutorial profile windows, sampled negatives.

Everything here is per user and independent of how users are grouped into evaluation blocks, which is what
makes every metric identical for any block size.

- The *history* of a user before a split's targets is what the user had consumed when the targets happened:
  the train items for ``validation``; the train items followed by the validation basket for ``test`` (the
  validation basket was carved out of the train rows, so it precedes the test basket). It is kept in
  chronological order (ties by item index, as :class:`~visrec.data.Dataset` orders profiles).
- Full mode excludes the whole history from the candidates; tutorial mode only its last ``window`` items;
  sampled mode draws negatives from the items outside history and targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from visrec.data import Dataset


@dataclass(frozen=True)
class History:
    """Chronological consumed items per user, as CSR-like ``indptr`` / ``items`` arrays."""

    indptr: np.ndarray
    items: np.ndarray

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.indptr)

    def rows(self, users: np.ndarray, *, last: int | None = None) -> np.ndarray:
        """Padded ``(len(users), t)`` item indices (-1 pads) of each user's history (or its last items)."""
        starts, ends = self.indptr[users], self.indptr[users + 1]
        if last is not None:
            starts = np.maximum(starts, ends - last)
        return padded(self.items, starts, ends)


def padded(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Rows ``values[starts[i]:ends[i]]`` stacked into a -1-padded int64 matrix."""
    lengths = ends - starts
    width = int(lengths.max()) if len(lengths) else 0
    out = np.full((len(starts), width), -1, dtype=np.int64)
    total = int(lengths.sum())
    if total:
        # positions of every row's segment, concatenated in row-major order (the order of the mask)
        offsets = np.cumsum(lengths) - lengths
        positions = np.arange(total) + np.repeat(starts - offsets, lengths)
        out[np.arange(width)[None, :] < lengths[:, None]] = values[positions]
    return out


def csr_rows(matrix: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
    """Padded column indices of the given CSR rows (-1 pads)."""
    return padded(matrix.indices, matrix.indptr[users], matrix.indptr[users + 1])


def build_history(dataset: Dataset, split: str) -> History:
    """Train profile, followed for ``split='test'`` by the validation basket (see module docstring)."""
    if split == "validation" or dataset.validation.nnz == 0:
        return History(np.asarray(dataset.profile_indptr), np.asarray(dataset.profile_items))
    val = dataset.validation
    train_sizes = dataset.profile_sizes
    val_sizes = np.diff(val.indptr)
    indptr = np.zeros(dataset.n_users + 1, dtype=np.int64)
    np.cumsum(train_sizes + val_sizes, out=indptr[1:])
    items = np.empty(indptr[-1], dtype=np.int64)
    # position of each train entry: its user's start + its offset in the profile
    train_users = np.repeat(np.arange(dataset.n_users), train_sizes)
    train_offset = np.arange(len(dataset.profile_items)) - dataset.profile_indptr[train_users]
    items[indptr[train_users] + train_offset] = dataset.profile_items
    val_users = np.repeat(np.arange(dataset.n_users), val_sizes)
    val_offset = np.arange(val.nnz) - val.indptr[val_users]
    items[indptr[val_users] + train_sizes[val_users] + val_offset] = val.indices
    return History(indptr, items)


def user_rng(seed: int, user_idx: int) -> np.random.Generator:
    """The negative-sampling generator of one user: seeded from (seed, user index) only."""
    return np.random.default_rng([int(seed), int(user_idx)])


def sample_negatives(
    excluded: np.ndarray, n_items: int, n_negatives: int, rng: np.random.Generator
) -> np.ndarray:
    """Up to ``n_negatives`` distinct items outside ``excluded``, uniformly without replacement.

    Draws positions j among the ``m = n_items - |excluded|`` allowed items and maps each to the j-th
    allowed item: x = j + #{e in excluded with e - (its rank in excluded) <= j}. Fewer than
    ``n_negatives`` items come back when fewer are allowed.
    """
    excluded = np.unique(excluded)
    allowed = n_items - len(excluded)
    take = min(n_negatives, allowed)
    if take <= 0:
        return np.zeros(0, dtype=np.int64)
    pos = np.sort(rng.choice(allowed, size=take, replace=False))
    shift = excluded - np.arange(len(excluded))
    return (pos + np.searchsorted(shift, pos, side="right")).astype(np.int64)


def negatives_block(
    history: History,
    targets: sp.csr_matrix,
    users: np.ndarray,
    n_items: int,
    n_negatives: int,
    seed: int,
) -> np.ndarray:
    """Padded ``(len(users), n_negatives)`` sampled negatives (-1 pads) for a block of users."""
    out = np.full((len(users), n_negatives), -1, dtype=np.int64)
    for row, user in enumerate(users):
        consumed = history.items[history.indptr[user] : history.indptr[user + 1]]
        truth = targets.indices[targets.indptr[user] : targets.indptr[user + 1]]
        neg = sample_negatives(
            np.concatenate([consumed, truth]), n_items, n_negatives, user_rng(seed, user)
        )
        out[row, : len(neg)] = neg
    return out

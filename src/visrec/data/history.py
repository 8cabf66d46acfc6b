"""What each user had consumed before a split's targets: the one definition of a user's history.

The *history* of a user before a split's targets is: the train items for ``validation``; the train items
followed by the validation targets for ``test`` (the validation basket was carved out of the train rows, so
it precedes the test basket). It is kept in chronological order (ties by item index, as
:class:`~visrec.data.Dataset` orders profiles). The evaluation engine excludes it from the candidates, and
the profile-based models (VisRank, CuratorNet, ACF) score a user from it, so what a model sees at test time
is exactly what the candidates assume the user has consumed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class History:
    """Chronological consumed items per user, as CSR-like ``indptr`` / ``items`` arrays."""

    indptr: np.ndarray
    items: np.ndarray

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.indptr)

    def of(self, user_idx: int) -> np.ndarray:
        """One user's history (item indices, oldest first)."""
        return self.items[self.indptr[user_idx] : self.indptr[user_idx + 1]]

    def lists(self, users) -> list[np.ndarray]:
        """The histories of ``users`` (user indices), one array each."""
        return [self.of(int(u)) for u in np.asarray(users).reshape(-1)]

    def rows(self, users: np.ndarray, *, last: int | None = None) -> np.ndarray:
        """Padded ``(len(users), t)`` item indices (-1 pads) of each user's history (or its last items)."""
        starts, ends = self.indptr[users], self.indptr[users + 1]
        if last is not None:
            starts = np.maximum(starts, ends - last)
        return padded(self.items, starts, ends)

    def windows(self, users: np.ndarray, size: int) -> np.ndarray:
        """Each user's last ``size`` items, oldest first, LEFT-padded with -1: (len(users), size)."""
        users = np.asarray(users, dtype=np.int64)
        ends = self.indptr[users + 1]
        idx = ends[:, None] + np.arange(-size, 0)[None, :]
        valid = idx >= self.indptr[users][:, None]
        if not len(self.items):
            return np.full(idx.shape, -1, dtype=np.int64)
        return np.where(valid, self.items[np.clip(idx, 0, None)], -1).astype(np.int64)


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


def merge_history(
    profile_indptr: np.ndarray, profile_items: np.ndarray, later: sp.csr_matrix
) -> History:
    """Each user's train profile followed by their row of ``later`` (the validation targets)."""
    n_users = len(profile_indptr) - 1
    train_sizes = np.diff(profile_indptr)
    later_sizes = np.diff(later.indptr)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(train_sizes + later_sizes, out=indptr[1:])
    items = np.empty(indptr[-1], dtype=np.int64)
    # position of each train entry: its user's start + its offset in the profile
    train_users = np.repeat(np.arange(n_users), train_sizes)
    train_offset = np.arange(len(profile_items)) - profile_indptr[train_users]
    items[indptr[train_users] + train_offset] = profile_items
    later_users = np.repeat(np.arange(n_users), later_sizes)
    later_offset = np.arange(later.nnz) - later.indptr[later_users]
    items[indptr[later_users] + train_sizes[later_users] + later_offset] = later.indices
    return History(indptr, items)

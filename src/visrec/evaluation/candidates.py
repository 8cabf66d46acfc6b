"""Who is ranked against what: consumed histories, tutorial profile windows, sampled negatives.

Everything here is per user and independent of how users are grouped into evaluation blocks, which is what
makes every metric identical for any block size.

- The *history* of a user before a split's targets is what the user had consumed when the targets happened:
  :meth:`Dataset.history <visrec.data.Dataset.history>` defines it once (train items for ``validation``;
  train items followed by the validation basket for ``test``), for this module and for the profile-based
  models' scoring alike.
- Full mode excludes the whole history from the candidates; tutorial mode only its last ``window`` items;
  sampled mode draws negatives from the items outside history and targets.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from visrec.data import Dataset
from visrec.data.history import History, padded


def csr_rows(matrix: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
    """Padded column indices of the given CSR rows (-1 pads)."""
    return padded(matrix.indices, matrix.indptr[users], matrix.indptr[users + 1])


def build_history(dataset: Dataset, split: str) -> History:
    """Train profile, followed for ``split='test'`` by the validation basket: ``dataset.history(split)``,
    the one definition the profile-based models score from too."""
    return dataset.history(split)


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

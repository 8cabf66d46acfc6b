"""The item- and user-side indexes of CuratorNet's guided triplet sampling
(:mod:`visrec.sampling.curatornet`; Messina et al., "CuratorNet", 2020, section 3.3): the visual
clusters, groups and identical items (:class:`GuidedIndex`) and the per-call arrays and draws the six
strategies share (:class:`SamplingContext`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from visrec.data.dataset import Dataset
from visrec.sampling.kmeans import kmeans
from visrec.sampling.triplets import consumed_keys, new_items

ROUNDS = 50
"""Redraws of a rejected candidate before a row is given up."""


@dataclass(frozen=True)
class GuidedIndex:
    """Item-side data of guided sampling: visual clusters, optional groups, visual-identity ids."""

    clusters: np.ndarray
    """Visual cluster per item (k-means on the L2-normalised features), dense in [0, n_clusters)."""
    groups: np.ndarray | None
    """Group per item (-1 = none), or None when the dataset has no groups."""
    visual_ids: np.ndarray
    """Items with the same id are visually identical (cosine 1)."""

    @property
    def n_clusters(self) -> int:
        return int(self.clusters.max()) + 1

    def members(self) -> tuple[np.ndarray, np.ndarray]:
        """(indptr, items): the items of each cluster."""
        order = np.argsort(self.clusters, kind="stable")
        indptr = np.zeros(self.n_clusters + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.clusters, minlength=self.n_clusters), out=indptr[1:])
        return indptr, order


def build_guided_index(
    features: np.ndarray, item_groups: np.ndarray | None, n_clusters: int, seed: int
) -> GuidedIndex:
    """Cluster ``features`` (n_items, d) with a seeded k-means and index groups and identical items."""
    x = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = x / np.where(norms > 0, norms, 1.0)
    clusters = kmeans(unit, n_clusters, np.random.default_rng(seed))
    visual_ids = np.unique(np.round(unit, 5), axis=0, return_inverse=True)[1].reshape(-1)
    groups = None
    if item_groups is not None and (np.asarray(item_groups) >= 0).any():
        groups = np.asarray(item_groups, dtype=np.int64)
    return GuidedIndex(clusters, groups, visual_ids.astype(np.int64))


def _member(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    pos = np.minimum(np.searchsorted(keys, query), max(len(keys) - 1, 0))
    return keys[pos] == query if len(keys) else np.zeros(len(query), dtype=bool)


class SamplingContext:
    """Per-call arrays shared by the strategies (all derived from train, plus held-out pair keys)."""

    def __init__(
        self, ds: Dataset, ix: GuidedIndex, rng, n_neg: int, max_profile: int, fine: float
    ):
        self.ds, self.ix, self.rng = ds, ix, rng
        self.k, self.L, self.fine = n_neg, max_profile, fine
        self.n_items = ds.n_items
        self.indptr, self.items = ds.profile_indptr, ds.profile_items
        self.owner = np.repeat(np.arange(ds.n_users), np.diff(self.indptr))
        self.train_keys = consumed_keys(ds.train)
        self.heldout_keys = np.union1d(consumed_keys(ds.validation), consumed_keys(ds.test))
        self.c_indptr, self.c_items = ix.members()
        self.n_c = ix.n_clusters
        self.user_clusters = np.unique(self.owner * self.n_c + ix.clusters[self.items])
        seen = np.bincount(self.user_clusters // self.n_c, minlength=ds.n_users)
        self.has_novel = seen < self.n_c
        """Users with a never-consumed cluster (the only ones strategies 3, 5 and 6 can serve)."""
        self.in_train = np.asarray(ds.train.sum(axis=0)).ravel() > 0
        self.is_new = np.zeros(ds.n_items, dtype=bool)
        """A cold-item split's new items: they do not exist at training time, so never a negative."""
        new = new_items(ds)
        if new is not None:
            self.is_new[new] = True
        if ix.groups is not None:
            self.n_g = int(ix.groups.max()) + 1
            g = ix.groups[self.items]
            self.user_groups = np.unique((self.owner * self.n_g + g)[g >= 0])
        starts = np.ones(len(self.items), dtype=bool)
        starts[1:] = (self.owner[1:] != self.owner[:-1]) | (
            ds.profile_times[1:] != ds.profile_times[:-1]
        )
        first = np.flatnonzero(starts)
        basket = np.cumsum(starts) - 1
        self.basket_start = first[basket]
        self.basket_end = np.append(first[1:], len(self.items))[basket]

    # --- membership tests ------------------------------------------------------------------------------
    def consumed(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return _member(self.train_keys, users * self.n_items + items)

    def heldout(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return _member(self.heldout_keys, users * self.n_items + items)

    def cluster_seen(self, users: np.ndarray, clusters: np.ndarray) -> np.ndarray:
        return _member(self.user_clusters, users * self.n_c + clusters)

    def group_seen(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        if self.ix.groups is None:
            return np.zeros(len(items), dtype=bool)
        g = self.ix.groups[items]
        return (g >= 0) & _member(self.user_groups, users * self.n_g + g)

    def novel_negative(self, users: np.ndarray):
        """Predicates for a negative from a never-consumed group and cluster of ``users``."""
        return (
            lambda r, c: self.cluster_seen(users[r], c),
            lambda r, j: self.group_seen(users[r], j),
        )

    # --- negatives ---------------------------------------------------------------------------------------
    def negatives(
        self, pos: np.ndarray, bad: Callable | None = None, cluster_bad: Callable | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(len(pos), k) negatives and a per-row ok mask. ``cluster_bad(rows, clusters)`` and
        ``bad(rows, items)`` reject candidates; rejected ones are redrawn up to ``ROUNDS`` times."""
        rng, ix = self.rng, self.ix
        rows = np.repeat(np.arange(len(pos)), self.k)
        p = pos[rows]
        neg = np.full(len(rows), -1, dtype=np.int64)
        todo = np.arange(len(rows))
        for _ in range(ROUNDS):
            if not len(todo):
                break
            r, pp = rows[todo], p[todo]
            own = ix.clusters[pp]
            use_own = rng.random(len(todo)) < self.fine
            if cluster_bad is not None:
                use_own &= ~cluster_bad(r, own)
            c = np.where(use_own, own, rng.integers(0, self.n_c, len(todo)))
            size = self.c_indptr[c + 1] - self.c_indptr[c]
            cand = self.c_items[self.c_indptr[c] + (rng.random(len(todo)) * size).astype(np.int64)]
            wrong = (ix.visual_ids[cand] == ix.visual_ids[pp]) | self.is_new[cand]
            if cluster_bad is not None:
                wrong |= cluster_bad(r, ix.clusters[cand])
            if bad is not None:
                wrong |= bad(r, cand)
            neg[todo[~wrong]] = cand[~wrong]
            todo = todo[wrong]
        ok = np.ones(len(pos), dtype=bool)
        ok[rows[todo]] = False
        return neg.reshape(len(pos), self.k), ok

    # --- helpers -------------------------------------------------------------------------------------------
    def eligible_users(self, novel: bool = False) -> np.ndarray:
        sizes = np.diff(self.indptr)
        ok = (sizes > 0) & (sizes < self.n_items)
        return np.flatnonzero(ok & self.has_novel if novel else ok)

    def train_entries(self, m: int) -> np.ndarray:
        return self.items[self.rng.integers(0, len(self.items), m)]

    def one_item(self, items: np.ndarray) -> np.ndarray:
        out = np.full((len(items), self.L), -1, dtype=np.int64)
        out[:, -1] = items
        return out

    def pick_from_profile(self, profile: np.ndarray) -> np.ndarray:
        n_valid = (profile >= 0).sum(1)
        col = self.L - 1 - (self.rng.random(len(profile)) * n_valid).astype(np.int64)
        return profile[np.arange(len(profile)), col]

"""Top-k recommendation lists of a block of users, and the metrics read from them.

A user's top-k list is the k highest-scored candidates (the items the mode ranks against: unconsumed items
in ``full``/``mixed``, the split's new items in ``cold``), ties broken by item index (lower first), so a
list never depends on the block it was computed in. Lists are built from the score block the engine
already holds (no extra scoring pass), only when a list metric is asked for.

- coverage@k (catalogue coverage): distinct items in any user's top-k list / items that could be listed
  (the catalogue; the split's new items in ``cold`` mode). One number for the whole evaluation.
- diversity@k (intra-list diversity, Ziegler et al., "Improving recommendation lists through topic
  diversification", WWW 2005): mean over the pairs of a list of the cosine distance 1 - cos(f_i, f_j) of
  the items' feature vectors (0 for lists of fewer than 2 items).
- novelty@k (Zhou et al., "Solving the apparent diversity-accuracy dilemma of recommender systems", PNAS
  2010): mean over the list of -log2 of the item's popularity share; the share is add-one smoothed,
  (train interactions + 1) / (train interactions of all items + n_items), so new items have a finite value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIVERSITY_CHUNK = 256
"""Users whose list features are multiplied at once (bounds memory at chunk x k x feature-dim)."""


@dataclass(frozen=True, eq=False)
class ItemInfo:
    """What list metrics know of the items: unit-norm features (or None) and popularity shares."""

    unit_features: np.ndarray | None
    popularity_share: np.ndarray

    @classmethod
    def build(cls, popularity: np.ndarray, features: np.ndarray | None) -> ItemInfo:
        popularity = np.asarray(popularity, dtype=np.float64)
        share = (popularity + 1.0) / (popularity.sum() + len(popularity))
        unit = None
        if features is not None:
            f = np.asarray(features, dtype=np.float64)
            norms = np.linalg.norm(f, axis=1, keepdims=True)
            unit = f / np.where(norms > 0, norms, 1.0)  # a zero vector stays zero (similarity 0)
        return cls(unit, share)


def top_lists(
    scores: np.ndarray, k: int, excluded: np.ndarray, columns: np.ndarray | None = None
) -> np.ndarray:
    """``(B, k)`` item indices of each row's top-k candidates (-1 pads where fewer exist).

    ``scores`` is the ``(B, n_items)`` block; ``excluded`` the ``(B, h)`` -1-padded item indices that are
    not candidates; ``columns`` (sorted item indices) restricts the candidates to those items.
    """
    items = np.arange(scores.shape[1]) if columns is None else np.asarray(columns)
    block = scores if columns is None else scores[:, items]
    n_rows = block.shape[0]
    width = min(block.shape[1], k + excluded.shape[1])
    # stable sort of the negated scores: descending, ties by column (= item) order
    order = np.argsort(-block, axis=1, kind="stable")[:, :width]
    ranked = items[order]
    keep = np.ones(ranked.shape, dtype=bool)
    for j in range(excluded.shape[1]):
        keep &= ranked != excluded[:, j : j + 1]
    out = np.full((n_rows, k), -1, dtype=np.int64)
    position = np.cumsum(keep, axis=1) - 1
    rows, cols = np.nonzero(keep & (position < k))
    out[rows, position[rows, cols]] = ranked[rows, cols]
    return out


def novelty(lists: np.ndarray, info: ItemInfo) -> np.ndarray:
    """Mean -log2 popularity share of each list's items (NaN for an empty list)."""
    valid = lists >= 0
    surprise = np.where(valid, -np.log2(info.popularity_share[np.maximum(lists, 0)]), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.cumsum(surprise, axis=1)[:, -1] / valid.sum(axis=1)


def diversity(lists: np.ndarray, info: ItemInfo) -> np.ndarray:
    """Mean pairwise cosine distance of each list's items (0 for fewer than 2 items)."""
    out = np.zeros(len(lists))
    for start in range(0, len(lists), DIVERSITY_CHUNK):
        part = lists[start : start + DIVERSITY_CHUNK]
        valid = part >= 0
        vectors = info.unit_features[np.maximum(part, 0)] * valid[:, :, None]
        sims = np.matmul(vectors, np.transpose(vectors, (0, 2, 1)))
        n = valid.sum(axis=1)
        pair_sum = (sims.sum(axis=(1, 2)) - np.trace(sims, axis1=1, axis2=2)) / 2.0
        pairs = n * (n - 1) / 2.0
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + len(part)] = np.where(pairs > 0, 1.0 - pair_sum / pairs, 0.0)
    return out


def coverage(lists: list[np.ndarray], n_listable: int) -> tuple[float, np.ndarray]:
    """(share of the ``n_listable`` items that appear in any list, the sorted distinct items)."""
    joined = np.concatenate([a.ravel() for a in lists]) if lists else np.zeros(0, np.int64)
    covered = np.unique(joined[joined >= 0])
    return (len(covered) / n_listable if n_listable else float("nan")), covered

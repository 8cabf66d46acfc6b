"""A small seeded k-means (Lloyd 1982, k-means++ seeding of Arthur & Vassilvitskii 2007) in numpy.

Used to find the "visual clusters" of CuratorNet's guided sampling (Messina et al. 2020). No sklearn: the
whole algorithm is a few matrix products, chunked so memory stays bounded by ``chunk`` rows.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from visrec.errors import DataError


def _sq_dists(x: np.ndarray, centers: np.ndarray, x_sq: np.ndarray) -> np.ndarray:
    c_sq = (centers * centers).sum(1)
    d = x_sq[:, None] - 2.0 * (x @ centers.T) + c_sq[None, :]
    return np.maximum(d, 0.0)


def _assign(x: np.ndarray, centers: np.ndarray, x_sq: np.ndarray, chunk: int):
    labels = np.empty(len(x), dtype=np.int64)
    best = np.empty(len(x), dtype=np.float64)
    for lo in range(0, len(x), chunk):
        d = _sq_dists(x[lo : lo + chunk], centers, x_sq[lo : lo + chunk])
        labels[lo : lo + chunk] = d.argmin(1)
        best[lo : lo + chunk] = d[np.arange(len(d)), labels[lo : lo + chunk]]
    return labels, best


def _plusplus(x: np.ndarray, k: int, rng: np.random.Generator, x_sq: np.ndarray) -> np.ndarray:
    centers = [x[rng.integers(len(x))]]
    closest = _sq_dists(x, centers[0][None, :], x_sq)[:, 0]
    for _ in range(1, k):
        total = closest.sum()
        pick = rng.choice(len(x), p=closest / total) if total > 0 else rng.integers(len(x))
        centers.append(x[pick])
        closest = np.minimum(closest, _sq_dists(x, x[pick][None, :], x_sq)[:, 0])
    return np.stack(centers)


def kmeans(
    x: np.ndarray, k: int, rng: np.random.Generator, *, iterations: int = 30, chunk: int = 4096
) -> np.ndarray:
    """Cluster labels in ``[0, k')`` for the rows of ``x`` (k' <= k: empty clusters are dropped and the
    labels renumbered densely). Deterministic for a given ``rng`` state."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise DataError(f"k-means needs a non-empty (n, d) array, got shape {x.shape}")
    k = max(1, min(int(k), len(x)))
    x_sq = (x * x).sum(1)
    centers = _plusplus(x, k, rng, x_sq)
    labels = np.full(len(x), -1, dtype=np.int64)
    for _ in range(iterations):
        new, _ = _assign(x, centers, x_sq, chunk)
        if np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=k)
        member = sp.csr_matrix(
            (np.ones(len(x), np.float32), (labels, np.arange(len(x)))), (k, len(x))
        )
        sums = np.asarray(member @ x)
        filled = counts > 0
        centers[filled] = sums[filled] / counts[filled, None]
    return np.unique(labels, return_inverse=True)[1].astype(np.int64)

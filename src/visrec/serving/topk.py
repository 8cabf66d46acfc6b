"""Top-k recommendation through the Recommender interface, with consumed items masked in the top-k.

Used by ``visrec recommend``, ``visrec similar``, ``visrec grid`` and the web viewer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from visrec.data.dataset import Dataset
from visrec.errors import DataError
from visrec.models.base import Recommender


@dataclass(frozen=True)
class Recommendation:
    """The top-k of one user or profile: item indices (best first) and their scores."""

    items: np.ndarray
    scores: np.ndarray

    def to_rows(self, item_ids: np.ndarray) -> list[dict]:
        return [
            {"rank": r + 1, "item_id": str(item_ids[i]), "score": float(s)}
            for r, (i, s) in enumerate(zip(self.items, self.scores, strict=True))
        ]


def _topk(scores: torch.Tensor, k: int) -> list[Recommendation]:
    k = min(k, scores.shape[1])
    values, idx = torch.topk(scores, k, dim=1)
    out = []
    for row_v, row_i in zip(values.cpu().numpy(), idx.cpu().numpy(), strict=True):
        keep = np.isfinite(row_v)  # masked (consumed) items never appear
        out.append(Recommendation(row_i[keep].astype(np.int64), row_v[keep].astype(np.float64)))
    return out


def recommend_users(
    model: Recommender,
    dataset: Dataset,
    users: np.ndarray,
    k: int = 20,
    *,
    exclude_consumed: bool = True,
) -> list[Recommendation]:
    """Top-k items for known users (indices), their train items excluded unless asked otherwise."""
    users = np.asarray(users, dtype=np.int64)
    scores = model.score(users).float()
    if exclude_consumed:
        rows = dataset.train[users].tocoo()
        scores[torch.from_numpy(rows.row).long(), torch.from_numpy(rows.col).long()] = -torch.inf
    return _topk(scores, k)


def recommend_profile(
    model: Recommender, profile: np.ndarray, k: int = 20, *, exclude_consumed: bool = True
) -> Recommendation:
    """Top-k for a new user given only a profile of item indices (profile-based models)."""
    profile = np.array(profile, dtype=np.int64)  # a writable copy (torch.from_numpy below)
    if len(profile) == 0:
        raise DataError("the profile is empty: give at least one item id")
    scores = model.score_profiles([profile]).float()
    if exclude_consumed:
        scores[0, torch.from_numpy(profile)] = -torch.inf
    return _topk(scores, k)[0]


def similar_items(vectors: np.ndarray | torch.Tensor, item_idx: int, k: int = 20) -> Recommendation:
    """The ``k`` items most cosine-similar to ``item_idx`` (the item itself excluded)."""
    x = torch.as_tensor(np.asarray(vectors, dtype=np.float32))
    if x.ndim == 4:  # spatial maps: average over regions
        x = x.mean(dim=(1, 2))
    x = torch.nn.functional.normalize(x.reshape(len(x), -1), dim=1)
    sims = (x @ x[item_idx]).unsqueeze(0)
    sims[0, item_idx] = -torch.inf
    return _topk(sims, k)[0]

"""Top-k recommendation through the Recommender interface, with consumed items masked in the top-k.

"Consumed", for serving, is every interaction of the user in the data (train + validation + test:
:attr:`visrec.data.Dataset.consumed`); for a new user, the given profile. It is excluded by default;
``exclude_consumed=False`` keeps it and marks each such item (``Recommendation.consumed``), for inspection.
Used by ``visrec recommend``, ``visrec similar``, ``visrec grid``, the Python API and the web viewer.
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
    """The top-k of one user or profile: item indices (best first), their scores and, per item, whether
    the user already consumed it (all False unless consumed items were asked for)."""

    items: np.ndarray
    scores: np.ndarray
    consumed: np.ndarray | None = None

    def __post_init__(self):
        if self.consumed is None:
            object.__setattr__(self, "consumed", np.zeros(len(self.items), dtype=bool))

    def marked(self, consumed: np.ndarray) -> Recommendation:
        """A copy whose ``consumed`` flags say which items are in ``consumed`` (item indices)."""
        flags = np.isin(self.items, np.asarray(consumed, dtype=np.int64))
        return Recommendation(self.items, self.scores, flags)

    def to_rows(self, item_ids: np.ndarray, *, flags: bool = True) -> list[dict]:
        """One dict per item: rank (1-based), item_id, score and (``flags``) consumed."""
        rows = []
        for r, (i, s, c) in enumerate(zip(self.items, self.scores, self.consumed, strict=True)):
            row = {"rank": r + 1, "item_id": str(item_ids[i]), "score": float(s)}
            rows.append(row | {"consumed": bool(c)} if flags else row)
        return rows


def consumed_items(dataset: Dataset, user_idx: int) -> np.ndarray:
    """Item indices ``user_idx`` consumed (serving's definition: :attr:`Dataset.consumed`)."""
    return dataset.consumed[int(user_idx)].indices


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
    """Top-k items for known users (indices), their consumed items (train + validation + test) excluded
    unless asked otherwise (then kept and flagged)."""
    users = np.asarray(users, dtype=np.int64)
    scores = model.score(users).float()
    if exclude_consumed:
        rows = dataset.consumed[users].tocoo()
        scores[torch.from_numpy(rows.row).long(), torch.from_numpy(rows.col).long()] = -torch.inf
        return _topk(scores, k)
    recs = _topk(scores, k)
    return [rec.marked(consumed_items(dataset, u)) for rec, u in zip(recs, users, strict=True)]


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
    return _topk(scores, k)[0].marked(profile)


def similar_items(vectors: np.ndarray | torch.Tensor, item_idx: int, k: int = 20) -> Recommendation:
    """The ``k`` items most cosine-similar to ``item_idx`` (the item itself excluded)."""
    x = torch.as_tensor(np.asarray(vectors, dtype=np.float32))
    if x.ndim == 4:  # spatial maps: average over regions
        x = x.mean(dim=(1, 2))
    x = torch.nn.functional.normalize(x.reshape(len(x), -1), dim=1)
    sims = (x @ x[item_idx]).unsqueeze(0)
    sims[0, item_idx] = -torch.inf
    return _topk(sims, k)[0]

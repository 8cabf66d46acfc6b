"""Serving new items without re-training: who would rank a new item highest, and where it lands for a user.

Both read the model only through :class:`~visrec.models.capabilities.ScoresNewItems`
(``score_new_items(users, content) -> (len(users), n_new)``) and ``score(users)``; the content comes from
:func:`visrec.serving.new_content.load_new_items` (an image folder or a feature store).

- :func:`new_item_audience`: per new item, the ``k`` users with the highest scores for it (users scored
  in blocks, so memory is bounded by the block, not by the number of users);
- :func:`new_item_placement`: for one user, each new item's position in their list if the new items
  joined the catalogue: 1 + the unconsumed known items scored strictly higher + the other new items
  scored strictly higher (consumed items are excluded, as in ``visrec recommend``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from visrec.serving.new_content import NewItems, check_scores_new_items, load_new_items

USER_BLOCK = 1024
"""Users scored per ``score_new_items`` call in :func:`new_item_audience`."""


@dataclass(frozen=True)
class Audience:
    """The users who would rank one new item highest: user indices (best first) and their scores."""

    item_id: str
    users: np.ndarray
    scores: np.ndarray

    def to_rows(self, user_ids: np.ndarray) -> list[dict]:
        return [
            {"rank": r + 1, "user_id": str(user_ids[u]), "score": float(s)}
            for r, (u, s) in enumerate(zip(self.users, self.scores, strict=True))
        ]


def _content(run, content: NewItems | str | Path) -> NewItems:
    return content if isinstance(content, NewItems) else load_new_items(run, content)


def _scores(model, users: np.ndarray, items: NewItems) -> torch.Tensor:
    scores = model.score_new_items(users, items.content).detach().float().cpu()
    if tuple(scores.shape) != (len(users), len(items)):
        raise RuntimeError(
            f"{model.name}.score_new_items returned shape {tuple(scores.shape)}, expected "
            f"{(len(users), len(items))}"
        )
    return scores


def new_item_audience(
    run, content: NewItems | str | Path, k: int = 20, *, users: np.ndarray | None = None
) -> list[Audience]:
    """Per new item, the ``k`` users (of ``users``, default all) who score it highest, best first.

    ``content``: :class:`NewItems`, or a path given to :func:`load_new_items` (image folder or store).
    Ties are broken by user index (lower first).
    """
    model = check_scores_new_items(run.model)
    items = _content(run, content)
    users = np.arange(len(model.users)) if users is None else np.asarray(users, dtype=np.int64)
    k = min(int(k), len(users))
    best_s = torch.full((k, len(items)), -torch.inf)
    best_u = torch.zeros((k, len(items)), dtype=torch.int64)
    for start in range(0, len(users), USER_BLOCK):
        block = users[start : start + USER_BLOCK]
        scores = _scores(model, block, items)
        pool_s = torch.cat([best_s, scores])
        pool_u = torch.cat([best_u, torch.from_numpy(block)[:, None].expand(-1, len(items))])
        # order by score, then by user index: a stable sort of the index-sorted pool
        by_user = torch.argsort(pool_u, dim=0, stable=True)
        pool_s, pool_u = pool_s.gather(0, by_user), pool_u.gather(0, by_user)
        order = torch.argsort(-pool_s, dim=0, stable=True)[:k]
        best_s, best_u = pool_s.gather(0, order), pool_u.gather(0, order)
    return [
        Audience(item_id, best_u[:, j].numpy().copy(), best_s[:, j].double().numpy().copy())
        for j, item_id in enumerate(items.ids)
    ]


def new_item_placement(
    run, content: NewItems | str | Path, user_idx: int, *, exclude_consumed: bool = True
) -> list[dict]:
    """Where each new item lands in user ``user_idx``'s list, best first (see module docstring).

    Rows: ``item_id``, ``position`` (1-based, among unconsumed known items and the new items),
    ``position_among_known`` (1 + unconsumed known items scored higher) and ``score``.
    """
    model = check_scores_new_items(run.model)
    items = _content(run, content)
    user = np.array([int(user_idx)], dtype=np.int64)
    known = model.score(user).detach().float().cpu()[0]
    if exclude_consumed:
        consumed = run.dataset.train[int(user_idx)].indices
        known[torch.from_numpy(consumed.astype(np.int64))] = -torch.inf
    new = _scores(model, user, items)[0]
    above_known = (known[None, :] > new[:, None]).sum(dim=1)
    above_new = (new[None, :] > new[:, None]).sum(dim=1)
    rows = [
        {
            "item_id": item_id,
            "position": int(above_known[j] + above_new[j]) + 1,
            "position_among_known": int(above_known[j]) + 1,
            "score": float(new[j]),
        }
        for j, item_id in enumerate(items.ids)
    ]
    return sorted(rows, key=lambda r: (r["position"], r["item_id"]))


def n_candidates(run, user_idx: int, *, exclude_consumed: bool = True) -> int:
    """How many known items a user's list holds (all items, less the consumed ones)."""
    consumed = run.dataset.train[int(user_idx)].nnz if exclude_consumed else 0
    return len(run.model.items) - consumed

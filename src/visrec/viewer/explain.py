"""Why an item was recommended, per model capability (``visrec.models.capabilities``).

- :class:`ExplainsByProfile` (VisRank, CuratorNet): the profile items that drove each recommendation;
- :class:`ExplainsByParts` (VBPR): the score split into its collaborative and visual parts;
- :class:`Explains` (ACF): attention maps, drawn by the user page for the whole profile (not per item).
"""

from __future__ import annotations

import numpy as np

from visrec.models.base import Recommender
from visrec.models.capabilities import ExplainsByParts, ExplainsByProfile

DRIVERS = 3
"""How many profile items are named under each recommendation."""


def explain_items(model: Recommender, user_idx: int, items: np.ndarray) -> list[dict | None]:
    """One explanation per item (None when the model has no per-item explanation).

    ``{"drivers": [(item_id, value), ...], "measure": str}`` for profile-based explanations (the
    ``DRIVERS`` largest contributions, largest first); ``{"parts": [(name, value), ...]}`` for score parts.
    """
    items = np.asarray(items, dtype=np.int64)
    if len(items) == 0:
        return []
    if isinstance(model, ExplainsByProfile):
        return _drivers(model, user_idx, items)
    if isinstance(model, ExplainsByParts):
        parts = model.score_parts(user_idx, items)
        return [
            {"parts": [(name, float(v[n])) for name, v in parts.items()]} for n in range(len(items))
        ]
    return [None] * len(items)


def _drivers(model: ExplainsByProfile, user_idx: int, items: np.ndarray) -> list[dict | None]:
    contrib = model.profile_contributions(user_idx, items)
    if len(contrib.profile) == 0:
        return [None] * len(items)
    ids = model.items.ids_of(contrib.profile)
    out = []
    for row in contrib.values:
        top = np.argsort(-row, kind="stable")[:DRIVERS]
        out.append(
            {"measure": contrib.measure, "drivers": [(str(ids[j]), float(row[j])) for j in top]}
        )
    return out


def explanation_note(model: Recommender) -> str:
    """One line saying what the explanations under the thumbnails mean for ``model``."""
    if isinstance(model, ExplainsByProfile):
        return (
            "“because of”: the profile items that contributed most to each score "
            f"({model.contribution_measure})."
        )
    if isinstance(model, ExplainsByParts):
        return "Each score split into its parts (they sum to the score)."
    return ""

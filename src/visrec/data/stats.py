"""Descriptive statistics of an interaction table (the tutorial's data analysis)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from visrec.data.split import SplitSpec, split_interactions

QUANTILES = (0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)


def _top_share(counts: np.ndarray, fraction: float = 0.1) -> float:
    """Share of all interactions made by the top ``fraction`` most active entities."""
    ordered = np.sort(counts)[::-1]
    top = max(1, int(np.ceil(fraction * len(ordered))))
    return float(ordered[:top].sum() / ordered.sum())


def interaction_stats(frame: pd.DataFrame, n_items: int | None = None) -> dict:
    """Counts, density, per-user/per-item count quantiles and top-10% shares.

    ``n_items`` overrides the item count (a catalogue may hold items nobody consumed).
    """
    users = frame["user_id"].value_counts().to_numpy()
    items = frame["item_id"].value_counts().to_numpy()
    n_users, n_interactions = len(users), len(frame)
    n_items = max(n_items or 0, len(items))
    quant = {f"q{int(q * 100)}": q for q in QUANTILES}
    return {
        "users": n_users,
        "items": n_items,
        "interactions": n_interactions,
        "density": n_interactions / (n_users * n_items) if n_users and n_items else 0.0,
        "per_user": {k: float(np.quantile(users, q)) for k, q in quant.items()}
        | {"mean": float(users.mean())},
        "per_item": {k: float(np.quantile(items, q)) for k, q in quant.items()}
        | {"mean": float(items.mean())},
        "top10_users_share": _top_share(users),
        "top10_items_share": _top_share(items),
        "first_timestamp": int(frame["timestamp"].min()),
        "last_timestamp": int(frame["timestamp"].max()),
    }


def format_stats(stats: dict, name: str = "") -> str:
    lines = [
        f"dataset        {name}".rstrip(),
        f"users          {stats['users']:,}",
        f"items          {stats['items']:,}",
        f"interactions   {stats['interactions']:,}",
        f"density        {stats['density']:.5f}",
        f"top 10% users  {stats['top10_users_share']:.1%} of interactions",
        f"top 10% items  {stats['top10_items_share']:.1%} of interactions",
        "",
        f"{'count per':<10}" + "".join(f"{k:>8}" for k in stats["per_user"]),
    ]
    for entity in ("per_user", "per_item"):
        label = entity.replace("per_", "")
        lines.append(f"{label:<10}" + "".join(f"{v:>8.1f}" for v in stats[entity].values()))
    return "\n".join(lines)


def split_stats(frame: pd.DataFrame, spec: SplitSpec) -> dict:
    """Rows per part of a split; for cold-item splits also the cold items and the users with cold
    targets (per held-out part)."""
    parts = split_interactions(frame, spec)
    out = {
        "method": spec.method,
        "train_rows": len(parts.train),
        "validation_rows": len(parts.validation),
        "test_rows": len(parts.test),
        "heldout_rows_dropped": parts.n_cold_test_rows_dropped,
    }
    if spec.is_cold:
        for name, rows in (("test", parts.test), ("validation", parts.validation)):
            out[f"cold_{name}_items"] = len(parts.cold_items[name])
            out[f"users_with_cold_{name}_targets"] = int(rows["user_id"].nunique())
    return out


def format_split_stats(stats: dict) -> str:
    lines = [
        f"split          {stats['method']}",
        f"train rows     {stats['train_rows']:,}",
        f"validation     {stats['validation_rows']:,} rows",
        f"test           {stats['test_rows']:,} rows",
        f"dropped        {stats['heldout_rows_dropped']:,} held-out rows of users without train rows",
    ]
    for name in ("test", "validation"):
        if f"cold_{name}_items" in stats:
            lines.append(
                f"{'cold ' + name:<14} {stats[f'cold_{name}_items']:,} items, "
                f"{stats[f'users_with_cold_{name}_targets']:,} users with cold targets"
            )
    return "\n".join(lines)

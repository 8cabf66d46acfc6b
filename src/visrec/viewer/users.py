"""The users page's table: profile size, held-out items, and a chosen run's stored per-user metrics.

Metrics are read from the run's stored evaluation (``RUN_DIR/eval/<split>-<mode>.csv``, written by
``visrec evaluate``), never recomputed here; "has hits" means the user's first held-out item is ranked
within the top ``k`` in that evaluation (``first_hit_rank < k``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from visrec.data.dataset import Dataset
from visrec.evaluation.results import ID_COLUMNS, EvalResult
from visrec.runs.evaluate import EVAL_DIR

Sort = Literal["user", "profile", "truth", "metric"]
Order = Literal["asc", "desc"]
Hits = Literal["any", "yes", "no"]


@dataclass(frozen=True)
class UserQuery:
    """What the users page shows: sorting, filters and the page (validated by the HTTP layer)."""

    sort: Sort = "user"
    order: Order = "asc"
    min_profile: int = 0
    max_profile: int | None = None
    hits: Hits = "any"
    k: int = 20
    page: int = 1
    per_page: int = 50


@dataclass(frozen=True)
class UserPage:
    rows: list[dict]
    total: int
    page: int
    pages: int


def stored_evaluations(run_dir: str | Path) -> list[str]:
    """Names (``test-full``, ``validation-tutorial``, ...) of the run's stored evaluations, sorted."""
    folder = Path(run_dir) / EVAL_DIR
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if p.with_suffix(".csv").is_file())


def load_per_user(run_dir: str | Path, name: str) -> pd.DataFrame:
    """The per-user table of one stored evaluation of the run (a clear error when it is damaged)."""
    if name not in stored_evaluations(run_dir):
        raise KeyError(f"no stored evaluation {name!r} in this run; run `visrec evaluate` first")
    stem = Path(run_dir) / EVAL_DIR / name
    return EvalResult.from_json(
        stem.with_suffix(".json"), per_user_csv=stem.with_suffix(".csv")
    ).per_user


def metric_columns(per_user: pd.DataFrame) -> list[str]:
    return [c for c in per_user.columns if c not in ID_COLUMNS]


def base_table(dataset: Dataset) -> pd.DataFrame:
    """One row per user: id, profile size (train items), held-out test items."""
    return pd.DataFrame(
        {
            "user": dataset.users.ids.astype(str),
            "profile": dataset.profile_sizes.astype(np.int64),
            "truth": np.diff(dataset.test.indptr).astype(np.int64),
        }
    )


def with_metric(
    table: pd.DataFrame, per_user: pd.DataFrame | None, metric: str | None
) -> pd.DataFrame:
    """``table`` plus ``metric`` and ``first_hit_rank`` columns (NaN for users not evaluated)."""
    out = table.copy()
    if per_user is None or metric is None:
        out["metric"] = math.nan
        out["first_hit_rank"] = math.nan
        return out
    values = per_user.set_index("user_id")
    out["metric"] = values[metric].reindex(out["user"]).to_numpy(dtype=np.float64)
    out["first_hit_rank"] = values["first_hit_rank"].reindex(out["user"]).to_numpy(np.float64)
    return out


def select(table: pd.DataFrame, query: UserQuery) -> UserPage:
    """Filter, sort (missing metrics last) and cut one page out of ``table``."""
    keep = table["profile"] >= query.min_profile
    if query.max_profile is not None:
        keep &= table["profile"] <= query.max_profile
    hit = table["first_hit_rank"] < query.k
    if query.hits == "yes":
        keep &= hit
    elif query.hits == "no":
        keep &= table["first_hit_rank"].notna() & ~hit
    rows = table[keep].sort_values(
        [query.sort, "user"],
        ascending=[query.order == "asc", True],
        na_position="last",
        kind="stable",
    )
    pages = max(1, -(-len(rows) // query.per_page))
    page = min(query.page, pages)
    chunk = rows.iloc[(page - 1) * query.per_page : page * query.per_page]
    records = [
        {
            "user": r.user,
            "profile": int(r.profile),
            "truth": int(r.truth),
            "metric": None if math.isnan(r.metric) else float(r.metric),
            "first_hit_rank": None if math.isnan(r.first_hit_rank) else float(r.first_hit_rank),
        }
        for r in chunk.itertuples(index=False)
    ]
    return UserPage(records, len(rows), page, pages)

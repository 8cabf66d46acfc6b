"""EvalResult: means, per-user values, mode, split and cut-offs of one evaluation; JSON and CSV.

Means are recomputed from the per-user table (sorted by user index, then summed in that order), so merging
the shards of several ranks with :meth:`EvalResult.concat` gives exactly the means of a single run.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from visrec._io import atomic_open, read_json_object, write_json
from visrec._lazy import LazyModule
from visrec.errors import ConfigError, DataError
from visrec.evaluation import registry

# an evaluation is computed and written without pandas; reading one back uses it
pd = LazyModule("pandas")


def _exact_floats() -> dict:
    """read_csv options that read our %.17g floats back exactly: before pandas 3.1 the default parser can
    be 1 ulp off (seen with pandas 3.0.6); 3.1 parses exactly and deprecates the option."""
    version = tuple(int(re.match(r"\d*", p).group() or 0) for p in pd.__version__.split(".")[:2])
    return {} if version >= (3, 1) else {"float_precision": "round_trip"}


ID_COLUMNS = ("user_id", "user_idx", "profile_size", "n_targets", "n_candidates", "first_hit_rank")
FORMAT = "visrec-eval/1"


LABELLED_MODES = ("cold", "mixed")


def metric_key(name: str, mode: str) -> str:
    """The output key of a metric in a mode: sampled, cold and mixed keys carry the mode's label, e.g.
    ``AUC[sampled@100]``, ``nDCG@20[cold]``; full and tutorial keys are the bare names."""
    return f"{name}[{mode}]" if mode.startswith("sampled") or mode in LABELLED_MODES else name


def means_of(per_user: pd.DataFrame | dict[str, np.ndarray], keys: list[str]) -> dict[str, float]:
    """Mean of each metric column of a user-sorted table (a DataFrame or its columns); NaN when empty.

    The sum runs over the table in user-index order, so the same users give bit-identical means whatever
    the block size or the number of shards they were computed in."""
    columns = {k: np.asarray(per_user[k], dtype=np.float64) for k in keys}
    n = len(next(iter(columns.values()))) if columns else 0
    return {k: (float(np.sum(v)) / n if n else math.nan) for k, v in columns.items()}


class EvalResult:
    """The outcome of :func:`visrec.evaluation.evaluate`.

    ``means`` maps metric keys to means over the evaluated users; ``per_user`` has one row per evaluated
    user (columns ``ID_COLUMNS`` then one per metric key); ``skipped`` lists the ids of users who had truth
    items but no negative candidate left (every other item consumed), so no metric is defined for them.

    ``per_user`` may be given as a DataFrame or as its columns (a mapping of name -> 1-D array, users in
    index order, as the engine makes them); the DataFrame is then built on first access, so computing and
    writing an evaluation (:meth:`to_csv`, :meth:`to_json`) never imports pandas.
    """

    def __init__(
        self,
        mode: str,
        split: str,
        ks: tuple[int, ...],
        means: dict[str, float],
        per_user,
        skipped: list[str] | None = None,
        meta: dict | None = None,
        covered: dict[str, np.ndarray] | None = None,
    ):
        self.mode = mode
        self.split = split
        self.ks = tuple(ks)
        self.means = means
        self.skipped = list(skipped or [])
        self.meta = dict(meta or {})
        # catalogue metrics (coverage@k): key -> the item indices in any user's top-k list; kept in memory
        # so shards can be merged (concat), not written to files (the means hold the coverage)
        self.covered = dict(covered or {})
        if isinstance(per_user, Mapping):
            self._columns, self._frame = {k: np.asarray(v) for k, v in per_user.items()}, None
        else:
            self._columns, self._frame = None, per_user

    @property
    def per_user(self) -> pd.DataFrame:
        """The per-user table (a pandas DataFrame)."""
        if self._frame is None:
            self._frame = pd.DataFrame(self._columns, copy=False)
        return self._frame

    @per_user.setter
    def per_user(self, table: pd.DataFrame) -> None:
        self._columns, self._frame = None, table

    def columns(self) -> dict[str, np.ndarray]:
        """The per-user table as columns (name -> 1-D NumPy array), without pandas when it was computed
        here."""
        if self._columns is not None:
            return self._columns
        return {str(c): self._frame[c].to_numpy() for c in self._frame.columns}

    def __repr__(self) -> str:
        return f"EvalResult({self.summary()})"

    @property
    def n_users(self) -> int:
        if self._columns is not None:
            return len(next(iter(self._columns.values()), ()))
        return len(self._frame)

    def __getitem__(self, key: str) -> float:
        return self.means[key]

    def summary(self) -> str:
        """One line: mode, split, user count and the means."""
        values = " ".join(f"{k}={v:.5f}" for k, v in self.means.items())
        return f"[{self.mode} / {self.split}] {self.n_users} users: {values}"

    def to_dict(self, *, per_user: bool = True) -> dict:
        out = {
            "format": FORMAT,
            "mode": self.mode,
            "split": self.split,
            "ks": list(self.ks),
            "n_users": self.n_users,
            "means": self.means,
            "skipped": list(self.skipped),
            "meta": self.meta,
        }
        if per_user:
            out["per_user"] = {c: v.tolist() for c, v in self.columns().items()}
        return out

    def to_json(self, path: str | Path, *, per_user: bool = True) -> Path:
        """Write means, metadata and (by default) the per-user table as JSON, atomically."""
        write_json(path, self.to_dict(per_user=per_user))
        return Path(path)

    def to_csv(self, path: str | Path) -> Path:
        """Write the per-user table as CSV, atomically (metric columns carry the mode label if sampled)."""
        with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
            write_csv(handle, self.columns())
        return Path(path)

    @classmethod
    def from_json(cls, path: str | Path, per_user_csv: str | Path | None = None) -> EvalResult:
        """Read :meth:`to_json` output; the per-user table comes from the JSON or from ``per_user_csv``."""
        fix = "pass --force to evaluate again"
        data = read_json_object(path, what="evaluation result", fix=fix)
        if data.get("format") != FORMAT:
            raise DataError(f"not a visrec evaluation result (expected format {FORMAT})", path=path)
        try:
            return cls._from_dict(data, per_user_csv)
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise DataError(f"damaged evaluation result ({exc!r}); {fix}", path=path) from None

    @classmethod
    def _from_dict(cls, data: dict, per_user_csv: str | Path | None) -> EvalResult:
        if per_user_csv is not None:
            table = pd.read_csv(per_user_csv, dtype={"user_id": str}, **_exact_floats())
        elif "per_user" in data:
            table = pd.DataFrame(data["per_user"])
        else:
            columns = [k for k in data["means"] if not registry.is_catalogue_key(k)]
            table = pd.DataFrame({c: [] for c in [*ID_COLUMNS, *columns]})
        return cls(
            mode=data["mode"],
            split=data["split"],
            ks=tuple(data["ks"]),
            means=data["means"],
            per_user=_typed(table),
            skipped=list(data["skipped"]),
            meta=data.get("meta", {}),
        )

    @classmethod
    def concat(cls, parts: list[EvalResult]) -> EvalResult:
        """Merge results computed on disjoint user shards (e.g. one per torchrun rank).

        The parts must share mode, split, cut-offs and metadata; the merged means equal those of one run
        over all the users.
        """
        if not parts:
            raise ConfigError("EvalResult.concat needs at least one result")
        first = parts[0]
        for other in parts[1:]:
            same = (other.mode, other.split, other.ks, list(other.means), other.meta)
            if same != (first.mode, first.split, first.ks, list(first.means), first.meta):
                raise ConfigError(
                    f"cannot merge evaluation results of different settings: "
                    f"{first.mode}/{first.split}/{first.ks} vs {other.mode}/{other.split}/{other.ks}"
                )
        table = pd.concat([p.per_user for p in parts], ignore_index=True)
        if table["user_idx"].duplicated().any():
            dupes = table.loc[table["user_idx"].duplicated(), "user_id"].head(5).tolist()
            raise ConfigError(f"evaluation shards overlap (users evaluated twice: {dupes})")
        table = table.sort_values("user_idx", kind="stable").reset_index(drop=True)
        skipped = sorted({u for p in parts for u in p.skipped})
        means = means_of(table, [k for k in first.means if k in table.columns])
        covered = {}
        for key in first.means:
            if key in table.columns:
                continue
            if any(key not in p.covered for p in parts):
                raise ConfigError(
                    f"cannot merge {key}: a part has no top-k lists (read from file?)"
                )
            covered[key] = np.unique(np.concatenate([p.covered[key] for p in parts]))
            listable = first.meta.get("n_listable") or 0
            means[key] = len(covered[key]) / listable if listable else math.nan
        return cls(
            mode=first.mode,
            split=first.split,
            ks=first.ks,
            means={k: means[k] for k in first.means},
            per_user=_typed(table),
            skipped=skipped,
            meta=dict(first.meta),
            covered=covered,
        )


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    """Column types of the per-user table (ids str, counts int64, ranks and metrics float64)."""
    types = {c: np.float64 for c in table.columns}
    types.update(
        user_id=str,
        user_idx=np.int64,
        profile_size=np.int64,
        n_targets=np.int64,
        n_candidates=np.int64,
    )
    return table.astype({c: t for c, t in types.items() if c in table.columns})


def build_table(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The per-user columns sorted by user index."""
    user_idx = np.asarray(columns["user_idx"])
    if np.all(np.diff(user_idx) > 0):  # the engine's own order: nothing to do
        return columns
    order = np.argsort(user_idx, kind="stable")
    return {name: np.asarray(values)[order] for name, values in columns.items()}


def write_csv(handle, columns: dict[str, np.ndarray]) -> None:
    """The per-user table as CSV, byte for byte what pandas writes with ``to_csv(index=False,
    float_format="%.17g")`` (floats as %.17g, NaN as an empty field, minimal quoting, ``\\n`` line ends),
    so files written with or without pandas are the same."""
    cells = []
    for values in columns.values():
        values = np.asarray(values)
        if values.dtype.kind == "f":
            cells.append(["" if v != v else f"{v:.17g}" for v in values.tolist()])
        else:
            cells.append(values.tolist())
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(list(columns))
    writer.writerows(zip(*cells, strict=True))

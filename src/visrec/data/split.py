"""Train / validation / test splits.

- ``leave-last-out`` (default): per user, the items at the user's last timestamp form the test basket; a user
  with fewer than 2 distinct timestamps stays train-only (the tutorial's ``mark_evaluation_rows`` rule).
- ``given``: rows whose ``evaluation`` column is true are the test rows (the tutorial's Wikimedia data).
- ``temporal``: rows at or after a global cut-off time are the test rows.
- ``cold-items``: a seeded fraction ``cold_fraction`` of the items is new (cold): every interaction with
  them is held out, none is in train. The test targets are all interactions with one cold set, the
  validation targets all interactions with a second, disjoint cold set of the same size (so model
  selection measures cold-start too). Users keep their warm history as train profile.
- ``cold-items-temporal``: the items first seen at or after ``cutoff`` are the test cold items; the
  validation cold items are as many items first seen last before the cut-off.

For the warm methods a validation basket is then carved from the remaining train rows by the same
leave-last-out rule. Held-out rows of users with no train row left are dropped (they cannot be ranked) and
counted in :class:`SplitResult`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from visrec._lazy import LazyModule
from visrec.choices import COLD_SPLIT_METHODS, SPLIT_METHODS
from visrec.errors import ConfigError, DataError

pd = LazyModule("pandas")  # the cached-dataset path never needs pandas

COLD_METHODS = COLD_SPLIT_METHODS
METHODS = SPLIT_METHODS


@dataclass(frozen=True)
class SplitSpec:
    """How to split interactions into train, validation and test."""

    method: str = "leave-last-out"
    """``leave-last-out``, ``given`` (use the ``evaluation`` column), ``temporal`` (needs ``cutoff``),
    ``cold-items`` (``cold_fraction``, ``seed``) or ``cold-items-temporal`` (needs ``cutoff``)."""
    validation: bool = True
    """Hold out validation targets (a leave-last-out basket; a second cold item set for cold splits)."""
    cutoff: int | None = None
    """For ``temporal``: rows with timestamp >= cutoff are test rows; for ``cold-items-temporal``: items
    first seen at or after it are the test cold items."""
    cold_fraction: float = 0.1
    """For ``cold-items``: the fraction of items in each cold set (test, and validation if any)."""
    seed: int = 0
    """For ``cold-items``: seed of the choice of cold items."""

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError(
                f"unknown split method {self.method!r}; choose from {', '.join(METHODS)}"
            )
        if self.method in ("temporal", "cold-items-temporal") and self.cutoff is None:
            raise ConfigError(f"the {self.method} split needs a cutoff timestamp")
        limit = 0.5 if self.validation else 1.0
        if self.method == "cold-items" and not 0.0 < self.cold_fraction < limit:
            raise ConfigError(
                f"cold_fraction must be in (0, {limit:g}) (the test and validation cold sets take "
                f"that fraction each), got {self.cold_fraction}"
            )
        if self.seed < 0:
            raise ConfigError(f"the split seed must be >= 0, got {self.seed}")

    @property
    def is_cold(self) -> bool:
        """Whether the held-out items are new items (absent from train)."""
        return self.method in COLD_METHODS

    def to_dict(self) -> dict:
        """The fields as a dict; the cold-item options only for the ``cold-items`` method (so the
        records of warm splits stay as they were)."""
        out = asdict(self)
        if self.method != "cold-items":
            del out["cold_fraction"], out["seed"]
        return out


@dataclass(frozen=True)
class SplitResult:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    n_cold_test_rows_dropped: int = 0
    cold_items: dict[str, np.ndarray] = field(default_factory=dict)
    """For cold splits: the item ids of each cold set, ``{'test': ..., 'validation': ...}``, sorted."""


def last_basket_mask(frame: pd.DataFrame) -> np.ndarray:
    """True for rows at their user's last timestamp, for users with >= 2 distinct timestamps."""
    if len(frame) == 0:
        return np.zeros(0, dtype=bool)
    grouped = frame.groupby("user_id", sort=False)["timestamp"]
    last = grouped.transform("max").to_numpy()
    n_times = grouped.transform("nunique").to_numpy()
    return (frame["timestamp"].to_numpy() == last) & (n_times >= 2)


def split_interactions(frame: pd.DataFrame, spec: SplitSpec) -> SplitResult:
    """Split an interaction table (see module docstring)."""
    if spec.is_cold:
        return _cold_split(frame, spec)
    if spec.method == "leave-last-out":
        test_mask = last_basket_mask(frame)
    elif spec.method == "given":
        if "evaluation" not in frame.columns:
            raise DataError("the 'given' split needs an 'evaluation' column in the interactions")
        test_mask = frame["evaluation"].to_numpy(dtype=bool)
    else:
        test_mask = frame["timestamp"].to_numpy() >= spec.cutoff
    train, test = frame[~test_mask], frame[test_mask]
    dropped = 0
    if spec.method != "leave-last-out":
        warm = test["user_id"].isin(train["user_id"].unique()).to_numpy()
        dropped = int((~warm).sum())
        test = test[warm]
    if spec.validation:
        val_mask = last_basket_mask(train)
        validation, train = train[val_mask], train[~val_mask]
    else:
        validation = train.iloc[0:0]
    return SplitResult(train, validation, test, dropped)


def cold_item_sets(frame: pd.DataFrame, spec: SplitSpec) -> tuple[np.ndarray, np.ndarray]:
    """(test, validation) cold item ids of a cold split, each sorted; disjoint by construction."""
    first_seen = frame.groupby("item_id", sort=True)["timestamp"].min()
    ids = first_seen.index.to_numpy(dtype=object)
    if spec.method == "cold-items":
        n_cold = max(1, round(spec.cold_fraction * len(ids)))
        order = np.random.default_rng(spec.seed).permutation(len(ids))
        test = ids[order[:n_cold]]
        val = ids[order[n_cold : 2 * n_cold]] if spec.validation else ids[:0]
    else:
        times = first_seen.to_numpy()
        is_new = times >= spec.cutoff
        test = ids[is_new]
        if spec.validation:
            older = np.flatnonzero(~is_new)
            # the most recently first-seen items before the cut-off (ties by item id), as many as test
            latest = older[np.lexsort((ids[older].astype(str), -times[older]))]
            val = ids[latest[: len(test)]]
        else:
            val = ids[:0]
    if len(test) == 0 or len(test) == len(ids) or len(test) + len(val) >= len(ids):
        raise DataError(
            f"the {spec.method} split leaves {len(test)} test and {len(val)} validation cold items "
            f"of {len(ids)}: it needs both cold sets non-empty and warm items left for training"
        )
    return np.sort(test.astype(str)), np.sort(val.astype(str))


def _cold_split(frame: pd.DataFrame, spec: SplitSpec) -> SplitResult:
    test_items, val_items = cold_item_sets(frame, spec)
    item_ids = frame["item_id"].astype(str)
    in_test = item_ids.isin(test_items).to_numpy()
    in_val = item_ids.isin(val_items).to_numpy()
    train = frame[~(in_test | in_val)]
    warm_users = frame["user_id"].isin(train["user_id"].unique()).to_numpy()
    dropped = int(((in_test | in_val) & ~warm_users).sum())
    test, validation = frame[in_test & warm_users], frame[in_val & warm_users]
    cold = {"test": test_items, "validation": val_items}
    return SplitResult(train, validation, test, dropped, cold)

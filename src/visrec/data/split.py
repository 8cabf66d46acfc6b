"""Train / validation / test splits.

- ``leave-last-out`` (default): per user, the items at the user's last timestamp form the test basket; a user
  with fewer than 2 distinct timestamps stays train-only (the tutorial's ``mark_evaluation_rows`` rule).
- ``given``: rows whose ``evaluation`` column is true are the test rows (the tutorial's Wikimedia data).
- ``temporal``: rows at or after a global cut-off time are the test rows.

A validation basket is then carved from the remaining train rows by the same leave-last-out rule. Test rows
of users with no train row left are dropped (they cannot be ranked) and counted in :class:`SplitResult`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from visrec.choices import SPLIT_METHODS
from visrec.errors import ConfigError, DataError

METHODS = SPLIT_METHODS


@dataclass(frozen=True)
class SplitSpec:
    """How to split interactions into train, validation and test."""

    method: str = "leave-last-out"
    """``leave-last-out``, ``given`` (use the ``evaluation`` column) or ``temporal`` (needs ``cutoff``)."""
    validation: bool = True
    """Carve a validation basket from train by leave-last-out (model selection reads only this)."""
    cutoff: int | None = None
    """For ``temporal``: rows with timestamp >= cutoff are test rows."""

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError(
                f"unknown split method {self.method!r}; choose from {', '.join(METHODS)}"
            )
        if self.method == "temporal" and self.cutoff is None:
            raise ConfigError("the temporal split needs a cutoff timestamp")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SplitResult:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    n_cold_test_rows_dropped: int = 0


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

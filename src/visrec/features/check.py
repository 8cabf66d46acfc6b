"""``visrec data check`` for a dataset folder with its feature store: the data checks, then the store's.

The data layer checks interactions, items and images (:func:`visrec.data.check.check_dataset`); a store
named in ``dataset.json`` (``"features": "features"``) is checked here, where feature stores live: it must
open, and items without a vector are listed (a warning).
"""

from __future__ import annotations

from pathlib import Path

from visrec.data.check import ERROR, WARNING, CheckReport, declared
from visrec.data.check import check_dataset as check_data
from visrec.errors import DataError
from visrec.features.store import FeatureStore


def check_dataset(folder: str | Path, *, decode: bool = True, workers: int = 4) -> CheckReport:
    """Every check of a dataset folder: :func:`visrec.data.check.check_dataset` + its feature store."""
    report = check_data(folder, decode=decode, workers=workers)
    check_features(report)
    return report


def check_features(report: CheckReport) -> None:
    """A declared feature store must open; items without a vector are listed (a warning)."""
    path = declared(report.folder, report.manifest, "features", None)
    if path is None:
        return
    if not path.exists():
        report.add("features", ERROR, f"dataset.json names features at {path}, which do not exist")
        return
    try:
        store = FeatureStore.open(path)
    except DataError as exc:
        report.add("features", ERROR, str(exc))
        return
    report.counts["feature vectors"] = len(store)
    missing = report.item_ids - {str(i) for i in store.ids}
    if missing:
        report.add(
            "missing-features", WARNING, f"{len(missing)} item(s) have no feature vector", missing
        )

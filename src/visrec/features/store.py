"""FeatureStore: item ids + a float array + JSON metadata, on disk as a folder, memory-mapped, no pickle.

Layout of a store folder::

    features.npy   (n, d) pooled or (n, h, w, d) spatial, float32 or float16 (np.save format)
    ids.txt        one item id per line (UTF-8), row order of features.npy
    meta.json      backbone, layer, weights, input_size, mean, std, precision, dtype, shape, created_with
    report.json    extraction summary: counts, unreadable images with reasons, items without an image
    failed.csv     the same problems as a table (item_id, path, reason)

Loading uses ``np.load(mmap_mode="r", allow_pickle=False)``: a crafted file can never run code, and the
array is paged in on demand, so training code can read stores larger than memory.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from visrec import __version__
from visrec._io import atomic_dir, read_json, write_json
from visrec.data import Vocabulary
from visrec.errors import DataError

FEATURES, IDS, META, REPORT, FAILED = (
    "features.npy",
    "ids.txt",
    "meta.json",
    "report.json",
    "failed.csv",
)
_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))
_MISSING = ("error", "mean", "zero")
MIN_COVERAGE = 0.5
"""Default share of a dataset's items that must have features (env ``VISREC_MIN_FEATURE_COVERAGE``)."""


class FeatureStore:
    """A read-only, memory-mapped feature matrix aligned to item ids (see module docstring)."""

    def __init__(self, path: Path, ids: np.ndarray, array: np.ndarray, meta: dict, report: dict):
        self.path = path
        self.ids = ids
        self.vocab = Vocabulary(ids, name="item")
        self.array = array
        self.meta = meta
        self.report = report

    # --- reading ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike) -> FeatureStore:
        """Open a store folder; raises :class:`DataError` naming the file when anything is wrong."""
        path = Path(path)
        if not path.is_dir():
            raise DataError(
                "feature store not found (expected a folder with features.npy, ids.txt, meta.json)",
                path=path,
            )
        for name in (FEATURES, IDS, META):
            if not (path / name).is_file():
                raise DataError(f"feature store is missing {name}", path=path)
        array = _load_array(path / FEATURES)
        ids = read_ids(path / IDS)
        if len(ids) != array.shape[0]:
            raise DataError(f"{len(ids)} ids but {array.shape[0]} feature rows", path=path / IDS)
        meta = _read_json_dict(path / META)
        report = _read_json_dict(path / REPORT) if (path / REPORT).is_file() else {}
        try:
            return cls(path, ids, array, meta, report)
        except ValueError as exc:
            raise DataError(str(exc), path=path / IDS) from None

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def __repr__(self) -> str:
        return (
            f"FeatureStore({len(self)} items, shape={tuple(self.array.shape)}, "
            f"backbone={self.meta.get('backbone')}, layer={self.meta.get('layer')})"
        )

    @property
    def is_spatial(self) -> bool:
        return self.array.ndim == 4

    @property
    def dim(self) -> int:
        return int(self.array.shape[-1])

    @property
    def failed(self) -> list[dict[str, str]]:
        """Unreadable images: ``{item_id, path, reason}`` from the extraction report."""
        return list(self.report.get("failed", []))

    @property
    def missing_images(self) -> list[str]:
        """Item ids that were asked for (e.g. from interactions) but had no image file."""
        return list(self.report.get("missing_images", []))

    def check_coverage(self, items: Vocabulary, min_share: float | None = None) -> np.ndarray:
        """Rows of ``items`` in the store (-1 when absent); refuses a store covering too few of them.

        A store of another dataset (few or no ids in common) is an error naming the overlap, not a
        matrix of mean-filled rows. ``min_share`` defaults to :func:`min_coverage`.
        """
        rows = self.vocab.indices(list(items.ids), missing="-1")
        share = min_coverage() if min_share is None else float(min_share)
        present = int((rows >= 0).sum())
        if len(rows) and present < share * len(rows):
            raise DataError(
                f"feature store covers only {present} of the dataset's {len(rows)} items "
                f"({present / len(rows):.1%}; at least {share:.0%} needed): it was probably "
                "extracted from another image folder; extract features for this dataset "
                "(visrec extract DATASET -o STORE) or lower VISREC_MIN_FEATURE_COVERAGE",
                path=self.path,
            )
        return rows

    def aligned(
        self, items: Vocabulary, missing: str = "error", *, min_share: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Float32 rows in the order of ``items``, plus the positions (in ``items``) of absent items.

        ``missing``: ``"error"`` raises :class:`DataError` listing absent items; ``"mean"`` fills them
        with the mean feature; ``"zero"`` with zeros. Never fills silently: the positions are returned.
        A store covering less than ``min_share`` of ``items`` is refused (:meth:`check_coverage`).
        """
        if missing not in _MISSING:
            raise ValueError(f"missing must be one of {_MISSING}, got {missing!r}")
        rows = self.check_coverage(items, min_share)
        absent = np.flatnonzero(rows < 0)
        if len(absent) and missing == "error":
            names = [str(i) for i in items.ids_of(absent[:10])]
            more = f" and {len(absent) - 10} more" if len(absent) > 10 else ""
            raise DataError(
                f"{len(absent)} items have no features: {names}{more} (see report.json; "
                "pass missing='mean' or 'zero' to fill them explicitly)",
                path=self.path,
            )
        out = np.zeros((len(items),) + tuple(self.array.shape[1:]), dtype=np.float32)
        present = np.flatnonzero(rows >= 0)
        order = np.argsort(rows[present], kind="stable")  # sequential reads of the memmap
        for chunk in np.array_split(order, max(1, len(order) // 4096)):
            out[present[chunk]] = self.array[rows[present[chunk]]]
        if len(absent) and missing == "mean":
            out[absent] = self.mean()
        return out, absent.astype(np.int64)

    def mean(self, chunk: int = 4096) -> np.ndarray:
        """Mean feature over all rows (float64 accumulation, chunked: bounded memory)."""
        total = np.zeros(self.array.shape[1:], dtype=np.float64)
        for start in range(0, len(self), chunk):
            total += self.array[start : start + chunk].sum(axis=0, dtype=np.float64)
        return (total / max(len(self), 1)).astype(np.float32)

    # --- writing ---------------------------------------------------------------------------------

    @staticmethod
    def write(
        path: str | os.PathLike,
        ids: Sequence[str] | np.ndarray,
        array: np.ndarray,
        meta: dict[str, Any],
        failed: list[dict] | None = None,
        *,
        overwrite: bool = False,
        report: dict | None = None,
    ) -> FeatureStore:
        """Write a complete store atomically; refuses to replace ``path`` unless ``overwrite``."""
        path = Path(path)
        check_writable(path, overwrite)
        array = np.asarray(array)
        _check_array(array, path)
        with atomic_dir(path) as tmp:
            np.save(tmp / FEATURES, array, allow_pickle=False)
            write_sidecars(tmp, ids, array, meta, failed=failed, report=report)
        return FeatureStore.open(path)


def min_coverage() -> float:
    """The required feature coverage: ``VISREC_MIN_FEATURE_COVERAGE`` (0..1) or :data:`MIN_COVERAGE`."""
    text = os.environ.get("VISREC_MIN_FEATURE_COVERAGE", "").strip()
    if not text:
        return MIN_COVERAGE
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise DataError(f"VISREC_MIN_FEATURE_COVERAGE must be a number in [0, 1], got {text!r}")
    return value


def check_writable(path: Path, overwrite: bool) -> None:
    if path.exists() and not path.is_dir():
        raise DataError("output exists and is a file; choose a folder path for -o", path=path)
    if path.exists() and not overwrite:
        raise DataError("output exists; pass overwrite=True (--overwrite) to replace it", path=path)


def write_sidecars(
    folder: Path,
    ids: Sequence[str] | np.ndarray,
    array: np.ndarray,
    meta: dict,
    *,
    failed: list[dict] | None = None,
    report: dict | None = None,
) -> None:
    """ids.txt, meta.json (completed with dtype/shape/version), report.json and failed.csv."""
    ids = [str(i) for i in ids]
    bad = [i for i in ids if "\n" in i or "\r" in i or i != i.strip() or not i]
    if bad:
        raise DataError(
            f"item ids must be non-empty single-line strings without outer spaces: {bad[:5]}",
            path=folder / IDS,
        )
    if len(ids) != array.shape[0]:
        raise DataError(f"{len(ids)} ids for {array.shape[0]} feature rows", path=folder / IDS)
    try:
        Vocabulary(ids, name="item")  # raises on duplicates
    except ValueError as exc:
        raise DataError(str(exc), path=folder / IDS) from None
    (folder / IDS).write_text("".join(i + "\n" for i in ids), encoding="utf-8")
    meta = {
        **meta,
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "created_with": f"visrec {__version__}",
    }
    write_json(folder / META, meta)
    report = dict(report or {})
    report["failed"] = list(failed or report.get("failed", []))
    report.setdefault("missing_images", [])
    write_json(folder / REPORT, report)
    write_failed_csv(folder / FAILED, report["failed"], report["missing_images"])


def write_failed_csv(path: Path, failed: list[dict], missing: list[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "path", "reason"])
        for row in failed:
            writer.writerow([row["item_id"], row.get("path", ""), row["reason"]])
        for item_id in missing:
            writer.writerow([item_id, "", "no image file"])


def read_ids(path: Path) -> np.ndarray:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"ids file is not UTF-8 ({exc})", path=path) from None
    ids = text.split("\n")
    if ids and ids[-1] == "":
        ids.pop()
    return np.asarray(ids, dtype=object)


def _load_array(path: Path) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise DataError(
            f"not a plain numeric .npy file (pickled/object arrays are refused: {exc})", path=path
        ) from None
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read features ({exc})", path=path) from None
    _check_array(array, path)
    return array


def _check_array(array: np.ndarray, path: Path) -> None:
    if array.dtype not in _DTYPES:
        raise DataError(f"features must be float32 or float16, got {array.dtype}", path=path)
    if array.ndim not in (2, 4):
        raise DataError(
            f"features must be (n, d) or (n, h, w, d), got shape {array.shape}", path=path
        )


def _read_json_dict(path: Path) -> dict:
    try:
        data = read_json(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"invalid JSON ({exc})", path=path) from None
    if not isinstance(data, dict):
        raise DataError("expected a JSON object", path=path)
    return data

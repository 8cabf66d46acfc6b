"""``visrec data check DIR``: validate a dataset folder and report every problem at once.

A dataset is *usable* when its interactions load, each image id is unambiguous, every image decodes, a
split has something to hold out, and declared files exist. The declared feature store is checked one
layer up (:mod:`visrec.features.check`), which is what ``visrec data check`` runs. Gaps that the pipeline
handles (items without an image, images nobody interacted with) are *warnings*: they are listed but do not make the dataset
unusable (``--strict`` turns them into errors).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd

from visrec.data.images import ImageReadError, load_rgb, open_image, scan_image_folder
from visrec.data.interactions import (
    Interactions,
    check_columns,
    read_interaction_frame,
    validate_rows,
)
from visrec.data.loaders import (
    NOT_A_DATASET,
    _find_interactions,
    _movielens_items,
    _read_items,
    detect_layout,
    read_raw_interactions,
)
from visrec.errors import DataError

ERROR, WARNING = "error", "warning"
MAX_LINES = 20
"""Bad lines listed per row problem (the total is always given)."""
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    """One finding. ``ids`` lists the item ids concerned (all of them, not a sample)."""

    kind: str
    severity: str
    message: str
    ids: tuple[str, ...] = ()


@dataclass
class CheckReport:
    folder: Path
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict, repr=False)
    """``dataset.json`` as read (checks of higher layers, e.g. the feature store, read it too)."""
    item_ids: set[str] = field(default_factory=set, repr=False)
    """Every item id seen (interactions, item table, images)."""

    def add(self, kind: str, severity: str, message: str, ids=()) -> None:
        self.problems.append(Problem(kind, severity, message, tuple(sorted(ids, key=_natural))))

    def of_kind(self, kind: str) -> list[Problem]:
        return [p for p in self.problems if p.kind == kind]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def usable(self) -> bool:
        return not self.errors

    def format(self, max_ids: int = 20) -> str:
        counts = ", ".join(f"{v:,} {k}" for k, v in self.counts.items())
        lines = [f"checked {self.folder}" + (f": {counts}" if counts else "")]
        for p in self.problems:
            shown = ", ".join(p.ids[:max_ids]) if max_ids > 0 else ""
            more = f" (and {len(p.ids) - max_ids} more)" if 0 < max_ids < len(p.ids) else ""
            lines.append(
                f"{p.severity} [{p.kind}] {p.message}" + (f": {shown}{more}" if shown else "")
            )
        n_err, n_warn = len(self.errors), len(self.problems) - len(self.errors)
        verdict = "usable" if self.usable else "NOT usable"
        lines.append(f"{verdict} ({n_err} error(s), {n_warn} warning(s))")
        return "\n".join(lines)


def _natural(text: str) -> tuple:
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def check_dataset(folder: str | Path, *, decode: bool = True, workers: int = 4) -> CheckReport:
    """Check a dataset folder in any layout the loaders read: visrec (``interactions.csv``,
    ``images/``, ``dataset.json``, ...), MovieLens-100K (``u.data``, ``u.item``, ``posters/``) or the
    tutorial's Wikimedia CSVs."""
    folder = Path(folder)
    report = CheckReport(folder)
    if not folder.is_dir():
        report.add("folder", ERROR, f"{folder} is not a folder")
        return report
    manifest = _manifest(folder, report)
    item_ids = _check_interactions(folder, manifest, report)
    item_ids |= _check_items(folder, manifest, report)
    images = _check_images(folder, manifest, report, decode=decode, workers=workers)
    if images is not None and item_ids:
        missing = item_ids - set(images)
        if missing:
            report.add(
                "missing-image",
                WARNING,
                f"{len(missing)} item(s) have no image "
                "(drop them or give them a missing-image policy)",
                missing,
            )
        unused = set(images) - item_ids
        if unused:
            report.add(
                "unused-image",
                WARNING,
                f"{len(unused)} image(s) match no interaction or "
                "item (they join the catalogue as never-consumed items)",
                unused,
            )
    report.manifest, report.item_ids = manifest, item_ids | set(images or {})
    return report


def _manifest(folder: Path, report: CheckReport) -> dict:
    path = folder / "dataset.json"
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        report.add("manifest", ERROR, f"{path}: not valid JSON ({exc})")
        return {}
    if not isinstance(manifest, dict):
        report.add("manifest", ERROR, f"{path}: expected a JSON object")
        return {}
    return manifest


def declared(folder: Path, manifest: dict, key: str, default: str | None) -> Path | None:
    name = manifest.get(key, default)
    return None if name is None else folder / str(name)


def _interaction_files(
    folder: Path, manifest: dict, report: CheckReport
) -> list[tuple[Path, Callable[[], pd.DataFrame], dict]]:
    """(path, raw reader, constant columns) of every interaction file, found as the loaders find
    them (:func:`~visrec.data.loaders.detect_layout`); a MovieLens or Wikimedia folder's image folder
    goes into ``manifest`` for the image checks."""
    layout = detect_layout(folder)
    if layout is not None and layout.kind != "visrec":
        if layout.images_dir is not None:
            manifest.setdefault("images", str(layout.images_dir))
        files = [
            (path, partial(read_raw_interactions, layout, path), {})
            for path in layout.interaction_files
        ]
        if layout.kind == "wikimedia":  # train, test: as load_wikimedia marks them
            files = [(p, read, {"evaluation": n == 1}) for n, (p, read, _) in enumerate(files)]
        return files
    path = declared(folder, manifest, "interactions", None) or _find_interactions(folder)
    if path is None or not path.is_file():
        report.add("interactions", ERROR, f"no interactions file in {folder} ({NOT_A_DATASET})")
        return []
    return [(path, partial(read_interaction_frame, path), {})]


def _check_interactions(folder: Path, manifest: dict, report: CheckReport) -> set[str]:
    """Every row of every interaction file in one pass (bad rows listed with their lines), then
    counts and the timestamps of the good rows."""
    frames, item_ids, n_bad = [], set(), 0
    for path, read, constants in _interaction_files(folder, manifest, report):
        try:
            raw = read()
            check_columns(raw, str(path))
        except DataError as exc:
            report.add("interactions", ERROR, str(exc))
            item_ids |= _raw_item_ids(path)
            continue
        good, problems = validate_rows(raw)
        n_bad += len(raw) - len(good)
        for problem in problems:
            kind = "timestamps" if problem.column == "timestamp" else "interactions"
            report.add(kind, ERROR, f"{path}: {problem.describe(cap=MAX_LINES)}")
        item_ids |= set(good["item_id"])
        if len(good):
            frames.append(good.assign(**constants))
    if not frames:
        return item_ids
    interactions = Interactions.from_frame(pd.concat(frames, ignore_index=True), str(folder))
    frame = interactions.frame
    report.counts.update(
        users=int(frame["user_id"].nunique()),
        items=int(frame["item_id"].nunique()),
        interactions=len(frame),
    )
    _check_times(interactions, report, all_rows=n_bad == 0)
    return item_ids


def _raw_item_ids(path: Path) -> set[str]:
    """Best effort, so image checks still run when the interactions do not load."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=["item_id"])
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, OSError):
        return set()
    return set(frame["item_id"].str.strip()) - {""}


def _check_times(interactions: Interactions, report: CheckReport, *, all_rows: bool = True) -> None:
    """Timestamp sanity of the good rows; whether a split has anything to hold out is judged only
    when every row was good (else the bad rows' own errors say what to fix first)."""
    frame = interactions.frame
    times = frame["timestamp"].to_numpy()
    if all_rows and not interactions.has_evaluation:
        distinct = frame.groupby("user_id")["timestamp"].nunique()
        if not (distinct >= 2).any():
            report.add(
                "timestamps",
                ERROR,
                "no user has interactions at two different times, so "
                "the default leave-last-out split has nothing to hold out (add real "
                "timestamps or an evaluation column)",
            )
    large, small = times >= 10**11, (times > 0) & (times < 10**11)
    if large.any() and small.any():
        report.add(
            "timestamps",
            WARNING,
            f"{int(large.sum())} timestamp(s) look like milliseconds "
            f"and {int(small.sum())} like seconds: use one unit",
        )


def _check_items(folder: Path, manifest: dict, report: CheckReport) -> set[str]:
    path = declared(folder, manifest, "items", "items.csv")
    if path is None or not path.is_file():
        if "items" in manifest:
            report.add(
                "items", ERROR, f"dataset.json names an item table {path} that does not exist"
            )
        return set()
    layout = detect_layout(folder)
    if layout is not None and layout.kind == "movielens":
        return _check_movielens_items(folder, report)
    try:
        return set(_read_items(path).index)
    except DataError as exc:
        report.add("items", ERROR, str(exc))
        return set()


def _check_movielens_items(folder: Path, report: CheckReport) -> set[str]:
    if not (folder / "u.item").is_file():
        return set()
    try:
        return set(_movielens_items(folder).index)
    except DataError as exc:
        report.add("items", ERROR, str(exc))
        return set()


def _check_images(
    folder: Path, manifest: dict, report: CheckReport, *, decode: bool, workers: int
) -> dict[str, Path] | None:
    images_dir = declared(folder, manifest, "images", None)
    if images_dir is None:
        images_dir = folder / "images"
        if not images_dir.is_dir():
            if not declared(folder, manifest, "features", None):
                report.add(
                    "images",
                    WARNING,
                    "no images/ folder and no features: only non-visual "
                    "models can use this dataset",
                )
            return None
    if not images_dir.is_dir():
        report.add("images", ERROR, f"the image folder {images_dir} does not exist")
        return None
    scan = scan_image_folder(images_dir)
    images, clashes = scan.images, scan.clashes
    report.counts["images"] = len(images)
    if scan.rejected:
        report.add(
            "refused-image-file",
            ERROR,
            f"{len(scan.rejected)} image file(s) are not items (link leaving the folder or bad name)",
            [f"{Path(r['path']).name!r} ({r['reason']})" for r in scan.rejected],
        )
    if clashes:
        names = {stem: ", ".join(p.name for p in paths) for stem, paths in clashes.items()}
        report.add(
            "duplicate-image-id",
            ERROR,
            f"{len(clashes)} id(s) have several image files "
            "differing only in extension (keep one each)",
            [f"{stem} ({names[stem]})" for stem in clashes],
        )
    bad = _unreadable(images, decode=decode, workers=workers)
    if bad:
        report.add(
            "unreadable-image",
            ERROR,
            f"{len(bad)} image(s) cannot be read",
            [f"{item_id} ({reason})" for item_id, reason in bad.items()],
        )
    return images


def _unreadable(images: dict[str, Path], *, decode: bool, workers: int) -> dict[str, str]:
    ids = sorted(images)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        reasons = list(pool.map(lambda i: _read_error(images[i], decode), ids))
    return {i: r for i, r in zip(ids, reasons, strict=True) if r is not None}


def _read_error(path: Path, decode: bool) -> str | None:
    """None when ``path`` is a readable image, else a short reason.

    Uses the one image-opening function (:func:`visrec.data.images.open_image`: format allow-list, pixel
    budget); headers are checked with PIL's ``verify``, and ``decode`` then reads the image as extraction
    does (:func:`visrec.data.images.load_rgb`), so "readable" means "extractable".
    """
    try:
        if path.stat().st_size == 0:
            return "empty file"
        with open_image(path) as image:
            image.verify()
        if decode:
            load_rgb(path)
    except ImageReadError as exc:
        return str(exc).removeprefix(f"{path}: ")
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
    return None

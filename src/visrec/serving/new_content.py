"""Content of new items (never seen in training) for a finished run: features or pixels, made the run's way.

A run's model reads one declared input (``Recommender.inputs``): pooled or spatial features from a
feature store, or pixels. New items come as

- an **image folder** (one file per item, the file stem is the item id, read with the safe opener of
  :mod:`visrec.data.images`): for a feature model, features are extracted with the settings recorded in
  the run's feature store metadata (backbone, layer, weights, input size, resize; the same extraction
  code as ``visrec extract``); for a pixel model (DVBPR), images are decoded at the run's image size
  as its pixel cache decodes them (:func:`visrec.features.pixel_cache.decode_pixels`);
- a **feature store** of the new items (``visrec extract NEW_IMAGES -o STORE`` with the run's settings),
  checked against the run's store: same shape per item and the same backbone, layer and weights.

Unreadable images are reported in :attr:`NewItems.problems` and the rest is served; an id that already
names an item of the run, a wrong feature shape or a model that cannot score new items is an error.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visrec.data.images import ImageReadError, scan_image_folder
from visrec.errors import ConfigError, DataError
from visrec.features import FeatureStore
from visrec.features.extract import ExtractConfig, extract_features
from visrec.features.pixel_cache import decode_pixels
from visrec.models import Recommender, registry
from visrec.models.capabilities import ScoresNewItems, scores_new_items

SETTINGS = ("backbone", "layer", "weights", "input_size", "resize", "mean", "std")
"""Feature-store metadata that must agree between a run's store and the new items' features."""


@dataclass(frozen=True)
class NewItems:
    """New items ready for ``score_new_items``: ids and content rows in the same order."""

    ids: list[str]
    content: np.ndarray
    """Features ``(n, d)`` / ``(n, h, w, d)`` float32, or pixels ``(n, size, size, 3)`` uint8."""
    kind: str
    """The model input kind: ``pooled``, ``spatial`` or ``pixels``."""
    images: dict[str, Path] = field(default_factory=dict)
    """Item id -> image file (empty when the items came as a feature store)."""
    problems: list[dict[str, str]] = field(default_factory=list)
    """Images that were skipped: ``{"path", "reason"}`` (unreadable, bad name, link leaving the folder)."""

    def __len__(self) -> int:
        return len(self.ids)


def models_scoring_new_items() -> list[str]:
    """Registry names of the models that can score new items from their content."""
    return [name for name in registry.names() if scores_new_items(registry.get(name))]


def check_scores_new_items(model: Recommender) -> ScoresNewItems:
    """``model`` itself if it can score new items; else a :class:`ConfigError` naming those that can."""
    if isinstance(model, ScoresNewItems):
        return model
    able = ", ".join(models_scoring_new_items()) or "none is installed"
    raise ConfigError(
        f"{model.name} cannot score new items (it has no model of item content); "
        f"models that can: {able}"
    )


def load_new_items(
    run,
    source: str | Path,
    *,
    weights: str | Path | None = None,
    device: str | None = None,
) -> NewItems:
    """The new items in ``source`` (an image folder or a feature store) as ``run``'s model reads them.

    ``weights``: the local weights file the run's features were extracted with, when its store records
    ``file:NAME:sha256=...`` (the path itself is not recorded). ``device``: where the backbone runs.
    """
    model = run.model
    check_scores_new_items(model)
    if len(model.inputs) != 1:
        raise ConfigError(
            f"{model.name} reads {len(model.inputs)} feature sources; new items are served for "
            "models with one input only"
        )
    kind = model.inputs[0].kind
    source = Path(source)
    if _is_store(source):
        if kind == "pixels":
            raise ConfigError(
                f"{model.name} scores new items from pixels: give a folder of their images, "
                "not a feature store"
            )
        items = _from_store(source, run_store(run), kind)
    elif source.is_dir():
        if kind == "pixels":
            items = _decode_folder(source, int(model.config.image_size))
        else:
            items = _extract_folder(source, run_store(run), kind, weights, device)
    else:
        raise DataError("not an image folder or a feature store (features.npy + ids.txt + meta.json)",
                        path=source)  # fmt: skip
    _check_ids(items.ids, model, source)
    return items


def run_store(run) -> FeatureStore:
    """The feature store ``run`` was trained on (its metadata defines how new items are extracted)."""
    path = run.meta.get("features")
    if not isinstance(path, str) or not path:
        raise ConfigError(
            f"{run.path}: the run records no feature store; cannot describe new items"
        )
    try:
        return FeatureStore.open(path)
    except DataError as exc:
        raise DataError(
            f"the run's feature store is needed to serve new items the run's way ({exc})",
            path=run.path,
        ) from None


def _is_store(path: Path) -> bool:
    return path.is_dir() and (path / "features.npy").is_file() and (path / "meta.json").is_file()


def _check_ids(ids: list[str], model: Recommender, source: Path) -> None:
    if not ids:
        raise DataError("no usable new items", path=source)
    known = [i for i in ids if i in model.items]
    if known:
        more = f" and {len(known) - 5} more" if len(known) > 5 else ""
        raise DataError(
            f"{len(known)} new item ids already name items the run knows: {known[:5]}{more}; "
            "give new items ids of their own (the file stem is the id)",
            path=source,
        )


def _check_settings(have: dict, want: dict, what: str) -> None:
    for key in SETTINGS:
        if key in have and key in want and have[key] != want[key]:
            raise DataError(
                f"{what} were made with {key} {have[key]!r}, the run's features with "
                f"{want[key]!r}: extract the new items with the run's settings"
            )


def _from_store(path: Path, trained: FeatureStore, kind: str) -> NewItems:
    store = FeatureStore.open(path)
    want = tuple(trained.array.shape[1:])
    if tuple(store.array.shape[1:]) != want:
        raise DataError(
            f"new item features have shape {tuple(store.array.shape[1:])} per item, the run's "
            f"{kind} features {want} ({trained.meta.get('backbone')}, layer "
            f"{trained.meta.get('layer')}): extract them with the run's settings",
            path=path,
        )
    try:
        _check_settings(store.meta, trained.meta, "new item features")
    except DataError as exc:
        raise DataError(str(exc), path=path) from None
    content = np.array(store.array, dtype=np.float32)  # a writable copy of the memmap
    return NewItems([str(i) for i in store.ids], content, kind, problems=_store_problems(store))


def _store_problems(store: FeatureStore) -> list[dict[str, str]]:
    report = store.report
    rows = list(report.get("failed", [])) + list(report.get("refused_files", []))
    out = []
    for row in rows:
        path = str(row.get("path", ""))
        out.append({"path": path, "reason": str(row.get("reason", "")).removeprefix(f"{path}: ")})
    return out


def extraction_config(meta: dict, weights: str | Path | None = None) -> ExtractConfig:
    """The :class:`ExtractConfig` that reproduces a store's features, from its ``meta.json``."""
    backbone, described = meta.get("backbone"), str(meta.get("weights", ""))
    if not isinstance(backbone, str) or not isinstance(meta.get("input_size"), int):
        raise ConfigError(
            f"the run's features were not extracted from images by visrec (backbone "
            f"{backbone!r}): give the new items as a feature store made the same way"
        )
    if described.startswith("file:"):
        if weights is None:
            name = described.split(":")[1]
            raise ConfigError(
                f"the run's features were extracted with the weights file {name}: pass it with "
                "--weights PATH"
            )
        chosen = str(weights)
    else:
        chosen = "none" if described == "none" else "imagenet"
    recorded = meta.get("precision")
    return ExtractConfig(
        backbone=backbone,
        layer=str(meta.get("layer", "pooled")),
        weights=chosen,
        precision=recorded if recorded in ("fp32", "bf16") else "auto",
        input_size=int(meta["input_size"]),
    )


def _extract_folder(
    folder: Path, trained: FeatureStore, kind: str, weights, device: str | None
) -> NewItems:
    config = extraction_config(trained.meta, weights)
    with tempfile.TemporaryDirectory(prefix="visrec-new-items-") as tmp:
        store = extract_features(
            folder, Path(tmp) / "store", config=config, workers=0, device=device, progress=False
        )
        _check_settings(store.meta, trained.meta, "features of the new items")
        content = np.array(store.array, dtype=np.float32)  # a copy: the folder goes away
        ids = [str(i) for i in store.ids]
        problems = _store_problems(store)
    if tuple(content.shape[1:]) != tuple(trained.array.shape[1:]):
        raise DataError(
            f"features of the new items have shape {content.shape[1:]}, the run's "
            f"{tuple(trained.array.shape[1:])}",
            path=folder,
        )
    images = scan_image_folder(folder).images
    return NewItems(ids, content, kind, {i: images[i] for i in ids}, problems)


def _decode_folder(folder: Path, size: int) -> NewItems:
    scan = scan_image_folder(folder)
    problems = [dict(r) for r in scan.rejected]
    ids, rows = [], []
    for item_id, path in sorted(scan.images.items()):
        try:
            rows.append(decode_pixels(path, size))
        except ImageReadError as exc:
            problems.append({"path": str(path), "reason": str(exc).removeprefix(f"{exc.path}: ")})
            continue
        ids.append(item_id)
    if not ids:
        reason = f" (first problem: {problems[0]['reason']})" if problems else ""
        raise DataError(f"no readable new item images{reason}", path=folder)
    pixels = np.stack(rows).astype(np.uint8)
    return NewItems(ids, pixels, "pixels", {i: scan.images[i] for i in ids}, problems)

"""The backbone axis: session 1's question, "does a better ImageNet model transfer better to
recommendation?", as one benchmark.

``[backbones] names = [...]`` (or ``Experiment(backbones=[...])``) crosses every model entry whose
``features = "backbones"`` with each backbone: one row ``<model>@<backbone>`` per pair, each reading pooled
features of that backbone. The stores are extracted when missing into ``OUT/features/<backbone>-pooled``
(an existing store with the same backbone, weights and input size is reused), and the report gets a
table of each visual model's test quality per backbone beside the backbone's ImageNet top-1 accuracy
(:func:`visrec.features.backbones.imagenet_top1`; "unknown" when its metadata states none).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from visrec._config import Typed
from visrec.errors import ConfigError, DataError
from visrec.features.backbones import imagenet_top1
from visrec.features.extract import extract_features
from visrec.features.store import FeatureStore

log = logging.getLogger(__name__)

AXIS = "backbones"
"""The ``features`` value of a model entry that runs once per backbone."""


@dataclass(frozen=True)
class BackbonesTable(Typed):
    """``[backbones]``: the backbone axis and how its missing feature stores are extracted."""

    names: list[str] = field(default_factory=list)
    """Backbones (torchvision names, efficientnet_lite0, timm/<name>); models with
    features = "backbones" get one row per name."""
    weights: str = "imagenet"
    """imagenet, none (seeded random init) or a local state-dict file, for every backbone."""
    input_size: int | None = None
    """Crop size of the extraction (None: each backbone's own)."""
    batch_size: int = 32
    """Images per extraction batch."""
    images: str | None = None
    """Image folder (relative to the file; default: the dataset's images)."""

    def __post_init__(self):
        if len(set(self.names)) != len(self.names):
            raise ConfigError(f"[backbones] names must be unique, got {self.names}")
        if self.input_size is not None and self.input_size < 16:
            raise ConfigError(f"[backbones] input_size must be >= 16, got {self.input_size}")
        if self.batch_size < 1:
            raise ConfigError(f"[backbones] batch_size must be >= 1, got {self.batch_size}")


def store_path(out: Path, table: BackbonesTable, backbone: str) -> Path:
    """Where the benchmark keeps the pooled features of ``backbone``."""
    size = f"-{table.input_size}" if table.input_size else ""
    return Path(out) / "features" / f"{backbone.replace('/', '_')}-pooled{size}"


def ensure_stores(
    table: BackbonesTable, out: Path, images: Path | None, items: list[str], echo
) -> dict[str, str]:
    """Backbone -> store path for every name of the axis, extracting the missing ones."""
    stores = {}
    for name in table.names:
        path = store_path(out, table, name)
        if _reusable(path, name, table):
            echo(f"  features {name}: reusing {path}")
        else:
            if images is None:
                raise DataError("the backbone axis needs item images: set [backbones] images")
            echo(f"  features {name}: extracting -> {path}")
            try:
                extract_features(
                    images,
                    path,
                    backbone=name,
                    weights=table.weights,
                    input_size=table.input_size,
                    items=items,
                    batch_size=table.batch_size,
                    overwrite=path.exists(),
                    progress=False,
                )
            except RuntimeError as exc:  # e.g. an input size too small for the network
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ConfigError(f"[backbones] {name}: extraction failed ({first})") from None
        stores[name] = str(path)
    return stores


def _reusable(path: Path, name: str, table: BackbonesTable) -> bool:
    if not (path / "meta.json").is_file():
        return False
    try:
        meta = FeatureStore.open(path).meta
    except (DataError, OSError, ValueError):
        return False
    same_size = table.input_size is None or meta.get("input_size") == table.input_size
    weights = str(meta.get("weights", ""))
    same_weights = weights == "none" if table.weights == "none" else weights != "none"
    return (
        meta.get("backbone") == name
        and meta.get("layer") == "pooled"
        and same_size
        and same_weights
    )


def with_stores(config, stores: dict[str, str]):
    """``config`` with each axis model's ``features`` set to its backbone's store."""
    models = tuple(
        dataclasses.replace(m, features=stores[m.backbone]) if m.backbone else m
        for m in config.models
    )
    return dataclasses.replace(config, models=models)


def top1_of(name: str, weights: str) -> float | None:
    """ImageNet top-1 (%) of ``name`` as extracted with ``weights`` (None: unknown or not ImageNet)."""
    return imagenet_top1(name) if weights == "imagenet" else None


def backbone_rows(summary: dict, table: BackbonesTable) -> list[dict]:
    """One row per backbone: its ImageNet top-1 and, per visual model, the test means."""
    rows = []
    for name in table.names:
        top1 = top1_of(name, table.weights)
        row = {"backbone": name, "weights": table.weights, "imagenet_top1": top1, "models": {}}
        for m in summary["models"]:
            if m.get("backbone") == name:
                base = m["name"].rsplit("@", 1)[0]
                row["models"][base] = m.get("means") if m["status"] == "ok" else None
        rows.append(row)
    return rows


def backbone_markdown(rows: list[dict], metrics: list[str]) -> str:
    """The report's table: backbone, ImageNet top-1, then metric per visual model."""
    models = list(dict.fromkeys(name for r in rows for name in r["models"]))
    shown = [m for m in ("AUC", "nDCG@20") if m in metrics] or metrics[:2]
    head = ["backbone", "ImageNet top-1"] + [f"{m} {k}" for m in models for k in shown]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in rows:
        top1 = r["imagenet_top1"]
        cells = [r["backbone"], "unknown" if top1 is None else f"{top1:.2f}%"]
        if r["weights"] != "imagenet":
            cells[1] = f"n/a (weights {r['weights']})"
        for m in models:
            means = r["models"].get(m)
            cells += [("failed" if means is None else f"{means[k]:.4f}") for k in shown]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)

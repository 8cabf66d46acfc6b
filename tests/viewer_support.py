"""A demo dataset with item titles and a set of trained (and evaluated) runs for the viewer's tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from visrec.cli import main
from visrec.data import open_dataset
from visrec.features import FeatureStore
from visual_support import image_features

SMALL = {
    "vbpr": ["epochs=2", "factors=4", "visual_factors=4", "device=cpu"],
    "curatornet": [
        "epochs=1",
        "item_dim=8",
        "user_hidden=8",
        "n_clusters=6",
        "triplets_per_epoch=512",
        "batch_size=128",
        "device=cpu",
    ],
    "acf": ["epochs=1", "dim=8", "batch_size=256", "device=cpu"],
}


def titled_demo(demo_dir: Path, out: Path) -> Path:
    """A copy of the demo folder whose items.csv has a ``title`` column ("warm circle no. 12")."""
    shutil.copytree(demo_dir, out)
    items = pd.read_csv(out / "items.csv", dtype=str)
    items["title"] = [
        f"{p} {s} no. {int(i[1:])}"
        for i, p, s in zip(items.item_id, items.palette, items["shape"], strict=True)
    ]
    items.to_csv(out / "items.csv", index=False)
    return out


def write_stores(data: Path, out: Path) -> tuple[Path, Path]:
    """A pooled store (colour histogram + tiny thumbnail) and a 2x2 spatial store of the demo images."""
    dataset = open_dataset(data).build()
    pooled = image_features(data, dataset)
    FeatureStore.write(
        out / "pooled", dataset.items.ids, pooled, {"backbone": "pixels", "layer": "pooled"}
    )
    thumbs = pooled[:, 64:].reshape(len(pooled), 8, 8, 3) * 8.0
    spatial = thumbs.reshape(len(pooled), 2, 4, 2, 4, 3).mean(axis=(2, 4)).astype(np.float32)
    FeatureStore.write(
        out / "spatial", dataset.items.ids, spatial, {"backbone": "pixels", "layer": "grid"}
    )
    return out / "pooled", out / "spatial"


def train(data: Path, out: Path, model: str, features: Path | None, *sets: str) -> Path:
    args = ["train", model, "--data", str(data), "-o", str(out)]
    if features is not None:
        args += ["--features", str(features)]
    for option in (*SMALL.get(model, []), *sets):
        args += ["--set", option]
    assert main(args) == 0, f"training {model} failed"
    return out


def evaluate(run: Path) -> Path:
    assert main(["evaluate", str(run)]) == 0
    return run

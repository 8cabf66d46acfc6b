"""Known-answer data for the visual models' tests: demo features from truth.json or from the images,
a demo with strong visual tastes, a checkerboard set (each user likes exactly one visual cluster), and
saved models rewritten as an earlier visrec wrote them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from visrec.data import Dataset, SplitSpec
from visrec.data.interactions import Interactions


def taste_demo(out: Path) -> Path:
    """A demo folder whose users follow their (palette, shape) taste more strongly than the default."""
    from visrec.data.demo import DemoSpec, generate_demo

    spec = DemoSpec(
        n_users=150, n_items=120, image_size=16, palette_weight=4.0, shape_weight=3.0, seed=5
    )
    return generate_demo(out, spec)


def truth_features(
    folder: Path, dataset: Dataset, noise: float = 0.05, seed: int = 0
) -> np.ndarray:
    """One-hot palette + one-hot shape of every item (truth.json), plus Gaussian noise."""
    items = json.loads((folder / "truth.json").read_text(encoding="utf-8"))["items"]
    palettes = sorted({v["palette"] for v in items.values()})
    shapes = sorted({v["shape"] for v in items.values()})
    out = np.zeros((dataset.n_items, len(palettes) + len(shapes)), dtype=np.float32)
    for row, item_id in enumerate(dataset.items.ids):
        out[row, palettes.index(items[item_id]["palette"])] = 1.0
        out[row, len(palettes) + shapes.index(items[item_id]["shape"])] = 1.0
    rng = np.random.default_rng(seed)
    return out + rng.normal(0.0, noise, out.shape).astype(np.float32)


def image_features(folder: Path, dataset: Dataset) -> np.ndarray:
    """A 64-bin colour histogram plus an 8x8 thumbnail of each demo image (no CNN needed)."""
    rows = []
    for item_id in dataset.items.ids:
        with Image.open(folder / "images" / f"{item_id}.jpg") as img:
            pixels = np.asarray(img.convert("RGB").resize((8, 8)), dtype=np.float32) / 255.0
        bins = (pixels * 3.999).astype(np.int64)
        hist = np.bincount(
            (bins[..., 0] * 16 + bins[..., 1] * 4 + bins[..., 2]).ravel(), minlength=64
        )
        rows.append(np.concatenate([hist / hist.sum(), pixels.ravel() / 8.0]))
    return np.asarray(rows, dtype=np.float32)


def checkerboard(
    n_clusters: int = 4, per_cluster: int = 30, n_users: int = 24, profile: int = 8, seed: int = 0
) -> tuple[Dataset, np.ndarray, np.ndarray, np.ndarray]:
    """Users who each consume ``profile`` items of exactly one visual cluster.

    Returns (dataset, features, cluster of each user index, cluster of each item index); features are
    the cluster's one-hot plus small noise, so the right recommendations are known exactly.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        cluster = u % n_clusters
        chosen = rng.choice(per_cluster, size=profile, replace=False) + cluster * per_cluster
        rows += [(f"u{u:03d}", f"i{i:03d}", t) for t, i in enumerate(chosen)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    extra = [f"i{i:03d}" for i in range(n_clusters * per_cluster)]
    dataset = Dataset.build(
        Interactions.from_frame(frame), SplitSpec(validation=False), extra_item_ids=extra
    )
    item_cluster = np.array([int(i[1:]) // per_cluster for i in dataset.items.ids])
    user_cluster = np.array([int(u[1:]) % n_clusters for u in dataset.users.ids])
    features = np.eye(n_clusters, dtype=np.float32)[item_cluster]
    features += rng.normal(0.0, 0.05, features.shape).astype(np.float32)
    return dataset, features, user_cluster, item_cluster


def as_saved_before(folder: Path, state_key: str, option: str) -> Path:
    """Rewrite a saved model as an earlier visrec wrote it: without ``state_key`` in its weights and
    without ``option`` in its config."""
    state = torch.load(folder / "weights.pt")
    del state[state_key]
    torch.save(state, folder / "weights.pt")
    meta = json.loads((folder / "model.json").read_text())
    del meta["config"][option]
    (folder / "model.json").write_text(json.dumps(meta))
    return folder

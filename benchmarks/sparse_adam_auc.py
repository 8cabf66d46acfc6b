"""optimizer=sparse_adam against adam on the demo data: best validation AUC over seeds (same within noise?).

The demo dataset (``visrec data demo``'s default spec) with image features that need no CNN (a 64-bin
colour histogram and an 8x8 thumbnail of each demo image); VBPR at the tutorial's sizes, trained with each
optimiser for the same seeds, alternating. Prints the per-seed best validation AUC, the mean and standard
deviation of each optimiser, and the mean paired difference with its standard error.

Usage: ``python benchmarks/sparse_adam_auc.py [--seeds 5] [--batch-size 100] [--epochs 20]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from visrec.data import open_dataset
from visrec.data.demo import DemoSpec, generate_demo
from visrec.models import create
from visrec.training import fit_model


def demo_features(folder: Path, item_ids) -> np.ndarray:
    """A 64-bin colour histogram plus an 8x8 thumbnail of each demo image."""
    rows = []
    for item_id in item_ids:
        with Image.open(folder / "images" / f"{item_id}.jpg") as img:
            pixels = np.asarray(img.convert("RGB").resize((8, 8)), dtype=np.float32) / 255.0
        bins = (pixels * 3.999).astype(np.int64)
        codes = (bins[..., 0] * 16 + bins[..., 1] * 4 + bins[..., 2]).ravel()
        hist = np.bincount(codes, minlength=64)
        rows.append(np.concatenate([hist / hist.sum(), pixels.ravel() / 8.0]))
    return np.asarray(rows, dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = generate_demo(Path(tempfile.mkdtemp(prefix="visrec-demo-")) / "data", DemoSpec())
    dataset = open_dataset(folder).build()
    features = demo_features(folder, dataset.items.ids)
    print(f"demo: {dataset.n_users} users, {dataset.n_items} items, {dataset.n_train} train")
    best: dict[str, list[float]] = {"adam": [], "sparse_adam": []}
    for seed in range(args.seeds):
        for optimizer in best:
            cfg = {"optimizer": optimizer, "seed": seed, "batch_size": args.batch_size,
                   "epochs": args.epochs, "device": "cpu"}  # fmt: skip
            began = time.perf_counter()
            model = fit_model(create("vbpr", cfg), dataset, features)
            auc = model.info["training"]["best_val_AUC"]
            best[optimizer].append(auc)
            print(f"seed {seed} {optimizer:<11} best val AUC {auc:.4f} "
                  f"(epoch {model.info['training']['best_epoch']}, "
                  f"{time.perf_counter() - began:.1f} s)", flush=True)  # fmt: skip
    for optimizer, values in best.items():
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{optimizer:<11} mean {statistics.mean(values):.4f} sd {sd:.4f}")
    diffs = [s - a for a, s in zip(best["adam"], best["sparse_adam"], strict=True)]
    se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else 0.0
    print(f"sparse_adam - adam: mean {statistics.mean(diffs):+.4f} (standard error {se:.4f})")


if __name__ == "__main__":
    main()

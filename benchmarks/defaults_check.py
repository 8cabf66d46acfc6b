"""Do a model's defaults converge? Train it with its defaults and with a few variants, each stopped on
validation (large epoch budget), and print one JSON line per run: why it stopped (patience or budget),
best epoch, best validation AUC, then test AUC / nDCG@20 (reported, never used to choose).

Usage (docs/training.md, "Choosing the defaults"):
    python benchmarks/defaults_check.py acf --data DATA --features MAPS \
        --variant "embedding_lr=1e-2" --variant "lr=5e-3" [--set epochs=60 ...]
    python benchmarks/defaults_check.py dvbpr --data DATA --images DIR --set image_size=32 \
        --variant "factor_lr=1e-2" --variant "lr=1e-3"
The first run is always the defaults (plus --set); each --variant adds its comma-separated key=value pairs.
"""

from __future__ import annotations

import argparse
import json
import time

from visrec.data import open_dataset
from visrec.evaluation import evaluate
from visrec.features import FeatureStore
from visrec.features.pixel_cache import open_pixels
from visrec.models import create
from visrec.training import fit_model


def pairs(text: str) -> dict:
    return dict(item.split("=", 1) for item in text.split(",") if item)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--data", required=True)
    parser.add_argument("--features", help="feature store (pooled or spatial)")
    parser.add_argument("--images", help="image folder (pixel models)")
    parser.add_argument("--set", action="append", default=[], help="key=value for every run")
    parser.add_argument("--variant", action="append", default=[], help="k=v[,k=v] of one run")
    args = parser.parse_args()
    dataset = open_dataset(args.data).build()
    common = {"epochs": "100"} | pairs(",".join(args.set))
    for label in ["defaults", *args.variant]:
        options = common | ({} if label == "defaults" else pairs(label))
        model = create(args.model, options)
        if args.images:
            features = open_pixels(args.images, dataset.items, model.config.image_size)
        else:
            features = FeatureStore.open(args.features) if args.features else None
        began = time.perf_counter()
        fit_model(model, dataset, features)
        info = model.info["training"]
        test = evaluate(model.score, dataset, split="test").means
        row = {
            "model": args.model,
            "run": label,
            "stopped_by": info["stopped_by"],
            "epochs_run": info["epochs_run"],
            "best_epoch": info["best_epoch"],
            "val_AUC": round(info["best_val_AUC"], 4),
            "test_AUC": round(test["AUC"], 4),
            "test_nDCG@20": round(test["nDCG@20"], 4),
            "seconds": round(time.perf_counter() - began, 1),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

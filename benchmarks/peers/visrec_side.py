"""Run one stage with visrec (its CLI and public API), on the data ``data.prepare`` wrote.

``python visrec_side.py STAGE --work DIR [--triplets N] [--setup]``; the last line printed is
``PEER_RESULT {json}`` (``seconds`` and ``items`` of the timed part: one training epoch as the Trainer
logs it, sampling included, validation not; or the whole stage).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

TRAIN = {
    "vbpr": ("vbpr", ["batch_size=42000"]),
    "vbpr100": ("vbpr", ["batch_size=100"]),
    "vbpr100s": ("vbpr", ["batch_size=100", "optimizer=sparse_adam"]),
    "vbpr1024": ("vbpr", ["batch_size=1024"]),
    # item_dim 200: the tutorial's dimensions (visrec's default is 64), so both sides do the same maths
    "curatornet": ("curatornet", ["batch_size=128", "sampling=profile", "item_dim=200"]),
    "acf": ("acf", ["batch_size=128"]),
}
EXTRACT = {"extract": "torch", "extract_onnx": "onnx"}


def cli(*args: str) -> None:
    from visrec.cli import main

    code = main(list(args))
    if code:
        raise SystemExit(f"visrec {args[2] if len(args) > 2 else ''} failed (exit {code})")


def train(stage: str, work: Path, triplets: int) -> dict:
    model, options = TRAIN[stage]
    run = work / "runs" / stage
    sets = [f"--set={o}" for o in [*options, "epochs=1", f"triplets_per_epoch={triplets}"]]
    features = work / ("features-spatial" if stage == "acf" else "features")
    cli("--threads", "1", "train", model, "--data", str(work / "visrec-data"),
        "--features", str(features), "-o", str(run), "--force", *sets)  # fmt: skip
    row = json.loads((run / "train_log.jsonl").read_text().splitlines()[0])
    return {"seconds": row["seconds"], "items": triplets}


def evaluate(work: Path, setup: bool) -> dict:
    run = work / "runs" / "evaluate"
    if setup:
        cli("--threads", "1", "train", "vbpr", "--data", str(work / "visrec-data"),
            "--features", str(work / "features"), "-o", str(run), "--force",
            "--set=epochs=1", "--set=batch_size=42000")  # fmt: skip
        return {}
    began = time.perf_counter()
    cli("--threads", "1", "evaluate", str(run), "--mode", "tutorial", "--force")
    return {"seconds": time.perf_counter() - began}


def extract(work: Path, backend: str) -> dict:
    """``visrec extract`` on the generated JPEGs, timed as the whole command (scan, model or cached
    ONNX graph, loop, store); resnet50 with random weights, decoding in the process (workers 0)."""
    from visrec.features import FeatureStore

    out = work / "runs" / f"extract-{backend}"
    began = time.perf_counter()
    cli("--threads", "1", "extract", str(work / "jpegs-1600x1200"), "-o", str(out),
        "--backbone", "resnet50", "--weights", "none", "--workers", "0", "--backend", backend,
        "--overwrite", "--no-progress")  # fmt: skip
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "items": len(FeatureStore.open(out))}


def sampling(work: Path, triplets: int) -> dict:
    """Sample ``triplets`` (user, positive, negative) triplets, check them, write them as CSV."""
    import numpy as np
    import pandas as pd

    from visrec.data import open_dataset
    from visrec.data.split import SplitSpec
    from visrec.sampling import uniform_triplets

    began = time.perf_counter()
    dataset = open_dataset(work / "visrec-data").build(SplitSpec())
    sample = uniform_triplets(dataset, triplets, np.random.default_rng(0))
    users, pos, neg = sample["users"], sample["pos"], sample["neg"][:, 0]
    train = dataset.train
    assert np.asarray(train[users, pos]).all() and not np.asarray(train[users, neg]).any()
    frame = pd.DataFrame({"ui": users, "pi": pos, "ni": neg})
    frame.to_csv(work / "visrec-triplets.csv", index=False)
    return {"seconds": time.perf_counter() - began, "items": triplets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=[*TRAIN, *EXTRACT, "evaluate", "sampling"])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--triplets", type=int, default=None)
    parser.add_argument(
        "--setup", action="store_true", help="write the stage's inputs, time nothing"
    )
    args = parser.parse_args()
    import visrec  # noqa: F401  before torch, as in the visrec command (its start-up settings)

    if args.stage != "evaluate":  # evaluate: only what the command itself imports
        import torch

        torch.set_num_threads(1)
    work = args.work.resolve()
    n = args.triplets or json.loads((work / "prepared.json").read_text())["n_train"]
    os.environ.setdefault("VISREC_CACHE_DIR", str(work / "visrec-cache"))  # the ONNX graph
    if args.stage in EXTRACT:  # --setup warms the ONNX cache (a one-off export per backbone)
        result = extract(work, EXTRACT[args.stage])
    elif args.stage == "evaluate":
        result = evaluate(work, args.setup)
    elif args.setup:
        result = {}
    elif args.stage == "sampling":
        result = sampling(work, n)
    else:
        result = train(args.stage, work, n)
    print("PEER_RESULT " + json.dumps(result), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

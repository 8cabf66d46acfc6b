"""1 process x 2 threads vs 2 processes x 1 thread (torchrun, gloo) on this machine.

    python benchmarks/distributed.py [--steps 30] [--batch 8192] [--images 96]

(a) training: BPR (64 factors) through ``Trainer.setup/step`` on synthetic interactions (20,000 users,
    5,000 items, 300,000 events); each rank samples ``batch / world`` triplets per step from its own
    stream (as the Trainer does under torchrun), so the global batch is the same in both set-ups;
    triplets/s = global batch x timed steps / wall seconds (sampling included, 3 warm-up steps excluded);
(b) extraction: ``extract_sharded`` (resnet18, random weights, 112 px crops, batches of 16, decoding
    in-process) over generated 320x240 JPEGs; images/s = images / wall seconds of the whole call
    (model build, shards and rank 0's merge included).

Each configuration runs as ``torchrun --standalone --nproc-per-node N`` in a subprocess; rank 0 prints a
JSON line that this script collects and prints.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CONFIGS = ((1, 2), (2, 1))  # (processes, threads per process)


def synthetic_dataset(seed: int = 0):
    import pandas as pd

    from visrec.data import Dataset, SplitSpec
    from visrec.data.interactions import Interactions

    rng = np.random.default_rng(seed)
    n_users, n_items, n = 20_000, 5_000, 300_000
    users = rng.integers(0, n_users, n)
    items = np.minimum(rng.zipf(1.3, n) - 1, n_items - 1)
    frame = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in users],
            "item_id": [f"i{i}" for i in items],
            "timestamp": rng.integers(1_500_000_000, 1_600_000_000, n),
        }
    ).drop_duplicates(["user_id", "item_id"])
    return Dataset.build(Interactions.from_frame(frame), SplitSpec())


def worker_train(args, ctx) -> dict:
    import torch

    from visrec.distributed import barrier
    from visrec.models import create
    from visrec.training.trainer import Trainer, epoch_rng

    dataset = synthetic_dataset()
    model = create("bpr", {"factors": 64, "seed": 1, "device": "cpu", "epochs": 1})
    model.info["dims"] = model._dims(dataset, None)
    torch.manual_seed(1)
    model.module = model._build(model.info["dims"])
    trainer = Trainer(model, dataset, dist=ctx)
    trainer.setup()
    per_rank = -(-args.batch // ctx.world_size)

    def one(step: int) -> None:
        sample = model.sample(dataset, per_rank, epoch_rng(0, step, ctx.rank))
        trainer.step({k: torch.from_numpy(v) for k, v in sample.items()})

    for step in range(3):
        one(step)
    barrier(ctx)
    began = time.perf_counter()
    for step in range(args.steps):
        one(3 + step)
    barrier(ctx)
    seconds = time.perf_counter() - began
    return {"triplets_per_s": per_rank * ctx.world_size * args.steps / seconds}


def worker_extract(args, ctx) -> dict:
    from visrec.distributed import barrier
    from visrec.features.sharded import extract_sharded

    out = Path(args.tmp) / f"store-{ctx.world_size}"
    barrier(ctx)
    began = time.perf_counter()
    store = extract_sharded(
        Path(args.tmp) / "images",
        out,
        ctx,
        backbone="resnet18",
        weights="none",
        input_size=112,
        batch_size=16,
        workers=0,
        progress=False,
        overwrite=True,
    )
    seconds = time.perf_counter() - began
    return {"images_per_s": len(store) / seconds}


def worker(args) -> None:
    import torch

    from visrec.distributed import torchrun

    torch.set_num_threads(args.threads)
    with torchrun("gloo") as ctx:
        result = (worker_train if args.worker == "train" else worker_extract)(args, ctx)
        if ctx.is_main:
            print("RESULT " + json.dumps(result), flush=True)


def make_images(folder: Path, n: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        base = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
        image = Image.fromarray(base).resize((320, 240), Image.BILINEAR)
        image.save(folder / f"img{i:05d}.jpg", quality=90)


def launch(args, kind: str, procs: int, threads: int, tmp: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += [f"--nproc-per-node={procs}", __file__, "--worker", kind, "--threads", str(threads)]
    cmd += ["--steps", str(args.steps), "--batch", str(args.batch), "--tmp", tmp]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--worker", choices=["train", "extract"], default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tmp", default=None)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    with tempfile.TemporaryDirectory() as tmp:
        make_images(Path(tmp) / "images", args.images)
        print(f"{os.cpu_count()} CPUs; global batch {args.batch}, {args.steps} timed steps")
        for procs, threads in CONFIGS:
            train = launch(args, "train", procs, threads, tmp)
            extract = launch(args, "extract", procs, threads, tmp)
            print(
                f"{procs} process(es) x {threads} thread(s): "
                f"BPR training {train['triplets_per_s']:,.0f} triplets/s, "
                f"extraction {extract['images_per_s']:.1f} images/s"
            )


if __name__ == "__main__":
    main()

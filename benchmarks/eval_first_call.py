"""Evaluation: the first call of a fresh process against the warm (second) one.

Each run is a new Python process on the Wikimedia shape (1,079 users x 9,636 items, the scorer a
precomputed float32 score matrix, both tutorial and full modes from one pass). It times, after the
imports and the data are ready: the first ``evaluate_modes`` call and the median of three later calls.
By default this evaluation is too small to load the numba kernel (``kernels.KERNEL_MIN_WORK``): both count
with NumPy. ``--prefetch`` starts ``kernels.prefetch()`` before the data is built (the kernel loads in the
background; counts use it once it is ready). ``--cold`` points numba at an empty cache folder, so a loaded
kernel compiles from scratch (what the very first run pays, or every run of a read-only install without a
user cache folder). ``kernel`` in the output: whether the kernel counted the warm calls.

    .venv/bin/python benchmarks/eval_first_call.py [--runs 3] [--prefetch] [--cold]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def child(prefetch: bool) -> None:
    import torch

    torch.set_num_threads(1)
    if prefetch:
        from visrec.evaluation import kernels

        kernels.prefetch()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from eval_speed import synthetic, vectors

    from visrec.evaluation import evaluate_modes, kernels, matrix_scorer

    ds = synthetic(1_079, 9_636, 97_000)
    users, items = vectors(ds, dtype=torch.float32)
    scorer = matrix_scorer(users @ items.T)

    def once() -> float:
        began = time.perf_counter()
        evaluate_modes(scorer, ds, split="test", modes=("tutorial", "full"))
        return time.perf_counter() - began

    first = once()
    warm = statistics.median(once() for _ in range(3))
    print(json.dumps({"first": first, "warm": warm, "kernel": kernels.ready()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="empty numba cache folder per run")
    parser.add_argument(
        "--prefetch", action="store_true", help="kernels.prefetch() first (a background load)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.prefetch)
    rows = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as empty:
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            if args.cold:
                env["NUMBA_CACHE_DIR"] = empty
            out = subprocess.run(
                [sys.executable, __file__, "--child", *(["--prefetch"] if args.prefetch else [])],
                env=env,
                capture_output=True,
                text=True,
            )
            if out.returncode:
                raise SystemExit(out.stderr[-2000:])
            rows.append(json.loads(out.stdout.splitlines()[-1]))
            load = os.getloadavg()[0]
            r = rows[-1]
            print(f"first {r['first'] * 1e3:8.1f} ms  warm {r['warm'] * 1e3:8.1f} ms  "
                  f"first/warm {r['first'] / r['warm']:.2f}  (kernel {r['kernel']}, load {load:.1f})")  # fmt: skip
    ratio = statistics.median(r["first"] / r["warm"] for r in rows)
    print(f"median first/warm over {len(rows)} processes: {ratio:.2f}")


if __name__ == "__main__":
    main()

"""Dataset cache and ``visrec evaluate`` start-up: open+build cold vs cached, and the whole process.

On the peer benchmark's generated data (``benchmarks/peers/data.py``: Wikimedia shape x ``--scale``,
2048-d synthetic features), it trains a VBPR run once (untimed, one epoch, batch 42,000) and measures:

1. the dataset open+build: ``open_dataset(path).build()`` (cold: reads and splits the CSV) against
   ``build_dataset(path)`` served by the cache (median of ``--repeats`` in this process; the first,
   storing build is shown too);
2. the whole ``visrec --threads 1 evaluate RUN --mode tutorial --force`` process: wall seconds and CPU
   seconds (user + sys, less sensitive to other jobs on the machine), A/B alternating over ``--runs``
   rounds: the cache off (``VISREC_DATASET_CACHE=0``) against on (warm), and, with ``--baseline-src``, the
   code in that ``src`` folder (e.g. an export of an older commit) before both.

numba's kernel cache lives in the work folder (warmed by one untimed run of each variant), so every
timed run loads compiled code as a user's second run does. Prints one JSON line per measurement and a
summary table with the load average before and after.

    .venv/bin/python benchmarks/dataset_cache.py [--scale 1.0] [--runs 5] [--work DIR]
        [--baseline-src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def prepare(work: Path, scale: float) -> Path:
    """The data folder, feature store and a finished VBPR run under ``work`` (kept between calls)."""
    run = work / "run"
    if (run / "run.json").is_file():
        return run
    import numpy as np

    sys.path.insert(0, str(HERE / "peers"))
    from data import interactions, shape

    from visrec.data import open_dataset
    from visrec.features import FeatureStore

    n = shape(scale)
    (work / "data").mkdir(parents=True, exist_ok=True)
    interactions(n, 0).to_csv(work / "data" / "interactions.csv", index=False)
    dataset = open_dataset(work / "data").build()
    rng = np.random.default_rng(1)
    features = rng.gamma(0.5, 1.0, (dataset.n_items, n["dim"])).astype(np.float32)
    ids = np.asarray(dataset.items.ids)
    FeatureStore.write(work / "features", ids, features, {"backbone": "synthetic"}, overwrite=True)
    visrec("train", "vbpr", "--data", str(work / "data"), "--features", str(work / "features"),
           "-o", str(run), "--force", "--set=epochs=1", "--set=batch_size=42000",
           env=environment(work, SRC, cache=False))  # fmt: skip
    return run


def environment(work: Path, src: Path, *, cache: bool) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1")
    env["VISREC_CACHE_DIR"] = str(work / "cache")
    env["NUMBA_CACHE_DIR"] = str(work / "numba" / src.as_posix().strip("/").replace("/", "_"))
    env["VISREC_DATASET_CACHE"] = "1" if cache else "0"
    return env


def visrec(*args: str, env: dict[str, str]) -> tuple[float, float]:
    """Run ``python -m visrec --threads 1 ARGS``; (wall, CPU user+sys) seconds of that process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "visrec", "--threads", "1", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def open_build(work: Path, repeats: int) -> dict[str, float]:
    """Seconds of the cold open+build, the first cached build (stores) and a cached build (median)."""
    import tempfile

    from visrec.data import open_dataset
    from visrec.data.cache import build_dataset

    def timed(func) -> float:
        began = time.perf_counter()
        func()
        return time.perf_counter() - began

    path = work / "data"
    cold = statistics.median(timed(lambda: open_dataset(path).build()) for _ in range(repeats))
    with tempfile.TemporaryDirectory() as cache_dir:
        store = timed(lambda: build_dataset(path, cache_dir=cache_dir))
        cached = statistics.median(
            timed(lambda: build_dataset(path, cache_dir=cache_dir)) for _ in range(repeats)
        )
    return {"cold": cold, "first_store": store, "cached": cached}


def whole_process(work: Path, run: Path, runs: int, baseline: Path | None) -> dict[str, list]:
    variants = {"cache off": environment(work, SRC, cache=False)}
    variants["cache on"] = environment(work, SRC, cache=True)
    if baseline is not None:
        variants = {"baseline": environment(work, baseline, cache=False), **variants}
    args = ("evaluate", str(run), "--mode", "tutorial", "--force")
    for env in variants.values():  # untimed: numba's cache, the dataset cache, the OS file cache
        visrec(*args, env=env)
    times: dict[str, list] = {name: [] for name in variants}
    for round_ in range(runs):
        for name, env in variants.items():
            wall, cpu = visrec(*args, env=env)
            times[name].append((wall, cpu))
            print(json.dumps({"round": round_, "variant": name, "wall": wall, "cpu": cpu}))
    return times


def child_phases(run: Path) -> None:
    """One ``visrec evaluate`` done step by step as the command does it for a run it scores through the
    loaded model (a run saved without dot-product factors, or a profile-based model; docs/evaluation.md
    "Evaluating a run without torch" has the other path); prints (wall, CPU) seconds of each step: torch's
    import, visrec's imports, loading the model, building the dataset, evaluating."""
    marks = [("start", time.perf_counter(), time.process_time())]

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter(), time.process_time()))

    import torch

    torch.set_num_threads(1)
    mark("import torch")
    from visrec.runs.directory import load_run
    from visrec.runs.evaluate import evaluate_run_modes

    mark("import visrec")
    loaded = load_run(run)
    mark("load model")
    loaded.dataset  # noqa: B018 - builds (or loads) the dataset
    mark("dataset")
    evaluate_run_modes(run, run=loaded, modes=("tutorial",), existing="overwrite")
    mark("evaluate + write")
    steps = {b[0]: (b[1] - a[1], b[2] - a[2]) for a, b in zip(marks, marks[1:], strict=False)}
    print("PHASES " + json.dumps(steps))


def phases(work: Path, run: Path, runs: int) -> dict[str, dict[str, list]]:
    """Per-step seconds of ``runs`` fresh processes, cache off and on alternating."""
    out: dict[str, dict[str, list]] = {"cache off": {}, "cache on": {}}
    for _ in range(runs):
        for name in out:
            env = environment(work, SRC, cache=name == "cache on")
            done = subprocess.run(
                [sys.executable, __file__, "--child-phases", str(run)],
                env=env, check=True, capture_output=True, text=True,
            )  # fmt: skip
            line = next(x for x in done.stdout.splitlines() if x.startswith("PHASES "))
            for step, pair in json.loads(line[7:]).items():
                out[name].setdefault(step, []).append(pair)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="x the Wikimedia shape")
    parser.add_argument("--runs", type=int, default=5, help="A/B rounds of the whole process")
    parser.add_argument("--repeats", type=int, default=5, help="open+build repeats per variant")
    parser.add_argument("--work", type=Path, default=Path("/tmp/visrec-dataset-cache-bench"))
    parser.add_argument("--baseline-src", type=Path, default=None, help="older code's src folder")
    parser.add_argument("--child-phases", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_phases is not None:
        child_phases(args.child_phases)
        return
    os.environ["OMP_NUM_THREADS"] = "1"
    work = args.work.resolve()
    load_before = os.getloadavg()
    run = prepare(work, args.scale)
    builds = open_build(work, args.repeats)
    print(json.dumps({"open_build_seconds": builds}))
    steps = phases(work, run, args.runs)
    times = whole_process(work, run, args.runs, args.baseline_src)
    load_after = os.getloadavg()
    print(f"\ndataset open+build ({work / 'data'}): cold {builds['cold']:.3f} s, first build "
          f"with store {builds['first_store']:.3f} s, cached {builds['cached'] * 1e3:.1f} ms "
          f"({builds['cold'] / builds['cached']:.0f}x)")  # fmt: skip
    print(f"whole `visrec --threads 1 evaluate RUN --mode tutorial`, medians of {args.runs}:")
    for name, pairs in times.items():
        wall = statistics.median(w for w, _ in pairs)
        cpu = statistics.median(c for _, c in pairs)
        spread = f"{min(w for w, _ in pairs):.2f}-{max(w for w, _ in pairs):.2f}"
        print(f"  {name:<10} wall {wall:6.2f} s (range {spread})   CPU {cpu:6.2f} s")
    print(f"steps of one evaluate process (median wall / CPU s of {args.runs}, as the command):")
    for name, table in steps.items():
        cells = [
            f"{step} {statistics.median(w for w, _ in v):.2f}/{statistics.median(c for _, c in v):.2f}"
            for step, v in table.items()
        ]
        print(f"  {name:<10} " + ", ".join(cells))
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")


if __name__ == "__main__":
    main()

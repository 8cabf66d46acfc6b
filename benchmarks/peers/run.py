"""Peer benchmark: the peers' own code against visrec on identical generated data.

Each stage runs the peer and visrec as whole processes, alternating (A B A B ...), so drift of a shared
machine's speed hits both sides alike; each pair gives one ratio, and the table shows their median and
range, the threads, the load average around each run and each side's peak RSS.

    python benchmarks/peers/run.py --tutorial CHECKOUT [--stages vbpr,vbpr100,...] [--pairs 3]
                                   [--scale 1.0] [--extract-images 48] [--work DIR] [--json OUT]

``CHECKOUT`` is a checkout of github.com/ialab-puc/VisualRecSys-Tutorial-IUI2021 (its notebooks and
modules run unchanged except for the compatibility patches each run lists); Cornac comes from the
installed package (``pip install 'visrec[peers]'``). ``--scale`` shrinks the Wikimedia shape (users,
items, interactions; the 2048-d features are kept) for a quick run. Every process gets one thread
(OMP/MKL/numba = 1, torch.set_num_threads(1), DataLoader workers 0).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from data import jpeg_folder, prepare, sampling_quota  # noqa: E402


@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    peer: str  # "tutorial" or "cornac"
    peer_stage: str
    rate: bool  # True: items/s of the timed part (higher is better); False: whole-process seconds
    target: float  # the "done when" ratio (visrec / peer)
    spatial: bool = False
    setup: bool = False  # run both sides with --setup first (untimed inputs, warm caches)
    per_process: bool = False  # rate over the whole process's wall time (start-up included)


STAGES = {
    s.name: s
    for s in [
        Stage(
            "sampling",
            "triplet sampling + check + CSV (the stage's own time)",
            "tutorial",
            "sampling",
            True,
            0.0,
        ),
        Stage(
            "vbpr",
            "VBPR, batch 42,000, latent 200 / visual 100 (train triplets/s)",
            "tutorial",
            "vbpr",
            True,
            8.0,
        ),
        Stage(
            "vbpr100",
            "VBPR, batch 100, latent 200 / visual 100 (train triplets/s)",
            "cornac",
            "vbpr100",
            True,
            3.0,
        ),
        Stage(
            "vbpr100s",
            "VBPR, batch 100, visrec's optimizer=sparse_adam (Cornac: dense Adam)",
            "cornac",
            "vbpr100",
            True,
            3.0,
        ),
        Stage(
            "vbpr1024",
            "VBPR, batch 1,024, latent 200 / visual 100 (train triplets/s)",
            "cornac",
            "vbpr1024",
            True,
            0.0,
        ),
        Stage(
            "curatornet",
            "CuratorNet, batch 128, profile-mode triplets (train triplets/s)",
            "tutorial",
            "curatornet",
            True,
            5.0,
        ),
        Stage(
            "acf",
            "ACF, batch 128, 7x7x2048 maps (train triplets/s)",
            "tutorial",
            "acf",
            True,
            3.0,
            spatial=True,
        ),
        Stage(
            "evaluate",
            "evaluation, tutorial metrics, whole process (s)",
            "tutorial",
            "evaluate",
            False,
            10.0,
            setup=True,
        ),
        Stage(
            "extract",
            "resnet50 extraction, 1600x1200 JPEGs, visrec backend torch (img/s of the whole "
            "process)",
            "tutorial",
            "extract",
            True,
            1.5,
            per_process=True,
        ),
        Stage(
            "extract_onnx",
            "resnet50 extraction, 1600x1200 JPEGs, visrec --backend onnx (cached graph; img/s of "
            "the whole process)",
            "tutorial",
            "extract",
            True,
            1.5,
            setup=True,
            per_process=True,
        ),
    ]
}


def env() -> dict[str, str]:
    one = {
        k: "1"
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")
    }
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    return {**os.environ, **one, "TQDM_DISABLE": "1", "PYTHONPATH": path}


def commands(stage: Stage, args, triplets: int | None) -> tuple[list[str], list[str]]:
    py, work = sys.executable, str(args.work)
    extra = ["--triplets", str(triplets)] if triplets else []
    if stage.peer == "cornac":
        peer = [py, str(HERE / "cornac_side.py"), stage.peer_stage, "--work", work]
    else:
        peer = [
            py,
            str(HERE / "tutorial_side.py"),
            stage.peer_stage,
            "--checkout",
            str(args.tutorial),
            "--work",
            work,
            *extra,
        ]
    ours = [py, str(HERE / "visrec_side.py"), stage.name, "--work", work, *extra]
    return peer, ours


TIMEOUT_S = 3600.0
"""Default ``--timeout``: a side that runs longer is stopped and the harness exits naming it (no stage
of a full-scale run takes more than a few minutes)."""


def timed(cmd: list[str], timeout: float = TIMEOUT_S) -> dict:
    """One whole process: wall time, its CPU time and peak RSS (from wait4), the load average before.
    A process still running after ``timeout`` seconds is killed and the run stops with one line."""
    load = os.getloadavg()[0]
    began = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    fired = threading.Event()

    def stop() -> None:
        fired.set()
        proc.kill()

    watchdog = threading.Timer(timeout, stop)  # the output is read to its end below
    watchdog.start()
    try:
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        watchdog.cancel()
    if fired.is_set():
        raise SystemExit(f"timed out after {timeout:g} s (--timeout): {' '.join(cmd)}")
    wall = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [ln for ln in out.splitlines() if ln.startswith("PEER_RESULT ")]
    if proc.returncode or not lines:
        tail = "\n".join(out.splitlines()[-15:])
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    result = json.loads(lines[-1][len("PEER_RESULT ") :])
    cpu = usage.ru_utime + usage.ru_stime
    return {**result, "wall": wall, "cpu": cpu, "maxrss_mb": usage.ru_maxrss / 1024, "load": load}


def value(stage: Stage, r: dict) -> float:
    if stage.rate:
        return r["items"] / (r["wall"] if stage.per_process else r["seconds"])
    return r["wall"]


def run_stage(stage: Stage, args, triplets: int | None) -> dict:
    peer, ours = commands(stage, args, triplets)
    for cmd in (peer, ours):
        if stage.setup:
            subprocess.run(
                [*cmd, "--setup"], env=env(), check=True, capture_output=True, timeout=args.timeout
            )
    for _ in range(args.warmup):
        timed(peer, args.timeout), timed(ours, args.timeout)
    pairs = []
    for i in range(args.pairs):
        order = (peer, ours) if i % 2 == 0 else (ours, peer)
        first, second = timed(order[0], args.timeout), timed(order[1], args.timeout)
        a, b = (first, second) if i % 2 == 0 else (second, first)
        pairs.append({"peer": a, "visrec": b})
        print(f"  {stage.name} pair {i + 1}: peer {value(stage, a):,.2f} visrec {value(stage, b):,.2f} "
              f"(load {a['load']:.1f}/{b['load']:.1f})", flush=True)  # fmt: skip
    return summarise(stage, pairs)


def summarise(stage: Stage, pairs: list[dict]) -> dict:
    def ratio(p):
        pv, vv = value(stage, p["peer"]), value(stage, p["visrec"])
        return vv / pv if stage.rate else pv / vv

    ratios = [ratio(p) for p in pairs]
    side = {
        k: {
            "value": statistics.median(value(stage, p[k]) for p in pairs),
            "wall": statistics.median(p[k]["wall"] for p in pairs),
            "cpu": statistics.median(p[k]["cpu"] for p in pairs),
            "maxrss_mb": max(p[k]["maxrss_mb"] for p in pairs),
        }
        for k in ("peer", "visrec")
    }
    loads = [p[k]["load"] for p in pairs for k in ("peer", "visrec")]
    patches = pairs[0]["peer"].get("patches", [])
    return {
        "stage": stage.name, "title": stage.title, "peer": stage.peer, "rate": stage.rate,
        "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
        "target": stage.target, "load_min": min(loads), "load_max": max(loads), "sides": side,
        "patches": patches, "pairs": pairs,
    }  # fmt: skip


def _rate(x: float) -> str:
    return f"{x:,.0f}/s" if x >= 100 else f"{x:.2f}/s"


def _seconds(x: float) -> str:
    return f"{x:.2f} s"


def table(results: list[dict], info: dict) -> str:
    head = (
        f"data: {info['users']:,} users, {info['items']:,} items, {info['interactions']:,} interactions "
        f"({info['n_train']:,} train), {info['dim']}-d features; 1 thread per process; "
        f"{len(results[0]['pairs']) if results else 0} A/B pairs per stage\n\n"
        "| stage | peer | peer's median | visrec's median | visrec / peer, median [min-max] | target | whole process s, peer / visrec | whole process CPU s, peer / visrec | peak RSS MB, peer / visrec | load avg |\n"
        "|---|---|---:|---:|---|---:|---|---|---|---|\n"
    )
    rows = []
    for r in results:
        p, v = r["sides"]["peer"], r["sides"]["visrec"]
        fmt = _rate if r["rate"] else _seconds
        target = f">= {r['target']:g}x" if r["target"] else ""
        met = (
            ""
            if not r["target"]
            else (" met" if r["ratio_median"] >= r["target"] else " **not met**")
        )
        rows.append(
            f"| {r['title']} | {r['peer']} | {fmt(p['value'])} | {fmt(v['value'])} | "
            f"**{r['ratio_median']:.2f}x** [{r['ratio_min']:.2f}-{r['ratio_max']:.2f}] | {target}{met} | "
            f"{p['wall']:.1f} / {v['wall']:.1f} | {p['cpu']:.1f} / {v['cpu']:.1f} | "
            f"{p['maxrss_mb']:,.0f} / {v['maxrss_mb']:,.0f} | "
            f"{r['load_min']:.1f}-{r['load_max']:.1f} |"
        )
    patches = sorted({p for r in results for p in r["patches"]})
    notes = "\n\nPatches applied at run time to the tutorial's code:\n" + "\n".join(
        f"- {p}" for p in patches
    )
    return head + "\n".join(rows) + (notes if patches else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tutorial", type=Path, help="checkout of VisualRecSys-Tutorial-IUI2021")
    parser.add_argument("--stages", default="sampling,vbpr,vbpr100,curatornet,evaluate")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=0, help="unmeasured runs of each side first")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--sampling-triplets", type=int, default=5_000_000)
    parser.add_argument(
        "--extract-images", type=int, default=48, help="1600x1200 JPEGs of the extract stages"
    )
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write every run's numbers here")
    parser.add_argument(
        "--timeout", type=float, default=TIMEOUT_S, help="seconds one side's process may run"
    )
    args = parser.parse_args()
    names = [s for s in args.stages.split(",") if s]
    unknown = [s for s in names if s not in STAGES]
    if unknown:
        parser.error(f"unknown stage(s) {unknown}; choose from {sorted(STAGES)}")
    if any(STAGES[s].peer == "tutorial" for s in names) and not args.tutorial:
        parser.error("--tutorial CHECKOUT is required for the tutorial's stages")
    if args.tutorial and not (args.tutorial / "trainers" / "trainer.py").is_file():
        parser.error(f"{args.tutorial}: not a VisualRecSys-Tutorial-IUI2021 checkout")
    args.tutorial = args.tutorial.resolve() if args.tutorial else None
    args.work = (args.work or Path(f".bench/peers/scale-{args.scale:g}")).resolve()
    info = prepare(args.work, args.scale, spatial="acf" in names)
    if any(STAGES[s].peer_stage == "extract" for s in names):
        jpeg_folder(args.work, args.extract_images)
    print(f"data ready in {args.work}: {info}", flush=True)
    results, notes = [], []
    for name in names:
        triplets = None
        if name == "sampling":
            asked = max(1, round(args.sampling_triplets * args.scale))
            triplets, note = sampling_quota(args.work, asked)
            if note:
                print(note, flush=True)
                notes.append(note)
        results.append(run_stage(STAGES[name], args, triplets))
        if args.json:
            args.json.write_text(json.dumps({"info": info, "results": results}, indent=1))
    print(table(results, info) + "".join(f"\n\nNote: {n}" for n in notes))


if __name__ == "__main__":
    main()

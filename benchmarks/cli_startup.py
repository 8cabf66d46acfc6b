"""Start-up time of the CLI: ``visrec --help`` and every subcommand's ``--help``, each run as a fresh
subprocess (``python -m visrec ...``), median of ``--runs`` runs after one warm-up run (file cache).

    .venv/bin/python benchmarks/cli_startup.py [--runs 7]

Target: < 0.5 s each. Prints a Markdown table (median, min, max in seconds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
TARGET_S = 0.5


def commands() -> list[list[str]]:
    sys.path.insert(0, str(SRC))
    from visrec.cli import COMMANDS

    out = [[]] + [[name] for name in sorted(COMMANDS)]
    out += [["data", sub] for sub in ("demo", "stats", "fetch", "check")]
    return out


def time_once(args: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "visrec", *args, "--help"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    time_once([], env)  # warm-up: file cache
    python_only = statistics.median(
        _timed([sys.executable, "-c", "pass"], env) for _ in range(args.runs)
    )
    print(f"python interpreter start-up alone: {python_only:.3f} s (median of {args.runs})")
    print("| command | median s | min s | max s | < 0.5 s |")
    print("|---|---|---|---|---|")
    worst = 0.0
    for cmd in commands():
        times = [time_once(cmd, env) for _ in range(args.runs)]
        median = statistics.median(times)
        worst = max(worst, median)
        label = " ".join(["visrec", *cmd, "--help"])
        ok = "yes" if median < TARGET_S else "**no**"
        print(f"| `{label}` | {median:.3f} | {min(times):.3f} | {max(times):.3f} | {ok} |")
    print(f"\nslowest median: {worst:.3f} s (target < {TARGET_S} s)")


def _timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()

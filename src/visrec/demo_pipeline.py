"""``make demo``: the whole pipeline on the built-in demo dataset, printing what it did and where.

Run as ``python -m visrec.demo_pipeline OUT_DIR``. Each stage is a plain call of the public API or CLI, so
this file doubles as a worked example.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from visrec.cli import main as visrec


def _step(title: str, argv: list[str]) -> None:
    print(f"\n=== {title}\n$ visrec {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    code = visrec(argv)
    if code != 0:
        raise SystemExit(f"demo step failed: visrec {' '.join(argv)} (exit {code})")
    print(f"({time.perf_counter() - start:.1f} s)", flush=True)


def run(out: Path) -> None:
    data = out / "data"
    _step("1. generate the demo dataset", ["data", "demo", str(data), "--force"])
    _step("2. describe it", ["data", "stats", str(data)])
    print(f"\nDemo finished. Outputs are under {out.resolve()}:")
    print(f"  dataset      {data}  (images/, interactions.csv, items.csv, truth.json)")


if __name__ == "__main__":
    run(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-out"))

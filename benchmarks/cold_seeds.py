"""Cold AUC over several cold sets: for every cold-items split of the given benchmark outputs (one per
split seed), each model's cold-mode test AUC with its 95% CI over users, the chance of that split measured
with the seeded uniform-random scorer of ``benchmarks/cold_chance.py``, the mean and standard deviation
over the splits, and on how many splits the model's CI lies wholly above the random scorer's.

Usage (docs/benchmarks.md, "New items over four cold sets"):
    python benchmarks/cold_seeds.py .bench/movielens/out-cold .bench/movielens/out-seeds
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from cold_chance import chance  # the sibling script (python benchmarks/cold_seeds.py ...)

KEY = "AUC[cold]"


def f3(x: float) -> str:
    """.596, as the tables of docs/benchmarks.md write an AUC."""
    return f"{x:.3f}".replace("0.", ".", 1)


def cold_sections(out: Path) -> list[dict]:
    """The cold-mode test sections of a benchmark output folder (one per cold split)."""
    found = json.loads((out / "results.json").read_text())
    sections = found.get("sections", [found])
    return [s for s in sections if s.get("mode") == "cold"]


def split_seed(run_dir: str) -> int:
    return int(json.loads((Path(run_dir) / "run.json").read_text())["data"]["split"]["seed"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outs", type=Path, nargs="+", help="benchmark output folders")
    args = parser.parse_args()
    torch.set_num_threads(1)
    table: dict[str, dict[int, tuple[float, float, float]]] = {}
    runs: dict[int, str] = {}
    for out in args.outs:
        for section in cold_sections(out):
            for m in section["models"]:
                if m["status"] != "ok":
                    continue
                seed = split_seed(m["run_dir"])
                runs.setdefault(seed, m["run_dir"])
                low, high = m["ci95"][KEY]
                table.setdefault(m["name"], {})[seed] = (m["means"][KEY], low, high)
    if not runs:
        raise SystemExit(
            "no cold-mode section with a finished model in " + ", ".join(map(str, args.outs))
        )
    seeds = sorted(runs)
    table = {"random scorer": {s: chance(runs[s])[1:] for s in seeds}} | table
    head = [
        "model",
        *(f"split seed {s}" for s in seeds),
        "mean (sd)",
        "CI above the random scorer's",
    ]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for name, by_seed in table.items():
        cells = [
            f"{f3(by_seed[s][0])} [{f3(by_seed[s][1])}, {f3(by_seed[s][2])}]"
            if s in by_seed
            else "-"
            for s in seeds
        ]
        values = np.array([by_seed[s][0] for s in seeds if s in by_seed])
        spread = f"{f3(values.mean())} ({f3(values.std(ddof=1))})" if len(values) > 1 else "-"
        above = "-" if name == "random scorer" else (
            f"{sum(by_seed[s][1] > table['random scorer'][s][2] for s in by_seed)} of {len(by_seed)}"
        )  # fmt: skip
        print(f"| {name} | " + " | ".join(cells) + f" | {spread} | {above} |")


if __name__ == "__main__":
    main()

"""Chance on a cold-items split, measured: a seeded uniform-random scorer evaluated by the engine in
``cold`` mode on the split of a run, with the same 95% bootstrap CI as the benchmark tables (1,000
replicates, seed 0). The benchmark shows Random as "n/a" on cold splits (it has no item content); this is
the number a visual model's cold AUC must clear (issue 14: "beats Random with non-overlapping CIs").

Usage (docs/benchmarks.md, "New items"):
    python benchmarks/cold_chance.py .bench/movielens/out-cold/cold/runs/vbpr/lr=0.001,visual_lr=0.0001
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from visrec import load_run
from visrec.evaluation import evaluate
from visrec.evaluation.stats import bootstrap_ci


def chance(run: Path | str, seed: int = 0) -> tuple[int, float, float, float]:
    """(users, mean cold AUC, CI low, CI high) of a uniform-random scorer on the split of ``run``."""
    dataset = load_run(run).dataset
    generator = torch.Generator().manual_seed(seed)

    def uniform(users: torch.Tensor) -> torch.Tensor:
        return torch.rand(len(users), dataset.n_items, generator=generator)

    values = evaluate(uniform, dataset, split="test", mode="cold").per_user["AUC[cold]"].to_numpy()
    low, high = bootstrap_ci(values, n_boot=1000, level=0.95, seed=0)
    return len(values), float(values.mean()), low, high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="any run trained on the cold-items split")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    n, mean, low, high = chance(args.run, args.seed)
    print(f"uniform random, cold mode, {n} users: AUC[cold] {mean:.5f} [{low:.4f}, {high:.4f}]")


if __name__ == "__main__":
    main()

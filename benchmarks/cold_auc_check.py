"""Why is a profile model's cold AUC below chance? For a run on a cold-items split: its cold-mode AUC over
every new item and over the new items that have an image only (mean-filled features look like every
profile), and the Spearman correlation between a new item's mean score and how many test users chose it
(the cold AUC rewards ranking the popular new items first).

Usage (docs/benchmarks.md, "New items"):
    python benchmarks/cold_auc_check.py RUN_DIR --images ../shared/data/movielens-100k-posters/posters
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from visrec import load_run


def pair_auc(scores: np.ndarray, chosen: np.ndarray) -> float | None:
    if chosen.all() or not chosen.any():
        return None
    above = scores[chosen][:, None] - scores[~chosen][None, :]
    return float((above > 0).mean() + 0.5 * (above == 0).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--images", type=Path, required=True, help="the dataset's image folder")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = load_run(args.run)
    ds = run.dataset
    cold = np.asarray(ds.cold_items("test"))
    targets = ds.targets("test").tocsr()
    users = np.flatnonzero(np.diff(targets.indptr) > 0)
    scores = run.model.scorer(ds, "test")(torch.from_numpy(users)).numpy()[:, cold]
    names = {p.stem for p in args.images.iterdir()}
    has_image = np.array([str(i) in names for i in ds.items.ids_of(cold)])
    chosen = targets[users][:, cold].toarray() > 0
    for label, keep in (("every new item", np.ones(len(cold), bool)), ("with an image", has_image)):
        aucs = [pair_auc(s[keep], c[keep]) for s, c in zip(scores, chosen, strict=True)]
        aucs = [a for a in aucs if a is not None]
        print(f"cold AUC, {label} ({keep.sum()} items, {len(aucs)} users): {np.mean(aucs):.4f}")
    rho = spearmanr(scores.mean(0), chosen.sum(0))
    print(f"Spearman(mean score of a new item, test users who chose it): {rho.statistic:.3f} "
          f"(p = {rho.pvalue:.3f})")  # fmt: skip


if __name__ == "__main__":
    main()

"""The demo's taste check on finished runs: every user's top-k against the tastes in truth.json
(:mod:`visrec.data.demo_truth`), one row per run plus the chance level."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from visrec.data.demo_truth import chance_shares, read_truth, taste_shares
from visrec.runs import load_run
from visrec.serving.topk import recommend_users


def run_top(run_dir: str | Path, k: int = 10) -> dict[str, list[str]]:
    """Every user's top-k of a finished run (train items excluded), as ids."""
    run = load_run(run_dir)
    dataset = run.dataset
    users = np.arange(dataset.n_users)
    recs = recommend_users(run.model, dataset, users, k)
    ids = np.asarray(run.model.items.ids)
    return {
        dataset.users.id(u): [str(i) for i in ids[r.items]]
        for u, r in zip(users, recs, strict=True)
    }


def taste_report(data_dir: str | Path, runs: Mapping[str, str | Path], k: int = 10) -> list[dict]:
    """One row per run (name -> run folder) plus a ``chance`` row: shares of the top-k in the users'
    palette, shape and both, best ``both`` first."""
    truth = read_truth(data_dir)
    rows = []
    for name, run_dir in runs.items():
        top = run_top(run_dir, k)
        rows.append({"model": name, **taste_shares(truth, top), "users": len(top)})
    rows.sort(key=lambda r: -r["both"])
    users = list(truth["users"])
    rows.append({"model": "(chance)", **chance_shares(truth, users), "users": len(users)})
    return rows

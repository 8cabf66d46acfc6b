"""Sharded evaluation on 2 gloo processes equals one process exactly (marked `distributed`)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp

from visrec.distributed import DistContext
from visrec.evaluation import evaluate
from visrec.evaluation.distributed import evaluate_sharded, evaluate_sharded_modes
from visrec.evaluation.results import EvalResult

pytestmark = pytest.mark.distributed

MODES = ({"mode": "full"}, {"mode": "sampled", "n_negatives": 20, "seed": 3}, {"mode": "tutorial"})


class TableScorer:
    """Fixed random scores with many ties (rounded), so tie handling is exercised too."""

    def __init__(self, n_users: int, n_items: int):
        rng = np.random.default_rng(5)
        self.table = torch.from_numpy(np.round(rng.normal(size=(n_users, n_items)), 1))

    def __call__(self, users: torch.Tensor) -> torch.Tensor:
        return self.table[users]


def _worker(rank, world, init_file, dataset, out):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world
    )
    scorer = TableScorer(dataset.n_users, dataset.n_items)
    ctx = DistContext(rank, world)
    for i, kw in enumerate(MODES):
        result = evaluate_sharded(scorer, dataset, "test", ctx, block_size=16, **kw)
        result.to_csv(f"{out}-{i}-rank{rank}.csv")
        result.to_json(f"{out}-{i}-rank{rank}.json", per_user=False)
    # the three modes again, from one scoring pass
    together = evaluate_sharded_modes(
        scorer,
        dataset,
        "test",
        ctx,
        modes=[kw["mode"] for kw in MODES],
        block_size=16,
        n_negatives=20,
        seed=3,
    )
    for i, kw in enumerate(MODES):
        together[kw["mode"]].to_csv(f"{out}-together-{i}-rank{rank}.csv")
        together[kw["mode"]].to_json(f"{out}-together-{i}-rank{rank}.json", per_user=False)
    torch.distributed.destroy_process_group()


def test_sharded_evaluation_equals_one_process(demo_dataset, tmp_path):
    out = str(tmp_path / "eval")
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), demo_dataset, out), nprocs=2)
    scorer = TableScorer(demo_dataset.n_users, demo_dataset.n_items)
    for i, kw in enumerate(MODES):
        direct = evaluate(scorer, demo_dataset, split="test", block_size=16, **kw)
        direct.to_csv(tmp_path / f"single-{i}.csv")  # the same round trip as the ranks' results
        direct.to_json(tmp_path / f"single-{i}.json", per_user=False)
        single = EvalResult.from_json(
            tmp_path / f"single-{i}.json", per_user_csv=tmp_path / f"single-{i}.csv"
        )
        for rank, prefix in [(0, out), (1, out), (0, f"{out}-together"), (1, f"{out}-together")]:
            path = f"{prefix}-{i}-rank{rank}"  # every rank holds the whole merged result
            merged = EvalResult.from_json(f"{path}.json", per_user_csv=f"{path}.csv")
            assert merged.means == single.means, kw
            assert merged.skipped == single.skipped
            pd.testing.assert_frame_equal(merged.per_user, single.per_user, check_exact=True)
            assert merged.n_users == single.n_users > 40


def test_one_process_context_is_plain_evaluate(demo_dataset):
    scorer = TableScorer(demo_dataset.n_users, demo_dataset.n_items)
    a = evaluate_sharded(scorer, demo_dataset, "test", DistContext())
    b = evaluate(scorer, demo_dataset, split="test")
    assert a.means == b.means
    with pytest.raises(TypeError, match="users"):
        evaluate_sharded(scorer, demo_dataset, "test", DistContext(), users=np.arange(3))

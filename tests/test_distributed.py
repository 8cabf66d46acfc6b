"""DDP on 2 gloo CPU processes gives exactly the single-process result (marked `distributed`)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from visrec.distributed import DistContext
from visrec.models import create
from visrec.training.trainer import Trainer

pytestmark = pytest.mark.distributed


TRIPLETS = {"bpr": 64, "vbpr": 40}
"""Triplets per step (split over the ranks): VBPR's 40 (20 per rank) stay within its pair-differences
regime on the demo's 90 items (<= 0.5 pairs per item), so both sides take its hand-written backward."""


def _features(dataset) -> np.ndarray:
    """Pooled features of the demo's items in vocabulary order (fixed random values)."""
    return np.random.default_rng(0).normal(size=(dataset.n_items, 6)).astype(np.float32)


def _model_and_batch(dataset, name):
    model = create(name, {"factors": 8, "seed": 1, "device": "cpu", "epochs": 1})
    features = _features(dataset) if name == "vbpr" else None
    model.info["dims"] = model._dims(dataset, features)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        model.module = model._build(model.info["dims"])
    if features is not None:
        model._attach(model.module, dataset, features)
    sample = model.sample(dataset, TRIPLETS[name], np.random.default_rng(0))
    return model, {k: torch.from_numpy(v) for k, v in sample.items()}


def _worker(rank, world, init_file, dataset, name, out):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world
    )
    model, batch = _model_and_batch(dataset, name)
    local = {k: v.chunk(world)[rank] for k, v in batch.items()}
    trainer = Trainer(model, dataset, dist=DistContext(rank, world))
    trainer.setup()
    for _ in range(2):
        trainer.step(local)
    if rank == 0:
        torch.save({k: v.clone() for k, v in model.module.state_dict().items()}, out)
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("name", ["bpr", "vbpr"])
def test_ddp_steps_equal_single_process_steps(demo_dataset, tmp_path, name, monkeypatch):
    import visrec.models.vbpr as vbpr

    out = tmp_path / "ddp.pt"
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), demo_dataset, name, str(out)), nprocs=2)
    model, batch = _model_and_batch(demo_dataset, name)
    trainer = Trainer(model, demo_dataset)
    trainer.setup()
    calls = []
    hand = vbpr.pair_differences
    monkeypatch.setattr(vbpr, "pair_differences", lambda *a: calls.append(1) or hand(*a))
    for _ in range(2):
        trainer.step(batch)
    assert len(calls) == (2 if name == "vbpr" else 0)  # VBPR: the hand-written backward
    ddp = torch.load(out, weights_only=True)
    for key, value in model.module.state_dict().items():
        assert torch.allclose(ddp[key], value, atol=1e-6), key
    # and the steps really changed the parameters
    fresh, _ = _model_and_batch(demo_dataset, name)
    for key, value in fresh.module.state_dict().items():
        if value.is_floating_point() and key != "features":
            assert not torch.allclose(value, ddp[key]), key


def _held_rows_worker(rank, world, init_file, out):
    from visrec.models.gradient import _zero_rows_hook

    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world
    )
    torch.manual_seed(0)
    table = torch.nn.Embedding(5, 3)
    table.weight.register_post_accumulate_grad_hook(_zero_rows_hook(torch.tensor([0, 2])))
    ddp = torch.nn.parallel.DistributedDataParallel(table)
    rows = torch.tensor([0, 1, 2, 3, 4] if rank == 0 else [2, 0, 4])
    (ddp(rows).sum() * (rank + 1)).backward()
    torch.save(table.weight.grad.clone(), f"{out}.{rank}")
    torch.distributed.destroy_process_group()


def test_held_rows_are_zero_after_the_ddp_reduction(tmp_path):
    # the hook runs on the accumulated gradient before DDP's reduction: every rank reduces zeros for the
    # held rows (were it after, the reduction would bring back the other rank's values)
    out = str(tmp_path / "grad")
    mp.spawn(_held_rows_worker, args=(2, str(tmp_path / "init"), out), nprocs=2)
    for rank in range(2):
        grad = torch.load(f"{out}.{rank}", weights_only=True)
        # the mean of rank 0's 1x and rank 1's 2x, zero on the held rows
        want = torch.tensor([0.0, 0.5, 0.0, 0.5, 1.5])[:, None].expand(5, 3)
        torch.testing.assert_close(grad, want)

"""torch.distributed plumbing: the same commands run under ``torchrun`` (NCCL on GPUs, gloo on CPUs).

``torchrun --nproc-per-node N -m visrec train ...`` sets RANK/WORLD_SIZE/LOCAL_RANK; :func:`init_from_env`
joins the process group once and returns the :class:`~visrec.training.trainer.DistContext` the Trainer,
the extractor and the evaluator use. Without those variables everything runs as one plain process.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import torch
import torch.distributed as dist

from visrec.training.trainer import DistContext

log = logging.getLogger(__name__)


def init_from_env(backend: str | None = None) -> DistContext:
    """Join the process group described by torchrun's environment; a 1-process context otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank = int(os.environ["RANK"])
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
        log.info("rank %d of %d joined the %s process group", rank, world, backend)
    return DistContext(rank=rank, world_size=world)


def local_device() -> str:
    """This process's device under torchrun: its own GPU (LOCAL_RANK) when there is one, else the CPU."""
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return "cpu"


def shard(items: np.ndarray | list, ctx: DistContext) -> np.ndarray:
    """This rank's contiguous share of ``items`` (ranks' shares are disjoint and cover everything)."""
    return np.array_split(np.asarray(items), ctx.world_size)[ctx.rank]


def gather_objects(obj, ctx: DistContext) -> list:
    """Every rank's ``obj``, in rank order, on every rank (a 1-element list without a process group)."""
    if not ctx.active:
        return [obj]
    out: list = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistContext) -> None:
    if ctx.active:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()

"""torch.distributed plumbing: the same commands run under ``torchrun`` (NCCL on GPUs, gloo on CPUs).

``torchrun --nproc-per-node N -m visrec train ...`` sets RANK/WORLD_SIZE/LOCAL_RANK; :func:`torchrun`
(a context manager every command uses) joins the process group once, yields the :class:`DistContext` the
Trainer, the extractor and the evaluator use, and leaves the group at the end. Without those variables
everything runs as one plain process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from visrec._lazy import LazyModule

# a plain single process (no torchrun variables) never touches them: `visrec evaluate` of exported factors
# runs without torch
torch = LazyModule("torch")
dist = LazyModule("torch.distributed")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a torch.distributed job (world_size 1 = plain single process)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


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


@contextmanager
def torchrun(backend: str | None = None, *, barrier_at_end: bool = False) -> Iterator[DistContext]:
    """The one setup/teardown of every command: join torchrun's group (if any), leave it at the end.

    ``barrier_at_end`` waits for every rank before leaving (e.g. so rank 0 has finished writing).
    """
    ctx = init_from_env(backend)
    try:
        yield ctx
        if barrier_at_end:
            barrier(ctx)
    finally:
        shutdown(ctx)


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

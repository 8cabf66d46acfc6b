"""visrec: visually-aware recommendation in PyTorch.

The pipeline (see DESIGN.md): interactions -> Dataset; images -> FeatureStore; (Dataset, FeatureStore)
-> sampler -> Trainer -> Recommender; Recommender.score -> evaluation -> tables, plots, viewer.

The Python API (:mod:`visrec.api`): ``visrec.load_run(path)`` -> a run that recommends, finds similar
items and evaluates by ids; ``visrec.Experiment(...)`` runs a benchmark. They are imported on first
use, so ``import visrec`` (and ``visrec --help``) does not load torch.
"""

__version__ = "0.1.0"

import os
import sys


def _reuse_freed_memory() -> None:
    """glibc's malloc: take every block from the heap and keep freed memory there for reuse.

    By default glibc serves each block above 128 KB-32 MB with a fresh ``mmap`` and returns it on free, so
    every large tensor a training step allocates is new memory that the kernel faults in 4 KB at a time:
    a quarter of an ACF step, of a VBPR step at batch 42,000, and ~15% at batch 100
    (docs/benchmarks.md, "Large tensors and page faults"). Turning ``mmap`` off (``M_MMAP_MAX`` 0) and the
    heap trimming with it (``M_TRIM_THRESHOLD``) lets the allocator hand the same pages back: the process
    keeps its peak memory instead of returning it between steps. Skipped when the user tunes glibc with
    its own ``MALLOC_*_`` variables, with ``VISREC_MALLOC=0``, and off glibc."""
    if sys.platform != "linux" or os.environ.get("VISREC_MALLOC", "1") == "0":
        return
    if any(
        k in os.environ
        for k in ("MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    ):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    m_trim_threshold, m_mmap_max = -1, -4  # glibc's malloc.h
    mallopt(m_mmap_max, 0)
    mallopt(m_trim_threshold, 2**31 - 1)


_reuse_freed_memory()

from visrec.errors import DataError, VisrecError  # noqa: E402

_API = ("Experiment", "LoadedRun", "Results", "load_run", "train")

__all__ = ["DataError", "VisrecError", "__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from importlib import import_module

        return getattr(import_module("visrec.api"), name)
    raise AttributeError(f"module 'visrec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))

"""visrec: visually-aware recommendation in PyTorch.

The pipeline (see DESIGN.md): interactions -> Dataset; images -> FeatureStore; (Dataset, FeatureStore)
-> sampler -> Trainer -> Recommender; Recommender.score -> evaluation -> tables, plots, viewer.

The Python API (:mod:`visrec.api`): ``visrec.load_run(path)`` -> a run that recommends, finds similar
items and evaluates by ids; ``visrec.Experiment(...)`` runs a benchmark. They are imported on first
use, so ``import visrec`` (and ``visrec --help``) does not load torch.
"""

__version__ = "0.1.0"

import os

# PyTorch's CPU allocator: back each tensor of 2 MB or more with transparent huge pages (where the kernel
# allows them). A large tensor is otherwise fresh memory from the kernel on every allocation, faulted in
# 4 KB at a time: ACF's gathered feature maps (~200 MB per step) and VBPR's batch-42,000 tables spent a
# quarter of each training step there (docs/benchmarks.md, "Large tensors and page faults"). torch reads
# the variable once, at its first allocation, so it is set before torch is imported; a value the user set
# (THP_MEM_ALLOC_ENABLE=0 to turn it off) is kept.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

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

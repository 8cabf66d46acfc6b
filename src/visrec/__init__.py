"""visrec: visually-aware recommendation in PyTorch.

The pipeline (see DESIGN.md): interactions -> Dataset; images -> FeatureStore; (Dataset, FeatureStore)
-> sampler -> Trainer -> Recommender; Recommender.score -> evaluation -> tables, plots, viewer.

The Python API (:mod:`visrec.api`): ``visrec.load_run(path)`` -> a run that recommends, finds similar
items and evaluates by ids; ``visrec.Experiment(...)`` runs a benchmark. They are imported on first
use, so ``import visrec`` (and ``visrec --help``) does not load torch.
"""

__version__ = "0.1.0"

from visrec.errors import DataError, VisrecError

_API = ("Experiment", "LoadedRun", "Results", "load_run", "train")

__all__ = ["DataError", "VisrecError", "__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from importlib import import_module

        return getattr(import_module("visrec.api"), name)
    raise AttributeError(f"module 'visrec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))

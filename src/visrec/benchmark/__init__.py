"""Benchmarks: a suite of models on one dataset (one split or several, e.g. warm and cold items side by
side), trained or reused, selected on validation, compared on test with confidence intervals and
significance marks, plus the tutorial's plots (docs/benchmark.md).

:class:`Experiment` (``benchmark/experiment.py``) runs one from Python; ``run_suite(config_path, out)``
(``benchmark/suite.py``), what ``visrec benchmark CONFIG.toml`` calls, builds the Experiment from the TOML
and runs it. Names are exported lazily, so importing ``visrec.benchmark.cli`` for ``--help`` loads no
pandas or torch.
"""

from visrec._lazy import lazy_exports

_EXPORTS = {
    "BenchmarkConfig": "visrec.benchmark.config",
    "BenchmarkSplit": "visrec.benchmark.config",
    "ModelSpec": "visrec.benchmark.config",
    "load_config": "visrec.benchmark.config",
    "Experiment": "visrec.benchmark.experiment",
    "Results": "visrec.benchmark.experiment",
    "ModelOutcome": "visrec.benchmark.runner",
    "run_benchmark": "visrec.benchmark.runner",
    "run_suite": "visrec.benchmark.suite",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

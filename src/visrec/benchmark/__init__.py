"""Benchmarks: a suite of models on one dataset, trained or reused, selected on validation, compared on
test with confidence intervals and significance marks, plus the tutorial's plots (docs/benchmark.md).

:class:`Experiment` runs one from Python; ``run_suite(config_path, out)``, what
``visrec benchmark CONFIG.toml`` calls, builds the Experiment from the TOML and runs it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from visrec.benchmark.config import BenchmarkConfig, ModelSpec, load_config
from visrec.benchmark.experiment import Experiment, Results
from visrec.benchmark.runner import Echo, ModelOutcome, run_benchmark

__all__ = [
    "BenchmarkConfig",
    "Experiment",
    "ModelOutcome",
    "ModelSpec",
    "Results",
    "load_config",
    "run_benchmark",
    "run_suite",
]

log = logging.getLogger(__name__)


def run_suite(
    config_path: str | Path,
    out: str | Path,
    *,
    force: bool = False,
    plots: bool = True,
    echo: Echo | None = None,
) -> dict:
    """Run the benchmark in ``config_path`` into ``out``; write results.md/csv/json and plots/.

    Returns the results.json content. Raises :class:`visrec.errors.VisrecError` only if every model
    failed (each failure is otherwise recorded in the tables).
    """
    experiment = Experiment.from_toml(config_path)
    return experiment.run(out, force=force, plots=plots, echo=echo).summary

"""Benchmarks: a suite of models on one dataset, trained or reused, selected on validation, compared on
test with confidence intervals and significance marks, plus the tutorial's plots (docs/benchmark.md).

``run_suite(config_path, out)`` is what ``visrec benchmark CONFIG.toml`` calls.
"""

from __future__ import annotations

import logging
from pathlib import Path

from visrec.benchmark.config import BenchmarkConfig, ModelSpec, load_config
from visrec.benchmark.plots import write_plots
from visrec.benchmark.report import summarise, write_reports
from visrec.benchmark.runner import Echo, ModelOutcome, run_benchmark
from visrec.errors import VisrecError

__all__ = [
    "BenchmarkConfig",
    "ModelOutcome",
    "ModelSpec",
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
    config = load_config(config_path)
    out = Path(out)
    outcomes = run_benchmark(config, out, force=force, echo=echo)
    dataset = config.data.build()
    summary = summarise(outcomes, config, dataset.summary())
    pngs = []
    if plots:
        pngs = write_plots(outcomes, out / "plots", tuple(summary["metrics"]))
    write_reports(summary, out, pngs)
    summary["plots"] = [str(p) for p in pngs]
    if not any(o.ok for o in outcomes):
        raise VisrecError(f"every model of {config_path} failed; see {out / 'results.md'}")
    return summary

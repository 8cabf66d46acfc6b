"""Benchmarks: a suite of models on one dataset, trained or reused, selected on validation, compared on
test with confidence intervals and significance marks, plus the tutorial's plots (docs/benchmark.md).

``run_suite(config_path, out)`` is what ``visrec benchmark CONFIG.toml`` calls.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from visrec._lazy import lazy_exports

if TYPE_CHECKING:
    from visrec.benchmark.runner import Echo

_EXPORTS = {
    "BenchmarkConfig": "visrec.benchmark.config",
    "ModelSpec": "visrec.benchmark.config",
    "load_config": "visrec.benchmark.config",
    "ModelOutcome": "visrec.benchmark.runner",
    "run_benchmark": "visrec.benchmark.runner",
}
__all__ = sorted([*_EXPORTS, "run_suite"])
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

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
    from visrec.benchmark.config import load_config
    from visrec.benchmark.report import summarise, write_reports
    from visrec.benchmark.runner import run_benchmark
    from visrec.errors import VisrecError

    config = load_config(config_path)
    out = Path(out)
    outcomes = run_benchmark(config, out, force=force, echo=echo)
    dataset = config.data.build()
    summary = summarise(outcomes, config, dataset.summary())
    pngs = []
    if plots:
        from visrec.benchmark.plots import write_plots

        pngs = write_plots(outcomes, out / "plots", tuple(summary["metrics"]))
    write_reports(summary, out, pngs)
    summary["plots"] = [str(p) for p in pngs]
    if not any(o.ok for o in outcomes):
        raise VisrecError(f"every model of {config_path} failed; see {out / 'results.md'}")
    return summary

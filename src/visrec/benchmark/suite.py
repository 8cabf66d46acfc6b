"""``run_suite``: a benchmark TOML file -> trained runs, results.md/csv/json and plots/ (one table per
split and test mode; several splits side by side, see :mod:`visrec.benchmark.sections`).

The TOML is a thin front end: it builds an :class:`~visrec.benchmark.experiment.Experiment` and runs it.
"""

from __future__ import annotations

from pathlib import Path

from visrec.benchmark.experiment import Experiment
from visrec.benchmark.runner import Echo


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

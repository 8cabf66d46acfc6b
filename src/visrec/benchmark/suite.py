"""``run_suite``: a benchmark TOML file -> trained runs, results.md/csv/json and plots/ (one table per
split and test mode; several splits side by side, see :mod:`visrec.benchmark.sections`)."""

from __future__ import annotations

from pathlib import Path

from visrec.benchmark.config import load_config
from visrec.benchmark.plots import write_plots
from visrec.benchmark.report import report_metrics, summarise
from visrec.benchmark.runner import Echo, run_benchmark
from visrec.benchmark.sections import combine, write_all
from visrec.errors import VisrecError


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
    sections, pngs, any_ok = [], [], False
    for split in config.splits:
        outcomes = run_benchmark(config, out, force=force, echo=echo, split=split)
        any_ok = any_ok or any(o.ok for o in outcomes)
        summary = split.data.build().summary()
        for mode in split.modes:
            sections.append(
                summarise(outcomes, config, summary, mode=mode, split_name=split.name or None)
            )
        if plots:
            folder = split.folder(out) / "plots"
            pngs += write_plots(outcomes, folder, report_metrics(split.modes[0]))
    summary = combine(sections, str(config.path))
    write_all(summary, out, pngs)
    summary["plots"] = [str(p) for p in pngs]
    if not any_ok:
        raise VisrecError(f"every model of {config_path} failed; see {out / 'results.md'}")
    return summary

"""The tuning report: ``trials.csv`` and ``trials.md`` (one row per trial) and ``history.png`` (each
trial's validation value and the best so far, Optuna's optimisation-history plot drawn with matplotlib's
object API; skipped with a warning when matplotlib is not installed)."""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path

from visrec._io import atomic_path, write_text

log = logging.getLogger(__name__)


def write_report(rows: list[dict], out: Path, metric: str) -> list[Path]:
    """Write the trials table (markdown + CSV) and the history plot into ``out``; returns the paths."""
    columns = _columns(rows)
    paths = [out / "trials.csv", out / "trials.md"]
    write_text(paths[0], _csv(rows, columns))
    write_text(paths[1], _markdown(rows, columns, metric))
    plot = history_plot(rows, out / "history.png", metric)
    return paths + ([plot] if plot else [])


def _columns(rows: list[dict]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    return [c for c in columns if c != "error"] + ["error"]


def _csv(rows: list[dict], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
    return buffer.getvalue()


def _markdown(rows: list[dict], columns: list[str], metric: str) -> str:
    key = f"val_{metric}"
    done = [r for r in rows if r.get(key) is not None and r["state"] == "complete"]
    best = max(done, key=lambda r: r[key])["trial"] if done else None
    lines = [
        f"# Trials ({len(rows)}; chosen on validation {metric}, higher is better)",
        "",
        "| " + " | ".join(c.removeprefix("param_") for c in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        cells = [_cell(row.get(c)) for c in columns]
        if row["trial"] == best:
            cells = [f"**{c}**" if c else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    if best is not None:
        lines += ["", f"Best: trial {best} (bold). Optimisation history: history.png"]
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.5f}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.3g}"
    return str(value).replace("|", "\\|")


def history_plot(rows: list[dict], path: Path, metric: str) -> Path | None:
    """Validation value of every completed trial (dots) and the best so far (a step line)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ModuleNotFoundError:
        log.warning("matplotlib is not installed: no history.png (pip install 'visrec[plots]')")
        return None
    key = f"val_{metric}"
    points = [
        (r["trial"], r[key])
        for r in rows
        if r["state"] == "complete" and r.get(key) is not None and math.isfinite(r[key])
    ]
    fig = Figure(figsize=(6, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if points:
        xs, ys = zip(*points, strict=True)
        running = [max(ys[: i + 1]) for i in range(len(ys))]
        ax.plot(xs, ys, "o", color="tab:blue", label="trial")
        ax.step(xs, running, where="post", color="tab:red", label="best so far")
        ax.legend(loc="lower right")
    pruned = [r["trial"] for r in rows if r["state"] == "pruned"]
    if pruned:
        ax.set_title(f"{len(pruned)} pruned trial(s) not shown", fontsize=9)
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {metric}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path

"""The benchmark's tables: results.md (the IUI 2021 tutorial's layout, with CIs and significance marks),
results.csv (one row per model and metric) and results.json (everything, including the grid).

Confidence intervals: percentile bootstrap over test users (:func:`visrec.evaluation.stats.bootstrap_ci`).
Significance: for each metric, the best model (highest mean) against each other model on per-user values
paired by user, Wilcoxon signed-rank (two-sided), Holm-corrected over those comparisons; a model is marked
when its mean is lower and the corrected p-value is below ``alpha``. The paired t-test is reported too.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from visrec._io import write_json, write_text
from visrec.benchmark.config import BenchmarkConfig
from visrec.benchmark.runner import ModelOutcome
from visrec.evaluation import registry
from visrec.evaluation.results import metric_key
from visrec.evaluation.stats import bootstrap_ci, compare_to_best

REPORT_KS = (20, 100)
"""Cut-offs shown in the benchmark tables."""


def report_metrics(mode: str = "full", names: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The metric keys of the benchmark table (default metrics at ``REPORT_KS``), from the registry."""
    keys = registry.keys_for(registry.resolve(names), REPORT_KS, mode.partition("@")[0])
    return tuple(metric_key(key, mode) for key in keys)


METRICS = report_metrics()
MODE_TEXT = {
    "full": "full ranking over every item the user has not consumed",
    "tutorial": "the IUI 2021 tutorial's definitions (last-10 profile window)",
    "cold": "cold mode: each user's new items ranked among all new items (keys labelled [cold])",
    "mixed": "mixed mode: new items ranked among all unconsumed items, warm and new (keys labelled "
    "[mixed])",
}
BELOW_MARK = "▼"
FORMAT = "visrec-benchmark/1"


def aligned_values(outcomes: list[ModelOutcome], metric: str) -> dict[str, np.ndarray]:
    """Per-user test values of ``metric`` for every successful model, restricted to common users."""
    ok = [o for o in outcomes if o.ok]
    if not ok:
        return {}
    common = set(ok[0].test.per_user["user_idx"])
    for o in ok[1:]:
        common &= set(o.test.per_user["user_idx"])
    keep = np.array(sorted(common), dtype=np.int64)
    out = {}
    for o in ok:
        table = o.test.per_user.set_index("user_idx")
        out[o.name] = table.loc[keep, metric].to_numpy(dtype=np.float64)
    return out


def summarise(outcomes: list[ModelOutcome], config: BenchmarkConfig, dataset_summary: str) -> dict:
    """The content of results.json: per model its status, choice, means, CIs and tests."""
    mode = next((o.test.mode for o in outcomes if o.ok), "full")
    metrics = report_metrics(mode)
    tests = {m: compare_to_best(aligned_values(outcomes, m), alpha=config.alpha) for m in metrics}
    models = []
    for o in outcomes:
        entry = {
            "name": o.name,
            "model": o.spec.model,
            "status": o.status if o.ok or o.status != "ok" else "failed",
            "error": o.error,
            "features": o.spec.features,
            "grid": [
                {
                    "run_dir": str(p.run_dir),
                    "options": p.options,
                    "validation": _num(p.validation),
                    "train_seconds": p.train_seconds,
                    "reused": p.reused,
                }
                for p in o.points
            ],
        }
        if o.ok:
            entry |= _model_results(o, config, tests, metrics)
        models.append(entry)
    return {
        "format": FORMAT,
        "config": str(config.path),
        "dataset": dataset_summary,
        "split": "test",
        "mode": mode,
        "select_metric": config.select_metric,
        "alpha": config.alpha,
        "n_boot": config.n_boot,
        "seed": config.seed,
        "metrics": list(metrics),
        "models": models,
    }


def _model_results(o: ModelOutcome, config: BenchmarkConfig, tests: dict, metrics) -> dict:
    values = o.test.per_user[list(metrics)].to_numpy(dtype=np.float64)
    ci = bootstrap_ci(values, n_boot=config.n_boot, seed=config.seed)
    out = {
        "run_dir": str(o.chosen.run_dir),
        "options": o.chosen.options,
        "validation": _num(o.chosen.validation),
        "train_seconds": o.chosen.train_seconds,
        "n_users": o.test.n_users,
        "means": {m: o.test.means[m] for m in metrics},
        "ci95": {m: [float(ci[j, 0]), float(ci[j, 1])] for j, m in enumerate(metrics)},
        "tests": {},
    }
    for m in metrics:
        c = tests[m].get(o.name)
        if c is None:  # the best model of this metric
            out["tests"][m] = {"best": True}
            continue
        out["tests"][m] = {
            "best": abs(c.test.mean_diff) < 1e-12,  # tied with the best mean
            "against": c.best,
            "mean_diff": c.test.mean_diff,
            "p_wilcoxon": _num(c.test.p_wilcoxon),
            "p_wilcoxon_holm": _num(c.p_wilcoxon_holm),
            "p_ttest": _num(c.test.p_ttest),
            "p_ttest_holm": _num(c.p_ttest_holm),
            "below_best": c.below,
        }
    return out


def write_reports(summary: dict, out: str | Path, plots: list[Path] | None = None) -> list[Path]:
    """Write results.json, results.csv and results.md into ``out`` (atomically); returns their paths."""
    out = Path(out)
    paths = [out / "results.json", out / "results.csv", out / "results.md"]
    write_json(paths[0], summary)
    write_text(paths[1], to_csv(summary))
    write_text(paths[2], to_markdown(summary, plots or [], out))
    return paths


def to_csv(summary: dict) -> str:
    columns = [
        "model", "registry_name", "status", "metric", "mean", "ci_low", "ci_high",
        "p_wilcoxon", "p_wilcoxon_holm", "p_ttest", "p_ttest_holm", "below_best", "error",
    ]  # fmt: skip
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for m in summary["models"]:
        if m["status"] != "ok":
            writer.writerow([m["name"], m["model"], m["status"], *[""] * 9, m["error"]])
            continue
        for metric in summary["metrics"]:
            t = m["tests"][metric]
            low, high = m["ci95"][metric]
            p = [t.get(k) for k in ("p_wilcoxon", "p_wilcoxon_holm", "p_ttest", "p_ttest_holm")]
            writer.writerow(
                [m["name"], m["model"], "ok", metric, repr(m["means"][metric]), repr(low),
                 repr(high), *["" if v is None else repr(v) for v in p],
                 t.get("below_best", False), ""]
            )  # fmt: skip
    return buffer.getvalue()


def table_markdown(summary: dict) -> str:
    """The main table: one row per model, mean [95% CI] per metric, best in bold, marks below best."""
    metrics = summary["metrics"]
    lines = ["| model | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for m in summary["models"]:
        if m["status"] != "ok":
            lines.append(
                f"| {m['name']} | " + " | ".join(["failed"] + ["-"] * (len(metrics) - 1)) + " |"
            )
            continue
        cells = []
        for metric in metrics:
            t = m["tests"][metric]
            value = _fmt(m["means"][metric], _digits(metric))
            value = f"**{value}**" if t.get("best") else value
            mark = f" {BELOW_MARK}" if t.get("below_best") else ""
            low, high = m["ci95"][metric]
            cells.append(f"{value}{mark} [{_fmt(low, 4)}, {_fmt(high, 4)}]")
        lines.append(f"| {m['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_markdown(summary: dict, plots: list[Path], out: Path) -> str:
    n_users = next((m["n_users"] for m in summary["models"] if m["status"] == "ok"), 0)
    parts = [
        "# Benchmark results",
        "",
        f"Dataset: {summary['dataset']}. Config: `{summary['config']}`.",
        "",
        f"Test split, {MODE_TEXT.get(summary.get('mode', 'full'), summary.get('mode'))}; mean over "
        f"{n_users} test "
        f"users with a 95% bootstrap confidence interval ({summary['n_boot']} replicates, seed "
        f"{summary['seed']}). **Bold**: best mean. {BELOW_MARK}: significantly below the best "
        f"(Wilcoxon signed-rank on per-user values, Holm-corrected over the models, p < "
        f"{summary['alpha']}). Hyper-parameters chosen on validation {summary['select_metric']} only.",
        "",
        table_markdown(summary),
        "",
        "## Runs",
        "",
        f"| model | chosen options | validation {summary['select_metric']} | train s | run |",
        "|---|---|---|---|---|",
    ]
    for m in summary["models"]:
        if m["status"] != "ok":
            parts.append(f"| {m['name']} | failed: {m['error']} | - | - | - |")
            continue
        options = ", ".join(f"{k}={v}" for k, v in m["options"].items()) or "defaults"
        seconds = "-" if m["train_seconds"] is None else f"{m['train_seconds']:.1f}"
        grid = f" (best of {len(m['grid'])})" if len(m["grid"]) > 1 else ""
        parts.append(
            f"| {m['name']} | {options}{grid} | {_fmt(m['validation'] or math.nan)} | {seconds} | "
            f"`{_rel(m['run_dir'], out)}` |"
        )
    if plots:
        parts += ["", "## Plots", ""]
        parts += [f"![{p.stem}]({_rel(p, out)})" for p in plots]
    return "\n".join(parts) + "\n"


def _digits(metric: str) -> int:
    """Decimals of a metric's mean, as its registry entry formats it (``.5f`` -> 5)."""
    text = registry.format_value(metric, 0.0)
    return len(text.partition(".")[2])


def _fmt(value: float, digits: int = 5) -> str:
    if value is None or not math.isfinite(value):
        return "nan"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("0.") else text


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _rel(path, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)

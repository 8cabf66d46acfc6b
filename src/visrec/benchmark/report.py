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
from visrec.benchmark.runner import CANNOT_SCORE_NEW, NOT_APPLICABLE, ModelOutcome
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
REFIT_MARK = "[refit]"
REFIT_TEXT = f"{REFIT_MARK}: the chosen options retrained on train + validation before testing"
FORMAT = "visrec-benchmark/1"
FORMAT_SPLITS = "visrec-benchmark-splits/1"
"""results.json of a benchmark with several sections (splits, or the cold and mixed modes)."""


def _tested(outcomes: list[ModelOutcome], mode: str | None) -> list[tuple[ModelOutcome, object]]:
    pairs = [(o, o.test if mode is None else o.result(mode)) for o in outcomes if o.ok]
    return [(o, r) for o, r in pairs if r is not None]


def aligned_values(
    outcomes: list[ModelOutcome], metric: str, mode: str | None = None
) -> dict[str, np.ndarray]:
    """Per-user test values of ``metric`` (in ``mode``; default each model's first mode) for every
    successful model, restricted to common users."""
    ok = _tested(outcomes, mode)
    if not ok:
        return {}
    common = set(ok[0][1].per_user["user_idx"])
    for _, result in ok[1:]:
        common &= set(result.per_user["user_idx"])
    keep = np.array(sorted(common), dtype=np.int64)
    out = {}
    for o, result in ok:
        table = result.per_user.set_index("user_idx")
        out[o.name] = table.loc[keep, metric].to_numpy(dtype=np.float64)
    return out


def summarise(
    outcomes: list[ModelOutcome],
    config: BenchmarkConfig,
    dataset_summary: str,
    *,
    mode: str | None = None,
    split_name: str | None = None,
) -> dict:
    """The content of results.json for one table: per model its status, choice, means, CIs and tests.

    ``mode``: which of the models' test results (default: their first mode); ``split_name``: the
    ``[[splits]]`` label, recorded when given."""
    mode = mode or next((o.test.mode for o in outcomes if o.ok), "full")
    metrics = report_metrics(mode)
    tests = {
        m: compare_to_best(aligned_values(outcomes, m, mode), alpha=config.alpha) for m in metrics
    }
    refit = bool(getattr(config, "refit", False))
    models = []
    for o in outcomes:
        result = o.result(mode) if o.ok else None
        entry = {
            "name": o.name,
            "model": o.spec.model,
            "status": "ok" if result is not None else "failed" if o.status == "ok" else o.status,
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
        if result is not None:
            entry |= _model_results(o, result, config, tests, metrics)
        elif o.status == NOT_APPLICABLE:
            entry["means"] = {m: CANNOT_SCORE_NEW for m in metrics}
        models.append(entry)
    summary = {
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
    if refit:
        summary["refit"] = True
    if split_name:
        summary["split_name"] = split_name
    return summary


def _model_results(o: ModelOutcome, result, config: BenchmarkConfig, tests: dict, metrics) -> dict:
    values = result.per_user[list(metrics)].to_numpy(dtype=np.float64)
    ci = bootstrap_ci(values, n_boot=config.n_boot, seed=config.seed)
    out = {
        "run_dir": str(o.chosen.run_dir),
        "options": o.chosen.options,
        "validation": _num(o.chosen.validation),
        "train_seconds": o.chosen.train_seconds,
        "n_users": result.n_users,
        "means": {m: result.means[m] for m in metrics},
        "ci95": {m: [float(ci[j, 0]), float(ci[j, 1])] for j, m in enumerate(metrics)},
        "tests": {},
    }
    if o.refit_dir is not None:
        out |= {"refit": True, "refit_run_dir": str(o.refit_dir)}
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


def write_reports(
    summary: dict, out: str | Path, plots: list[Path] | None = None, *, backbones: str = ""
) -> list[Path]:
    """Write results.json, results.csv and results.md into ``out`` (atomically); returns their paths.

    ``backbones``: the backbone-axis table (markdown), added to results.md under its own heading."""
    out = Path(out)
    paths = [out / "results.json", out / "results.csv", out / "results.md"]
    write_json(paths[0], summary)
    write_text(paths[1], to_csv(summary))
    text = to_markdown(summary, plots or [], out)
    if backbones:
        text += f"\n## Backbones: ImageNet top-1 and recommendation quality (test)\n\n{backbones}\n"
    write_text(paths[2], text)
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
        if m["status"] == NOT_APPLICABLE:
            for metric in summary["metrics"]:
                writer.writerow([m["name"], m["model"], m["status"], metric, CANNOT_SCORE_NEW,
                                 *[""] * 7, ""])  # fmt: skip
            continue
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
        if m["status"] == NOT_APPLICABLE:
            lines.append(f"| {m['name']} | " + " | ".join([CANNOT_SCORE_NEW] * len(metrics)) + " |")
            continue
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
        label = f"{m['name']} {REFIT_MARK}" if m.get("refit") else m["name"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_markdown(summary: dict, plots: list[Path], out: Path) -> str:
    parts = ["# Benchmark results", "", *section_markdown(summary, out)]
    if plots:
        parts += ["", "## Plots", ""]
        parts += [f"![{p.stem}]({_rel(p, out)})" for p in plots]
    return "\n".join(parts) + "\n"


def section_markdown(summary: dict, out: Path, level: str = "##") -> list[str]:
    """One table's text: what was measured, the table, and the runs behind it (``level``: the
    heading of the runs part)."""
    n_users = next((m["n_users"] for m in summary["models"] if m["status"] == "ok"), 0)
    refit = f" {REFIT_TEXT}." if summary.get("refit") else ""
    parts = [
        f"Dataset: {summary['dataset']}. Config: `{summary['config']}`.",
        "",
        f"Test split, {MODE_TEXT.get(summary.get('mode', 'full'), summary.get('mode'))}; mean over "
        f"{n_users} test "
        f"users with a 95% bootstrap confidence interval ({summary['n_boot']} replicates, seed "
        f"{summary['seed']}). **Bold**: best mean. {BELOW_MARK}: significantly below the best "
        f"(Wilcoxon signed-rank on per-user values, Holm-corrected over the models, p < "
        f"{summary['alpha']}). Hyper-parameters chosen on validation {summary['select_metric']} "
        f"only.{refit}",
        "",
        table_markdown(summary),
        "",
        f"{level} Runs",
        "",
        f"| model | chosen options | validation {summary['select_metric']} | train s | run |",
        "|---|---|---|---|---|",
    ]
    for m in summary["models"]:
        if m["status"] == NOT_APPLICABLE:
            parts.append(f"| {m['name']} | {CANNOT_SCORE_NEW}: not trained | - | - | - |")
            continue
        if m["status"] != "ok":
            parts.append(f"| {m['name']} | failed: {m['error']} | - | - | - |")
            continue
        options = ", ".join(f"{k}={v}" for k, v in m["options"].items()) or "defaults"
        seconds = "-" if m["train_seconds"] is None else f"{m['train_seconds']:.1f}"
        grid = f" (best of {len(m['grid'])})" if len(m["grid"]) > 1 else ""
        run = f"`{_rel(m['run_dir'], out)}`"
        if m.get("refit"):
            run += f", refit `{_rel(m['refit_run_dir'], out)}`"
        parts.append(
            f"| {m['name']} | {options}{grid} | {_fmt(m['validation'] or math.nan)} | {seconds} | "
            f"{run} |"
        )
    return parts


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

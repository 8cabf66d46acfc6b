"""The benchmark's PNG plots (matplotlib's Agg canvas through the object API; pyplot is never touched).

Made to stay readable with ten or more models: every model gets its own row or panel, sorted, instead of
overlapping shapes.

- ``metrics_ci.png``: one panel per metric: each model's mean test value with its 95% bootstrap CI (a dot
  with whiskers), models sorted best first;
- ``by_profile_size.png``: one panel per metric: a model x profile-size-bucket table of means, coloured
  (the IUI 2021 tutorial's "metric by user-profile size", as a heatmap instead of crowded violins);
- ``first_hit_rank.png``: small multiples, one histogram per model on shared axes (log-spaced bins) of the
  rank of each user's first hit, models sorted by their median first-hit rank.

The metric keys are parameters (``metrics``); the per-user columns ``profile_size`` and ``first_hit_rank``
are named by :data:`PROFILE_SIZE` and :data:`FIRST_HIT`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from visrec._io import atomic_path
from visrec.evaluation.stats import bootstrap_ci

if TYPE_CHECKING:
    from visrec.benchmark.runner import ModelOutcome

log = logging.getLogger(__name__)
PROFILE_SIZE, FIRST_HIT = "profile_size", "first_hit_rank"
PLOT_FILES = ("metrics_ci.png", "by_profile_size.png", "first_hit_rank.png")


def write_plots(
    outcomes: list[ModelOutcome], out: str | Path, metrics: tuple[str, ...]
) -> list[Path]:
    """Write every plot of the successful models into ``out``; returns the PNG paths."""
    tables = {o.name: o.test.per_user for o in outcomes if o.ok}
    return plot_tables(tables, out, metrics) if tables else []


def plot_tables(
    tables: dict[str, pd.DataFrame], out: str | Path, metrics: tuple[str, ...], *, seed: int = 0
) -> list[Path]:
    """The plots of per-user test tables (one per model: ``metrics`` columns, profile size, first hit)."""
    out = Path(out)
    edges = profile_buckets(next(iter(tables.values()))[PROFILE_SIZE].to_numpy())
    return [
        _dots(tables, metrics, out / PLOT_FILES[0], seed),
        _heatmaps(tables, metrics, edges, out / PLOT_FILES[1]),
        _first_hits(tables, out / PLOT_FILES[2]),
    ]


def profile_buckets(sizes: np.ndarray, n: int = 4) -> np.ndarray:
    """Bucket edges (inclusive lower bounds, then one past the max) at profile-size quantiles."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if len(sizes) == 0:
        return np.array([0, 1])
    qs = np.quantile(sizes, np.linspace(0, 1, n + 1)[1:-1], method="higher")
    edges = np.unique(np.concatenate([[sizes.min()], qs, [sizes.max() + 1]]))
    return edges.astype(np.int64)


def bucket_labels(edges: np.ndarray) -> list[str]:
    return [
        f"{lo}" if hi - 1 == lo else f"{lo}-{hi - 1}"
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]


def mean_and_ci(values: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95% percentile-bootstrap CI of the finite values (NaN for none)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.nan, np.nan, np.nan
    lo, hi = bootstrap_ci(values, n_boot=500, seed=seed)
    return float(values.mean()), float(lo), float(hi)


def _figure(width: float, height: float, rows: int = 1, cols: int = 1, **kw):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=80)
    axes = fig.subplots(rows, cols, squeeze=False, **kw)
    return fig, axes.ravel()


def _save(fig, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return path


def _grid(n: int, max_cols: int) -> tuple[int, int]:
    cols = max(1, min(max_cols, n))
    return -(-n // cols), cols


def _dots(tables: dict[str, pd.DataFrame], metrics, path: Path, seed: int) -> Path:
    """One panel per metric: sorted dots (mean) with 95% CI whiskers, best model on top."""
    rows, cols = _grid(len(metrics), 4)
    row_h = 0.26 * len(tables) + 1.0
    fig, axes = _figure(4.3 * cols, row_h * rows + 0.5, rows, cols)
    for ax, metric in zip(axes, metrics, strict=False):
        stats = {n: mean_and_ci(t[metric].to_numpy(), seed) for n, t in tables.items()}
        order = sorted(stats, key=lambda n: (np.nan_to_num(stats[n][0], nan=-np.inf), n))
        means = np.array([stats[n][0] for n in order])
        low = np.array([stats[n][1] for n in order])
        high = np.array([stats[n][2] for n in order])
        y = np.arange(len(order))
        ax.errorbar(means, y, xerr=[means - low, high - means], fmt="o", color="C0",
                    ecolor="C0", elinewidth=1.5, capsize=2.5, markersize=4.5)  # fmt: skip
        ax.set_yticks(y, order, fontsize="small")
        ax.set_ylim(-0.7, len(order) - 0.3)
        ax.grid(axis="x", color="0.88", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.set_title(metric)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    fig.suptitle("Mean test metric per model with 95% bootstrap CI (best on top)")
    fig.subplots_adjust(left=0.1 if cols > 1 else 0.3, right=0.98, bottom=0.5 / (row_h * rows),
                        top=1 - 0.55 / (row_h * rows + 0.5), hspace=0.5 / row_h + 0.15,
                        wspace=0.55)  # fmt: skip
    return _save(fig, path)


def bucket_means(table: pd.DataFrame, metric: str, edges: np.ndarray) -> np.ndarray:
    """Mean of ``metric`` per profile-size bucket (NaN for an empty bucket)."""
    bucket = np.digitize(table[PROFILE_SIZE].to_numpy(), edges[1:-1], right=False)
    values = table[metric].to_numpy(dtype=np.float64)
    out = np.full(len(edges) - 1, np.nan)
    for b in range(len(out)):
        chosen = values[(bucket == b) & np.isfinite(values)]
        if len(chosen):
            out[b] = chosen.mean()
    return out


def _heatmaps(tables: dict[str, pd.DataFrame], metrics, edges: np.ndarray, path: Path) -> Path:
    """One panel per metric: models (rows, best overall first) x profile-size buckets, mean values."""
    rows, cols = _grid(len(metrics), 4)
    row_h = 0.3 * len(tables) + 1.3
    fig, axes = _figure(4.6 * cols, row_h * rows + 0.5, rows, cols)
    counts = _bucket_counts(tables, edges)
    for ax, metric in zip(axes, metrics, strict=False):
        overall = {n: np.nanmean(t[metric].to_numpy(dtype=np.float64)) for n, t in tables.items()}
        order = sorted(tables, key=lambda n: (-np.nan_to_num(overall[n], nan=-np.inf), n))
        grid = np.array([bucket_means(tables[n], metric, edges) for n in order])
        image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap="viridis")
        lo, hi = image.get_clim()
        for (r, c), value in np.ndenumerate(grid):
            if np.isfinite(value):
                light = (value - lo) / (hi - lo or 1) > 0.6
                ax.text(c, r, f"{value:.3f}", ha="center", va="center", fontsize="x-small",
                        color="black" if light else "white")  # fmt: skip
        ax.set_yticks(np.arange(len(order)), order, fontsize="small")
        ax.set_xticks(np.arange(len(counts)), [f"{lab}\n(n={n})" for lab, n in counts],
                      fontsize="small")  # fmt: skip
        ax.set_title(metric)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    fig.suptitle("Mean test metric by training profile size (items); n = users per bucket")
    fig.subplots_adjust(left=0.1 if cols > 1 else 0.3, right=0.98, bottom=0.7 / (row_h * rows),
                        top=1 - 0.75 / (row_h * rows + 0.5), hspace=0.8 / row_h + 0.2,
                        wspace=0.5)  # fmt: skip
    return _save(fig, path)


def _bucket_counts(tables, edges):
    sizes = next(iter(tables.values()))[PROFILE_SIZE].to_numpy()
    counts = np.bincount(np.digitize(sizes, edges[1:-1]), minlength=len(edges) - 1)
    return list(zip(bucket_labels(edges), counts.tolist(), strict=True))


def _first_hits(tables: dict[str, pd.DataFrame], path: Path) -> Path:
    """Small multiples: one first-hit-rank histogram per model, shared log x axis and y axis."""
    ranks = {}
    for name, table in tables.items():
        r = table[FIRST_HIT].to_numpy(dtype=np.float64)
        ranks[name] = r[np.isfinite(r)] + 1
    order = sorted(ranks, key=lambda n: (np.median(ranks[n]) if len(ranks[n]) else np.inf, n))
    top = max((float(r.max()) for r in ranks.values() if len(r)), default=1.0)
    bins = np.geomspace(1, max(top + 1, 2), 25)
    rows, cols = _grid(len(order), 5)
    fig, axes = _figure(2.6 * cols + 0.6, 1.9 * rows + 0.9, rows, cols, sharex=True, sharey=True)
    for i, (ax, name) in enumerate(zip(axes, order, strict=False)):
        r = ranks[name]
        ax.hist(r, bins=bins, color=f"C{i % 10}", alpha=0.85)
        ax.set_xscale("log")
        median = f"median {np.median(r):.0f}" if len(r) else "no hits"
        ax.set_title(f"{name}\n{median}, {len(r)} users", fontsize="small")
    for ax in axes[len(order) :]:
        ax.set_visible(False)
    fig.supxlabel("rank of the first hit + 1 (1 = top of the list)", fontsize="small")
    fig.supylabel("users", fontsize="small")
    fig.suptitle("Where each user's first relevant item lands (test), best median first")
    height = 1.9 * rows + 0.9
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.45 / height, top=1 - 0.75 / height,
                        hspace=0.75, wspace=0.12)  # fmt: skip
    return _save(fig, path)

"""The benchmark's PNG plots (matplotlib's Agg canvas through the object API; pyplot is never touched).

- ``by_profile_size.png``: one panel per metric: its per-user distribution by profile-size bucket, one
  violin per model (the IUI 2021 tutorial's plot of a metric by user-profile size);
- ``auc_box.png``: per-user test AUC (the first metric of the table), one box per model;
- ``first_hit_rank.png``: histogram of the rank of each user's first hit (log-spaced bins).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from visrec._io import atomic_path
from visrec.benchmark.runner import ModelOutcome

log = logging.getLogger(__name__)


def write_plots(
    outcomes: list[ModelOutcome], out: str | Path, metrics: tuple[str, ...]
) -> list[Path]:
    """Write every plot of the successful models into ``out``; returns the PNG paths."""
    ok = [o for o in outcomes if o.ok]
    if not ok:
        return []
    out = Path(out)
    tables = {o.name: o.test.per_user for o in ok}
    edges = profile_buckets(next(iter(tables.values()))["profile_size"].to_numpy())
    paths = [_violins(tables, metrics, edges, out / "by_profile_size.png")]
    paths.append(_auc_box(tables, metrics[0], out / "auc_box.png"))
    paths.append(_first_hit_hist(tables, out / "first_hit_rank.png"))
    return paths


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


def _figure(width: float, height: float, rows: int = 1, cols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=80)
    return fig, fig.subplots(rows, cols, squeeze=True)


def _save(fig, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return path


def _violins(tables: dict[str, pd.DataFrame], metrics, edges: np.ndarray, path: Path) -> Path:
    """One panel per metric; in each, one violin per (profile-size bucket, model)."""
    cols = min(4, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, axes = _figure(4.2 * cols, 3.2 * rows + 0.6, rows, cols)
    axes = np.atleast_1d(axes).ravel()
    for ax, metric in zip(axes, metrics, strict=False):
        _violin_panel(ax, tables, metric, edges)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    height = 3.2 * rows + 0.6
    fig.legend(handles, labels, loc="upper center", ncols=min(8, len(labels)), frameon=False,
               bbox_to_anchor=(0.5, 1 - 0.3 / height))  # fmt: skip
    fig.suptitle("Test metrics by training profile size (items); n = users per bucket", y=0.995)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.08, top=1 - 0.85 / height,
                        hspace=0.45, wspace=0.25)  # fmt: skip
    return _save(fig, path)


def _violin_panel(ax, tables: dict[str, pd.DataFrame], metric: str, edges: np.ndarray) -> None:
    names = list(tables)
    n_b = len(edges) - 1
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        table = tables[name]
        bucket = np.digitize(table["profile_size"].to_numpy(), edges[1:-1], right=False)
        values = table[metric].to_numpy(dtype=np.float64)
        pos = np.arange(n_b) - 0.4 + width * (j + 0.5)
        groups = [values[bucket == b] for b in range(n_b)]
        spread = np.array([len(g) > 1 and np.ptp(g) > 0 for g in groups])
        colour = f"C{j % 10}"
        if spread.any():
            parts = ax.violinplot(
                [g for g, s in zip(groups, spread, strict=True) if s],
                positions=pos[spread],
                widths=width * 0.95,
                showmeans=True,
                showextrema=False,
                points=40,
            )
            for body in parts["bodies"]:
                body.set_facecolor(colour)
                body.set_alpha(0.55)
            parts["cmeans"].set_color(colour)
        flat = [(p, g[0]) for p, g, s in zip(pos, groups, spread, strict=True) if not s and len(g)]
        if flat:
            ax.scatter(*zip(*flat, strict=True), marker="_", s=120, color=colour)
        ax.plot([], [], color=colour, linewidth=6, alpha=0.55, label=name)
    ax.set_xticks(np.arange(n_b), [f"{lab}\n(n={c})" for lab, c in _bucket_counts(tables, edges)])
    ax.set_title(metric)


def _bucket_counts(tables, edges):
    sizes = next(iter(tables.values()))["profile_size"].to_numpy()
    counts = np.bincount(np.digitize(sizes, edges[1:-1]), minlength=len(edges) - 1)
    return list(zip(bucket_labels(edges), counts.tolist(), strict=True))


def _auc_box(tables: dict[str, pd.DataFrame], metric: str, path: Path) -> Path:
    names = list(tables)
    fig, ax = _figure(max(5.0, 0.9 * len(names) + 2), 4.0)
    ax.boxplot([tables[n][metric].to_numpy(dtype=np.float64) for n in names], showmeans=True)
    ax.set_xticks(np.arange(1, len(names) + 1), names, rotation=30, ha="right")
    if metric.startswith("AUC"):
        ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)  # a random scorer's AUC
    ax.set_ylabel(f"{metric} per user (test)")
    ax.set_title(f"Per-user test {metric}")
    fig.subplots_adjust(bottom=0.25, top=0.9)
    return _save(fig, path)


def _first_hit_hist(tables: dict[str, pd.DataFrame], path: Path) -> Path:
    fig, ax = _figure(6.5, 4.0)
    top = max(float(np.nanmax(t["first_hit_rank"].to_numpy())) for t in tables.values()) + 1
    bins = np.geomspace(1, max(top + 1, 2), 30)
    for i, (name, table) in enumerate(tables.items()):
        ranks = table["first_hit_rank"].to_numpy(dtype=np.float64)
        ranks = ranks[np.isfinite(ranks)] + 1
        ax.hist(ranks, bins=bins, histtype="step", linewidth=1.5, color=f"C{i % 10}", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("rank of the first hit + 1 (1 = top of the list)")
    ax.set_ylabel("users")
    ax.set_title("Where each user's first relevant item lands (test)")
    ax.legend(fontsize="small")
    fig.subplots_adjust(bottom=0.14, top=0.9)
    return _save(fig, path)

"""Metrics as data: every metric visrec computes is one :class:`Metric` in :data:`REGISTRY`.

A metric is a name, whether it takes a cut-off k (``nDCG@20``), a per-user function, the evaluation modes
it is defined in, what it needs (top-k lists, item features) and how it is labelled and formatted. The
engine, the results, the benchmark report and plots, the CLI and the docs read metric names from here
only; adding a metric is one :func:`register` call (docs/evaluation.md, "Adding a metric").

Per-user functions take a :class:`BlockValues` (the ranks and lists of one block of users) and the
cut-off (``None`` for metrics without k) and return one float64 value per user. A *catalogue* metric
(coverage) is one number over all users' lists instead: it appears in the means, not in the per-user table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from visrec.choices import EVAL_MODES
from visrec.errors import ConfigError
from visrec.evaluation import lists as lst
from visrec.evaluation import metrics as m

MODES = EVAL_MODES
"""Evaluation modes (docs/evaluation.md); ``cold`` and ``mixed`` need a cold-item split."""
LIST_MODES = ("full", "cold", "mixed")
"""Modes whose candidates are a slice of the catalogue, so top-k lists mean something."""


@dataclass(frozen=True, eq=False)
class BlockValues:
    """What per-user metric functions read for one block of users (NaN-padded ``(B, t)`` arrays)."""

    mode: str
    ranks: np.ndarray
    negatives_above: np.ndarray
    n_negatives: np.ndarray
    n_items: int
    lists: np.ndarray | None = None
    """``(B, max k)`` top-k item indices (-1 pads), when a list metric was asked for."""
    items: lst.ItemInfo | None = None


PerUser = Callable[[BlockValues, int | None], np.ndarray]


@dataclass(frozen=True)
class Metric:
    """One metric definition."""

    name: str
    """Key stem: ``AUC``, ``nDCG`` (keys are ``name`` or ``name@k``)."""
    label: str
    """Human name (docs, plot titles)."""
    per_user: PerUser | None
    """Per-user values; ``None`` for a catalogue metric (then ``catalogue`` is True)."""
    takes_k: bool = False
    modes: tuple[str, ...] = MODES
    needs_lists: bool = False
    needs_features: bool = False
    catalogue: bool = False
    fmt: str = ".5f"
    """Format spec of a mean in tables."""

    def key(self, k: int | None = None) -> str:
        return f"{self.name}@{k}" if self.takes_k else self.name


REGISTRY: dict[str, Metric] = {}
DEFAULT_METRICS: tuple[str, ...] = m.METRIC_KEYS
"""Computed when no metric list is given (so outputs stay as they always were)."""


def register(metric: Metric, *, replace: bool = False) -> Metric:
    """Add ``metric`` to the registry (``replace`` to redefine a name); returns it."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", metric.name):
        raise ConfigError(f"metric name {metric.name!r}: letters, digits and _ only")
    if metric.name in REGISTRY and not replace:
        raise ConfigError(f"metric {metric.name!r} is already registered")
    unknown = set(metric.modes) - set(MODES)
    if unknown:
        raise ConfigError(f"metric {metric.name!r}: unknown modes {sorted(unknown)}")
    if (metric.per_user is None) != metric.catalogue:
        raise ConfigError(f"metric {metric.name!r}: give a per-user function or catalogue=True")
    REGISTRY[metric.name] = metric
    return metric


def unregister(name: str) -> None:
    """Remove a metric (tests that register a toy metric clean up with this)."""
    REGISTRY.pop(name, None)


def get(name: str) -> Metric:
    """The metric called ``name`` (a ConfigError listing the known ones otherwise)."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown metric {name!r}; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name]


def parse_key(key: str) -> tuple[Metric, int | None]:
    """``'nDCG@20'`` -> (the nDCG metric, 20); ``'AUC'`` -> (AUC, None). A clear error otherwise."""
    name, at, k = key.partition("@")
    metric = REGISTRY.get(name)
    if metric is None or bool(at) != metric.takes_k or (at and not k.isdigit()) or k == "0":
        usage = ", ".join(f"{x.name}@k" if x.takes_k else x.name for x in REGISTRY.values())
        raise ConfigError(f"unknown metric {key!r}; expected one of {usage}")
    return metric, (int(k) if at else None)


def resolve(names: Iterable[str] | None) -> tuple[Metric, ...]:
    """The metrics of a list of names (``None``: the defaults), each once, in the given order."""
    chosen = DEFAULT_METRICS if names is None else tuple(dict.fromkeys(names))
    if not chosen:
        raise ConfigError("no metric given")
    return tuple(get(name) for name in chosen)


def keys_for(metrics: Iterable[Metric], ks: tuple[int, ...], mode: str) -> list[str]:
    """Metric keys in table order for ``mode``: the metrics without k, then for each k those with k.

    Metrics not defined in ``mode`` are left out."""
    metrics = [x for x in metrics if mode in x.modes]
    keys = [x.key() for x in metrics if not x.takes_k]
    for k in ks:
        keys += [x.key(k) for x in metrics if x.takes_k]
    return keys


def per_user_values(
    metrics: Iterable[Metric], values: BlockValues, ks: tuple[int, ...]
) -> dict[str, np.ndarray]:
    """Every per-user metric of ``values.mode`` for one block: ``{key: (B,) float64}``."""
    out = {}
    for key in keys_for(metrics, ks, values.mode):
        metric, k = parse_key(key)
        if not metric.catalogue:
            out[key] = np.asarray(metric.per_user(values, k), dtype=np.float64)
    return out


def is_catalogue_key(key: str) -> bool:
    """Whether an output key (``coverage@20``, ``coverage@20[cold]``) is a catalogue metric's, which has
    a mean but no per-user column. Unknown keys are not."""
    try:
        return parse_key(key.split("[")[0])[0].catalogue
    except ConfigError:
        return False


def format_value(key: str, value: float) -> str:
    """A mean formatted as its metric says (unknown keys: 5 decimals)."""
    try:
        metric, _ = parse_key(key.split("[")[0])
    except ConfigError:
        return f"{value:.5f}"
    return format(value, metric.fmt)


def reference_table() -> str:
    """The Markdown table of every registered metric (docs/evaluation.md embeds it; tests check it)."""
    lines = ["| key | metric | modes | needs |", "|---|---|---|---|"]
    for x in REGISTRY.values():
        key = f"`{x.key('k')}`" if x.takes_k else f"`{x.name}`"
        modes = "all" if set(x.modes) == set(MODES) else ", ".join(x.modes)
        needs = [n for n, flag in (("top-k lists", x.needs_lists), ("item features",
                 x.needs_features)) if flag]  # fmt: skip
        kind = " (one number per evaluation)" if x.catalogue else ""
        lines.append(f"| {key} | {x.label}{kind} | {modes} | {', '.join(needs) or '-'} |")
    return "\n".join(lines)


def _auc(v: BlockValues, k: int | None) -> np.ndarray:
    if v.mode == "tutorial":
        return m.tutorial_auc(v.ranks, v.n_items)
    return m.auc(v.negatives_above, v.n_negatives)


def _ndcg(v: BlockValues, k: int | None) -> np.ndarray:
    return m.tutorial_ndcg_at(v.ranks, k) if v.mode == "tutorial" else m.ndcg_at(v.ranks, k)


def _list_at(v: BlockValues, k: int | None) -> np.ndarray:
    return v.lists[:, :k]


for _metric in (
    Metric("AUC", "area under the ROC curve", _auc),
    Metric("RR", "reciprocal rank", lambda v, k: m.reciprocal_rank(v.ranks)),
    Metric("R", "recall", lambda v, k: m.recall_at(v.ranks, k), takes_k=True),
    Metric("P", "precision", lambda v, k: m.precision_at(v.ranks, k), takes_k=True),
    Metric("nDCG", "normalised discounted cumulative gain", _ndcg, takes_k=True),
    Metric("MAP", "mean average precision", lambda v, k: m.average_precision_at(v.ranks, k), True),
    Metric("HR", "hit rate", lambda v, k: m.hit_rate_at(v.ranks, k), takes_k=True),
    Metric(
        "coverage",
        "catalogue coverage",
        None,
        takes_k=True,
        modes=LIST_MODES,
        needs_lists=True,
        catalogue=True,
    ),
    Metric(
        "diversity",
        "intra-list diversity (cosine)",
        lambda v, k: lst.diversity(_list_at(v, k), v.items),
        takes_k=True,
        modes=LIST_MODES,
        needs_lists=True,
        needs_features=True,
    ),
    Metric(
        "novelty",
        "novelty (mean -log2 popularity share)",
        lambda v, k: lst.novelty(_list_at(v, k), v.items),
        takes_k=True,
        modes=LIST_MODES,
        needs_lists=True,
        fmt=".3f",
    ),
):
    register(_metric)

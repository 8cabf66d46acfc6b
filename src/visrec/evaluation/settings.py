"""EvalSettings: every setting of an evaluation in one frozen object, and the checks of a request."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from visrec.choices import EVAL_SPLITS
from visrec.data import Dataset
from visrec.errors import ConfigError
from visrec.evaluation import metrics
from visrec.evaluation import registry as reg

if TYPE_CHECKING:
    import torch

MODES = reg.MODES
COLD_MODES = ("cold", "mixed")
SPLITS = EVAL_SPLITS
AUTO_BLOCK_SCORES = 1 << 24
"""Default block: users whose score rows hold about 16.8M scores together (128 MB in float64)."""


@dataclass(frozen=True, eq=False)
class EvalSettings:
    """Every setting of an evaluation except what is evaluated (scorer, dataset, split, modes, users).

    None of them changes a per-user value except ``ks``, ``metrics``, ``n_negatives``, ``seed`` (sampled
    negatives), ``profile_window`` (tutorial mode) and ``item_features`` (diversity)."""

    ks: tuple[int, ...] = metrics.DEFAULT_KS
    """Cut-offs of the metrics that take one (``R@20``)."""
    metrics: tuple[str, ...] | None = None
    """Metric names of :data:`visrec.evaluation.registry.REGISTRY` (None: AUC, RR, R, P, nDCG)."""
    block_size: int | None = None
    """Users scored per scorer call (default :func:`auto_block_size`); bounds memory, never a result."""
    n_negatives: int = 100
    """Random negatives per user in sampled mode."""
    seed: int = 0
    """Seed of the sampled negatives."""
    device: str | torch.device | None = None
    """Where ranks are computed (default: wherever the scorer's output lives)."""
    profile_window: int = 10
    """Tutorial mode: the number of last profile items excluded from the candidates."""
    item_features: np.ndarray | None = None
    """``(n_items, d)`` item features for the diversity metric."""

    def __post_init__(self):
        ks = tuple(int(k) for k in self.ks)
        if not ks or min(ks) < 1 or len(set(ks)) != len(ks):
            raise ConfigError(f"ks must be distinct positive cut-offs, got {ks}")
        object.__setattr__(self, "ks", ks)
        if self.metrics is not None:
            object.__setattr__(self, "metrics", tuple(self.metrics))
            reg.resolve(self.metrics)  # unknown names fail here
        if self.block_size is not None and self.block_size < 1:
            raise ConfigError(f"block_size must be >= 1, got {self.block_size}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        if self.profile_window < 0:
            raise ConfigError(f"profile_window must be >= 0, got {self.profile_window}")

    def replace(self, **options) -> EvalSettings:
        """A copy with some settings changed (unknown names raise TypeError, as a keyword would)."""
        return dataclasses.replace(self, **options) if options else self

    def label(self, mode: str) -> str:
        """The mode's label in keys and results: ``sampled@100`` for sampled, else the mode."""
        return f"sampled@{self.n_negatives}" if mode == "sampled" else mode


def settings_of(settings: EvalSettings | None, options: dict) -> EvalSettings:
    """``settings`` (default :class:`EvalSettings`) with keyword ``options`` applied on top."""
    return (settings or EvalSettings()).replace(**options)


def mode_tuple(modes: str | Iterable[str]) -> tuple[str, ...]:
    """Distinct mode names in their given order (a single name is one mode)."""
    return tuple(dict.fromkeys([modes] if isinstance(modes, str) else modes))


def auto_block_size(n_items: int) -> int:
    """The default number of users scored at once for a catalogue of ``n_items``."""
    return max(1, AUTO_BLOCK_SCORES // max(1, n_items))


def check_request(
    dataset: Dataset, split: str, modes: tuple[str, ...], settings: EvalSettings
) -> None:
    if split not in SPLITS:
        raise ConfigError(f"split must be 'test' or 'validation', not {split!r}")
    if not modes:
        raise ConfigError(f"no evaluation mode given; choose from {', '.join(MODES)}")
    for mode in modes:
        if mode not in MODES:
            raise ConfigError(f"unknown evaluation mode {mode!r}; choose from {', '.join(MODES)}")
    if "sampled" in modes and settings.n_negatives < 1:
        raise ConfigError(f"n_negatives must be >= 1, got {settings.n_negatives}")
    cold_modes = [mode for mode in modes if mode in COLD_MODES]
    if cold_modes and not dataset.split.is_cold:
        raise ConfigError(
            f"mode {cold_modes[0]!r} ranks new items and needs a cold-item split "
            f"(cold-items or cold-items-temporal); {dataset.name} uses {dataset.split.method!r}"
        )
    chosen = reg.resolve(settings.metrics)
    if any(m.needs_features for m in chosen) and set(modes) & set(reg.LIST_MODES):
        features = settings.item_features
        if features is None:
            names = [m.name for m in chosen if m.needs_features]
            raise ConfigError(f"metric {names[0]!r} needs item features (settings.item_features)")
        if np.ndim(features) != 2 or len(features) != dataset.n_items:
            raise ConfigError(
                f"item_features must be ({dataset.n_items}, d), got shape {np.shape(features)}"
            )

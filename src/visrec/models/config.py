"""Typed model configs: frozen dataclasses with a docstring per field, validated on creation.

Every gradient model's config inherits :class:`TrainConfig` (the common training settings) and overrides
its defaults with the paper's or the tutorial's. ``from_dict`` parses ``--set key=value`` strings too,
through the one typed-config mechanism of :mod:`visrec._config` (pydantic).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import ClassVar

from visrec._config import Typed, build
from visrec.errors import ConfigError
from visrec.models.search import FloatRange

LOSSES = ("bpr", "warp", "bce")
OPTIMIZERS = ("adam", "sparse_adam")


@dataclass(frozen=True)
class Config(Typed):
    """Base of every model config."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` on impossible values (subclasses extend)."""

    def __post_init__(self):
        self.validate()

    @classmethod
    def from_dict(cls, values: dict) -> Config:
        """Build from a dict; unknown keys raise, strings are parsed to the field's type."""
        return build(cls, values)

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)

    legacy: ClassVar[dict] = {}
    """Options added after configs were first saved whose default is not what the older visrec did:
    option -> the value that reproduces it (a saved config without the option gets this value)."""

    @classmethod
    def saved_as_now(cls, saved: dict) -> tuple[dict, list[str]]:
        """A config stored as JSON by an earlier visrec, read by this one: the options it predates
        (absent from it) take their ``legacy`` value where declared, else their defaults. Returns
        (filled config, the options filled in)."""
        defaults = json.loads(json.dumps(cls().to_dict()))  # as JSON stores it (tuples -> lists)
        added = sorted(defaults.keys() - saved.keys())
        return saved | {k: cls.legacy.get(k, defaults[k]) for k in added}, added


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class TrainConfig(Config):
    """Training settings shared by every gradient model (one Trainer serves them all)."""

    epochs: int = 100
    """Epoch budget: large, so that validation patience ends a run, not the budget (the log says which;
    on MovieLens-100K posters BPR-MF and VBPR at lr 1e-3 were still improving after 15-19 epochs)."""
    batch_size: int = 1024
    """Triplets per optimisation step (per process under torchrun: global batch = batch_size x world size)."""
    triplets_per_epoch: int = 0
    """Triplets sampled afresh each epoch; 0 = one per train interaction."""
    lr: float = 1e-3
    """Adam learning rate."""
    weight_decay: float = 1e-4
    """Adam weight decay (L2) on every parameter at every step (models with per-triplet lambdas, BPR
    and VBPR, default it to 0; see docs/training.md "Regularisation")."""
    loss: str = "bpr"
    """Pairwise loss: bpr (-log sigmoid(x_ui - x_uj), Rendle et al. 2009), warp (sampled WARP, Weston et al. 2011) or bce."""
    n_negatives: int = 1
    """Negatives per (user, positive): WARP uses several to estimate the rank; bpr/bce average over them."""
    patience: int = 3
    """Early stopping: epochs without validation improvement before stopping (0 = never stop early)."""
    val_metric: str = "AUC"
    """Validation metric for early stopping and best-epoch restore (validation targets only, never test)."""
    lr_patience: int = 1
    """ReduceLROnPlateau: epochs without improvement before the learning rate is reduced."""
    lr_factor: float = 0.5
    """ReduceLROnPlateau: multiplicative factor applied to the learning rate."""
    seed: int = 0
    """One seed for sampling, initialisation and dropout."""
    device: str = "auto"
    """auto (CUDA when available), cpu, cuda or cuda:N."""
    fused_adam: bool = True
    """Adam's fused kernel (one pass over each parameter, CPU and CUDA; 2-4x faster steps at batches of 100-1,024): the same update up to float rounding (~1e-7 per step). false: the per-tensor kernel, bit-identical to earlier visrec versions."""
    optimizer: str = "adam"
    """adam: dense Adam over every parameter. sparse_adam: embedding tables get sparse gradients and a lazy
    Adam step of the rows a batch touched (moments of untouched rows do not decay; docs/training.md
    "Optimisers"), every other parameter dense Adam; faster steps at small batches, single-process only."""

    search_space: ClassVar[dict] = {
        "lr": FloatRange(1e-4, 1e-1, log=True),
        "weight_decay": FloatRange(1e-7, 1e-2, log=True),
    }
    """What ``visrec tune`` varies by default: option -> range or choice (:mod:`visrec.models.search`);
    each model extends it beside its config."""

    def validate(self) -> None:
        check(self.epochs >= 1, "epochs must be >= 1")
        check(self.batch_size >= 1, "batch_size must be >= 1")
        check(self.triplets_per_epoch >= 0, "triplets_per_epoch must be >= 0")
        check(self.lr > 0, "lr must be > 0")
        check(self.weight_decay >= 0, "weight_decay must be >= 0")

        check(
            self.optimizer in OPTIMIZERS,
            f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {self.optimizer!r}",
        )
        check(self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        check(self.n_negatives >= 1, "n_negatives must be >= 1")
        check(self.patience >= 0 and self.lr_patience >= 0, "patience values must be >= 0")
        check(0 < self.lr_factor < 1, "lr_factor must be in (0, 1)")

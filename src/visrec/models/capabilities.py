"""What a model can do beyond ``score(users)``, as typed mixins checked with ``isinstance``.

Consumers (runs, serving, the viewer, the benchmark, the conformance suite) never probe a model with
``hasattr``: a model declares an ability by inheriting its mixin, whose abstract methods it must then
implement. What a model reads besides interactions is declared as data in ``Recommender.inputs``: a tuple of
:class:`FeatureInput` (name + kind), so a model with two named feature sources (image + text, as
MMGCN-style models need) fits the same ``fit(dataset, {name: source, ...})``.

- :class:`ScoresProfiles`: scores an arbitrary profile of item indices (new users): VisRank, CuratorNet,
  ACF, MostPopular.
- :class:`ScoresNewItems`: scores items absent from training from their content (cold-start items). No
  model implements it yet; the cold-start issue adds the first ones, and serving/evaluation will check it.
- :class:`DotProduct` / :class:`DotProductProfiles`: scores are dot products of user and item factors, so
  an ANN index can serve them (BPR, VBPR, DVBPR, CuratorNet).
- :class:`Explains`: attention maps over the profile and over image regions (ACF).
- :class:`TrainsByGradient`: a torch module trained by the one Trainer (``visrec.training``), which drives
  the model only through this interface; how a fit runs is a typed :class:`TrainOptions`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal, get_args

import numpy as np
import torch

from visrec.data.dataset import Dataset
from visrec.distributed import DistContext

FeatureKind = Literal["pooled", "spatial", "pixels"]


@dataclass(frozen=True)
class FeatureInput:
    """One source a model reads besides interactions.

    ``kind``: ``pooled`` (a FeatureStore of (n, d) vectors), ``spatial`` ((n, h, w, d) maps) or
    ``pixels`` (a pixel cache of decoded images, for end-to-end CNNs).
    """

    name: str
    kind: FeatureKind

    def __post_init__(self):
        if self.kind not in get_args(FeatureKind):
            raise ValueError(
                f"feature kind must be one of {get_args(FeatureKind)}, not {self.kind!r}"
            )


class ScoresProfiles(ABC):
    """Scores depend on a user only through their profile, so a new user is served from item ids."""

    profile_based: ClassVar[bool] = True

    @abstractmethod
    def _score_profiles(self, profiles: list[np.ndarray]) -> torch.Tensor:
        """(len(profiles), n_items) scores; called by ``Recommender.score_profiles`` after checks."""


class ScoresNewItems(ABC):
    """Scores items unseen in training from their content (features or pixels): cold-start items.

    Declared for the cold-start work; no built-in model implements it yet.
    """

    @abstractmethod
    def score_new_items(self, users, content) -> torch.Tensor:
        """Scores of ``n_new`` new items (``content``: their features or pixels, in the order given)
        for ``users`` (user indices): a tensor of shape (len(users), n_new), higher is better."""


class DotProduct(ABC):
    """``score() == users @ items.T`` for the factors returned: servable through an ANN index."""

    @abstractmethod
    def dot_factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(user vectors (n_users, d), item vectors (n_items, d)), on the CPU."""


class DotProductProfiles(DotProduct):
    """A dot-product model that also maps a new profile to a user vector (new users via the index)."""

    @abstractmethod
    def profile_vectors(self, profiles: list[np.ndarray]) -> torch.Tensor:
        """User vectors (len(profiles), d) of new profiles (item indices, oldest first)."""


class Explains(ABC):
    """Attention maps: which profile items and which image regions drove a user's scores."""

    @property
    @abstractmethod
    def grid(self) -> tuple[int, int]:
        """(h, w) of the spatial feature maps the component attention is over."""

    @abstractmethod
    def explain(self, users) -> dict[str, torch.Tensor]:
        """``profile`` (padded with -1), ``item_attention`` and ``component_attention`` per user."""


@dataclass(frozen=True)
class TrainOptions:
    """How one gradient fit runs (``visrec.training.fit_model`` fills ``trainer``)."""

    run_dir: str | Path | None = None
    """Where checkpoints and the epoch log go (None: nothing written)."""
    resume: bool = False
    """Continue from the checkpoint in ``run_dir``."""
    dist: DistContext | None = None
    """torch.distributed context (DDP training); None: one plain process."""
    on_batch: Callable[[int, int], None] | None = None
    """Called with (epoch, batch number) after every step (tests use it to interrupt a run)."""
    trainer: Callable[[TrainsByGradient, Dataset, TrainOptions], list[dict]] | None = None
    """Runs the training loop on a model whose module is built; returns the per-epoch history."""


class TrainsByGradient(ABC):
    """A torch module fitted by the Trainer; the Trainer uses only what is declared here.

    The model provides ``config`` (a ``TrainConfig``), ``module`` (its ``forward(batch)`` returns
    ``(x_ui, x_uj)``), ``device``, ``info`` (the Trainer records its summary there), ``score(users)`` and
    :meth:`sample`.
    """

    module: torch.nn.Module | None
    info: dict

    @property
    @abstractmethod
    def device(self) -> torch.device: ...

    @abstractmethod
    def to(self, device: str | torch.device) -> TrainsByGradient:
        """Move the model (and its module) to ``device``."""

    @abstractmethod
    def sample(self, dataset: Dataset, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``n`` training triplets as a dict of equal-length arrays (one batch dict per slice)."""

"""What a model can do beyond ``score(users)``, as typed mixins checked with ``isinstance``.

Consumers (runs, serving, the viewer, the benchmark, the conformance suite) never probe a model with
``hasattr``: a model declares an ability by inheriting its mixin, whose abstract methods it must then
implement. What a model reads besides interactions is declared as data in ``Recommender.inputs``: a tuple of
:class:`FeatureInput` (name + kind), so a model with two named feature sources (image + text, as
MMGCN-style models need) fits the same ``fit(dataset, {name: source, ...})``.

- :class:`ScoresProfiles`: scores an arbitrary profile of item indices (new users): VisRank, CuratorNet,
  ACF, MostPopular.
- :class:`ScoresNewItems`: scores items absent from training from their content (cold-start items):
  VBPR, VisRank, CuratorNet, ACF (features) and DVBPR (pixels). BPR, MostPopular and Random cannot;
  :func:`scores_new_items` is the check evaluation (``cold``/``mixed`` modes) and serving use.
- :class:`DotProduct` / :class:`DotProductProfiles`: scores are dot products of user and item factors, so
  an ANN index can serve them (BPR, VBPR, DVBPR, CuratorNet).
- :class:`Explains`: attention maps over the profile and over image regions (ACF).
- :class:`ExplainsByProfile`: how much each profile item contributed to an item's score (VisRank,
  CuratorNet); :class:`ExplainsByParts`: a score as a sum of named parts (VBPR: collaborative + visual).
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
from visrec.errors import ConfigError
from visrec.models.factors import DotScorer, write_factors

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
    """Scores depend on a user only through their profile, so a new user is served from item ids.

    At evaluation time such a model scores each user from ``dataset.history(split)`` (everything the user
    consumed before the split's targets: train items for validation, train + validation basket for test),
    the same history the evaluation engine excludes from the candidates; :meth:`scorer` is that scorer.
    Fitting stores the test-time history (train + validation basket) as each known user's profile, which
    is what ``score(users)`` (serving) uses.
    """

    profile_based: ClassVar[bool] = True

    @abstractmethod
    def _score_profiles(self, profiles: list[np.ndarray]) -> torch.Tensor:
        """(len(profiles), n_items) scores; called by ``Recommender.score_profiles`` after checks."""

    def _score_histories(self, users: torch.Tensor, profiles: list[np.ndarray]) -> torch.Tensor:
        """Known ``users`` scored from the given profiles (default: the profiles alone; a model with
        per-user parameters, e.g. ACF's user embedding, overrides it)."""
        return self._score_profiles(profiles)

    def scorer(self, dataset: Dataset, split: str) -> Callable[[torch.Tensor], torch.Tensor]:
        """The scorer evaluation uses on ``split``: each user scored from ``dataset.history(split)``."""
        history = dataset.history(split)

        @torch.no_grad()
        def score(users) -> torch.Tensor:
            self._check_fitted()
            idx = torch.as_tensor(np.asarray(users), dtype=torch.long).reshape(-1)
            profiles = [np.asarray(p, dtype=np.int64) for p in history.lists(idx.numpy())]
            return self._score_histories(idx, profiles).float()

        return score


class ScoresNewItems(ABC):
    """Scores items unseen in training from their content alone (features or pixels): cold-start items.

    ``content`` is what the model's one input holds for an item (``Recommender.inputs[0].kind``): pooled
    vectors (n_new, d), spatial maps (n_new, h, w, d) or uint8 pixels (n_new, S, S, 3) decoded as the
    model's pixel cache decodes them. The contract the conformance suite checks: an item of the
    vocabulary that has no train interaction (a cold item of a cold-item split) gets from ``score(users)``
    exactly what ``score_new_items(users, its content)`` gives, i.e. no parameter of such an item is
    learned (its id embeddings and biases are zero, as VBPR's paper treats unseen items).
    """

    @torch.no_grad()
    def score_new_items(self, users, content) -> torch.Tensor:
        """Scores of ``n_new`` new items (``content``: their features or pixels, in the order given)
        for ``users`` (user indices): a float tensor of shape (len(users), n_new), higher is better."""
        self._check_fitted()
        idx = torch.as_tensor(np.asarray(users), dtype=torch.long).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self.users)):
            raise IndexError(f"user index out of range [0, {len(self.users)})")
        content = self._check_content(content)
        return self._score_new_items(idx, content).float()

    @abstractmethod
    def _score_new_items(self, users: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        """(len(users), n_new) scores; called by :meth:`score_new_items` after the checks."""

    @abstractmethod
    def _check_content(self, content) -> torch.Tensor:
        """``content`` as a tensor of the expected shape, or a :class:`DataError` naming the problem."""


class NewItemsUnsupported(ConfigError):
    """A model without :class:`ScoresNewItems` was asked to score new items (cold-item modes, serving
    new items): callers report it as unable (n/a), never with a number."""


def scores_new_items(model) -> bool:
    """Whether a model (instance or class) can score items it never saw in training.

    Models without this ability (BPR, MostPopular, Random) give no meaningful score to a new item, so
    cold-item evaluation reports them as unable instead of printing a number."""
    cls = model if isinstance(model, type) else type(model)
    return issubclass(cls, ScoresNewItems)


class DotProduct(ABC):
    """``score() == users @ items.T`` for the factors returned: servable through an ANN index.

    A model that scores from per-user parameters (not :attr:`profile_based`) also saves those factors
    beside its weights and, on the CPU, is evaluated from them (:mod:`visrec.models.factors`): the same
    :class:`~visrec.models.factors.DotScorer` whether the run is evaluated from its files without torch or
    from the loaded model."""

    @abstractmethod
    def dot_factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(user vectors (n_users, d), item vectors (n_items, d)), on the CPU."""

    def _per_user_factors(self) -> bool:
        return not getattr(self, "profile_based", False)

    def _save_extra(self, directory: Path) -> dict:
        extra = super()._save_extra(directory)
        if self._per_user_factors():
            users, items = self.dot_factors()
            extra["factors"] = write_factors(directory, users.numpy(), items.numpy())
        return extra

    def scorer(self, dataset: Dataset, split: str):
        """On the CPU, a :class:`~visrec.models.factors.DotScorer` over :meth:`dot_factors` (what the
        saved factors hold); on an accelerator the model's own scorer."""
        device = getattr(self, "device", None)
        if not self._per_user_factors() or (device is not None and device.type != "cpu"):
            return super().scorer(dataset, split)
        dataset.targets(split)  # checks the name
        return DotScorer(*(t.numpy() for t in self.dot_factors()))


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


class Regularised(ABC):
    """A model *module* whose objective has a per-batch regularisation term (the Trainer adds
    :meth:`penalty` to the mean pairwise loss of the batch).

    The convention (VBPR's paper, He & McAuley 2016, and BPR's SGD, Rendle et al. 2009): the objective is a
    sum over triplets (u, i, j) of ``-ln sigma(x_uij) + sum over groups of lambda_g / 2 * ||rows of group g
    used by the triplet||^2`` (plus global parameters such as VBPR's E, once per triplet); the Trainer
    minimises its mean over the batch. So each lambda is per triplet: its strength relative to the data
    does not depend on the batch size, and a row is regularised as often as it is used (as in SGD), not on
    every step as Adam's ``weight_decay`` does, which shrinks rarely sampled items at about ``lr`` per step.
    """

    penalty_in_forward: ClassVar[bool] = False
    """True when ``forward(batch, with_penalty=True)`` returns ``(pos, neg, penalty(batch))``, the penalty
    computed from the rows the scores gathered (the Trainer then looks each table up once per step: under
    dense Adam every lookup costs a zero-filled gradient the size of its table)."""

    scores_differences: ClassVar[bool] = False
    """True when ``forward(batch, with_penalty=True, differences=True)`` returns ``(x_ui - x_uj (B, K),
    penalty(batch))``: for a loss of the differences alone (BPR) a model can compute them with less work
    than both scores (VBPR: one projection E (f_i - f_j) instead of E f_i and E f_j)."""

    @abstractmethod
    def penalty(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The batch's mean per-triplet regularisation term (a scalar tensor)."""


@dataclass(frozen=True)
class Contributions:
    """How much each item of the profile a model used drove the scores of some items."""

    profile: np.ndarray
    """(L,) item indices of the profile the model scored with, oldest first."""
    values: np.ndarray
    """(n asked items, L): the contribution of profile item j to asked item i (higher = more)."""
    measure: str
    """What a value is, in words (e.g. "cosine similarity")."""


class ExplainsByProfile(ABC):
    """Which of a user's profile items drove each recommendation (VisRank, CuratorNet)."""

    contribution_measure: ClassVar[str] = "contribution"
    """What a contribution is, in words (shown by the viewer)."""

    @abstractmethod
    def profile_contributions(self, user_idx: int, items) -> Contributions:
        """The contribution of each profile item of ``user_idx`` to the score of each of ``items``."""


class ExplainsByParts(ABC):
    """A score that is a sum of named parts (VBPR: collaborative + visual)."""

    @abstractmethod
    def score_parts(self, user_idx: int, items) -> dict[str, np.ndarray]:
        """Part name -> (len(items),) values; the parts sum to ``score([user_idx])[0, items]``."""


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
    on_epoch: Callable[[dict, int], None] | None = None
    """Called on rank 0 after every epoch (after its checkpoint) with its train_log.jsonl row (incl.
    ``val_<metric>``) and the maximum epochs; an exception it raises ends training (the search prunes
    hopeless trials this way)."""
    trainer: Callable[[TrainsByGradient, Dataset, TrainOptions], list[dict]] | None = None
    """Runs the training loop on a model whose module is built; returns the per-epoch history."""


class TrainsByGradient(ABC):
    """A torch module fitted by the Trainer; the Trainer uses only what is declared here.

    The model provides ``config`` (a ``TrainConfig``), ``module`` (its ``forward(batch)`` returns
    ``(x_ui, x_uj)``; a :class:`Regularised` module also gives the batch's penalty), ``device``, ``info``
    (the Trainer records its summary there), ``scorer(dataset, "validation")`` (what validation scores
    with) and :meth:`sample`.
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

    def param_groups(self) -> list[dict]:
        """The optimiser's parameter groups (torch's ``{"params": [...], "lr": ...}`` dicts; a group
        without ``lr`` uses the config's). Default: one group of every trainable parameter; a model whose
        parts learn at different rates (a CNN and embeddings) declares several."""
        return [{"params": [p for p in self.module.parameters() if p.requires_grad]}]

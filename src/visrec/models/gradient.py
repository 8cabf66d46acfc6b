"""Base of every model trained by gradient descent through the one :class:`~visrec.training.Trainer`.

The Trainer lives above the models (it validates with the evaluation engine), so a gradient model does not
import it: ``fit(dataset, features, TrainOptions(trainer=...))`` builds the module and hands itself to the
trainer through the :class:`~visrec.models.capabilities.TrainsByGradient` interface.
:func:`visrec.training.fit_model` fills in the Trainer; ``visrec train`` and ``train_run`` use it.

A subclass provides:
- ``_dims(dataset, features) -> dict``: the sizes that define the module (stored in ``info['dims']`` so a
  saved model is rebuilt without the dataset);
- ``_build(dims) -> nn.Module``: the module, whose ``forward(batch)`` returns ``(x_ui (B,), x_uj (B, K))``
  for a batch dict of tensors (``users``, ``pos``, ``neg`` and, in profile mode, ``profile``) and whose
  ``score_users(users)`` returns (B, n_items) scores;
- optionally ``_attach(module, dataset, features)`` to copy data (item features) into buffers, and
  ``sample(dataset, n, rng)`` to change the sampler (uniform triplets by default).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from visrec.data.dataset import Dataset
from visrec.devices import resolve_device
from visrec.errors import ConfigError
from visrec.models.base import Recommender
from visrec.models.capabilities import TrainOptions, TrainsByGradient
from visrec.models.config import TrainConfig
from visrec.sampling import profile_triplets, uniform_triplets


class GradientRecommender(TrainsByGradient, Recommender):
    config_class: ClassVar[type[TrainConfig]] = TrainConfig
    sampler: ClassVar[str] = "uniform"
    """``uniform`` (user, pos, neg) or ``profile`` (profile, pos, neg) triplets."""
    item_parameters: ClassVar[tuple[str, ...]] = ()
    """Names of the module's per-item parameters (first dimension = items, e.g. gamma_i, beta_i). The rows
    of items without a train interaction (cold items) start at 0 and their gradient is zeroed, so they
    stay exactly 0 (an unseen item's latent terms are zero, as in VBPR's paper) and nothing is learned
    about an item from the fact that nobody has interacted with it yet."""

    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        self.module: nn.Module | None = None
        self._device: torch.device | None = None

    @property
    def device(self) -> torch.device:
        if self._device is None:
            self._device = resolve_device(self.config.device)
        return self._device

    def to(self, device: str | torch.device) -> GradientRecommender:
        self._device = torch.device(device)
        if self.module is not None:
            self.module.to(self._device)
        return self

    # --- hooks ---------------------------------------------------------------------------------------
    def _dims(self, dataset: Dataset, features) -> dict:
        return {"n_users": dataset.n_users, "n_items": dataset.n_items}

    def _build(self, dims: dict) -> nn.Module:
        raise NotImplementedError

    def _attach(self, module: nn.Module, dataset: Dataset, features) -> None:
        """Copy dataset-derived data into the module's buffers (default: nothing)."""

    def sample(self, dataset: Dataset, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Training triplets (uniform or profile mode, per :attr:`sampler`)."""
        if self.sampler == "profile":
            return profile_triplets(
                dataset, n, rng, self.config.n_negatives, getattr(self.config, "max_profile", 10)
            )
        return uniform_triplets(dataset, n, rng, self.config.n_negatives)

    # --- Recommender --------------------------------------------------------------------------------
    def fit(
        self, dataset: Dataset, features=None, options: TrainOptions | None = None
    ) -> GradientRecommender:
        """Build the module and train it with ``options.trainer`` (see the module docstring)."""
        options = options or TrainOptions()
        if options.trainer is None:
            raise ConfigError(
                f"{self.name} trains by gradient: fit it with visrec.training.fit_model(model, "
                "dataset, features) (or `visrec train`)"
            )
        features = self._feature_source(features)
        self.users, self.items = dataset.users, dataset.items
        dims = self._dims(dataset, features)
        self.info["dims"] = dims
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            self.module = self._build(dims)
        self._attach(self.module, dataset, features)
        hold_untrained_rows(self.module, self.item_parameters, dataset)
        self.module.to(self.device)
        self.history = options.trainer(self, dataset, options)
        self.module.eval()
        return self

    def _score(self, users: torch.Tensor) -> torch.Tensor:
        self.module.eval()
        return self.module.score_users(users.to(self.device))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.module.state_dict())

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module = self._build(self.info["dims"])
        self.module.load_state_dict(state)
        self.module.to(self.device).eval()


def split_groups(module: nn.Module, part, part_lr: float) -> list[dict]:
    """Two optimiser groups for :meth:`TrainsByGradient.param_groups`: the trainable parameters of
    ``module`` outside ``part`` at the config's lr, those of ``part`` (a submodule, or parameters) at
    ``part_lr``."""
    params = part.parameters() if isinstance(part, nn.Module) else part
    inside = [p for p in params if p.requires_grad]
    ids = {id(p) for p in inside}
    rest = [p for p in module.parameters() if p.requires_grad and id(p) not in ids]
    return [{"params": rest}, {"params": inside, "lr": part_lr}]


def untrained_items(dataset: Dataset) -> np.ndarray:
    """Indices of the items with no train interaction (a cold-item split's cold items, catalogue-only
    items, items seen only in held-out baskets)."""
    return np.flatnonzero(np.diff(dataset.train.tocsc().indptr) == 0).astype(np.int64)


def hold_untrained_rows(module: nn.Module, names: tuple[str, ...], dataset: Dataset) -> None:
    """Zero the rows of untrained items in the named per-item parameters and keep them at 0 during
    training (a hook zeroes their accumulated gradient; Adam's moments and weight decay of a zero row with a
    zero gradient stay 0)."""
    rows = torch.from_numpy(untrained_items(dataset))
    if not len(rows):
        return
    params = dict(module.named_parameters())
    for name in names:
        param = params.get(name)
        if param is None:  # an optional part of the module (e.g. DVBPR without a latent term)
            continue
        with torch.no_grad():
            param[rows] = 0.0
        param.register_post_accumulate_grad_hook(_zero_rows_hook(rows))


def _zero_rows_hook(rows: torch.Tensor):
    """A post-accumulate hook: zeroes the held rows of ``param.grad`` in place once the gradient is
    accumulated (a tensor hook must return a new gradient: a full-size copy per step, 7.7 MB for VBPR's
    gamma_i). It runs before DDP's reduction hook, so every rank reduces zeros there."""
    held: dict[torch.device, torch.Tensor] = {}
    mask: dict[torch.device, torch.Tensor] = {}

    def hook(param: torch.Tensor) -> None:
        grad = param.grad
        if grad.device not in held:
            held[grad.device] = rows.to(grad.device)
        if not grad.is_sparse:
            grad.index_fill_(0, held[grad.device], 0.0)
            return
        # a sparse gradient (optimizer=sparse_adam): drop the entries of held rows
        if grad.device not in mask:
            zeros = torch.zeros(grad.shape[0], dtype=torch.bool, device=grad.device)
            mask[grad.device] = zeros.index_fill_(0, held[grad.device], True)
        index, values = grad._indices(), grad._values()
        keep = ~mask[grad.device][index[0]]
        param.grad = torch.sparse_coo_tensor(
            index[:, keep], values[keep], grad.shape, check_invariants=False
        )

    return hook

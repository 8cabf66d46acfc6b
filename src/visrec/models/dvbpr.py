"""DVBPR (Kang, Fang, Wang & McAuley, "Visually-Aware Fashion Recommendation and Design with Generative
Image Models", ICDM 2017): the image representation is learned jointly with the preferences.

    x_ui = theta_u . Phi(X_i)                      (the paper, eq. 3)
    x_ui = theta_u . Phi(X_i) + gamma_u . gamma_i  (the IUI 2021 tutorial; ``latent_dim`` > 0)

Phi is a CNN trained end to end from the item's pixels with the BPR loss (CNN-F by default, see
:mod:`visrec.models.image_encoders`), through the common Trainer.

How the model gets its pixels: ``fit(dataset, features)`` takes ``features`` = a
:class:`~visrec.features.pixel_cache.PixelCache` (what the CLI passes: it calls :func:`open_pixels` on
``--images DIR``) or the path of an image folder (cached under the default cache folder). The pixels are
data, never weights: they are not in the state dict. Training fetches the rows of each batch's distinct
items from the memory-mapped cache. Scoring computes Phi for every item once (batched, eval mode), keeps
the result in the ``item_embeddings`` buffer until the next training step, then ranks by a matrix product.
That buffer is saved with the weights, so a loaded model scores without images; ``info["pixels"]`` keeps
the image folder and size, and the cache is reopened lazily only if the embeddings must be recomputed.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from visrec.data.dataset import Dataset
from visrec.errors import ConfigError
from visrec.features.pixel_cache import PixelCache, open_pixels
from visrec.models.capabilities import DotProduct, FeatureInput, ScoresNewItems, TrainOptions
from visrec.models.config import TrainConfig, check
from visrec.models.features import new_item_content
from visrec.models.gradient import GradientRecommender, split_groups
from visrec.models.image_encoders import ARCHS, build_encoder, load_backbone_weights
from visrec.models.registry import register
from visrec.models.search import Choice, FloatRange

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DVBPRConfig(TrainConfig):
    """DVBPR; defaults from the paper and its released code (K = 100, Adam 1e-4, batch 128, dropout 0.5)."""

    epochs: int = 100
    """Epoch budget: large, so that validation patience ends a run, not the budget (at 10-15 epochs the
    validation curve was still rising; see docs/training.md, "Choosing the defaults")."""
    factors: int = 100
    """K: dimension of theta_u and of the CNN's output Phi(image)."""
    latent_dim: int = 100
    """Dimension of the tutorial's extra gamma_u . gamma_i term; 0 = the paper's form (no latent term)."""
    image_size: int = 224
    """Training resolution (square, pixels); lower it (e.g. 64) to train on a CPU."""
    arch: str = "cnnf"
    """Phi's architecture: cnnf (CNN-F, the paper's) or alexnet (AlexNet widths); ignored with backbone."""
    fc_dim: int = 4096
    """Width of the two hidden fully connected layers of cnnf/alexnet."""
    width: float = 1.0
    """Multiplier of the convolution channel counts of cnnf/alexnet (1.0 = the published widths)."""
    dropout: float = 0.5
    """Dropout on the fully connected layers (the paper: 0.5)."""
    augment: bool = False
    """Random horizontal flip and small random crop of the training images."""
    backbone: str = ""
    """Transfer: a feature backbone (e.g. efficientnet_lite0, resnet18) as Phi with a linear head."""
    backbone_weights: str = "imagenet"
    """Initial weights of ``backbone``: imagenet, none or a local state-dict file."""
    freeze_backbone: bool = False
    """Keep ``backbone``'s weights fixed and train only its linear head (and the factors); without
    ``augment`` each image's backbone vector is then computed once and kept in memory (n_items x the
    backbone's width), so an epoch costs what VBPR's does."""
    eval_batch_size: int = 256
    """Images per batch when computing Phi for every item before scoring."""
    lr: float = 1e-4
    """Adam learning rate (the paper's code: 1e-4)."""
    weight_decay: float = 1e-5
    """Adam weight decay on the mean batch loss. The paper's code adds 1e-3 * ||W||^2 / 2 to a loss
    summed over 128 triplets: 1e-3 / 128 ~ 1e-5 per triplet, the same strength. (1e-3 on a mean loss
    drives the CNN to a constant output on small data.)"""
    batch_size: int = 128
    """Triplets per step (the paper's code: 128); each needs two images through Phi."""
    factor_lr: float | None = 1e-2
    """Adam learning rate of the user and item factors (theta, gamma); None = ``lr`` (one rate, as in the
    paper's code). The CNN (Phi) learns at ``lr``: its 1e-4 from the paper starves the factors when both
    share it (demo data, docs/training.md "Choosing the defaults": test AUC .756 with one rate, .863 with
    factors at 1e-2)."""

    search_space: ClassVar[dict] = {
        "lr": FloatRange(1e-5, 1e-2, log=True),
        "weight_decay": FloatRange(1e-7, 1e-3, log=True),
        "factor_lr": FloatRange(1e-4, 1e-1, log=True),
        "factors": Choice((32, 64, 100)),
    }
    """What ``visrec tune`` varies by default (:mod:`visrec.models.search`)."""

    def validate(self) -> None:
        super().validate()
        check(self.factors >= 1, "factors must be >= 1")
        check(self.latent_dim >= 0, "latent_dim must be >= 0 (0 = the paper's form)")
        check(8 <= self.image_size <= 2048, "image_size must be in [8, 2048]")
        check(self.arch in ARCHS, f"arch must be one of {', '.join(ARCHS)}, not {self.arch!r}")
        check(self.fc_dim >= 1 and self.width > 0, "fc_dim must be >= 1 and width > 0")
        check(0 <= self.dropout < 1, "dropout must be in [0, 1)")
        check(self.eval_batch_size >= 1, "eval_batch_size must be >= 1")
        check(self.factor_lr is None or self.factor_lr > 0, "factor_lr must be > 0")
        check(not self.freeze_backbone or bool(self.backbone), "freeze_backbone needs a backbone")


class PixelSource:
    """Rows of a uint8 (n, S, S, 3) array (a memmap) fetched per batch of item indices.

    ``origin`` names what the array holds (a pixel cache's folder and its images' fingerprint; "" =
    unknown): with the rows and a frozen backbone's weights it keys the backbone vectors kept between fits
    in one process (:func:`pooled_vectors`)."""

    def __init__(self, array: np.ndarray, rows: np.ndarray | None = None, origin: str = ""):
        self.array = array
        self.rows = np.arange(len(array)) if rows is None else np.asarray(rows, dtype=np.int64)
        self.origin = origin

    @classmethod
    def of(cls, cache: PixelCache, items) -> PixelSource:
        """The rows of ``items`` in a pixel cache, its origin its folder and its images' fingerprint."""
        origin = f"{cache.path}:{cache.manifest.get('files_sha256', '')}"
        return cls(cache.pixels, cache.rows(items), origin)

    def __len__(self) -> int:
        return len(self.rows)

    def fetch(self, items: torch.Tensor, device: torch.device) -> torch.Tensor:
        rows = self.rows[items.cpu().numpy()]
        return torch.from_numpy(np.ascontiguousarray(self.array[rows])).to(
            device, non_blocking=True
        )


class DVBPRModule(nn.Module):
    """Scoring maths: theta_u . Phi(image_i) [+ gamma_u . gamma_i]; Phi of all items cached for scoring."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        encoder: nn.Module,
        factors: int,
        latent_dim: int,
        eval_batch_size: int = 256,
    ):
        super().__init__()
        self.encoder = encoder
        self.theta = nn.Embedding(n_users, factors)
        nn.init.uniform_(self.theta.weight, 0.0, 0.01)  # as the paper's code
        self.latent_dim = latent_dim
        if latent_dim:
            self.gamma_user = nn.Embedding(n_users, latent_dim)
            self.gamma_item = nn.Embedding(n_items, latent_dim)
            nn.init.normal_(self.gamma_user.weight, std=0.01)
            nn.init.normal_(self.gamma_item.weight, std=0.01)
        self.register_buffer("item_embeddings", torch.zeros(n_items, factors))
        self.eval_batch_size = eval_batch_size
        self.pixels: PixelSource | None = None  # data, not state: never in the state dict
        self._pooled: tuple[PixelSource, torch.Tensor] | None = None  # a frozen backbone's vectors
        self.stale = True  # item_embeddings no longer match the encoder's weights

    def train(self, mode: bool = True) -> DVBPRModule:
        if mode:
            self.stale = True
        return super().train(mode)

    def embed(self, items: torch.Tensor) -> torch.Tensor:
        """Phi(image) of ``items`` (item indices) in the current mode."""
        if self.pixels is None:
            raise ConfigError(
                "DVBPR has no images attached (fit it with a pixel cache or image folder)"
            )
        device = self.theta.weight.device
        if self.encoder.cacheable:
            return self.encoder.head(self.pooled()[items.to(device)]).float()
        return self.encoder(self.pixels.fetch(items, device)).float()

    def pooled(self) -> torch.Tensor:
        """A frozen backbone's vector of every item, computed once per attached pixel source."""
        if self._pooled is None or self._pooled[0] is not self.pixels:
            device = self.theta.weight.device
            self._pooled = (
                self.pixels,
                pooled_vectors(self.encoder, self.pixels, device, self.eval_batch_size),
            )
        return self._pooled[1]

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        users, pos, neg = batch["users"], batch["pos"], batch["neg"]
        self.stale = self.stale or self.training
        distinct, inverse = torch.unique(torch.cat([pos, neg.reshape(-1)]), return_inverse=True)
        phi = self.embed(distinct)[inverse]
        theta = self.theta(users)
        x_pos = (theta * phi[: len(pos)]).sum(-1)
        x_neg = torch.einsum("bf,bkf->bk", theta, phi[len(pos) :].reshape(*neg.shape, -1))
        if self.latent_dim:
            g = self.gamma_user(users)
            x_pos = x_pos + (g * self.gamma_item(pos)).sum(-1)
            x_neg = x_neg + torch.einsum("bf,bkf->bk", g, self.gamma_item(neg))
        return x_pos, x_neg

    @torch.no_grad()
    def refresh(self) -> None:
        """Recompute ``item_embeddings`` = Phi(image) of every item, in eval mode, batched."""
        was_training = self.training
        self.eval()
        n = self.item_embeddings.shape[0]
        for start in range(0, n, self.eval_batch_size):
            items = torch.arange(start, min(start + self.eval_batch_size, n))
            self.item_embeddings[start : start + len(items)] = self.embed(items)
        self.stale = False
        if was_training:
            super().train(True)  # back to training without marking the fresh embeddings stale

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        if self.stale:
            self.refresh()
        scores = self.theta(users) @ self.item_embeddings.T
        if self.latent_dim:
            scores = scores + self.gamma_user(users) @ self.gamma_item.weight.T
        return scores


@register("dvbpr")
class DVBPR(ScoresNewItems, DotProduct, GradientRecommender):
    """DVBPR: BPR with an image CNN trained end to end (Kang et al., ICDM 2017); the tutorial's best.

    A new item is scored from its pixels: theta_u . Phi(image) (its gamma_i is zero: items without a
    train interaction keep gamma_i = 0, so ``score`` gives them the same)."""

    config_class = DVBPRConfig
    conformance_config = {
        "image_size": 16,
        "factors": 4,
        "latent_dim": 3,
        "fc_dim": 16,
        "width": 0.125,
        "epochs": 1,
        "batch_size": 256,
        "device": "cpu",
    }
    inputs = (FeatureInput("image", "pixels"),)
    item_parameters = ("gamma_item.weight",)

    def _dims(self, dataset: Dataset, features) -> dict:
        return {"n_users": dataset.n_users, "n_items": dataset.n_items}

    def _build(self, dims: dict) -> nn.Module:
        cfg = self.config
        encoder = build_encoder(
            arch=cfg.arch,
            image_size=cfg.image_size,
            out_dim=cfg.factors,
            fc_dim=cfg.fc_dim,
            dropout=cfg.dropout,
            width=cfg.width,
            augment=cfg.augment,
            backbone=cfg.backbone,
            freeze_backbone=cfg.freeze_backbone,
        )
        return DVBPRModule(
            dims["n_users"],
            dims["n_items"],
            encoder,
            cfg.factors,
            cfg.latent_dim,
            cfg.eval_batch_size,
        )

    def _attach(self, module: nn.Module, dataset: Dataset, features) -> None:
        cache = as_pixel_cache(features, dataset.items, self.config.image_size)
        module.pixels = PixelSource.of(cache, dataset.items)
        self.info["pixels"] = {
            "images_dir": str(cache.images_dir),
            "size": cache.size,
            "cache_dir": str(cache.path.parent),
            "items_without_image": [p["item_id"] for p in cache.problems],
        }
        if self.config.backbone and self.config.backbone_weights != "none":
            described = load_backbone_weights(
                module.encoder, self.config.backbone, self.config.backbone_weights
            )
            self.info["backbone_weights"] = described

    def param_groups(self) -> list[dict]:
        """The CNN at ``lr``, the user/item factors at ``factor_lr`` (one group when it is None)."""
        if self.config.factor_lr is None:
            return super().param_groups()
        m = self.module
        factors = nn.ModuleList([m.theta] + ([m.gamma_user, m.gamma_item] if m.latent_dim else []))
        return split_groups(m, factors, self.config.factor_lr)

    def fit(self, dataset: Dataset, features=None, options: TrainOptions | None = None) -> DVBPR:
        if dataset.split.is_cold and not self.config.backbone:
            log.warning(
                "DVBPR's CNN trains from scratch (no backbone): from a few thousand images it may "
                "learn little that carries to new items (MovieLens posters: at chance); with a fixed "
                "pretrained trunk it ranked them as well as any model (--set "
                "backbone=efficientnet_lite0 --set freeze_backbone=true --set latent_dim=0; "
                'docs/training.md "DVBPR on new items")'
            )
        super().fit(dataset, features, options)
        self.module.refresh()  # the saved buffer matches the final (best-epoch) weights
        return self

    def _score(self, users: torch.Tensor) -> torch.Tensor:
        if self.module.stale and self.module.pixels is None:
            self._reopen_pixels()
        return super()._score(users)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        super().load_state_dict(state)
        self.module.stale = False  # item_embeddings were saved with the weights they came from

    # --- beyond the interface ---------------------------------------------------------------------
    @torch.no_grad()
    def dot_factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(users, items) with ``users @ items.T == score()``: ``[theta_u, gamma_u] . [Phi_i, gamma_i]``."""
        phi = self.item_embeddings()
        m = self.module
        users, items = [m.theta.weight], [phi.to(m.theta.weight.device)]
        if m.latent_dim:
            users.append(m.gamma_user.weight)
            items.append(m.gamma_item.weight)
        return torch.cat(users, dim=1).float().cpu(), torch.cat(items, dim=1).float().cpu()

    def item_embeddings(self) -> torch.Tensor:
        """Phi(image) of every item (n_items, K), as used for scoring."""
        self._check_fitted()
        if self.module.stale:
            self.module.refresh()
        return self.module.item_embeddings.detach().clone()

    @torch.no_grad()
    def embed_images(self, pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Phi of new images given as uint8 (n, S, S, 3) at ``image_size`` (e.g. a cold-start item),
        decoded as the pixel cache decodes them; computed ``eval_batch_size`` images at a time."""
        self._check_fitted()
        size = self.config.image_size
        pixels = new_item_content(np.asarray(pixels), "pixels", (size, size, 3))
        self.module.eval()
        step = self.config.eval_batch_size
        parts = [
            self.module.encoder(pixels[lo : lo + step].to(self.device)).float()
            for lo in range(0, len(pixels), step)
        ]
        return (
            torch.cat(parts) if parts else torch.zeros(0, self.config.factors, device=self.device)
        )

    def _check_content(self, content) -> torch.Tensor:
        size = self.config.image_size
        return new_item_content(content, "pixels", (size, size, 3))

    def _score_new_items(self, users: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        phi = self.embed_images(content)
        return self.module.theta(users.to(self.device)) @ phi.T

    def _reopen_pixels(self) -> None:
        meta = self.info.get("pixels")
        if not meta:
            raise ConfigError(
                "DVBPR's item embeddings are out of date and no image folder is known"
            )
        cache = open_pixels(meta["images_dir"], self.items, meta["size"], meta.get("cache_dir"))
        self.module.pixels = PixelSource.of(cache, self.items)


_LAST_POOLED: dict[tuple, torch.Tensor] = {}
CPU_TRUNK_BATCH = 16
"""Images per batch through a frozen trunk on a CPU: small batches stay in the caches (EfficientNet-Lite0
at 224 px, one thread: ~26 images/s at 16 against ~9 at 256)."""


def pooled_vectors(encoder, pixels: PixelSource, device: torch.device, step: int) -> torch.Tensor:
    """A frozen backbone's vectors of every row of ``pixels`` (n, width), ``step`` images at a time
    (at most :data:`CPU_TRUNK_BATCH` on a CPU).

    The last result is kept for the process, keyed by the pixels' origin, their rows and a digest of the
    backbone's weights and buffers: the points of a grid or a search over the head's options reuse it
    instead of running the backbone over every image again (minutes on a CPU)."""
    key = None
    if pixels.origin:
        digest = hashlib.blake2b(digest_size=16)
        for name, tensor in encoder.net.body.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        rows = hashlib.blake2b(pixels.rows.tobytes(), digest_size=16).hexdigest()
        key = (pixels.origin, rows, digest.hexdigest(), str(device))
        if key in _LAST_POOLED:
            return _LAST_POOLED[key]
    n = len(pixels)
    step = step if device.type == "cuda" else min(step, CPU_TRUNK_BATCH)
    parts = [
        encoder.pooled(pixels.fetch(torch.arange(lo, min(lo + step, n)), device))
        for lo in range(0, n, step)
    ]
    vectors = torch.cat(parts)
    if key is not None:
        _LAST_POOLED.clear()
        _LAST_POOLED[key] = vectors
    return vectors


def as_pixel_cache(features, items, size: int) -> PixelCache:
    """``features`` as a :class:`PixelCache` of ``items`` at ``size`` px (a cache, or an image folder)."""
    if isinstance(features, (str, os.PathLike)):
        return open_pixels(Path(features), items, size)
    if not isinstance(features, PixelCache):
        raise ConfigError(
            "DVBPR trains from pixels: pass a PixelCache (visrec.features.pixel_cache."
            f"open_pixels) or an image folder, not {type(features).__name__}"
        )
    if features.size != size:
        raise ConfigError(
            f"the pixel cache holds {features.size}px images but image_size is {size}"
        )
    return features

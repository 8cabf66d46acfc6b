"""CuratorNet (Messina, Cartagena, Parra, Dominguez & Parra, "CuratorNet: visually-aware recommendation of
art images", 2020).

A shared item tower maps an item's visual features to a 200-d vector (two SELU layers, d -> 200 -> 200). The
user tower reads the item vectors of the user's profile, concatenates their max-pool and mean-pool (400-d)
and maps them through SELU layers 300 -> 300 -> 200. score(profile, i) = user(profile) . item(i). Users enter
only through their profile, so a new user is scored from the item indices they liked (cold start).
Trained with BPR on (profile, positive, negative) triplets from the tutorial's profile mode (the default)
or the paper's guided sampling strategies (:mod:`visrec.sampling.curatornet`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from visrec.data.dataset import Dataset
from visrec.models.capabilities import (
    Contributions,
    DotProductProfiles,
    ExplainsByProfile,
    FeatureInput,
    ScoresNewItems,
    ScoresProfiles,
)
from visrec.models.config import TrainConfig, check
from visrec.models.features import gather_rows, item_features, new_item_content
from visrec.models.gradient import GradientRecommender
from visrec.models.registry import register
from visrec.models.search import Choice
from visrec.sampling import pad_profiles, profile_triplets
from visrec.sampling.curatornet import N_STRATEGIES, guided_triplets
from visrec.sampling.guided import build_guided_index

SAMPLING = ("profile", "guided")


@dataclass(frozen=True)
class CuratorNetConfig(TrainConfig):
    """CuratorNet: the paper's architecture; training settings as TrainConfig unless stated."""

    item_dim: int = 64
    """Width of both item-tower layers and of the user vector (200 in the paper; 64 measured better on
    MovieLens posters and the demo data, docs/training.md "Choosing the defaults")."""
    lr: float = 2e-3
    """Adam learning rate (the tutorial: 1e-3; 2e-3 with item_dim 64 measured on MovieLens posters)."""
    weight_decay: float = 4e-4
    """Adam weight decay (L2; the tutorial: 1e-4)."""
    center: bool = True
    """Subtract the catalogue's mean feature vector from every item's features (and a new item's) before
    the item tower (False: the tutorial's raw features). Measured on MovieLens posters: warm test AUC .759
    raw, .770 centred (docs/training.md "Centring the features")."""
    user_hidden: int = 300
    """Width of the two hidden user-tower layers (300 in the paper)."""
    max_profile: int = 10
    """A profile is the user's most recent (at most) this many train items, in training and scoring."""
    sampling: str = "profile"
    """profile (the tutorial's profile mode: up to max_profile items before a train positive, uniform
    negatives) or guided (the paper's six strategies). Measured on MovieLens posters: warm test AUC .867
    profile, .770 guided; new items .577 and .499 (docs/training.md "CuratorNet's sampling")."""
    strategy_shares: tuple = (1.0,) * N_STRATEGIES
    """Guided sampling: relative share of strategies 1-6 (equal in the CuratorNet notebook)."""
    n_clusters: int = 100
    """Guided sampling: k of the k-means visual clusters (capped at the number of items)."""
    fine_grained: float = 0.6
    """Guided sampling: probability that a negative comes from the positive's own visual cluster."""

    def __post_init__(self):
        object.__setattr__(self, "strategy_shares", tuple(float(s) for s in self.strategy_shares))
        super().__post_init__()

    legacy: ClassVar[dict] = {"center": False}  # a run saved before centring used raw features

    search_space: ClassVar[dict] = TrainConfig.search_space | {
        "item_dim": Choice((64, 128, 200)),
        "sampling": Choice(SAMPLING),
    }
    """What ``visrec tune`` varies by default (:mod:`visrec.models.search`)."""

    def validate(self) -> None:
        super().validate()
        check(self.item_dim >= 1 and self.user_hidden >= 1, "item_dim and user_hidden must be >= 1")
        check(self.max_profile >= 1, "max_profile must be >= 1")
        check(
            self.sampling in SAMPLING,
            f"sampling must be one of {', '.join(SAMPLING)}, not {self.sampling!r}",
        )
        shares = tuple(self.strategy_shares)
        check(
            len(shares) == N_STRATEGIES and all(s >= 0 for s in shares) and sum(shares) > 0,
            f"strategy_shares must be {N_STRATEGIES} non-negative numbers, not all 0; got {shares}",
        )
        check(self.n_clusters >= 1, "n_clusters must be >= 1")
        check(0.0 <= self.fine_grained <= 1.0, "fine_grained must be in [0, 1]")


def _selu_stack(*widths: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(widths, widths[1:], strict=False):
        linear = nn.Linear(a, b)
        nn.init.kaiming_normal_(linear.weight, nonlinearity="linear")  # LeCun normal, as SELU wants
        nn.init.zeros_(linear.bias)
        layers += [linear, nn.SELU()]
    return nn.Sequential(*layers)


class CuratorNetModule(nn.Module):
    """Scoring maths. Buffers: item ``features`` (n_items, d) and each user's last ``profiles``."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        input_dim: int,
        item_dim: int,
        user_hidden: int,
        max_profile: int,
    ):
        super().__init__()
        self.item_tower = _selu_stack(input_dim, item_dim, item_dim)
        self.user_tower = _selu_stack(2 * item_dim, user_hidden, user_hidden, item_dim)
        # the items' features minus ``offset`` (the catalogue mean with ``center``, else zeros), which
        # is subtracted from a new item's features too
        self.register_buffer("features", torch.zeros(n_items, input_dim))
        self.register_buffer("offset", torch.zeros(input_dim))
        self.register_buffer("profiles", torch.full((n_users, max_profile), -1, dtype=torch.long))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a model or checkpoint saved before ``center`` existed holds raw features: offset zero
        state_dict.setdefault(prefix + "offset", torch.zeros_like(self.offset))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def user_vectors(self, item_vectors: torch.Tensor, profiles: torch.Tensor) -> torch.Tensor:
        """(B, item_dim) user vectors from profiles (B, L) padded with -1 (masked max and mean pools)."""
        mask = (profiles >= 0).unsqueeze(-1)
        emb = item_vectors[profiles.clamp(min=0)]  # (B, L, D)
        pooled_max = emb.masked_fill(~mask, float("-inf")).amax(1)
        count = mask.sum(1).clamp(min=1)
        pooled_mean = emb.masked_fill(~mask, 0.0).sum(1) / count
        pooled_max = torch.where(mask.any(1), pooled_max, torch.zeros_like(pooled_max))
        return self.user_tower(torch.cat([pooled_max, pooled_mean], dim=1))

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        profile, pos, neg = batch["profile"], batch["pos"], batch["neg"]
        items = torch.cat([profile.reshape(-1).clamp(min=0), pos, neg.reshape(-1)])
        unique, inverse = torch.unique(items, return_inverse=True)
        vectors = self.item_tower(
            gather_rows(self.features, unique)
        )  # each distinct item once per batch
        n_prof = profile.numel()
        local = inverse[:n_prof].reshape(profile.shape).masked_fill(profile < 0, -1)
        user = self.user_vectors(vectors, local)
        pos_vec = vectors[inverse[n_prof : n_prof + len(pos)]]
        neg_vec = vectors[inverse[n_prof + len(pos) :]].reshape(*neg.shape, -1)
        return (user * pos_vec).sum(-1), torch.einsum("bd,bkd->bk", user, neg_vec)

    def score_profile_tensor(self, profiles: torch.Tensor) -> torch.Tensor:
        """(B, n_items) scores; the item tower runs over all items once per call."""
        vectors = self.item_tower(self.features)
        return self.user_vectors(vectors, profiles) @ vectors.T

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        return self.score_profile_tensor(self.profiles[users])


@register("curatornet")
class CuratorNet(
    ScoresNewItems, ScoresProfiles, DotProductProfiles, ExplainsByProfile, GradientRecommender
):
    """CuratorNet: visually-aware, profile-based; serves new users from the items of their profile and
    new items from their features (the item tower has no per-item parameter: every item is "new")."""

    config_class = CuratorNetConfig
    conformance_config = {
        "epochs": 1,
        "item_dim": 8,
        "user_hidden": 8,
        "n_clusters": 6,
        "batch_size": 128,
        "triplets_per_epoch": 512,
        "device": "cpu",
    }
    inputs = (FeatureInput("image", "pooled"),)
    contribution_measure = "score drop without the profile item"

    def _dims(self, dataset: Dataset, features) -> dict:
        self._feature_array, _ = item_features(features, dataset.items)
        return {
            "n_users": dataset.n_users,
            "n_items": dataset.n_items,
            "input_dim": int(self._feature_array.shape[1]),
        }

    def _build(self, dims: dict) -> nn.Module:
        cfg = self.config
        return CuratorNetModule(
            dims["n_users"],
            dims["n_items"],
            dims["input_dim"],
            cfg.item_dim,
            cfg.user_hidden,
            cfg.max_profile,
        )

    def _attach(self, module: nn.Module, dataset: Dataset, features) -> None:
        cfg = self.config
        if cfg.center:
            module.offset.copy_(self._feature_array.mean(dim=0))
        module.features.copy_(self._feature_array - module.offset)
        # a known user's stored profile: the last items of everything before the test basket
        windows = dataset.history("test").windows(np.arange(dataset.n_users), cfg.max_profile)
        module.profiles.copy_(torch.from_numpy(windows))
        self._guided = None
        if cfg.sampling == "guided":
            self._guided = build_guided_index(
                self._feature_array.numpy(), dataset.item_groups, cfg.n_clusters, cfg.seed
            )
        del self._feature_array

    def sample(self, dataset: Dataset, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        cfg = self.config
        if cfg.sampling == "profile":
            out = profile_triplets(dataset, n, rng, cfg.n_negatives, cfg.max_profile)
        else:
            out = guided_triplets(
                dataset,
                n,
                rng,
                self._guided,
                shares=cfg.strategy_shares,
                n_negatives=cfg.n_negatives,
                max_profile=cfg.max_profile,
                fine_grained=cfg.fine_grained,
            )
        out.pop("users", None)  # the model sees users only through their profiles
        return out

    def _check_content(self, content) -> torch.Tensor:
        return new_item_content(content, "pooled", (self.info["dims"]["input_dim"],))

    def _score_new_items(self, users: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        m = self.module.eval()
        user = m.user_vectors(m.item_tower(m.features), m.profiles[users.to(self.device)])
        return user @ m.item_tower(content.to(self.device) - m.offset).T

    def _score_profiles(self, profiles: list[np.ndarray]) -> torch.Tensor:
        self.module.eval()
        padded = torch.from_numpy(pad_profiles(profiles, self.config.max_profile))
        return self.module.score_profile_tensor(padded.to(self.device))

    @torch.no_grad()
    def dot_factors(self, batch: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
        """(users, items) with ``users @ items.T == score()``: user tower output . item tower output."""
        self._check_fitted()
        m = self.module.eval()
        items = m.item_tower(m.features)
        users = [
            m.user_vectors(items, m.profiles[start : start + batch])
            for start in range(0, m.profiles.shape[0], batch)
        ]
        return torch.cat(users).float().cpu(), items.float().cpu()

    @torch.no_grad()
    def profile_vectors(self, profiles: list[np.ndarray]) -> torch.Tensor:
        """User vectors of new profiles (item indices), to query the item vectors of :meth:`dot_factors`."""
        self._check_fitted()
        m = self.module.eval()
        padded = torch.from_numpy(pad_profiles(profiles, self.config.max_profile)).to(self.device)
        return m.user_vectors(m.item_tower(m.features), padded).float().cpu()

    @torch.no_grad()
    def profile_contributions(self, user_idx: int, items) -> Contributions:
        """Leave one out: how much each of ``items``' score drops when one item of the profile the user
        tower reads (the ``max_profile`` most recent items before the test basket) is left out."""
        self._check_fitted()
        m = self.module.eval()
        row = m.profiles[int(user_idx)]
        slots = torch.nonzero(row >= 0).flatten()
        variants = row.repeat(len(slots) + 1, 1)  # row 0: the whole profile
        variants[torch.arange(1, len(slots) + 1, device=row.device), slots] = -1
        vectors = m.item_tower(m.features)
        asked = torch.as_tensor(np.asarray(items, dtype=np.int64), device=vectors.device)
        scores = m.user_vectors(vectors, variants) @ vectors[asked].T  # (1 + L, len(items))
        drops = (scores[:1] - scores[1:]).T
        return Contributions(
            row[slots].cpu().numpy(),
            drops.cpu().numpy().astype(np.float64),
            self.contribution_measure,
        )

"""VBPR: Visual Bayesian Personalized Ranking (He & McAuley, AAAI 2016).

x_ui = beta_i + gamma_u . gamma_i + theta_u . (E f_i) + beta' . f_i          (paper, eq. 2 + visual bias)

with latent factors gamma (K), visual factors theta_u (D), a learned projection E (D x F) of the fixed
CNN features f_i (F) and a visual bias vector beta' (F). Trained with the BPR loss -ln sigma(x_ui - x_uj)
by the one Trainer. The features are a registered buffer, so a saved model scores without the feature
store. Speed: a batch projects each *distinct* item's features once (the tutorial projects them once per
triplet), and ``score_users`` projects all items once per call.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from visrec.data.dataset import Dataset
from visrec.models.capabilities import DotProduct, FeatureInput
from visrec.models.config import TrainConfig, check
from visrec.models.features import feature_shape, item_features
from visrec.models.gradient import GradientRecommender
from visrec.models.registry import register


@dataclass(frozen=True)
class VBPRConfig(TrainConfig):
    """VBPR; defaults are the IUI 2021 tutorial's."""

    factors: int = 200
    """Latent (non-visual) dimension K of gamma_u and gamma_i (the tutorial: 200)."""
    visual_factors: int = 100
    """Visual dimension D of theta_u and of the projection E f_i (the tutorial: 100)."""
    lr: float = 1e-3
    """Adam learning rate (the tutorial: 1e-3)."""
    weight_decay: float = 1e-4
    """Adam weight decay (L2) on every parameter (the tutorial: 1e-4)."""
    init_std: float = 0.01
    """Standard deviation of the normal initialisation of gamma, theta and E (biases start at 0)."""

    def validate(self) -> None:
        super().validate()
        check(self.factors >= 0, "factors must be >= 0")
        check(self.visual_factors >= 1, "visual_factors must be >= 1")
        check(self.factors + self.visual_factors >= 1, "factors + visual_factors must be >= 1")
        check(self.init_std > 0, "init_std must be > 0")


class VBPRModule(nn.Module):
    """Scoring maths of VBPR over a fixed (n_items, F) feature buffer."""

    dense_ratio: float = 128.0
    """Score a batch as one dense product of its distinct users x distinct items when that matrix has at
    most ``dense_ratio`` entries per (triplet, item) pair; otherwise gather one row per triplet."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        n_features: int,
        factors: int,
        visual_factors: int,
        init_std: float = 0.01,
    ):
        super().__init__()
        self.register_buffer("features", torch.zeros(n_items, n_features))
        self.gamma_user = nn.Embedding(n_users, factors)
        self.gamma_item = nn.Embedding(n_items, factors)
        self.theta_user = nn.Embedding(n_users, visual_factors)
        self.beta_item = nn.Parameter(torch.zeros(n_items))
        self.E = nn.Parameter(torch.empty(visual_factors, n_features))
        self.beta_visual = nn.Parameter(torch.zeros(n_features))
        for weight in (
            self.gamma_user.weight,
            self.gamma_item.weight,
            self.theta_user.weight,
            self.E,
        ):
            nn.init.normal_(weight, std=init_std)

    def visual(self, items: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(E f_i (n, D), beta'.f_i (n,)) of the given item indices (all items when None)."""
        feats = self.features if items is None else self.features[items]
        return feats @ self.E.T, feats @ self.beta_visual

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        users = batch["users"]
        items = torch.cat(
            [batch["pos"].reshape(-1, 1), batch["neg"].reshape(len(users), -1)], dim=1
        )
        if items.numel() >= self.features.shape[0]:  # most items occur: project them all, no sort
            distinct, where = None, items
            gamma_i, beta_i = self.gamma_item.weight, self.beta_item
        else:
            distinct, where = torch.unique(items, return_inverse=True)
            gamma_i, beta_i = self.gamma_item(distinct), self.beta_item[distinct]
        proj, vbias = self.visual(distinct)
        # one row per distinct item [gamma_i, E f_i, beta_i + beta'.f_i] against [gamma_u, theta_u, 1]:
        # a single gather (embedding backward) instead of one per term
        table = torch.cat([gamma_i, proj, (beta_i + vbias)[:, None]], dim=1)
        distinct_users, user_where = torch.unique(users, return_inverse=True)
        if len(distinct_users) * len(table) <= self.dense_ratio * where.numel():
            # few distinct (user, item) rows for many triplets (the tutorial's batch of 42,000):
            # one dense product of the distinct rows, then a gather of scalars, is far cheaper than
            # gathering a 301-wide row per triplet (2.3x per step on a 2-core CPU)
            rows = self._user_rows(distinct_users, table)
            x = (rows @ table.T)[user_where[:, None], where]
        else:
            x = (self._user_rows(users, table)[:, None, :] * F.embedding(where, table)).sum(-1)
        return x[:, 0], x[:, 1:]

    def _user_rows(self, users: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """[gamma_u, theta_u, 1], the user side of the single product with the item rows."""
        ones = torch.ones(len(users), 1, dtype=table.dtype, device=table.device)
        return torch.cat([self.gamma_user(users), self.theta_user(users), ones], dim=1)

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        proj, vbias = self.visual()  # once per call, for every item
        return (
            self.gamma_user(users) @ self.gamma_item.weight.T
            + self.theta_user(users) @ proj.T
            + (self.beta_item + vbias)[None, :]
        )


@register("vbpr")
class VBPR(DotProduct, GradientRecommender):
    """VBPR: BPR-MF plus a visual preference theta_u . (E f_i) and a visual bias beta' . f_i."""

    config_class = VBPRConfig
    conformance_config = {
        "epochs": 1,
        "factors": 3,
        "visual_factors": 2,
        "batch_size": 256,
        "device": "cpu",
    }
    inputs = (FeatureInput("image", "pooled"),)

    def _dims(self, dataset: Dataset, features) -> dict:
        n_features = int(feature_shape(features)[-1])  # aligned once, in _attach
        return {"n_users": dataset.n_users, "n_items": dataset.n_items, "n_features": n_features}

    def _build(self, dims: dict) -> nn.Module:
        cfg = self.config
        return VBPRModule(
            dims["n_users"],
            dims["n_items"],
            dims["n_features"],
            cfg.factors,
            cfg.visual_factors,
            cfg.init_std,
        )

    def _attach(self, module: nn.Module, dataset: Dataset, features) -> None:
        module.features.copy_(item_features(features, dataset.items)[0])

    @torch.no_grad()
    def dot_factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(users, items) with ``users @ items.T == score()`` (He & McAuley 2016, Eq. 1 as one product).

        ``[gamma_u, theta_u, 1] . [gamma_i, E f_i, beta_i + beta'.f_i]`` (for a MIPS index).
        """
        self._check_fitted()
        m = self.module
        proj, vbias = m.visual()
        ones = torch.ones(m.gamma_user.weight.shape[0], 1, device=proj.device)
        users = torch.cat([m.gamma_user.weight, m.theta_user.weight, ones], dim=1)
        items = torch.cat([m.gamma_item.weight, proj, (m.beta_item + vbias)[:, None]], dim=1)
        return users.float().cpu(), items.float().cpu()

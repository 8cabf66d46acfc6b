"""BPR-MF (Rendle et al., UAI 2009): x_ui = gamma_u . gamma_i + beta_i, trained with the BPR loss."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from visrec.models.capabilities import DotProduct
from visrec.models.config import TrainConfig, check
from visrec.models.gradient import GradientRecommender
from visrec.models.registry import register


@dataclass(frozen=True)
class BPRConfig(TrainConfig):
    """BPR matrix factorisation."""

    factors: int = 64
    """Latent dimension of user and item factors."""
    lr: float = 5e-3
    """Adam learning rate."""
    weight_decay: float = 1e-5
    """Adam weight decay (L2)."""

    def validate(self) -> None:
        super().validate()
        check(self.factors >= 1, "factors must be >= 1")


class BPRModule(nn.Module):
    """Scoring maths of BPR-MF."""

    def __init__(self, n_users: int, n_items: int, factors: int):
        super().__init__()
        self.user = nn.Embedding(n_users, factors)
        self.item = nn.Embedding(n_items, factors)
        self.item_bias = nn.Embedding(n_items, 1)
        for emb in (self.user, self.item):
            nn.init.normal_(emb.weight, std=0.1)
        nn.init.zeros_(self.item_bias.weight)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        u = self.user(batch["users"])  # (B, F)
        pos = (u * self.item(batch["pos"])).sum(-1) + self.item_bias(batch["pos"]).squeeze(-1)
        neg_items = batch["neg"]  # (B, K)
        neg = torch.einsum("bf,bkf->bk", u, self.item(neg_items)) + self.item_bias(
            neg_items
        ).squeeze(-1)
        return pos, neg

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        return self.user(users) @ self.item.weight.T + self.item_bias.weight.T


@register("bpr")
class BPR(DotProduct, GradientRecommender):
    """BPR-MF: the non-visual latent-factor baseline of VBPR's paper."""

    config_class = BPRConfig
    conformance_config = {"epochs": 1, "factors": 4, "batch_size": 256, "device": "cpu"}

    def _build(self, dims: dict) -> nn.Module:
        return BPRModule(dims["n_users"], dims["n_items"], self.config.factors)

    @torch.no_grad()
    def dot_factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(users (n_users, F+1), items (n_items, F+1)) with ``users @ items.T == score()``.

        ``[p_u, 1] . [q_i, b_i]``: the item bias rides in an extra column (for a MIPS index).
        """
        self._check_fitted()
        m = self.module
        ones = torch.ones(m.user.weight.shape[0], 1, device=m.user.weight.device)
        users = torch.cat([m.user.weight, ones], dim=1)
        return users.float().cpu(), torch.cat(
            [m.item.weight, m.item_bias.weight], dim=1
        ).float().cpu()

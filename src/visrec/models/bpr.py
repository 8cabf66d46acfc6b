"""BPR-MF (Rendle et al., UAI 2009): x_ui = gamma_u . gamma_i + beta_i, trained with the BPR loss.

Regularised per triplet (lambda_theta for the factors, lambda_beta for the biases), the same convention
as VBPR, so VBPR with its visual part at zero is this model. It cannot score an item it never saw (it has
no content to go on): items without a train interaction keep gamma_i = 0 and beta_i = 0, so they all
score 0 (a constant: AUC 0.5 on cold items by the tie rule), and it does not implement
:class:`~visrec.models.capabilities.ScoresNewItems`, so cold-item evaluation reports it as unable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from visrec.models.capabilities import DotProduct, Regularised
from visrec.models.config import TrainConfig, check
from visrec.models.gradient import GradientRecommender
from visrec.models.registry import register
from visrec.models.search import Choice, FloatRange


@dataclass(frozen=True)
class BPRConfig(TrainConfig):
    """BPR matrix factorisation."""

    factors: int = 64
    """Latent dimension of user and item factors."""
    lr: float = 5e-3
    """Adam learning rate."""
    reg_factors: float = 1e-4
    """lambda_theta: per-triplet L2 of the factors used (p_u, q_i, q_j): the loss of a batch is the mean
    over its triplets of -ln sigma(x_uij) + lambda / 2 * ||rows||^2, so it does not depend on the batch
    size (docs/training.md "Regularisation")."""
    reg_bias: float = 1e-4
    """lambda_beta: per-triplet L2 of the item biases used (b_i, b_j)."""
    weight_decay: float = 0.0
    """Adam weight decay on every parameter at every step (the old convention; 0: the lambdas above
    regularise instead). Saved configs that set it keep working."""

    search_space: ClassVar[dict] = {
        "lr": FloatRange(1e-4, 1e-1, log=True),
        "reg_factors": FloatRange(1e-5, 1.0, log=True),
        "factors": Choice((16, 32, 64, 128)),
    }
    """What ``visrec tune`` varies by default (:mod:`visrec.models.search`): the per-triplet lambda, not
    ``weight_decay`` (0 by default: the lambdas regularise)."""

    def validate(self) -> None:
        super().validate()
        check(self.factors >= 1, "factors must be >= 1")
        check(self.reg_factors >= 0 and self.reg_bias >= 0, "reg_factors and reg_bias must be >= 0")


class BPRModule(Regularised, nn.Module):
    """Scoring maths of BPR-MF, and its per-triplet regularisation."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        factors: int,
        reg_factors: float = 0.0,
        reg_bias: float = 0.0,
    ):
        super().__init__()
        self.reg_factors, self.reg_bias = reg_factors, reg_bias
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

    def penalty(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean over triplets of lambda_theta / 2 (|p_u|^2 + |q_i|^2 + |q_j|^2) + lambda_beta / 2 (b_i^2 +
        b_j^2) (with several negatives, their mean). Rendle et al. 2009, the LearnBPR update."""
        users, pos, neg = batch["users"], batch["pos"], batch["neg"]
        factors = (
            sq(self.user(users))
            + sq(self.item(pos))
            + sq(self.item(neg)).reshape(len(pos), -1).mean(1)
        )
        biases = sq(self.item_bias(pos)) + sq(self.item_bias(neg)).reshape(len(pos), -1).mean(1)
        return 0.5 * (self.reg_factors * factors + self.reg_bias * biases).mean()

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        return self.user(users) @ self.item.weight.T + self.item_bias.weight.T


def sq(rows: torch.Tensor) -> torch.Tensor:
    """Squared L2 norm over the last dimension."""
    return rows.pow(2).sum(-1)


@register("bpr")
class BPR(DotProduct, GradientRecommender):
    """BPR-MF: the non-visual latent-factor baseline of VBPR's paper."""

    config_class = BPRConfig
    conformance_config = {"epochs": 1, "factors": 4, "batch_size": 256, "device": "cpu"}
    item_parameters = ("item.weight", "item_bias.weight")

    def _build(self, dims: dict) -> nn.Module:
        cfg = self.config
        return BPRModule(
            dims["n_users"], dims["n_items"], cfg.factors, cfg.reg_factors, cfg.reg_bias
        )

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

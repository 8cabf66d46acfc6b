"""VBPR: Visual Bayesian Personalized Ranking (He & McAuley, AAAI 2016).

x_ui = beta_i + gamma_u . gamma_i + theta_u . (E f_i) + beta' . f_i          (paper, eq. 2 + visual bias)

with latent factors gamma (K), visual factors theta_u (D), a learned projection E (D x F) of the fixed
CNN features f_i (F) and a visual bias vector beta' (F). Trained with the BPR loss -ln sigma(x_ui - x_uj)
by the one Trainer, regularised per triplet as in the paper (lambda_theta for gamma and theta, lambda_beta
for beta_i, lambda_E for E and beta'; :meth:`VBPRModule.penalty`): with E = 0 and beta' = 0 this is BPR-MF
with the same convention. A new item is scored with theta_u . (E f_i) + beta' . f_i, its gamma_i and beta_i
being zero (the paper's cold-start setting). The features are a registered buffer, so a saved model scores without the feature
store. Speed: a batch projects each *distinct* item's features once (the tutorial projects them once per
triplet; small batches, whose items are nearly all distinct, project each item slot without sorting),
on a CPU the (triplet, item) scores are computed pair by pair (:mod:`visrec.models.pairs`) rather than as a
product of the batch's users x items, ``score_users`` projects all items once per call, and the training
forward returns the penalty computed from the rows it gathered (one lookup per table and step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from visrec.data.dataset import Dataset
from visrec.models.bpr import sq
from visrec.models.capabilities import (
    DotProduct,
    ExplainsByParts,
    FeatureInput,
    Regularised,
    ScoresNewItems,
)
from visrec.models.config import TrainConfig, check
from visrec.models.features import feature_shape, gather_rows, item_features, new_item_content
from visrec.models.gradient import GradientRecommender, split_groups
from visrec.models.pair_differences import pair_differences
from visrec.models.pairs import pair_dots
from visrec.models.registry import register
from visrec.models.search import Choice, FloatRange


@dataclass(frozen=True)
class VBPRConfig(TrainConfig):
    """VBPR; defaults are the IUI 2021 tutorial's."""

    factors: int = 200
    """Latent (non-visual) dimension K of gamma_u and gamma_i (the tutorial: 200)."""
    visual_factors: int = 100
    """Visual dimension D of theta_u and of the projection E f_i (the tutorial: 100)."""
    lr: float = 1e-3
    """Adam learning rate (the tutorial: 1e-3)."""
    reg_factors: float = 1e-4
    """lambda_theta (the paper): per-triplet L2 of gamma_u, theta_u, gamma_i, gamma_j. The loss of a batch
    is the mean over its triplets of -ln sigma(x_uij) + lambda / 2 * ||rows used||^2, so the value means
    the same whatever the batch size (docs/training.md "Regularisation")."""
    reg_bias: float = 1e-4
    """lambda_beta (the paper): per-triplet L2 of the item biases beta_i, beta_j."""
    reg_visual: float = 0.0
    """lambda_E (the paper): L2 of the projection E and of the visual bias beta', once per triplet (the
    paper and the tutorial leave them practically unregularised: the tutorial's weight decay of 1e-4 on a
    loss summed over 42,000 triplets is ~2e-9 per triplet)."""
    weight_decay: float = 0.0
    """Adam weight decay on every parameter at every step (the tutorial's 1e-4 applied to a loss summed
    over 42,000 triplets; on visrec's mean loss it was ~42,000x stronger). 0: the lambdas regularise.
    Saved configs that set it keep working."""
    init_std: float = 0.01
    """Standard deviation of the normal initialisation of gamma, theta and E (biases start at 0)."""
    visual_lr: float | None = None
    """Adam learning rate of the visual projection E and the visual bias beta'; None = ``lr``. Adam moves
    every weight by about its rate per step, so a linear map of F-dimensional features moves a score by
    about rate x |f|_1 per step (~2 with 1,280-d EfficientNet features at lr 5e-3), hundreds of times
    faster than an item's own factors (docs/training.md "VBPR's visual rate")."""

    search_space: ClassVar[dict] = {
        "lr": FloatRange(1e-4, 1e-1, log=True),
        "reg_factors": FloatRange(1e-5, 1.0, log=True),
        "factors": Choice((16, 32, 64, 128, 200)),
        "visual_factors": Choice((16, 32, 64, 100)),
        "visual_lr": FloatRange(1e-6, 1e-2, log=True),
    }
    """What ``visrec tune`` varies by default (:mod:`visrec.models.search`): BPR-MF's space (the same
    lr, lambda_theta and latent sizes, so both get one budget) plus the visual dimension and rate."""

    def validate(self) -> None:
        super().validate()
        check(self.factors >= 0, "factors must be >= 0")
        check(self.visual_factors >= 1, "visual_factors must be >= 1")
        check(self.factors + self.visual_factors >= 1, "factors + visual_factors must be >= 1")
        check(self.init_std > 0, "init_std must be > 0")
        check(self.visual_lr is None or self.visual_lr > 0, "visual_lr must be > 0")
        check(
            min(self.reg_factors, self.reg_bias, self.reg_visual) >= 0,
            "reg_factors, reg_bias and reg_visual must be >= 0",
        )


class VBPRModule(Regularised, nn.Module):
    """Scoring maths of VBPR over a fixed (n_items, F) feature buffer, and its per-triplet L2 terms."""

    sparse_pairs: bool | None = None
    """Score a batch's (triplet, item) pairs with :func:`visrec.models.pairs.pair_dots` (work in
    proportion to the pairs; at the tutorial's batch of 42,000 a VBPR step on one CPU thread is 2.4x
    faster than with the dense product) or, False, by gathering one user row per triplet. None: the
    former on a CPU, the latter on a GPU."""
    dense_ratio: float = 128.0
    """Score a batch as one dense product of its distinct users x distinct items when that matrix has at
    most ``dense_ratio`` entries per (triplet, item) pair, rather than one gathered row per triplet."""
    dense_ratio_sparse: float = 16.0
    """``dense_ratio`` against :func:`~visrec.models.pairs.pair_dots` (one CPU thread, 301-wide rows:
    ~45 ns per dense entry for its product and the two of its backward, ~760 ns per pair)."""
    slots_up_to: int = 256
    """Up to this many item slots per batch (triplets x (1 + negatives)), project each slot's features as
    it is instead of sorting out the distinct items: at batch 100 ~97% of the slots are distinct (the peer
    harness's data), so ``torch.unique`` and the gathers it needs cost more than the few rows it saves."""
    differences_up_to: float = 0.5
    """For BPR, project each (triplet, negative) pair's feature difference while the batch has at most
    this many pairs per item (a batch of B triplets has ~n_items (1 - exp(-2B / n_items)) distinct items to
    project otherwise: more rows than B until B nears the catalogue's size)."""
    hand_backward: bool = True
    """Compute the pair differences and their penalty with
    :func:`visrec.models.pair_differences.pair_differences` (the same forward, a hand-written backward
    of ~20 operators instead of autograd's ~60) on the CPU while no table takes sparse gradients (on a
    GPU autograd's embedding backward sums each row's gradients in a fixed order, ``index_add_`` does
    not)."""
    penalty_in_forward = True
    scores_differences = True

    def __init__(
        self,
        n_users: int,
        n_items: int,
        n_features: int,
        factors: int,
        visual_factors: int,
        init_std: float = 0.01,
        lambdas: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ):
        super().__init__()
        self.lambdas = lambdas  # (theta, beta, E): training settings, not state
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
        """(E f_i (n, D), beta'.f_i (n,)) of the given item indices (all items when None).

        For all items, one product with [E; beta'] padded with zero rows to a multiple of 8: the feature
        matrix is read once instead of twice, forward and backward (~1.05-1.18x per VBPR step at batch
        42,000 on one CPU thread, where it is 79 MB; unpadded, the 101-column product was no faster)."""
        if items is not None:
            feats = gather_rows(self.features, items)
            return feats @ self.E.T, feats @ self.beta_visual
        return self._project(self.features)

    def _project(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(E x, beta'.x) of feature rows x as one product with [E; beta'] padded with zero rows to a
        multiple of 8."""
        rows = self.E.shape[0]
        pad = self.E.new_zeros(-(rows + 1) % 8, self.E.shape[1])
        both = features @ torch.cat([self.E, self.beta_visual[None, :], pad]).T
        return both[:, :rows], both[:, rows]

    def forward(
        self, batch: dict[str, torch.Tensor], with_penalty: bool = False, differences: bool = False
    ) -> tuple[torch.Tensor, ...]:
        """(x_ui (B,), x_uj (B, negatives)): true scores of each positive and negative; with
        ``with_penalty``, also :meth:`penalty` of the batch, computed from the rows gathered for the
        scores (one lookup per table and step: under dense Adam each lookup costs a full-size gradient).

        With ``differences``: ``(x_ui - x_uj (B, negatives), penalty)`` (``with_penalty`` required). While
        the batch has at most ``differences_up_to`` pairs per item, the difference is computed as VBPR's
        eq. 1 written for a pair, ``[gamma_u, theta_u, 1] . [gamma_i - gamma_j, E (f_i - f_j), beta_i -
        beta_j + beta'.(f_i - f_j)]``: one projection per negative instead of one per slot, half the
        arithmetic of the step's two largest products at one negative (the same maths, rounded
        differently: tests compare it with the scores' difference)."""
        users = batch["users"]
        items = torch.cat(
            [batch["pos"].reshape(-1, 1), batch["neg"].reshape(len(users), -1)], dim=1
        )
        if differences:
            if not with_penalty:
                raise ValueError("differences=True returns the penalty too: pass with_penalty=True")
            pairs = items.shape[0] * (items.shape[1] - 1)
            if pairs <= self.differences_up_to * self.features.shape[0]:
                tables = (self.gamma_user, self.theta_user, self.gamma_item)
                if (
                    self.hand_backward
                    and self.E.device.type == "cpu"
                    and not any(t.sparse for t in tables)
                ):
                    return pair_differences(self, users, items)
                return self._differences(users, items)
            pos, neg, penalty = self.forward(batch, with_penalty=True)
            return pos[:, None] - neg, penalty
        table, where, item_reg = self._item_table(items, with_penalty)
        if where is None:  # one table row per item slot, in order: no gather
            rows = self._user_rows(users, table)
            x = (table.view(*items.shape, -1) * rows[:, None, :]).sum(-1)  # 3x faster than bmm
            user_where = None
        else:
            rows, x, user_where = self._scores(users, table, where)
        if not with_penalty:
            return x[:, 0], x[:, 1:]
        return x[:, 0], x[:, 1:], self._penalty(rows, user_where, item_reg, where, items.shape)

    def _differences(
        self, users: torch.Tensor, items: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_ui - x_uj (B, K), penalty)`` from the pairs' feature differences (``items`` (B, 1 + K):
        positive first), each table looked up once."""
        n, slots = items.shape
        flat = items.reshape(-1)
        feats = gather_rows(self.features, flat).view(n, slots, -1)
        proj, vbias = self._project((feats[:, :1] - feats[:, 1:]).reshape(n * (slots - 1), -1))
        gamma_i, beta_i = (
            self.gamma_item(flat).view(n, slots, -1),
            self.beta_item[flat].view(n, slots),
        )
        lam_theta, lam_beta, _ = self.lambdas
        item_reg = lam_theta * sq(gamma_i) + lam_beta * beta_i.pow(2)
        # item side per (triplet, negative): [gamma_i - gamma_j, E (f_i - f_j), beta_i - beta_j + ...]
        item = torch.cat(
            [
                gamma_i[:, :1] - gamma_i[:, 1:],
                proj.view(n, slots - 1, -1),
                (beta_i[:, :1] - beta_i[:, 1:] + vbias.view(n, slots - 1))[..., None],
            ],
            dim=2,
        )
        rows = self._user_rows(users, item)
        x = (item * rows[:, None, :]).sum(-1)
        return x, self._penalty(rows, None, item_reg, None, items.shape)

    def _item_table(self, items: torch.Tensor, with_penalty: bool = False) -> tuple:
        """Rows [gamma_i, E f_i, beta_i + beta'.f_i], where each item slot's row is (None: row k is
        slot k) and, with ``with_penalty``, each row's lambda_theta |gamma_i|^2 + lambda_beta beta_i^2:
        every item when most occur, each slot's own row for small batches, else the distinct items (each
        projected once)."""
        if items.numel() >= self.features.shape[0]:  # most items occur: project them all, no sort
            picked, where = None, items
            gamma_i, beta_i = self.gamma_item.weight, self.beta_item
        else:
            if items.numel() <= self.slots_up_to:
                picked, where = items.reshape(-1), None
            else:
                picked, where = torch.unique(items, return_inverse=True)
            gamma_i, beta_i = self.gamma_item(picked), self.beta_item.index_select(0, picked)
        proj, vbias = self.visual(picked)
        reg = None
        if with_penalty:
            lam_theta, lam_beta, _ = self.lambdas
            reg = lam_theta * sq(gamma_i) + lam_beta * beta_i.pow(2)
        # one row per item [gamma_i, E f_i, beta_i + beta'.f_i] against [gamma_u, theta_u, 1]:
        # a single product (and gather) instead of one per term
        return torch.cat([gamma_i, proj, (beta_i + vbias)[:, None]], dim=1), where, reg

    def _scores(
        self, users: torch.Tensor, table: torch.Tensor, where: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(user rows, scores (B, slots), the user row of each triplet or None when one per triplet)."""
        distinct_users, user_where = torch.unique(users, return_inverse=True)
        sparse = table.device.type == "cpu" if self.sparse_pairs is None else self.sparse_pairs
        dense_ratio = self.dense_ratio_sparse if sparse else self.dense_ratio
        dense = len(distinct_users) * len(table) <= dense_ratio * where.numel()
        if dense or sparse:  # one row per distinct user
            rows = self._user_rows(distinct_users, table)
            if dense:  # few distinct (user, item) cells for many pairs: one product, then a gather
                return rows, (rows @ table.T)[user_where[:, None], where], user_where
            # work in proportion to the pairs, not to users x items (visrec.models.pairs)
            return rows, pair_dots(rows, table, user_where, where), user_where
        rows = self._user_rows(users, table)
        return rows, (rows[:, None, :] * F.embedding(where, table)).sum(-1), None

    def _user_rows(self, users: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """[gamma_u, theta_u, 1], the user side of the single product with the item rows."""
        ones = torch.ones(len(users), 1, dtype=table.dtype, device=table.device)
        return torch.cat([self.gamma_user(users), self.theta_user(users), ones], dim=1)

    def _penalty(
        self,
        rows: torch.Tensor,
        user_where: torch.Tensor | None,
        item_reg: torch.Tensor,
        where: torch.Tensor | None,
        shape: torch.Size,
    ) -> torch.Tensor:
        """:meth:`penalty` from the rows the scores used: each row's squared norm once, then one value
        per triplet / slot (the same sum as the per-triplet formula, rounded in another order)."""
        lam_theta, _, lam_e = self.lambdas
        user_reg = lam_theta * sq(rows[:, :-1])  # gamma_u and theta_u: the row minus its constant 1
        user_reg = user_reg if user_where is None else user_reg[user_where]
        item_reg = item_reg.view(shape) if where is None else item_reg[where]
        total = (user_reg + item_reg[:, 0] + item_reg[:, 1:].mean(1)).mean()
        if lam_e:
            total = total + lam_e * (self.E.pow(2).sum() + self.beta_visual.pow(2).sum())
        return 0.5 * total

    def penalty(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean over triplets of lambda_theta / 2 (|gamma_u|^2 + |theta_u|^2 + |gamma_i|^2 + |gamma_j|^2)
        + lambda_beta / 2 (beta_i^2 + beta_j^2), plus lambda_E / 2 (|E|^2 + |beta'|^2) (He & McAuley
        2016, the objective of eq. 4 and its SGD updates; several negatives: their mean)."""
        lam_theta, lam_beta, lam_e = self.lambdas
        users, pos, neg = batch["users"], batch["pos"], batch["neg"].reshape(len(batch["pos"]), -1)
        factors = (
            sq(self.gamma_user(users))
            + sq(self.theta_user(users))
            + sq(self.gamma_item(pos))
            + sq(self.gamma_item(neg)).mean(1)
        )
        biases = self.beta_item[pos].pow(2) + self.beta_item[neg].pow(2).mean(1)
        total = (lam_theta * factors + lam_beta * biases).mean()
        if lam_e:
            total = total + lam_e * (self.E.pow(2).sum() + self.beta_visual.pow(2).sum())
        return 0.5 * total

    def score_new(self, users: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Scores of new items from their features alone: theta_u . (E f) + beta' . f (gamma_i = 0 and
        beta_i = 0 for an item never seen in training, as in the paper)."""
        return (
            self.theta_user(users) @ (features @ self.E.T).T
            + (features @ self.beta_visual)[None, :]
        )

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        proj, vbias = self.visual()  # once per call, for every item
        return (
            self.gamma_user(users) @ self.gamma_item.weight.T
            + self.theta_user(users) @ proj.T
            + (self.beta_item + vbias)[None, :]
        )


@register("vbpr")
class VBPR(ScoresNewItems, DotProduct, ExplainsByParts, GradientRecommender):
    """VBPR: BPR-MF plus a visual preference theta_u . (E f_i) and a visual bias beta' . f_i.

    New items (never seen in training) are scored from their features with the visual terms alone; an item
    of the vocabulary without train interactions keeps gamma_i = 0 and beta_i = 0, so ``score`` gives it
    the same."""

    config_class = VBPRConfig
    conformance_config = {
        "epochs": 1,
        "factors": 3,
        "visual_factors": 2,
        "batch_size": 256,
        "device": "cpu",
    }
    inputs = (FeatureInput("image", "pooled"),)
    item_parameters = ("gamma_item.weight", "beta_item")

    def _dims(self, dataset: Dataset, features) -> dict:
        n_features = int(feature_shape(features)[-1])  # aligned once, in _attach
        return {"n_users": dataset.n_users, "n_items": dataset.n_items, "n_features": n_features}

    def param_groups(self) -> list[dict]:
        """Everything at ``lr``; E and beta' at ``visual_lr`` when it is set (one group otherwise)."""
        if self.config.visual_lr is None:
            return super().param_groups()
        m = self.module
        return split_groups(m, [m.E, m.beta_visual], self.config.visual_lr)

    def _build(self, dims: dict) -> nn.Module:
        cfg = self.config
        return VBPRModule(
            dims["n_users"],
            dims["n_items"],
            dims["n_features"],
            cfg.factors,
            cfg.visual_factors,
            cfg.init_std,
            (cfg.reg_factors, cfg.reg_bias, cfg.reg_visual),
        )

    def _attach(self, module: nn.Module, dataset: Dataset, features) -> None:
        module.features.copy_(item_features(features, dataset.items)[0])

    def _check_content(self, content) -> torch.Tensor:
        return new_item_content(content, "pooled", (self.info["dims"]["n_features"],))

    def _score_new_items(self, users: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        self.module.eval()
        return self.module.score_new(users.to(self.device), content.to(self.device))

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

    @torch.no_grad()
    def score_parts(self, user_idx: int, items) -> dict[str, np.ndarray]:
        """x_ui split as in He & McAuley (2016, Eq. 2): ``collaborative`` = beta_i + gamma_u . gamma_i and
        ``visual`` = theta_u . (E f_i) + beta' . f_i; they sum to the score."""
        self._check_fitted()
        m = self.module.eval()
        device = m.beta_item.device
        user = torch.tensor([int(user_idx)], device=device)
        asked = torch.as_tensor(np.asarray(items, dtype=np.int64), device=device)
        proj, vbias = m.visual(asked)
        collaborative = m.beta_item[asked] + (m.gamma_user(user) @ m.gamma_item(asked).T)[0]
        visual = (m.theta_user(user) @ proj.T)[0] + vbias
        return {
            "collaborative": collaborative.cpu().numpy().astype(np.float64),
            "visual": visual.cpu().numpy().astype(np.float64),
        }

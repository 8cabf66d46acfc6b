"""ACF: Attentive Collaborative Filtering (Chen et al., SIGIR 2017, "Attentive Collaborative Filtering:
Multimedia Recommendation with Item- and Component-Level Attention").

A user is represented by their embedding plus an attention-weighted sum over their profile items
(the paper's eq. 1-2); the weights come from two attention levels:

- component level (eq. 6-7): for profile item l with spatial regions x_lm (the h x w cells of a CNN feature
  map, each reduced from the backbone's d channels to the model dimension by a linear layer),
  b(i, l, m) = w2 . ReLU(W2u u_i + W2x x_lm + b2); beta = softmax over the item's regions;
  x_bar_l = sum_m beta(i, l, m) x_lm;
- item level (eq. 4-5): a(i, l) = w1 . ReLU(W1u u_i + W1v v_l + W1p p_l + W1x x_bar_l + b1);
  alpha = softmax over the profile items.

x_ij = (u_i + sum_l alpha(i, l) p_l) . v_j, with v the item latent vectors and p the auxiliary item vectors.
The constant offsets c1, c2 of the paper are left out: a softmax is invariant to them.

New items (visrec's extension; the paper uses the features on the profile side only): the target vector is
v_j = v_j^latent + W_c xbar_j, where xbar_j is the mean of item j's regions of the CNN map and W_c a learned
(dim x d) projection that starts at zero (so training starts from the paper's model). An item without train
interactions keeps v_j^latent = 0 and p_j = 0, so it is scored from its features alone, and
:meth:`ACF.score_new_items` scores an unseen item's spatial map the same way. A model saved before W_c
existed loads with W_c = 0 (its old scores).

Profiles are batched tensors left-padded with -1 (see :mod:`visrec.sampling.triplets`); both softmaxes are
masked, so padding gets exactly zero weight and a padded batch scores like the unpadded users one by one.
A known user is scored with their last ``max_profile`` train items (stored in the model at fit time).
A new user (:meth:`ACF.score_profiles`) has no embedding: u is replaced by zeros (documented choice: with
weight decay, zero is where uninformative user vectors shrink to, it adds no parameter that training
cannot reach, and the new user's vector is then the attended profile alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from visrec.data.dataset import Dataset
from visrec.errors import DataError
from visrec.models.capabilities import Explains, FeatureInput, ScoresNewItems, ScoresProfiles
from visrec.models.config import TrainConfig, check
from visrec.models.features import feature_shape, gather_rows, item_features, new_item_content
from visrec.models.gradient import GradientRecommender, split_groups
from visrec.models.registry import register
from visrec.models.search import Choice, FloatRange
from visrec.sampling import pad_profiles

FEATURE_DTYPES = {"float16": torch.float16, "float32": torch.float32}


@dataclass(frozen=True)
class ACFConfig(TrainConfig):
    """Attentive Collaborative Filtering; defaults from the VisRec tutorial."""

    epochs: int = 100
    """Epoch budget: large, so that validation patience ends a run, not the budget (at 10-15 epochs the
    validation curve was still rising; see docs/training.md, "Choosing the defaults")."""
    dim: int = 128
    """Dimension of user/item vectors, of the reduced regions and of both attention layers."""
    max_profile: int = 10
    """Profile items attended to: the (up to) this many items before the positive in training, a user's
    last train items when scoring."""
    batch_size: int = 256
    """Triplets per optimisation step."""
    lr: float = 1e-3
    """Adam learning rate."""
    weight_decay: float = 1e-5
    """Adam weight decay (L2)."""
    embedding_lr: float | None = 1e-2
    """Adam learning rate of the user, item and context embeddings; None = ``lr`` (one rate). The
    attention layers and the region reduction learn at ``lr`` (demo data, docs/training.md "Choosing the
    defaults": validation AUC .829 with one rate, .855 with the embeddings at 1e-2)."""
    feature_dtype: str = "float16"
    """Storage type of the spatial feature buffer (float16 halves memory; compute is float32)."""
    score_block: int = 64
    """Users scored at once inside one score call (bounds memory: block x max_profile x regions x d)."""

    search_space: ClassVar[dict] = TrainConfig.search_space | {
        "embedding_lr": FloatRange(1e-4, 1e-1, log=True),
        "dim": Choice((32, 64, 128)),
    }
    """What ``visrec tune`` varies by default (:mod:`visrec.models.search`)."""

    def validate(self) -> None:
        super().validate()
        check(self.dim >= 1, "dim must be >= 1")
        check(self.max_profile >= 1, "max_profile must be >= 1")
        check(
            self.feature_dtype in FEATURE_DTYPES,
            f"feature_dtype must be one of {', '.join(FEATURE_DTYPES)}, not {self.feature_dtype!r}",
        )
        check(self.score_block >= 1, "score_block must be >= 1")
        check(self.embedding_lr is None or self.embedding_lr > 0, "embedding_lr must be > 0")


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax over ``dim`` restricted to ``mask``: masked entries get exactly 0, an all-masked slice
    gives all zeros (not NaN). Computed in float32 (safe under fp16/bf16 autocast)."""
    logits = logits.float().masked_fill(~mask, float("-inf"))
    top = logits.amax(dim, keepdim=True).detach().clamp_min(-1e30)
    weights = torch.exp(logits - top)
    return weights / weights.sum(dim, keepdim=True).clamp_min(1e-30)


class ACFModule(nn.Module):
    """Scoring maths of ACF; spatial features live in a (n_items, regions, d) buffer."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        regions: int,
        feat_dim: int,
        dim: int,
        max_profile: int,
        feature_dtype: torch.dtype = torch.float16,
    ):
        super().__init__()
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)  # v: target-item vectors
        self.context = nn.Embedding(n_items, dim)  # p: auxiliary vectors of profile items
        for emb in (self.user, self.item, self.context):
            nn.init.normal_(emb.weight, std=0.1)
        self.reduce = nn.Linear(feat_dim, dim)  # region features -> model dimension
        self.comp_user = nn.Linear(dim, dim)  # W2u (+ b2)
        self.comp_region = nn.Linear(dim, dim, bias=False)  # W2x
        self.comp_out = nn.Linear(dim, 1, bias=False)  # w2
        self.item_user = nn.Linear(dim, dim)  # W1u (+ b1)
        self.item_parts = nn.Linear(3 * dim, dim, bias=False)  # [W1v W1p W1x]
        self.item_out = nn.Linear(dim, 1, bias=False)  # w1
        self.target_content = nn.Linear(feat_dim, dim, bias=False)  # W_c: new items' content term
        nn.init.zeros_(self.target_content.weight)
        self.register_buffer("pooled", torch.zeros(n_items, feat_dim), persistent=False)
        self.register_buffer(
            "features", torch.zeros(n_items, regions, feat_dim, dtype=feature_dtype)
        )
        self.register_buffer("region_mask", torch.ones(n_items, regions, dtype=torch.bool))
        self.register_buffer("profiles", torch.full((n_users, max_profile), -1, dtype=torch.long))

    @torch.no_grad()
    def pool_features(self) -> None:
        """``pooled`` = each item's mean region vector (over its valid regions; 0 without an image)."""
        mask = self.region_mask.to(torch.float32)
        step = 4096
        for lo in range(0, self.features.shape[0], step):
            feats = self.features[lo : lo + step].float()
            weights = mask[lo : lo + step, :, None]
            total = (feats * weights).sum(1)
            self.pooled[lo : lo + step] = total / weights.sum(1).clamp_min(1.0)

    def target_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """v_j (latent + content) of ``items`` (all when None)."""
        if items is None:
            return self.item.weight + self.target_content(self.pooled)
        return self.item(items) + self.target_content(gather_rows(self.pooled, items))

    def attend(self, u: torch.Tensor, profile: torch.Tensor):
        """User vectors for ``u`` (B, dim) and ``profile`` (B, L) item indices (-1 = padding).

        Returns (user vectors (B, dim), component attention (B, L, regions), item attention (B, L)).
        Region features are reduced once per distinct item of the batch, and the user's terms once
        per user, before they are broadcast over profile slots and regions.
        """
        valid = profile >= 0
        uniq, inverse = torch.unique(profile.clamp_min(0), return_inverse=True)
        regions = self.reduce(gather_rows(self.features, uniq).float())  # (U, R, dim)
        region_keys = self.comp_region(regions)  # (U, R, dim)
        hidden = torch.relu(region_keys[inverse] + self.comp_user(u)[:, None, None, :])
        mask = self.region_mask[uniq][inverse] & valid[..., None]  # (B, L, R)
        beta = masked_softmax(self.comp_out(hidden).squeeze(-1), mask)
        x_bar = (beta[..., None] * regions[inverse]).sum(-2)  # (B, L, dim)
        idx = profile.clamp_min(0)
        ctx = self.context(idx)
        parts = torch.cat([self.item(idx), ctx, x_bar], dim=-1)
        hidden = torch.relu(self.item_parts(parts) + self.item_user(u)[:, None, :])
        alpha = masked_softmax(self.item_out(hidden).squeeze(-1), valid)
        return u + (alpha[..., None] * ctx).sum(1), beta, alpha

    def user_vectors(self, u: torch.Tensor, profile: torch.Tensor, block: int) -> torch.Tensor:
        """Attended user vectors (B, dim), ``block`` users at a time."""
        parts = [
            self.attend(u[lo : lo + block], profile[lo : lo + block])[0]
            for lo in range(0, len(u), block)
        ]
        return torch.cat(parts) if parts else u

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        users, _, _ = self.attend(self.user(batch["users"]), batch["profile"])
        pos = (users * self.target_vectors(batch["pos"])).sum(-1)
        neg = torch.einsum("bf,bkf->bk", users, self.target_vectors(batch["neg"]))
        return pos, neg

    def explain(
        self, u: torch.Tensor, profile: torch.Tensor, block: int
    ) -> dict[str, torch.Tensor]:
        """Scores of all items and both attention maps, computed ``block`` users at a time."""
        parts = [
            self.attend(u[lo : lo + block], profile[lo : lo + block])
            for lo in range(0, max(len(u), 1), block)
        ]
        users, beta, alpha = (torch.cat(column) for column in zip(*parts, strict=True))
        return {
            "scores": users @ self.target_vectors().T,
            "component_attention": beta,
            "item_attention": alpha,
            "profile": profile,
        }

    def score_users(self, users: torch.Tensor, block: int = 64) -> torch.Tensor:
        return self.explain(self.user(users), self.profiles[users], block)["scores"]


@register("acf")
class ACF(ScoresNewItems, ScoresProfiles, Explains, GradientRecommender):
    """Attentive Collaborative Filtering over spatial CNN features (Chen et al., SIGIR 2017)."""

    config_class = ACFConfig
    conformance_config = {"epochs": 1, "dim": 8, "batch_size": 256, "device": "cpu"}
    inputs = (FeatureInput("image", "spatial"),)
    sampler = "profile"
    item_parameters = ("item.weight", "context.weight")

    def _dims(self, dataset: Dataset, features) -> dict:
        shape = _spatial_shape(features)
        return {
            "n_users": dataset.n_users,
            "n_items": dataset.n_items,
            "grid": list(shape[1:3]),
            "feat_dim": int(shape[3]),
            "max_profile": self.config.max_profile,
        }

    def _build(self, dims: dict) -> nn.Module:
        h, w = dims["grid"]
        return ACFModule(
            dims["n_users"],
            dims["n_items"],
            h * w,
            dims["feat_dim"],
            self.config.dim,
            dims["max_profile"],
            FEATURE_DTYPES[self.config.feature_dtype],
        )

    def _attach(self, module: nn.Module, dataset: Dataset, features) -> None:
        array, absent = item_features(features, dataset.items, spatial=True, missing="zero")
        n, h, w, d = array.shape
        module.features.copy_(array.reshape(n, h * w, d))
        module.region_mask.fill_(True)
        module.region_mask[torch.from_numpy(absent)] = False  # no image: no region to attend to
        module.pool_features()
        # a known user's stored profile: the last items of everything before the test basket
        windows = dataset.history("test").windows(
            np.arange(dataset.n_users), self.config.max_profile
        )
        module.profiles.copy_(torch.from_numpy(windows))

    def param_groups(self) -> list[dict]:
        """Attention and region reduction at ``lr``, the embeddings at ``embedding_lr`` (if set)."""
        if self.config.embedding_lr is None:
            return super().param_groups()
        m = self.module
        embeddings = nn.ModuleList([m.user, m.item, m.context])
        return split_groups(m, embeddings, self.config.embedding_lr)

    def _score(self, users: torch.Tensor) -> torch.Tensor:
        self.module.eval()
        return self.module.score_users(users.to(self.device), self.config.score_block)

    def _score_profiles(self, profiles: list[np.ndarray]) -> torch.Tensor:
        return self._explain_profiles(profiles)["scores"]

    def _score_histories(self, users: torch.Tensor, profiles: list[np.ndarray]) -> torch.Tensor:
        """Known users: their embedding u plus the attended ``profiles`` (evaluation's histories)."""
        padded = torch.from_numpy(pad_profiles(profiles, self.config.max_profile)).to(self.device)
        self.module.eval()
        u = self.module.user(users.to(self.device))
        return self.module.explain(u, padded, self.config.score_block)["scores"]

    def _check_content(self, content) -> torch.Tensor:
        h, w = self.grid
        return new_item_content(content, "spatial", (h, w, self.info["dims"]["feat_dim"]))

    def _score_new_items(self, users: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        m = self.module.eval()
        idx = users.to(self.device)
        user = m.user_vectors(m.user(idx), m.profiles[idx], self.config.score_block)
        # stored as the feature buffer stores maps, then averaged over the regions (all valid)
        maps = content.to(self.device).to(FEATURE_DTYPES[self.config.feature_dtype]).float()
        return user @ m.target_content(maps.flatten(1, 2).mean(1)).T

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore; a model saved before the content term existed gets W_c = 0 (its old scores)."""
        if "target_content.weight" not in state:
            dims = self.info["dims"]
            state = dict(state)
            state["target_content.weight"] = torch.zeros(self.config.dim, dims["feat_dim"])
        super().load_state_dict(state)
        self.module.pool_features()

    # --- attention maps for the viewer ------------------------------------------------------------
    @torch.no_grad()
    def score(self, users, *, return_attention: bool = False):
        """Scores (B, n_items); with ``return_attention`` a pair (scores, maps) where maps is
        :meth:`explain`'s dict without ``scores``."""
        if not return_attention:
            return super().score(users)
        maps = self.explain(users)
        return maps.pop("scores"), maps

    @torch.no_grad()
    def score_profiles(self, profiles: list[np.ndarray], *, return_attention: bool = False):
        """Scores of new users from their profiles (user vector = zeros, see the module docstring)."""
        scores = super().score_profiles(profiles)
        if not return_attention:
            return scores
        maps = self._explain_profiles([np.asarray(p, dtype=np.int64) for p in profiles])
        maps.pop("scores")
        return scores, maps

    @torch.no_grad()
    def explain(self, users) -> dict[str, torch.Tensor]:
        """Why each user gets their scores: ``scores`` (B, n_items), ``profile`` (B, L) the attended item
        indices (-1 = padding), ``item_attention`` (B, L) (0 on padding, sums to 1 over the profile),
        ``component_attention`` (B, L, h*w) (each real item's row sums to 1 over its regions; reshape
        with ``self.grid`` to draw it over the image)."""
        self._check_fitted()
        idx = torch.as_tensor(np.asarray(users), dtype=torch.long).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self.users)):
            raise IndexError(f"user index out of range [0, {len(self.users)})")
        idx = idx.to(self.device)
        self.module.eval()
        return _to_cpu(
            self.module.explain(
                self.module.user(idx), self.module.profiles[idx], self.config.score_block
            )
        )

    @property
    def grid(self) -> tuple[int, int]:
        """(h, w) of the spatial feature maps the component attention is over."""
        h, w = self.info["dims"]["grid"]
        return int(h), int(w)

    def _explain_profiles(self, profiles: list[np.ndarray]) -> dict[str, torch.Tensor]:
        padded = torch.from_numpy(pad_profiles(profiles, self.config.max_profile)).to(self.device)
        self.module.eval()
        zeros = torch.zeros(len(profiles), self.config.dim, device=self.device)
        return _to_cpu(self.module.explain(zeros, padded, self.config.score_block))


def _to_cpu(maps: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in maps.items()}


def _spatial_shape(features) -> tuple[int, ...]:
    """(n, h, w, d) of a spatial FeatureStore or array, without loading a store's array."""
    shape = feature_shape(features)
    if len(shape) != 4:
        raise DataError(
            f"ACF needs spatial features (n, h, w, d); got shape {shape} "
            "(extract with a spatial layer, e.g. --layer layer4)"
        )
    return shape

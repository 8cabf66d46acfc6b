"""VisRank: content-based ranking by visual similarity to the user's profile.

score(u, i) = AGG over j in profile(u) of cos(f_i, f_j), where f are the items' visual features and AGG is
``maximum`` (the IUI 2021 tutorial's VisRank, after Kang et al.'s "visual similarity" baseline and
Messina et al., "Content-based artwork recommendation", UMUAI 2019), ``average`` or ``average_top_k`` (the
mean of the k largest similarities). Nothing is learned: fitting subtracts the catalogue's mean feature
vector (``center``, the default; the tutorial's raw cosines with ``center=false``), L2-normalises the
features and keeps the profiles. Scoring is a blocked matrix product: for a block of users and a slice of
their profiles, (users x profile items x all items) cosines are reduced on the fly, so neither an items x
items matrix nor a whole-profile similarity tensor is ever held beyond ``block_elements`` numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from visrec.data.dataset import Dataset
from visrec.devices import resolve_device
from visrec.models.base import Recommender
from visrec.models.capabilities import (
    Contributions,
    ExplainsByProfile,
    FeatureInput,
    ScoresNewItems,
    ScoresProfiles,
)
from visrec.models.config import Config, check
from visrec.models.features import item_features, new_item_content
from visrec.models.registry import register
from visrec.models.search import Choice

AGGREGATIONS = ("maximum", "average", "average_top_k")


@dataclass(frozen=True)
class VisRankConfig(Config):
    """VisRank (no training: cosine similarity of visual features, aggregated over the profile)."""

    aggregation: str = "maximum"
    """How a candidate's cosines to the profile items are combined: maximum (the tutorial), average or
    average_top_k (mean of the k largest)."""
    k: int = 3
    """For average_top_k: how many of the largest similarities are averaged (fewer if the profile is shorter)."""
    max_profile: int = 0
    """Use only the user's most recent max_profile train items; 0 = the whole train profile (the tutorial)."""
    center: bool = True
    """Subtract the catalogue's mean feature vector before the cosines (False: the tutorial's raw cosines).
    Pooled CNN features share a large common component, so raw cosines are all high and favour items that
    look like the average item ("hubs"); centring makes the similarity about what sets items apart
    (MovieLens posters: warm test AUC .492 raw, .589 centred; new items .471 raw, .596 centred;
    docs/training.md "Centring the features")."""
    block_elements: int = 1 << 24
    """Memory bound: most (users x profile items x items) cosines computed at once (float32 numbers)."""
    device: str = "auto"
    """Where scores are computed: auto (CUDA when available), cpu, cuda or cuda:N."""

    legacy: ClassVar[dict] = {"center": False}  # a run saved before centring used raw cosines

    search_space: ClassVar[dict] = {
        "aggregation": Choice(("maximum", "average", "average_top_k")),
        "k": Choice((1, 3, 5, 10)),
        "center": Choice((False, True)),
    }
    """What ``visrec tune`` varies by default (:mod:`visrec.models.search`)."""

    def validate(self) -> None:
        check(
            self.aggregation in AGGREGATIONS,
            f"aggregation must be one of {', '.join(AGGREGATIONS)}, not {self.aggregation!r}",
        )
        check(self.k >= 1, "k must be >= 1")
        check(self.max_profile >= 0, "max_profile must be >= 0 (0 = whole profile)")
        check(self.block_elements >= 1, "block_elements must be >= 1")


def normalize_rows(features: torch.Tensor) -> torch.Tensor:
    """L2-normalise each row; all-zero rows stay zero (cosine 0 with everything)."""
    norms = features.norm(dim=1, keepdim=True)
    return features / norms.clamp(min=1e-12)


def profile_scores(
    unit: torch.Tensor,
    indptr: np.ndarray,
    items: np.ndarray,
    aggregation: str,
    k: int = 3,
    block_elements: int = 1 << 24,
    candidates: torch.Tensor | None = None,
) -> torch.Tensor:
    """Aggregated cosines of every candidate to each profile, shape (n_profiles, n_candidates).

    ``unit``: (n_items, d) L2-normalised features; profile p is ``items[indptr[p]:indptr[p + 1]]`` (not
    empty). ``candidates``: L2-normalised features of the items to score (default: ``unit``, every item;
    new items' features for cold-start items). Profiles are processed longest first in blocks of at most
    ``block_elements`` cosines.
    """
    candidates = unit if candidates is None else candidates
    lengths = np.diff(indptr)
    n_items = candidates.shape[0]
    out = torch.empty((len(lengths), n_items), dtype=unit.dtype, device=unit.device)
    order = np.argsort(-lengths, kind="stable")
    start = 0
    while start < len(order):
        longest = int(lengths[order[start]])
        n_rows = max(1, min(len(order) - start, block_elements // max(1, n_items * longest)))
        rows = order[start : start + n_rows]
        padded = _pad_block(indptr, items, rows, longest)
        step = max(1, block_elements // (n_rows * n_items))
        out[torch.as_tensor(rows, device=unit.device)] = _reduce_block(
            unit, torch.as_tensor(padded, device=unit.device), aggregation, k, step, candidates
        )
        start += n_rows
    return out


def gather_segments(
    items: np.ndarray, starts: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate ``items[starts[r]:starts[r] + lengths[r]]`` for every r: (indptr, flat items)."""
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    local = np.arange(indptr[-1]) - np.repeat(indptr[:-1], lengths)
    return indptr, items[np.repeat(starts, lengths) + local].astype(np.int64)


def _pad_block(indptr: np.ndarray, items: np.ndarray, rows: np.ndarray, width: int) -> np.ndarray:
    """Profiles ``rows`` as a (len(rows), width) index matrix, right-padded with -1."""
    starts, lengths = indptr[rows], np.diff(indptr)[rows]
    offsets = np.arange(width)
    valid = offsets[None, :] < lengths[:, None]
    positions = np.where(valid, starts[:, None] + offsets[None, :], 0)
    return np.where(valid, items[positions], -1).astype(np.int64)


def _reduce_block(
    unit: torch.Tensor,
    padded: torch.Tensor,
    aggregation: str,
    k: int,
    step: int,
    candidates: torch.Tensor,
) -> torch.Tensor:
    """Stream over profile positions ``step`` at a time, keeping a running max / sum / top-k."""
    n_rows, n_items = padded.shape[0], candidates.shape[0]
    counts = (padded >= 0).sum(dim=1, keepdim=True).to(unit.dtype)
    if aggregation == "maximum":
        state = torch.full((n_rows, n_items), -torch.inf, dtype=unit.dtype, device=unit.device)
    elif aggregation == "average":
        state = torch.zeros((n_rows, n_items), dtype=unit.dtype, device=unit.device)
    else:
        state = torch.full((n_rows, 0, n_items), -torch.inf, dtype=unit.dtype, device=unit.device)
    for lo in range(0, padded.shape[1], step):
        idx = padded[:, lo : lo + step]
        valid = (idx >= 0).unsqueeze(-1)
        sims = unit[idx.clamp(min=0)] @ candidates.T  # (rows, step, n_items)
        if aggregation == "average":
            state = state + torch.where(valid, sims, 0.0).sum(dim=1)
            continue
        sims = torch.where(valid, sims, -torch.inf)
        if aggregation == "maximum":
            state = torch.maximum(state, sims.amax(dim=1))
        else:
            merged = torch.cat([state, sims], dim=1)
            state = merged.topk(min(k, merged.shape[1]), dim=1).values
    if aggregation == "maximum":
        return state
    if aggregation == "average":
        return state / counts
    kept = torch.where(torch.isfinite(state), state, 0.0).sum(dim=1)
    return kept / counts.clamp(max=k)


@register("visrank")
class VisRank(ScoresNewItems, ScoresProfiles, ExplainsByProfile, Recommender):
    """Ranks items by visual (cosine) similarity to the items the user consumed; cold-start capable
    for new users (a profile) and new items (their features: the same cosines to the profile)."""

    config_class = VisRankConfig
    conformance_config = {"device": "cpu"}
    inputs = (FeatureInput("image", "pooled"),)
    contribution_measure = "cosine similarity to the item"

    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        self.unit: torch.Tensor | None = None
        # subtracted from every feature vector before normalising: the catalogue mean, or zeros
        self.offset: torch.Tensor | None = None
        self.indptr = np.zeros(1, dtype=np.int64)
        self.items_flat = np.zeros(0, dtype=np.int64)

    def _fit(self, dataset: Dataset, features) -> None:
        array, _ = item_features(features, dataset.items)
        device = resolve_device(self.config.device)
        offset = array.mean(dim=0) if self.config.center else torch.zeros(array.shape[1])
        self.offset = offset.float().to(device)
        self.unit = normalize_rows(array.to(device) - self.offset)
        history = dataset.history("test")  # everything before the test basket
        self.indptr, self.items_flat = self._truncate(history.indptr, history.items)
        self.info["dims"] = {
            "n_users": dataset.n_users,
            "n_items": dataset.n_items,
            "n_features": int(array.shape[1]),
        }

    def _truncate(self, indptr: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keep each user's most recent ``max_profile`` items (all when 0)."""
        # own, writable copies (the dataset's arrays are read-only)
        indptr = np.array(indptr, dtype=np.int64)
        items = np.array(items, dtype=np.int64)
        if self.config.max_profile == 0:
            return indptr, items
        lengths = np.minimum(np.diff(indptr), self.config.max_profile)
        return gather_segments(items, indptr[1:] - lengths, lengths)

    def _score(self, users: torch.Tensor) -> torch.Tensor:
        users = users.numpy()
        indptr, flat = gather_segments(
            self.items_flat, self.indptr[users], np.diff(self.indptr)[users]
        )
        return self._aggregate(indptr, flat)

    def _check_content(self, content) -> torch.Tensor:
        return new_item_content(content, "pooled", (self.info["dims"]["n_features"],))

    def _score_new_items(self, users: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        users = users.numpy()
        indptr, flat = gather_segments(
            self.items_flat, self.indptr[users], np.diff(self.indptr)[users]
        )
        return self._aggregate(
            indptr, flat, normalize_rows(content.to(self.unit.device) - self.offset)
        )

    def _score_profiles(self, profiles: list[np.ndarray]) -> torch.Tensor:
        if self.config.max_profile:
            profiles = [p[-self.config.max_profile :] for p in profiles]
        indptr = np.concatenate([[0], np.cumsum([len(p) for p in profiles])])
        return self._aggregate(indptr, np.concatenate(profiles))

    def _aggregate(
        self, indptr: np.ndarray, items: np.ndarray, candidates: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scores of profiles with at least one item against every item (or ``candidates``: unit
        vectors of new items); empty profiles get 0 here (masked by the caller)."""
        lengths = np.diff(indptr)
        n_candidates = self.unit.shape[0] if candidates is None else candidates.shape[0]
        scores = torch.zeros((len(lengths), n_candidates), device=self.unit.device)
        nonempty = np.flatnonzero(lengths > 0)
        if len(nonempty):
            sub_indptr = np.concatenate([[0], np.cumsum(lengths[nonempty])])
            scores[torch.as_tensor(nonempty, device=self.unit.device)] = profile_scores(
                self.unit,
                sub_indptr,
                items,
                self.config.aggregation,
                self.config.k,
                self.config.block_elements,
                candidates,
            )
        return scores

    @torch.no_grad()
    def profile_contributions(self, user_idx: int, items) -> Contributions:
        """Cosine of each of ``items`` to each profile item the score aggregates (the ``max_profile``
        most recent items before the test basket): the score is each row's maximum (``maximum``) or
        mean (``average``)."""
        self._check_fitted()
        user_idx = int(user_idx)
        profile = self.items_flat[self.indptr[user_idx] : self.indptr[user_idx + 1]]
        asked = torch.as_tensor(np.asarray(items, dtype=np.int64), device=self.unit.device)
        used = torch.as_tensor(profile, device=self.unit.device)
        values = (self.unit[asked] @ self.unit[used].T).cpu().numpy().astype(np.float64)
        return Contributions(profile.copy(), values, self.contribution_measure)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            "unit_features": self.unit,
            "feature_offset": self.offset,
            "profile_indptr": torch.from_numpy(self.indptr),
            "profile_items": torch.from_numpy(self.items_flat),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.unit = state["unit_features"].float().to(resolve_device(self.config.device))
        # runs saved before ``center`` existed used raw cosines (their config reads center=False)
        offset = state.get("feature_offset", torch.zeros(self.unit.shape[1]))
        self.offset = offset.float().to(self.unit.device)
        self.indptr = state["profile_indptr"].numpy().astype(np.int64)
        self.items_flat = state["profile_items"].numpy().astype(np.int64)

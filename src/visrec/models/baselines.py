"""Non-personalised baselines: Random and MostPopular."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from visrec.data.dataset import Dataset
from visrec.models.base import Recommender
from visrec.models.capabilities import ScoresProfiles
from visrec.models.config import Config
from visrec.models.registry import register


@dataclass(frozen=True)
class RandomConfig(Config):
    """Random scores (a fixed pseudo-random function of (seed, user, item))."""

    seed: int = 0
    """Seed of the scores."""


@register("random")
class Random(Recommender):
    """Uniformly random ranking: the floor every model must clear (expected AUC 0.5)."""

    config_class = RandomConfig

    def _fit(self, dataset: Dataset, features) -> None:
        self.info["dims"] = {"n_users": dataset.n_users, "n_items": dataset.n_items}

    def _score(self, users: torch.Tensor) -> torch.Tensor:
        u = users.numpy().astype(np.uint64)[:, None]
        i = np.arange(len(self.items), dtype=np.uint64)[None, :]
        with np.errstate(over="ignore"):
            x = u * np.uint64(0x9E3779B97F4A7C15) ^ (i + np.uint64(self.config.seed)) * np.uint64(
                0xBF58476D1CE4E5B9
            )
            x ^= x >> np.uint64(31)
            x *= np.uint64(0x94D049BB133111EB)
            x ^= x >> np.uint64(29)
        return torch.from_numpy((x >> np.uint64(11)).astype(np.float64) / float(1 << 53))


@dataclass(frozen=True)
class PopConfig(Config):
    """Most popular items first (train interaction counts)."""


@register("pop")
class MostPopular(ScoresProfiles, Recommender):
    """Ranks items by their number of train interactions, the same list for every user."""

    config_class = PopConfig
    # ScoresProfiles: a new user's profile changes nothing, but they can be served

    def _fit(self, dataset: Dataset, features) -> None:
        self.popularity = torch.from_numpy(dataset.item_popularity()).float()

    def _score(self, users: torch.Tensor) -> torch.Tensor:
        return self.popularity.expand(len(users), -1).clone()

    def _score_profiles(self, profiles: list[np.ndarray]) -> torch.Tensor:
        return self.popularity.expand(len(profiles), -1).clone()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"popularity": self.popularity}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.popularity = state["popularity"]

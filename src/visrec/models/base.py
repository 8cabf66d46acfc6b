"""The Recommender interface every model implements (DESIGN.md "Core interfaces").

``fit(dataset, features) -> self``; ``score(users) -> Tensor[len(users), n_items]`` (higher is better);
``save(dir)`` / ``load(dir)`` without pickle (config JSON + safetensors-free ``torch.save`` of tensors read
back with ``weights_only=True``). Profile-based models also score arbitrary profiles of item indices, which is
how cold-start users are served. Everything downstream (evaluation, recommend, viewer) uses only this.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from visrec import __version__
from visrec._io import atomic_dir, atomic_path, load_tensor_file, read_json_object
from visrec.data.dataset import Dataset
from visrec.data.vocab import Vocabulary
from visrec.errors import ConfigError, DataError
from visrec.models.config import Config

_RETRAIN = "train the model again (visrec train ... --force)"

FEATURE_KINDS = (None, "pooled", "spatial", "pixels")


class Recommender:
    """Base class. Subclasses set ``config_class``, ``features`` and implement ``_fit``/``_score``."""

    name: ClassVar[str] = "?"
    config_class: ClassVar[type[Config]] = Config
    features: ClassVar[str | None] = None
    """What the model reads besides interactions: None, 'pooled', 'spatial' (h x w x d) or 'pixels'."""
    profile_based: ClassVar[bool] = False
    """True when scores depend on the user only through their profile (cold-start capable)."""

    def __init__(self, config: Config | None = None, **overrides):
        config = config or self.config_class()
        if not isinstance(config, self.config_class):
            raise ConfigError(f"{self.name} needs a {self.config_class.__name__}")
        self.config = config.replace(**overrides) if overrides else config
        self.users: Vocabulary | None = None
        self.items: Vocabulary | None = None
        self.info: dict = {}

    # --- the interface -------------------------------------------------------------------------
    def fit(self, dataset: Dataset, features=None, **options) -> Recommender:
        """Train on ``dataset.train`` (validation targets may steer early stopping; test never)."""
        if self.features is not None and features is None:
            raise ConfigError(f"{self.name} needs {self.features} item features (--features)")
        self.users, self.items = dataset.users, dataset.items
        self._fit(dataset, features, **options)
        return self

    @torch.no_grad()
    def score(self, users) -> torch.Tensor:
        """Scores of every item for ``users`` (user indices), shape (len(users), n_items)."""
        self._check_fitted()
        idx = torch.as_tensor(np.asarray(users), dtype=torch.long).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self.users)):
            raise IndexError(f"user index out of range [0, {len(self.users)})")
        return self._score(idx).float()

    @torch.no_grad()
    def score_profiles(self, profiles: list[np.ndarray]) -> torch.Tensor:
        """Scores of every item for new users given only their profiles (item indices, oldest first)."""
        self._check_fitted()
        if not self.profile_based:
            raise ConfigError(
                f"{self.name} is not profile-based: it cannot score a new user's profile"
            )
        for p in profiles:
            p = np.asarray(p)
            if len(p) == 0:
                raise DataError("an empty profile cannot be scored")
            if p.min() < 0 or p.max() >= len(self.items):
                raise IndexError(f"item index out of range [0, {len(self.items)})")
        return self._score_profiles([np.asarray(p, dtype=np.int64) for p in profiles]).float()

    def user_profile(self, dataset: Dataset, user_idx: int) -> np.ndarray:
        return dataset.profile(user_idx)

    # --- subclass hooks -----------------------------------------------------------------------------
    def _fit(self, dataset: Dataset, features, **options) -> None:
        raise NotImplementedError

    def _score(self, users: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _score_profiles(self, profiles: list[np.ndarray]) -> torch.Tensor:
        raise NotImplementedError

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors that, with the config, fully define the fitted model."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore from :meth:`state_dict` (after ``users``/``items``/``info`` are set)."""

    # --- persistence ----------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``model.json`` (name, config, vocabularies, info) and ``weights.pt`` atomically."""
        self._check_fitted()
        directory = Path(directory)
        with atomic_dir(directory) as tmp:
            meta = {
                "model": self.name,
                "config": self.config.to_dict(),
                "visrec_version": __version__,
                "info": self.info,
                "users": self.users.ids.tolist(),
                "items": self.items.ids.tolist(),
            }
            (tmp / "model.json").write_text(json.dumps(meta), encoding="utf-8")
            state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
            torch.save(state, tmp / "weights.pt")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Recommender:
        """Load a saved model (any registered class when called on :class:`Recommender`)."""
        from visrec.models import registry

        directory = Path(directory)
        meta_path = directory / "model.json"
        if not meta_path.is_file():
            raise DataError("not a saved model (no model.json)", path=directory)
        meta = read_json_object(meta_path, what="saved model metadata", fix=_RETRAIN)
        klass = registry.get(str(meta.get("model")))
        if cls is not Recommender and not issubclass(klass, cls):
            raise ConfigError(f"{directory} holds a {meta['model']} model, not {cls.name}")
        try:
            model = klass(klass.config_class.from_dict(meta["config"]))
            model.users = Vocabulary(meta["users"], name="user")
            model.items = Vocabulary(meta["items"], name="item")
            model.info = meta.get("info", {})
        except (KeyError, TypeError, ValueError) as exc:  # ConfigError is a ValueError
            raise DataError(f"damaged saved model ({exc}); {_RETRAIN}", path=meta_path) from None
        weights = directory / "weights.pt"
        state = load_tensor_file(weights, what="model weights", fix=_RETRAIN)
        try:
            model.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
            reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else repr(exc)
            raise DataError(
                f"weights do not fit the saved model ({reason}); {_RETRAIN}", path=weights
            ) from None
        return model

    def _check_fitted(self) -> None:
        if self.items is None:
            raise ConfigError(f"{self.name} is not fitted yet")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


def save_tensor_file(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """``torch.save`` of a flat dict of tensors, atomically (read back with ``weights_only=True``)."""
    with atomic_path(path) as tmp:
        torch.save(tensors, tmp)


def resolve_device(name: str = "auto") -> torch.device:
    """Resolve a device string once: 'auto' -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' asked for, but CUDA is not available")
    return device

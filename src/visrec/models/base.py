"""The Recommender interface every model implements (DESIGN.md "Core interfaces").

``fit(dataset, features) -> self``; ``score(users) -> Tensor[len(users), n_items]`` (higher is better);
``save(dir)`` / ``load(dir)`` without pickle (config JSON + safetensors-free ``torch.save`` of tensors read
back with ``weights_only=True``). Profile-based models also score arbitrary profiles of item indices, which is
how cold-start users are served. Everything downstream (evaluation, recommend, viewer) uses only this.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from visrec import __version__
from visrec._io import atomic_dir, load_tensor_file, read_json_object
from visrec.data.dataset import Dataset
from visrec.data.vocab import Vocabulary
from visrec.errors import ConfigError, DataError
from visrec.models import registry
from visrec.models.capabilities import FeatureInput
from visrec.models.config import Config

_RETRAIN = "train the model again (visrec train ... --force)"


class Recommender:
    """Base class. Subclasses set ``config_class``, ``inputs`` and implement ``_fit``/``_score``.

    Optional abilities are the mixins of :mod:`visrec.models.capabilities`.
    """

    name: ClassVar[str] = "?"
    config_class: ClassVar[type[Config]] = Config
    inputs: ClassVar[tuple[FeatureInput, ...]] = ()
    """What the model reads besides interactions (none, or named pooled/spatial/pixel sources)."""
    conformance_config: ClassVar[dict] = {}
    """Options that make the conformance suite (run for every registered model) quick on tiny data."""
    profile_based: ClassVar[bool] = False
    """True for :class:`~visrec.models.capabilities.ScoresProfiles` models (cold-start users)."""

    def __init__(self, config: Config | None = None, **overrides):
        config = config or self.config_class()
        if not isinstance(config, self.config_class):
            raise ConfigError(f"{self.name} needs a {self.config_class.__name__}")
        self.config = config.replace(**overrides) if overrides else config
        self.users: Vocabulary | None = None
        self.items: Vocabulary | None = None
        self.info: dict = {}

    # --- the interface -------------------------------------------------------------------------
    def fit(self, dataset: Dataset, features=None) -> Recommender:
        """Train on ``dataset.train`` (validation targets may steer early stopping; test never).

        ``features``: a mapping input name -> source for the model's :attr:`inputs`, or (for a model
        with one input) that source alone.
        """
        source = self._feature_source(features)
        self.users, self.items = dataset.users, dataset.items
        self._fit(dataset, source)
        return self

    def _feature_source(self, features):
        """What ``_fit`` gets: None, the one input's source, or a mapping name -> source (several)."""
        if not self.inputs:
            return features
        if features is None:
            kinds = " and ".join(i.kind for i in self.inputs)
            raise ConfigError(f"{self.name} needs {kinds} item features (--features)")
        if not isinstance(features, Mapping):
            if len(self.inputs) > 1:
                names = ", ".join(i.name for i in self.inputs)
                raise ConfigError(f"{self.name} reads several feature sources: pass {{{names}}}")
            return features
        missing = [i.name for i in self.inputs if i.name not in features]
        if missing:
            raise ConfigError(f"{self.name} needs the feature sources {', '.join(missing)}")
        if len(self.inputs) == 1:
            return features[self.inputs[0].name]
        return {i.name: features[i.name] for i in self.inputs}

    @torch.no_grad()
    def score(self, users) -> torch.Tensor:
        """Scores of every item for ``users`` (user indices), shape (len(users), n_items)."""
        self._check_fitted()
        idx = torch.as_tensor(np.asarray(users), dtype=torch.long).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self.users)):
            raise IndexError(f"user index out of range [0, {len(self.users)})")
        return self._score(idx).float()

    def scorer(self, dataset: Dataset, split: str):
        """The scorer the evaluation engine calls on ``split`` of ``dataset`` (``'test'`` or
        ``'validation'``): :meth:`score` here; profile-based models score each user from
        ``dataset.history(split)`` (see :class:`~visrec.models.capabilities.ScoresProfiles`)."""
        dataset.targets(split)  # checks the name
        return self.score

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

    # --- subclass hooks -----------------------------------------------------------------------------
    def _fit(self, dataset: Dataset, features) -> None:
        raise NotImplementedError

    def _score(self, users: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors that, with the config, fully define the fitted model."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore from :meth:`state_dict` (after ``users``/``items``/``info`` are set)."""

    def _save_extra(self, directory: Path) -> dict:
        """Extra files a model class writes into its folder being saved; entries for ``model.json``."""
        return {}

    # --- persistence ----------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``model.json`` (name, config, vocabularies, info) and ``weights.pt`` atomically (and a
        dot-product model's factors, :mod:`visrec.models.factors`)."""
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
                **self._save_extra(tmp),
            }
            (tmp / "model.json").write_text(json.dumps(meta), encoding="utf-8")
            state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
            torch.save(state, tmp / "weights.pt")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Recommender:
        """Load a saved model (any registered class when called on :class:`Recommender`)."""
        directory = Path(directory)
        meta_path = directory / "model.json"
        if not meta_path.is_file():
            raise DataError("not a saved model (no model.json)", path=directory)
        meta = read_json_object(meta_path, what="saved model metadata", fix=_RETRAIN)
        klass = registry.get(str(meta.get("model")))
        if cls is not Recommender and not issubclass(klass, cls):
            raise ConfigError(f"{directory} holds a {meta['model']} model, not {cls.name}")
        try:
            config, _ = klass.config_class.saved_as_now(meta["config"])
            model = klass(klass.config_class.from_dict(config))
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

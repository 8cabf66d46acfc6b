"""Conformance checks every model passes (STYLE.md rule 13).

``tests/test_conformance.py`` runs :func:`check_recommender` for every registered model (parametrised over
the registry, with :func:`conformance_inputs` as its feature sources and the class's
``conformance_config``), so registering a model is what puts it under these checks. A model's own tests
may call it with other options::

    check_recommender(lambda: create("mymodel", {"epochs": 2}), demo_dataset, features)

With ``cold_dataset`` (the same data under a cold-item split) it also checks that training never reads a
cold item's interactions and, for :class:`ScoresNewItems` models, that ``score`` gives the cold items of
the vocabulary exactly what ``score_new_items`` gives their content (no learned per-item state).

Each check raises AssertionError with a message naming the model and the property that failed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import scipy.sparse as sp
import torch

from visrec.data.dataset import Dataset
from visrec.features.pixel_cache import open_pixels
from visrec.models import create, get
from visrec.models.base import Recommender
from visrec.models.capabilities import (
    DotProduct,
    ScoresNewItems,
    ScoresProfiles,
    TrainsByGradient,
)
from visrec.models.features import content_of
from visrec.training import fit_model


def check_recommender(
    factory: Callable[[], Recommender],
    dataset: Dataset,
    features=None,
    *,
    n_users: int = 12,
    atol: float = 1e-5,
    cold_dataset: Dataset | None = None,
) -> Recommender:
    """Run every conformance check; returns the fitted model of the first fit."""
    check_default_config(type(factory()))
    model = fit_model(factory(), dataset, features)
    users = np.arange(min(n_users, dataset.n_users))
    scores = check_scores(model, dataset, users)
    check_batch_equals_single(model, users, scores, atol)
    check_save_load(model, users, scores, atol)
    if isinstance(model, ScoresProfiles):
        check_profiles(model, dataset)
    if isinstance(model, DotProduct):
        check_dot_factors(model, users, scores, atol)
    if isinstance(model, ScoresNewItems):
        check_new_items(model, dataset, features, users)
    check_gradients(factory, dataset, features)
    check_deterministic(factory, dataset, features, users, scores, atol)
    if cold_dataset is not None:
        check_cold_items(factory, cold_dataset, features)
    return model


def check_default_config(cls: type[Recommender]) -> None:
    config = cls.config_class()
    assert cls(config).config == config, f"{cls.name}: default config does not round-trip"
    again = cls.config_class.from_dict(config.to_dict())
    assert again == config, f"{cls.name}: config to_dict/from_dict is not lossless"


def check_scores(model: Recommender, dataset: Dataset, users: np.ndarray) -> torch.Tensor:
    scores = model.score(users)
    assert scores.shape == (len(users), dataset.n_items), (
        f"{model.name}: scores of shape {scores.shape}"
    )
    assert torch.isfinite(scores).all(), f"{model.name}: non-finite scores"
    return scores


def check_batch_equals_single(model: Recommender, users, scores, atol) -> None:
    single = torch.cat([model.score(users[k : k + 1]) for k in range(len(users))])
    assert torch.allclose(single, scores, atol=atol), (
        f"{model.name}: batched scores != per-user scores"
    )


def check_save_load(model: Recommender, users, scores, atol) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model.save(f"{tmp}/model")
        loaded = Recommender.load(f"{tmp}/model")
    assert type(loaded) is type(model), f"{model.name}: load returned {type(loaded).__name__}"
    assert loaded.config == model.config, f"{model.name}: config changed through save/load"
    again = loaded.score(users)
    assert torch.allclose(again, scores, atol=atol), (
        f"{model.name}: save -> load changed the scores"
    )


def check_profiles(model: Recommender, dataset: Dataset) -> None:
    """A new user with a known user's profile is scored; shapes and finiteness hold."""
    profiles = [
        dataset.profile(u) for u in range(min(3, dataset.n_users)) if len(dataset.profile(u))
    ]
    scores = model.score_profiles(profiles)
    assert scores.shape == (len(profiles), dataset.n_items), f"{model.name}: profile scores shape"
    assert torch.isfinite(scores).all(), f"{model.name}: non-finite profile scores"


def check_dot_factors(model: Recommender, users, scores, atol) -> None:
    """A :class:`DotProduct` model's factors reproduce its scores (what the ANN index relies on)."""
    user_vectors, item_vectors = model.dot_factors()
    product = torch.as_tensor(user_vectors)[users] @ torch.as_tensor(item_vectors).T
    assert torch.allclose(product, scores, atol=max(atol, 1e-4), rtol=1e-4), (
        f"{model.name}: dot_factors() do not reproduce score()"
    )


def _source(model: Recommender, features):
    return model._feature_source(features)


def _changed(content: np.ndarray) -> np.ndarray:
    """Other content for the same items: inverted pixels, or features shifted and rescaled."""
    if content.dtype == np.uint8:
        return 255 - content
    return np.flip(content, axis=0).copy() * 1.5 + 0.25


def check_new_items(model: Recommender, dataset: Dataset, features, users: np.ndarray) -> None:
    """Scores of unseen items (given as content) are finite, shaped (users, new items), and change when
    the content changes."""
    rows = np.arange(min(5, dataset.n_items))
    content = content_of(_source(model, features), dataset.items, rows)
    scores = model.score_new_items(users, content)
    assert scores.shape == (len(users), len(rows)), (
        f"{model.name}: score_new_items shape {tuple(scores.shape)}"
    )
    assert torch.isfinite(scores).all(), f"{model.name}: non-finite scores of new items"
    other = model.score_new_items(users, _changed(content))
    assert not torch.allclose(other, scores, atol=1e-6), (
        f"{model.name}: scores of new items do not depend on their content"
    )


def check_cold_items(factory, cold: Dataset, features) -> None:
    """On a cold-item split: training reads no cold item's interactions (the same fit without the test
    targets gives the same scores), and a capable model's scores of the cold items of its vocabulary
    are those of :meth:`score_new_items` on their content (their learned per-item state is neutral)."""
    cold_items = cold.cold_items("test")
    assert len(cold_items) and cold.train[:, cold_items].nnz == 0, "not a cold-item split"
    model = fit_model(factory(), cold, features)
    users = np.arange(min(8, cold.n_users))
    scores = model.score(users)
    blind = replace(cold, test=sp.csr_matrix(cold.test.shape, dtype=np.float32))
    again = fit_model(factory(), blind, features).score(users)
    assert torch.allclose(again, scores, atol=1e-5), (
        f"{model.name}: training read the held-out interactions of cold items"
    )
    if not isinstance(model, ScoresNewItems):
        return
    content = content_of(_source(model, features), cold.items, cold_items)
    new = model.score_new_items(users, content)
    assert torch.allclose(new, scores[:, np.array(cold_items)], atol=1e-4, rtol=1e-4), (
        f"{model.name}: score() of cold items differs from score_new_items() of their content "
        "(the model learned something about items without interactions)"
    )


def check_gradients(factory, dataset: Dataset, features) -> None:
    """One training batch gives every trainable parameter a gradient (gradient models only)."""
    model = factory()
    if not isinstance(model, TrainsByGradient):
        return
    features = model._feature_source(features)
    dims = model._dims(dataset, features)
    module = model._build(dims)
    model._attach(module, dataset, features)
    model.module = module.to(model.device)
    sample = model.sample(dataset, 256, np.random.default_rng(0))
    batch = {k: torch.from_numpy(v).to(model.device) for k, v in sample.items()}
    module.train()
    pos, neg = module(batch)
    (-(torch.nn.functional.logsigmoid(pos[:, None] - neg)).mean()).backward()
    missing = [
        n
        for n, p in module.named_parameters()
        if p.requires_grad and (p.grad is None or not torch.any(p.grad != 0))
    ]
    assert not missing, f"{model.name}: parameters without gradient: {missing}"


def check_deterministic(factory, dataset, features, users, scores, atol) -> None:
    again = fit_model(factory(), dataset, features).score(users)
    assert torch.allclose(again, scores, atol=atol), (
        f"{factory().name}: same seed, different scores"
    )


def conformance_inputs(
    name: str, dataset: Dataset, images_dir, cache_dir, *, seed: int = 0
) -> dict | None:
    """Feature sources for the registered model ``name`` on ``dataset``: random pooled vectors (8-d) or
    spatial maps (2 x 2 x 8) per declared input, or a pixel cache of ``images_dir`` at the model's
    ``image_size``; None for a model that reads nothing besides interactions."""
    cls = get(name)
    if not cls.inputs:
        return None
    rng = np.random.default_rng(seed)
    sources = {}
    for spec in cls.inputs:
        if spec.kind == "pooled":
            sources[spec.name] = rng.random((dataset.n_items, 8), dtype=np.float32)
        elif spec.kind == "spatial":
            sources[spec.name] = rng.random((dataset.n_items, 2, 2, 8), dtype=np.float32)
        else:
            size = create(name, cls.conformance_config).config.image_size
            sources[spec.name] = open_pixels(images_dir, dataset.items, size, cache_dir)
    return sources


def check_registered(
    name: str, dataset: Dataset, images_dir, cache_dir, cold_dataset: Dataset | None = None
) -> Recommender:
    """:func:`check_recommender` for a registered model, with its ``conformance_config`` (and the cold
    checks when ``cold_dataset``, a cold-item split of the same items, is given)."""
    cls = get(name)
    features = conformance_inputs(name, dataset, images_dir, cache_dir)
    return check_recommender(
        lambda: create(name, cls.conformance_config),
        dataset,
        features,
        cold_dataset=cold_dataset,
    )

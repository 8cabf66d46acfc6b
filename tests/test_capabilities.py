"""Typed model capabilities and declared inputs (models/capabilities.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from visrec.errors import ConfigError
from visrec.models import Recommender, create, get, names
from visrec.models.capabilities import (
    DotProduct,
    DotProductProfiles,
    Explains,
    FeatureInput,
    ScoresNewItems,
    ScoresProfiles,
    TrainsByGradient,
    scores_new_items,
)
from visrec.models.config import Config

EXPECTED = {
    "random": set(),
    "pop": {ScoresProfiles},
    "bpr": {DotProduct, TrainsByGradient},
    "visrank": {ScoresProfiles, ScoresNewItems},
    "vbpr": {DotProduct, TrainsByGradient, ScoresNewItems},
    "curatornet": {
        ScoresProfiles,
        DotProduct,
        DotProductProfiles,
        TrainsByGradient,
        ScoresNewItems,
    },
    "dvbpr": {DotProduct, TrainsByGradient, ScoresNewItems},
    "acf": {ScoresProfiles, Explains, TrainsByGradient, ScoresNewItems},
}
ALL = (ScoresProfiles, ScoresNewItems, DotProduct, DotProductProfiles, Explains, TrainsByGradient)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_capabilities(name):
    cls = get(name)
    assert {c for c in ALL if issubclass(cls, c)} == EXPECTED[name]
    assert cls.profile_based == issubclass(cls, ScoresProfiles)  # the old flag, unchanged


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scores_new_items_is_a_class_level_check(name):
    cls = get(name)
    assert scores_new_items(cls) == (name not in ("random", "pop", "bpr"))
    assert scores_new_items(create(name)) == scores_new_items(cls)


def test_every_registered_model_is_listed_here():
    assert set(names()) == set(EXPECTED)


def test_feature_input_kinds_are_checked():
    assert FeatureInput("image", "spatial").kind == "spatial"
    with pytest.raises(ValueError, match="feature kind"):
        FeatureInput("image", "text-ish")


def test_a_mixin_method_must_be_implemented():
    class Half(DotProduct, Recommender):
        pass

    with pytest.raises(TypeError, match="dot_factors"):
        Half()


class TwoSources(Recommender):
    """Scores an item by the sum of its two feature vectors' first components."""

    inputs = (FeatureInput("image", "pooled"), FeatureInput("text", "pooled"))
    config_class = Config

    def _fit(self, dataset, features) -> None:
        self.seen = sorted(features)
        item = np.asarray(features["image"])[:, 0] + np.asarray(features["text"])[:, 0]
        self.item = torch.as_tensor(item, dtype=torch.float32)

    def _score(self, users):
        return self.item.expand(len(users), -1)


def test_a_model_with_two_named_sources_fits(demo_dataset):
    n = demo_dataset.n_items
    image, text = np.ones((n, 3), np.float32), np.arange(2 * n, dtype=np.float32).reshape(n, 2)
    model = TwoSources().fit(demo_dataset, {"image": image, "text": text, "unused": None})
    assert model.seen == ["image", "text"]
    assert torch.equal(model.score([0])[0], torch.arange(n, dtype=torch.float32) * 2 + 1)
    with pytest.raises(ConfigError, match="several feature sources"):
        TwoSources().fit(demo_dataset, image)
    with pytest.raises(ConfigError, match="needs the feature sources text"):
        TwoSources().fit(demo_dataset, {"image": image})
    with pytest.raises(ConfigError, match="needs pooled and pooled item features"):
        TwoSources().fit(demo_dataset)


def test_one_input_takes_the_source_or_a_mapping(demo_dataset):
    features = np.random.default_rng(0).random((demo_dataset.n_items, 4), dtype=np.float32)
    a = create("visrank", {"device": "cpu"}).fit(demo_dataset, features)
    b = create("visrank", {"device": "cpu"}).fit(demo_dataset, {"image": features})
    assert torch.equal(a.score([0, 1]), b.score([0, 1]))


def test_a_gradient_model_fits_only_through_a_trainer(demo_dataset):
    with pytest.raises(ConfigError, match="fit_model"):
        create("bpr", {"epochs": 1}).fit(demo_dataset)

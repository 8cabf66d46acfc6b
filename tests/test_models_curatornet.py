"""CuratorNet (Messina et al. 2020): conformance, masked pooling of padded profiles, cold-start scoring and
a known answer on the demo data (it must beat Random and MostPopular on validation AUC)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from visrec.data.demo import PALETTES, SHAPES
from visrec.errors import ConfigError
from visrec.evaluation import evaluate
from visrec.models import create
from visrec.models.base import Recommender
from visrec.models.curatornet import CuratorNetConfig, CuratorNetModule
from visrec.testing import check_recommender
from visrec.training import fit_model
from visual_support import as_saved_before

SMALL = {
    "epochs": 2,
    "item_dim": 8,
    "user_hidden": 8,
    "n_clusters": 6,
    "batch_size": 128,
    "triplets_per_epoch": 512,
    "device": "cpu",
}


def truth_features(demo_dir, dataset, noise: float = 0.1, seed: int = 0) -> np.ndarray:
    """One-hot palette and shape of each item (demo truth) plus Gaussian noise."""
    truth = json.loads((demo_dir / "truth.json").read_text())["items"]
    palettes, shapes = list(PALETTES), list(SHAPES)
    x = np.random.default_rng(seed).normal(0, noise, (dataset.n_items, len(palettes) + len(shapes)))
    for idx, item_id in enumerate(dataset.items.ids):
        x[idx, palettes.index(truth[item_id]["palette"])] += 1.0
        x[idx, len(palettes) + shapes.index(truth[item_id]["shape"])] += 1.0
    return x.astype(np.float32)


@pytest.mark.parametrize("sampling", ["guided", "profile"])
def test_curatornet_conforms(demo_dir, demo_dataset, sampling):
    features = truth_features(demo_dir, demo_dataset)
    check_recommender(
        lambda: create("curatornet", {**SMALL, "sampling": sampling}), demo_dataset, features
    )


def test_padded_batch_equals_each_profile_alone():
    torch.manual_seed(0)
    module = CuratorNetModule(
        n_users=3, n_items=20, input_dim=5, item_dim=6, user_hidden=7, max_profile=6
    ).eval()
    module.features.normal_()
    profiles = [[3], [4, 9, 1, 17], [0, 2, 5, 7, 11, 19]]
    width = max(len(p) for p in profiles)
    padded = torch.tensor([[-1] * (width - len(p)) + p for p in profiles])
    with torch.no_grad():
        batched = module.score_profile_tensor(padded)
        alone = torch.cat([module.score_profile_tensor(torch.tensor([p])) for p in profiles])
    assert torch.allclose(batched, alone, atol=1e-5)
    assert not torch.allclose(batched[0], batched[1])  # the profiles really differ


def test_padding_does_not_leak_into_user_vectors():
    torch.manual_seed(1)
    module = CuratorNetModule(2, 10, 4, 5, 6, 4).eval()
    module.features.normal_()
    vectors = module.item_tower(module.features)
    short = torch.tensor([[-1, -1, 3, 6]])
    with torch.no_grad():
        before = module.user_vectors(vectors, short)
        vectors[0] = 1e6  # the row that -1 padding is clamped to
        after = module.user_vectors(vectors, short)
    assert torch.equal(before, after)


def test_new_user_profile_scores_like_the_known_user(demo_dir, demo_dataset):
    features = truth_features(demo_dir, demo_dataset)
    model = fit_model(create("curatornet", SMALL), demo_dataset, features)
    users = np.arange(5)
    profiles = demo_dataset.history("test").lists(users)  # train + validation basket
    assert torch.allclose(model.score_profiles(profiles), model.score(users), atol=1e-5)


def test_config_rejects_impossible_values():
    with pytest.raises(ConfigError, match="sampling"):
        CuratorNetConfig(sampling="random")
    with pytest.raises(ConfigError, match="strategy_shares"):
        CuratorNetConfig(strategy_shares=(1, 1, 1))
    with pytest.raises(ConfigError, match="fine_grained"):
        CuratorNetConfig(fine_grained=1.5)
    assert CuratorNetConfig.from_dict(
        {"strategy_shares": "(1, 0, 0, 0, 0, 1)"}
    ).strategy_shares == (1.0, 0.0, 0.0, 0.0, 0.0, 1.0)


@pytest.mark.slow
def test_curatornet_beats_random_and_popularity(demo_dir, demo_dataset):
    features = truth_features(demo_dir, demo_dataset)
    config = {
        "epochs": 8,
        "item_dim": 32,
        "user_hidden": 32,
        "n_clusters": 10,
        "max_profile": 50,
        "batch_size": 256,
        "triplets_per_epoch": 3000,
        "lr": 1e-2,
        "weight_decay": 0.0,
        "device": "cpu",
    }
    auc = {}
    for name, cfg in [("random", {}), ("pop", {}), ("curatornet", config)]:
        model = fit_model(create(name, cfg), demo_dataset, features)
        auc[name] = evaluate(model.score, demo_dataset, split="validation").means["AUC"]
    assert auc["curatornet"] > max(auc["random"], auc["pop"]) + 0.05, auc


def test_center_feeds_the_tower_centred_features_and_new_items_alike(
    demo_dir, demo_dataset, tmp_path
):
    features = truth_features(demo_dir, demo_dataset) + 3.0  # a component every item shares
    model = fit_model(create("curatornet", SMALL), demo_dataset, features)
    stored = model.module.features.cpu().numpy()
    np.testing.assert_allclose(stored, features - features.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(model.module.offset.cpu().numpy(), features.mean(axis=0), atol=1e-5)
    users = np.arange(5)
    # a new item with item 7's features scores as item 7 does: the same offset is subtracted
    new = model.score_new_items(users, features[[7]])
    torch.testing.assert_close(new[:, 0], model.score(users)[:, 7], atol=1e-5, rtol=0)
    raw = fit_model(create("curatornet", SMALL | {"center": False}), demo_dataset, features)
    np.testing.assert_allclose(raw.module.features.cpu().numpy(), features, atol=1e-6)
    assert not raw.module.offset.any()


def test_a_model_saved_before_centring_loads_as_uncentred(demo_dir, demo_dataset, tmp_path):
    features = truth_features(demo_dir, demo_dataset)
    raw = fit_model(create("curatornet", SMALL | {"center": False}), demo_dataset, features)
    folder = raw.save(tmp_path / "model")
    loaded = Recommender.load(as_saved_before(folder, "offset", "center"))
    assert loaded.config.center is False
    torch.testing.assert_close(loaded.score([0, 1]), raw.score([0, 1]))

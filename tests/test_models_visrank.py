"""VisRank: conformance, aggregations against a brute-force reference, blocking invariance, and
known answers (taste demo beats Random/MostPopular; checkerboard top-10 stay in the user's cluster)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from visrec.data import open_dataset
from visrec.errors import ConfigError
from visrec.evaluation import evaluate
from visrec.models import create
from visrec.models.base import Recommender
from visrec.models.visrank import normalize_rows, profile_scores
from visrec.testing import check_recommender
from visrec.training import fit_model
from visual_support import (
    as_saved_before,
    checkerboard,
    image_features,
    taste_demo,
    truth_features,
)


@pytest.fixture(scope="module")
def taste(tmp_path_factory):
    folder = taste_demo(tmp_path_factory.mktemp("taste") / "data")
    return folder, open_dataset(folder).build()


def brute_force(features: np.ndarray, profile: np.ndarray, aggregation: str, k: int) -> np.ndarray:
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    sims = unit[profile] @ unit.T  # (len(profile), n_items)
    if aggregation == "maximum":
        return sims.max(axis=0)
    if aggregation == "average":
        return sims.mean(axis=0)
    return np.sort(sims, axis=0)[::-1][:k].mean(axis=0)


def test_conformance(demo_dir, demo_dataset):
    features = truth_features(demo_dir, demo_dataset)
    for aggregation in ("maximum", "average", "average_top_k"):
        check_recommender(
            lambda a=aggregation: create("visrank", {"aggregation": a, "device": "cpu"}),
            demo_dataset,
            features,
        )


@pytest.mark.parametrize("aggregation", ["maximum", "average", "average_top_k"])
@pytest.mark.parametrize("block_elements", [1, 37, 1 << 20])
def test_profile_scores_match_brute_force(aggregation, block_elements):
    rng = np.random.default_rng(1)
    features = rng.normal(size=(23, 5)).astype(np.float32)
    profiles = [rng.choice(23, size=n, replace=False) for n in (1, 2, 7, 4, 11)]
    indptr = np.concatenate([[0], np.cumsum([len(p) for p in profiles])])
    got = profile_scores(
        normalize_rows(torch.from_numpy(features)),
        indptr,
        np.concatenate(profiles),
        aggregation,
        k=3,
        block_elements=block_elements,
    )
    want = np.stack([brute_force(features, p, aggregation, 3) for p in profiles])
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)


def test_hand_computed_cosines():
    # items: 0 = (1, 0), 1 = (0, 1), 2 = (1, 1); profile {0, 1}: cos to item 2 is 1/sqrt(2) for both
    features = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    unit = normalize_rows(features)
    indptr, items = np.array([0, 2]), np.array([0, 1])
    half = 2**-0.5
    maximum = profile_scores(unit, indptr, items, "maximum")
    average = profile_scores(unit, indptr, items, "average")
    top1 = profile_scores(unit, indptr, items, "average_top_k", k=1)
    torch.testing.assert_close(maximum[0], torch.tensor([1.0, 1.0, half]))
    torch.testing.assert_close(average[0], torch.tensor([0.5, 0.5, half]))
    torch.testing.assert_close(top1[0], maximum[0])


def test_score_profiles_equal_user_scores(demo_dir, demo_dataset):
    features = truth_features(demo_dir, demo_dataset)
    model = create("visrank", {"aggregation": "average_top_k", "k": 2}).fit(demo_dataset, features)
    users = np.arange(5)
    # a known user's stored profile is everything before the test basket (train + validation basket)
    history = demo_dataset.history("test")
    by_profile = model.score_profiles(history.lists(users))
    torch.testing.assert_close(by_profile, model.score(users))
    torch.testing.assert_close(
        model.scorer(demo_dataset, "test")(torch.from_numpy(users)), by_profile
    )
    # validation is scored from the train profile only
    train_only = model.score_profiles([demo_dataset.profile(u) for u in users])
    validation = model.scorer(demo_dataset, "validation")(torch.from_numpy(users))
    torch.testing.assert_close(validation, train_only)
    assert not torch.allclose(validation, by_profile)


def test_max_profile_uses_most_recent_items(demo_dir, demo_dataset):
    features = truth_features(demo_dir, demo_dataset)
    model = create("visrank", {"max_profile": 2, "aggregation": "average", "center": False}).fit(
        demo_dataset, features
    )
    user = int(np.argmax(demo_dataset.profile_sizes))
    recent = demo_dataset.history("test").of(user)[-2:]
    want = brute_force(features, recent, "average", 1)
    np.testing.assert_allclose(model.score([user])[0].cpu().numpy(), want, atol=1e-5)
    assert not np.allclose(
        create("visrank", {"aggregation": "average", "center": False})
        .fit(demo_dataset, features)
        .score([user])
        .cpu(),
        model.score([user]).cpu(),
    )


def test_invalid_config():
    with pytest.raises(ConfigError, match="aggregation"):
        create("visrank", {"aggregation": "median"})
    with pytest.raises(ConfigError, match="k must"):
        create("visrank", {"k": "0"})


def test_checkerboard_top10_from_users_cluster():
    dataset, features, user_cluster, item_cluster = checkerboard()
    model = create("visrank").fit(dataset, features)
    scores = model.score(np.arange(dataset.n_users)).cpu()
    train = torch.from_numpy(dataset.train.toarray()).bool()
    top = scores.masked_fill(train, -torch.inf).topk(10, dim=1).indices.numpy()
    assert (item_cluster[top] == user_cluster[:, None]).all()


@pytest.mark.parametrize("aggregation", ["maximum", "average", "average_top_k"])
def test_beats_random_and_popular_on_taste_demo(taste, aggregation):
    folder, dataset = taste
    features = truth_features(folder, dataset)

    def auc(name, config=None):
        model = fit_model(create(name, config), dataset, features)
        return evaluate(model.score, dataset, split="validation").means["AUC"]

    baseline = max(auc("random"), auc("pop"))
    assert auc("visrank", {"aggregation": aggregation}) > baseline + 0.1


def test_image_features_beat_baselines(taste):
    folder, dataset = taste
    model = create("visrank", {"aggregation": "average"}).fit(
        dataset, image_features(folder, dataset)
    )
    auc = evaluate(model.score, dataset, split="validation").means["AUC"]
    pop = evaluate(create("pop").fit(dataset).score, dataset, split="validation").means["AUC"]
    assert auc > pop + 0.05


def test_center_subtracts_the_catalogue_mean(demo_dir, demo_dataset, tmp_path):
    features = truth_features(demo_dir, demo_dataset).astype(np.float32) + 5.0  # a shared component
    users = np.arange(4)
    raw = create("visrank", {"aggregation": "average", "center": False}).fit(demo_dataset, features)
    centred = create("visrank", {"aggregation": "average", "center": True}).fit(
        demo_dataset, features
    )
    shifted = features - features.mean(axis=0)
    history = demo_dataset.history("test")
    want = np.stack([brute_force(shifted, history.of(int(u)), "average", 1) for u in users])
    np.testing.assert_allclose(centred.score(users).cpu().numpy(), want, atol=1e-5)
    # the shared component squeezes raw cosines towards 1; centred ones spread out
    assert raw.score(users).std() < 0.5 * centred.score(users).std()
    # a new item is centred with the same (training) mean, so a copy of item 7 scores as item 7 does
    new = centred.score_new_items(users, features[[7]])
    torch.testing.assert_close(new[:, 0], centred.score(users)[:, 7], atol=1e-5, rtol=0)
    # the mean travels with the state (a loaded run scores new items the same way)
    loaded = Recommender.load(centred.save(tmp_path / "model"))
    torch.testing.assert_close(loaded.score_new_items(users, features[[7]]), new)


def test_a_run_saved_before_centring_keeps_raw_cosines(demo_dir, demo_dataset, tmp_path):
    features = truth_features(demo_dir, demo_dataset)
    raw = create("visrank", {"center": False}).fit(demo_dataset, features)
    folder = raw.save(tmp_path / "model")
    loaded = Recommender.load(as_saved_before(folder, "feature_offset", "center"))
    assert loaded.config.center is False
    torch.testing.assert_close(loaded.score([0, 1]), raw.score([0, 1]))

"""ACF (Chen et al., SIGIR 2017): conformance, masked attention over regions and profile items, and a
known answer on the demo data (it must beat MostPopular)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from visrec.data import open_dataset
from visrec.data.demo import PALETTES, SHAPES, DemoSpec, generate_demo
from visrec.evaluation import evaluate
from visrec.models import Recommender, create
from visrec.models.acf import masked_softmax
from visrec.testing import check_recommender
from visrec.training import fit_model

SMALL = {"epochs": 2, "dim": 8, "batch_size": 256, "device": "cpu"}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread avoids thread-pool spin on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_maps(n_items: int, seed: int = 0) -> np.ndarray:
    """Tiny synthetic spatial maps: 2 x 2 regions of 8 channels."""
    return np.random.default_rng(seed).random((n_items, 2, 2, 8), dtype=np.float32)


def truth_maps(demo_dir, dataset, noise: float = 0.3, seed: int = 0) -> np.ndarray:
    """2 x 2 x 12 maps: region 0 shows the palette (one-hot), region 1 the shape, 2-3 only noise."""
    truth = json.loads((demo_dir / "truth.json").read_text())["items"]
    palettes, shapes = list(PALETTES), list(SHAPES)
    maps = np.random.default_rng(seed).normal(0, noise, (dataset.n_items, 4, 12)).astype(np.float32)
    for idx, item_id in enumerate(dataset.items.ids):
        maps[idx, 0, palettes.index(truth[item_id]["palette"])] += 1.0
        maps[idx, 1, 6 + shapes.index(truth[item_id]["shape"])] += 1.0
    return maps.reshape(-1, 2, 2, 12)


@pytest.fixture(scope="module")
def fitted(demo_dataset):
    return fit_model(create("acf", SMALL), demo_dataset, random_maps(demo_dataset.n_items))


def test_acf_conforms(demo_dataset):
    maps = random_maps(demo_dataset.n_items)
    check_recommender(lambda: create("acf", SMALL), demo_dataset, maps)


def test_masked_softmax_is_a_distribution_with_zero_on_masked():
    logits = torch.tensor([[1.0, 5.0, -2.0], [0.3, 0.2, 0.1], [7.0, 8.0, 9.0]])
    mask = torch.tensor([[True, False, True], [True, True, True], [False, False, False]])
    weights = masked_softmax(logits, mask)
    assert torch.equal(weights[~mask], torch.zeros(int((~mask).sum())))
    assert torch.allclose(weights[:2].sum(-1), torch.ones(2))
    expected = torch.softmax(torch.tensor([1.0, -2.0]), 0)
    assert torch.allclose(weights[0, [0, 2]], expected)


def test_component_attention_is_distribution_over_regions(fitted, demo_dataset):
    users = np.arange(20)
    scores, maps = fitted.score(users, return_attention=True)
    assert torch.allclose(scores, fitted.score(users))
    beta, alpha, profile = maps["component_attention"], maps["item_attention"], maps["profile"]
    assert beta.shape == (20, 10, 4) and alpha.shape == (20, 10) and fitted.grid == (2, 2)
    real = profile >= 0
    assert torch.allclose(beta[real].sum(-1), torch.ones(int(real.sum())), atol=1e-6)
    assert torch.all(beta[real] > 0)
    assert torch.equal(beta[~real], torch.zeros_like(beta[~real]))
    assert torch.allclose(alpha.sum(-1), torch.ones(20), atol=1e-6)
    assert torch.equal(alpha[~real], torch.zeros_like(alpha[~real]))
    sizes = np.minimum(demo_dataset.history("test").sizes[users], 10)  # train + validation basket
    assert torch.equal(real.sum(1), torch.from_numpy(sizes))


def test_items_without_features_have_no_region_to_attend(demo_dataset):
    model = create("acf", SMALL)
    fit_model(model, demo_dataset, random_maps(demo_dataset.n_items))
    item = int(demo_dataset.profile(0)[-1])
    model.module.region_mask[item] = False
    _, maps = model.score_profiles(
        [np.array([item, (item + 1) % demo_dataset.n_items])], return_attention=True
    )
    assert torch.equal(maps["component_attention"][0, 0], torch.zeros(4))
    assert torch.isclose(maps["component_attention"][0, 1].sum(), torch.tensor(1.0))


def test_padding_is_ignored_by_item_attention(fitted, demo_dataset):
    sizes = demo_dataset.profile_sizes
    users = np.concatenate([np.flatnonzero(sizes < 10)[:4], np.flatnonzero(sizes >= 10)[:2]])
    padded, maps = fitted.score(users, return_attention=True)
    assert (maps["profile"] < 0).any()  # the batch really is padded
    module = fitted.module
    for row, user in enumerate(users):
        profile = module.profiles[user]
        unpadded = profile[profile >= 0][None]  # (1, own length): no padding at all
        alone = module.explain(module.user(torch.tensor([user])), unpadded, 64)["scores"]
        assert torch.allclose(alone[0], padded[row], atol=1e-6, rtol=0)
    new = fitted.score_profiles([demo_dataset.profile(u) for u in users])
    one_by_one = torch.cat([fitted.score_profiles([demo_dataset.profile(u)]) for u in users])
    assert torch.allclose(new, one_by_one, atol=1e-6, rtol=0)


def test_profile_scoring_uses_the_last_items(fitted, demo_dataset):
    user = int(np.flatnonzero(demo_dataset.profile_sizes > 12)[0])
    profile = demo_dataset.profile(user)
    full = fitted.score_profiles([profile])
    last = fitted.score_profiles([profile[-10:]])
    assert torch.equal(full, last)
    assert not torch.allclose(full, fitted.score_profiles([profile[:10]]))


@pytest.mark.slow
def test_acf_beats_most_popular(tmp_path):
    """Known answer: users like a palette and a shape, drawn into regions 0 and 1 of each map.
    (200 users rather than the 80 of the shared fixture: validation AUC on 80 users is too noisy.)"""
    folder = generate_demo(
        tmp_path / "demo", DemoSpec(n_users=200, n_items=120, image_size=16, seed=3)
    )
    dataset = open_dataset(folder).build()
    config = {"epochs": 12, "dim": 16, "lr": 0.02, "device": "cpu"}
    model = fit_model(create("acf", config), dataset, truth_maps(folder, dataset))
    acf = evaluate(model.score, dataset, split="validation").means["AUC"]
    pop = evaluate(create("pop").fit(dataset).score, dataset, split="validation").means["AUC"]
    assert acf > pop + 0.03, (acf, pop)


def test_a_model_saved_before_the_content_term_loads_with_its_old_scores(fitted, tmp_path):
    """Models saved before W_c (new items' content term) existed load with W_c = 0: v_j alone."""
    fitted.save(tmp_path / "m")
    state = torch.load(tmp_path / "m" / "weights.pt", weights_only=True)
    del state["target_content.weight"]
    torch.save(state, tmp_path / "m" / "weights.pt")
    old = Recommender.load(tmp_path / "m")
    assert torch.equal(
        old.module.target_content.weight, torch.zeros_like(old.module.target_content.weight)
    )
    m = old.module
    users = torch.arange(4)
    vectors = m.user_vectors(m.user(users), m.profiles[users], 64)
    assert torch.allclose(old.score(users.numpy()), vectors @ m.item.weight.T, atol=1e-6)

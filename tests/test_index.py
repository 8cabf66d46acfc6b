"""Dot-product factors of BPR/VBPR/DVBPR/CuratorNet equal score(); the faiss index vs exact top-k."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from visrec.errors import ConfigError
from visrec.features.pixel_cache import open_pixels
from visrec.models import create
from visrec.serving import recommend_profile, recommend_users
from visrec.serving.index import DotIndex, IndexedModel, IndexParams, build_index
from visrec.training import fit_model

TINY = {"epochs": 1, "batch_size": 256, "device": "cpu"}
CONFIGS = {
    "bpr": {"factors": 4},
    "vbpr": {"factors": 3, "visual_factors": 2},
    "curatornet": {"item_dim": 4, "user_hidden": 4, "n_clusters": 4, "triplets_per_epoch": 256},
    "dvbpr": {"image_size": 16, "factors": 4, "latent_dim": 3, "fc_dim": 8, "width": 0.125},
}


@pytest.fixture(scope="module")
def fitted(demo_dir, demo_dataset, tmp_path_factory):
    feats = np.random.default_rng(0).normal(size=(demo_dataset.n_items, 6)).astype(np.float32)
    pixels = open_pixels(demo_dir / "images", demo_dataset.items, 16, tmp_path_factory.mktemp("px"))
    inputs = {"bpr": None, "vbpr": feats, "curatornet": feats, "dvbpr": pixels}
    return {
        name: fit_model(create(name, {**TINY, **cfg}), demo_dataset, inputs[name])
        for name, cfg in CONFIGS.items()
    }


@pytest.mark.parametrize("name", list(CONFIGS))
def test_dot_factors_reproduce_score(fitted, demo_dataset, name):
    model = fitted[name]
    users, items = model.dot_factors()
    assert users.shape == (demo_dataset.n_users, items.shape[1])
    assert items.shape[0] == demo_dataset.n_items
    expected = model.score(np.arange(demo_dataset.n_users))
    assert expected.std() > 0  # a trained model, not a constant
    torch.testing.assert_close(users @ items.T, expected, rtol=1e-4, atol=1e-5)


def test_curatornet_profile_vectors_match_score_profiles(fitted, demo_dataset):
    model = fitted["curatornet"]
    profiles = [demo_dataset.profile(3), np.array([5, 1])]
    _, items = model.dot_factors()
    got = model.profile_vectors(profiles) @ items.T
    torch.testing.assert_close(got, model.score_profiles(profiles), rtol=1e-4, atol=1e-5)


def test_indexed_model_matches_exact_topk(fitted, demo_dataset):
    pytest.importorskip("faiss")
    users = np.arange(demo_dataset.n_users)
    for name in ("bpr", "curatornet"):
        model = fitted[name]
        indexed = build_index(model, "faiss")
        for exclude in (True, False):
            exact = recommend_users(model, demo_dataset, users, 10, exclude_consumed=exclude)
            fast = indexed.recommend_users(demo_dataset, users, 10, exclude_consumed=exclude)
            for e, f in zip(exact, fast, strict=True):
                np.testing.assert_allclose(f.scores, e.scores, rtol=1e-4, atol=1e-5)
                assert len(set(e.items) & set(f.items)) >= 9  # ties may swap at the cut
    profile = demo_dataset.profile(0)
    rec = build_index(fitted["curatornet"], "faiss").recommend_profile(profile, 5)
    exact = recommend_profile(fitted["curatornet"], profile, 5)
    np.testing.assert_allclose(rec.scores, exact.scores, rtol=1e-4, atol=1e-5)
    assert not set(rec.items) & set(profile)


def test_ivf_recall_against_exact():
    pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(50, 16))
    items = (centres[rng.integers(0, 50, 200_000)] + 0.5 * rng.normal(size=(200_000, 16))).astype(
        np.float32
    )
    items *= rng.uniform(0.5, 1.5, size=(len(items), 1)).astype(np.float32)  # unequal norms: MIPS
    # users like items: around the same taste centres
    queries = (centres[rng.integers(0, 50, 100)] + rng.normal(size=(100, 16))).astype(np.float32)
    index = DotIndex(items, IndexParams())
    assert index.ivf and index.index.nlist == 512 and index.index.nprobe == 64
    exclude = [rng.choice(len(items), 30, replace=False) for _ in queries]
    found = index.search(queries, 20, exclude)
    scores = queries @ items.T
    recall = []
    for b, rec in enumerate(found):
        scores[b, exclude[b]] = -np.inf
        truth = np.argsort(-scores[b])[:20]
        recall.append(len(set(truth) & set(rec.items)) / 20)
        assert not set(rec.items) & set(exclude[b])
        assert np.all(np.diff(rec.scores) <= 0)
    assert np.mean(recall) >= 0.99


def test_index_errors(fitted, monkeypatch):
    with pytest.raises(ConfigError, match="unknown index"):
        build_index(fitted["bpr"], "annoy")
    with pytest.raises(ConfigError, match="dot-product model"):
        IndexedModel(create("pop"))
    monkeypatch.setitem(__import__("sys").modules, "faiss", None)
    with pytest.raises(ConfigError, match=r"visrec\[faiss\]"):
        build_index(fitted["bpr"], "faiss")


def test_recommend_and_viewer_with_faiss(demo_dir, demo_dataset, tmp_path, capsys):
    pytest.importorskip("faiss")
    import json

    from visrec.cli import main
    from visrec.viewer.state import ViewerState

    run = tmp_path / "bpr"
    opts = ["--set", "factors=4", "--set", "epochs=1", "--set", "device=cpu"]
    assert main(["train", "bpr", "--data", str(demo_dir), "-o", str(run), *opts]) == 0
    user = demo_dataset.users.id(2)
    capsys.readouterr()
    rows = {}
    for kind in ("exact", "faiss"):
        assert (
            main(["recommend", str(run), "--user", user, "-k", "5", "--json", "--index", kind]) == 0
        )
        rows[kind] = json.loads(capsys.readouterr().out)
    assert [r["item_id"] for r in rows["faiss"]] == [r["item_id"] for r in rows["exact"]]
    state = ViewerState.open([run], demo_dir / "images", tmp_path / "thumbs", index="faiss")
    assert 0 in state.indexed
    for show in (False, True):  # consumed items left out by default, kept (flagged) on demand
        exact = recommend_users(
            state.runs[0].model, demo_dataset, [2], 8, exclude_consumed=not show
        )[0]
        viewed = state.recommendations(0, 2, 8, show_consumed=show)
        assert [r["item_id"] for r in viewed] == demo_dataset.items.ids_of(exact.items).tolist()
        assert [r["consumed"] for r in viewed] == exact.consumed.tolist()

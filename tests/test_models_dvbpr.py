"""DVBPR and its pixel cache: conformance, the score formula, the cached item embeddings, a loaded model
scoring without images, the cache built once and reused, unreadable/missing images listed and filled,
and the known answer (trained from pixels, beats MostPopular on the taste demo)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from visrec.data import open_dataset
from visrec.errors import ConfigError, DataError
from visrec.evaluation import evaluate
from visrec.features import pixel_cache
from visrec.features.pixel_cache import open_pixels
from visrec.models import Recommender, create
from visrec.models.dvbpr import DVBPR, DVBPRConfig, PixelSource
from visrec.models.image_encoders import ConvNet, conv_output_side
from visrec.testing import check_recommender
from visrec.training import fit_model
from visual_support import taste_demo

TINY = dict(DVBPR.conformance_config)  # small, fast CNN-F settings (the model declares them)
# The paper's form (no latent term: every preference goes through the CNN), small and fast.
KNOWN_ANSWER = {
    "image_size": 16,
    "factors": 16,
    "latent_dim": 0,
    "fc_dim": 128,
    "width": 0.25,
    "dropout": 0.0,
    "lr": 2e-3,
    "batch_size": 64,
    "epochs": 4,
    "patience": 0,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def pixels(demo_dir, demo_dataset, tmp_path_factory):
    return open_pixels(demo_dir / "images", demo_dataset.items, 16, tmp_path_factory.mktemp("px"))


def test_defaults_are_the_papers():
    cfg = DVBPRConfig()
    assert (cfg.factors, cfg.arch, cfg.image_size, cfg.lr, cfg.batch_size, cfg.dropout) == (
        100,
        "cnnf",
        224,
        1e-4,
        128,
        0.5,
    )
    assert [i.kind for i in create("dvbpr").inputs] == ["pixels"]


def test_conformance(demo_dataset, pixels):
    check_recommender(lambda: create("dvbpr", TINY), demo_dataset, pixels)


def test_cnn_sizes_follow_the_image_size():
    assert [conv_output_side(s) for s in (224, 64, 32, 16)] == [7, 2, 1, 1]
    net = ConvNet("cnnf", 224, out_dim=100, fc_dim=8)
    assert net.head[1].in_features == 256 * 7 * 7  # the paper's 7*7*256 -> 4096
    assert net(torch.zeros(2, 3, 224, 224)).shape == (2, 100)
    small = ConvNet("alexnet", 40, out_dim=5, fc_dim=8, width=0.25)
    assert small(torch.zeros(3, 3, 40, 40)).shape == (3, 5)


def test_score_is_theta_phi_plus_latent_term(demo_dataset, pixels):
    model = fit_model(create("dvbpr", TINY), demo_dataset, pixels)
    m = model.module
    phi = m.encoder(torch.from_numpy(np.array(pixels.pixels)))  # eval mode: deterministic
    expected = m.theta.weight @ phi.T + m.gamma_user.weight @ m.gamma_item.weight.T
    users = np.arange(demo_dataset.n_users)
    assert torch.allclose(model.score(users), expected, atol=1e-5)
    paper = fit_model(create("dvbpr", {**TINY, "latent_dim": 0}), demo_dataset, pixels)
    assert not hasattr(paper.module, "gamma_user")
    phi = paper.module.encoder(torch.from_numpy(np.array(pixels.pixels)))
    assert torch.allclose(paper.score(users), paper.module.theta.weight @ phi.T, atol=1e-5)


def test_item_embeddings_are_cached_until_the_next_training_step(demo_dataset, pixels):
    model = fit_model(create("dvbpr", TINY), demo_dataset, pixels)
    calls = []
    original = model.module.pixels.fetch
    model.module.pixels.fetch = lambda items, device: (
        calls.append(len(items)) or original(items, device)
    )
    model.score([0, 1])
    model.score([2])
    assert calls == []  # fresh after fit: no image went through Phi
    model.module.train()  # a training step makes the cache stale
    model.score([0])
    assert sum(calls) == demo_dataset.n_items  # every item once, in eval batches
    model.score([1])
    assert sum(calls) == demo_dataset.n_items


def test_loaded_model_scores_without_images(demo_dataset, pixels, tmp_path):
    model = fit_model(create("dvbpr", TINY), demo_dataset, pixels)
    model.save(tmp_path / "m")
    weights = torch.load(tmp_path / "m" / "weights.pt", weights_only=True)
    assert all(v.dtype != torch.uint8 for v in weights.values())  # no pixels in the state dict
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.module.pixels is None
    assert torch.allclose(loaded.score([0, 1, 2]), model.score([0, 1, 2]), atol=1e-6)
    assert loaded.info["pixels"]["size"] == 16
    loaded.module.stale = True  # e.g. after fine-tuning: the cache is reopened from info
    assert torch.allclose(loaded.score([0, 1, 2]), model.score([0, 1, 2]), atol=1e-5)
    assert loaded.module.pixels is not None
    new = loaded.embed_images(np.asarray(pixels.pixels[:2]))
    assert torch.allclose(new, model.item_embeddings()[:2], atol=1e-5)


def test_cache_is_built_once_and_reused(demo_dir, demo_dataset, tmp_path, monkeypatch):
    decoded = []
    real = pixel_cache.load_rgb
    monkeypatch.setattr(
        pixel_cache, "load_rgb", lambda *a, **k: decoded.append(a[0]) or real(*a, **k)
    )
    first = open_pixels(demo_dir / "images", demo_dataset.items, 20, tmp_path)
    assert len(decoded) == demo_dataset.n_items
    assert (
        first.pixels.shape == (demo_dataset.n_items, 20, 20, 3) and first.pixels.dtype == np.uint8
    )
    again = open_pixels(demo_dir / "images", demo_dataset.items, 20, tmp_path)
    assert len(decoded) == demo_dataset.n_items  # reused: nothing decoded again
    assert again.path == first.path and np.array_equal(again.pixels, first.pixels)
    other = open_pixels(demo_dir / "images", demo_dataset.items, 12, tmp_path)
    assert other.path != first.path and len(decoded) == 2 * demo_dataset.n_items


def test_a_changed_image_invalidates_the_cache(demo_dir, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("i0000.jpg", "i0001.jpg"):
        (images / name).write_bytes((demo_dir / "images" / name).read_bytes())
    first = open_pixels(images, ["i0000", "i0001"], 16, tmp_path / "cache")
    (images / "i0001.jpg").write_bytes((demo_dir / "images" / "i0002.jpg").read_bytes())
    second = open_pixels(images, ["i0000", "i0001"], 16, tmp_path / "cache")
    expected = open_pixels(demo_dir / "images", ["i0002"], 16, tmp_path / "cache").pixels[0]
    assert np.array_equal(second.pixels[1], expected) and second.path == first.path


def test_corrupt_and_missing_images_are_listed_and_filled(demo_dir, tmp_path, caplog):
    images = tmp_path / "images"
    images.mkdir()
    ids = ["i0000", "i0001", "i0002", "gone"]
    for name in ids[:2]:
        (images / f"{name}.jpg").write_bytes((demo_dir / "images" / f"{name}.jpg").read_bytes())
    (images / "i0002.jpg").write_bytes(b"not a jpeg at all")
    cache = open_pixels(images, ids, 16, tmp_path / "cache")
    reasons = {p["item_id"]: p["reason"] for p in cache.problems}
    assert set(reasons) == {"i0002", "gone"}
    assert reasons["gone"] == "no image file" and "not a readable image" in reasons["i0002"]
    mean = np.rint(np.asarray(cache.pixels[:2], dtype=np.float64).mean(axis=0))
    assert np.array_equal(cache.pixels[2], mean) and np.array_equal(cache.pixels[3], mean)
    manifest = json.loads((cache.path / "manifest.json").read_text(encoding="utf-8"))
    assert {p["item_id"] for p in manifest["problems"]} == {"i0002", "gone"}
    assert "2 of 4 items have no usable image" in caplog.text


def test_no_readable_image_is_an_error(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"")
    with pytest.raises(DataError, match="none of the 2 items"):
        open_pixels(tmp_path / "images", ["a", "b"], 16, tmp_path / "cache")


def test_needs_pixels(demo_dataset, pixels):
    with pytest.raises(ConfigError, match="pixels"):
        fit_model(create("dvbpr", TINY), demo_dataset)
    with pytest.raises(ConfigError, match="PixelCache"):
        fit_model(create("dvbpr", TINY), demo_dataset, np.zeros((demo_dataset.n_items, 4)))
    with pytest.raises(ConfigError, match="16px"):
        fit_model(create("dvbpr", {**TINY, "image_size": 32}), demo_dataset, pixels)
    with pytest.raises(ConfigError):
        DVBPRConfig(arch="vgg")


def test_pixel_source_fetches_rows_in_item_order():
    array = np.arange(4 * 2 * 2 * 3, dtype=np.uint8).reshape(4, 2, 2, 3)
    source = PixelSource(array, rows=np.array([3, 2, 1, 0]))
    out = source.fetch(torch.tensor([0, 3]), torch.device("cpu"))
    assert torch.equal(out, torch.from_numpy(array[[3, 0]]))


@pytest.mark.slow
def test_beats_popular_trained_from_pixels(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VISREC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    folder = taste_demo(tmp_path_factory.mktemp("taste") / "data")
    source = open_dataset(folder)
    dataset = source.build()
    pop = evaluate(create("pop").fit(dataset).score, dataset, split="validation").means["AUC"]
    model = fit_model(create("dvbpr", KNOWN_ANSWER), dataset, source.images_dir)
    auc = evaluate(model.score, dataset, split="validation").means["AUC"]
    assert auc > pop + 0.04, (auc, pop)


def test_transfer_initialises_phi_from_a_pretrained_backbone(demo_dir, demo_dataset, tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    from visrec.features.backbones import create_backbone

    with pytest.raises(ConfigError, match="cannot take 16px"):
        fit_model(
            create("dvbpr", {**TINY, "backbone": "efficientnet_lite0"}), demo_dataset, tmp_path
        )
    pixels = open_pixels(demo_dir / "images", demo_dataset.items, 32, tmp_path)
    model = create("dvbpr", {**TINY, "image_size": 32, "backbone": "efficientnet_lite0"})
    module = model._build(model._dims(demo_dataset, pixels))
    model._attach(module, demo_dataset, pixels)
    assert model.info["backbone_weights"].startswith("imagenet")
    pretrained = create_backbone("efficientnet_lite0", "imagenet")[0].state_dict()
    body = module.encoder.net.body.state_dict()
    assert all(torch.equal(body[k], v) for k, v in pretrained.items())
    assert all(p.requires_grad for p in module.parameters())  # fine-tuned end to end
    sample = model.sample(demo_dataset, 8, np.random.default_rng(0))
    pos, neg = module.train()({k: torch.from_numpy(v) for k, v in sample.items()})
    assert pos.shape == (8,) and neg.shape == (8, 1) and torch.isfinite(pos).all()


def test_a_frozen_backbone_keeps_its_weights_and_is_computed_once_per_image(
    demo_dir, demo_dataset, tmp_path
):
    pytest.importorskip("efficientnet_lite_pytorch")
    from visrec.features.backbones import create_backbone

    with pytest.raises(ConfigError, match="freeze_backbone needs a backbone"):
        create("dvbpr", {**TINY, "freeze_backbone": True})
    pixels = open_pixels(demo_dir / "images", demo_dataset.items, 32, tmp_path)
    config = {**TINY, "image_size": 32, "backbone": "efficientnet_lite0", "freeze_backbone": True}
    model = fit_model(create("dvbpr", {**config, "epochs": 2}), demo_dataset, pixels)
    encoder = model.module.encoder
    pretrained = create_backbone("efficientnet_lite0", "imagenet")[0].state_dict()
    body = encoder.net.body.state_dict()  # weights and batch-norm statistics untouched by training
    assert all(torch.equal(body[k], v) for k, v in pretrained.items())
    head = create("dvbpr", config)._build(model._dims(demo_dataset, pixels)).encoder.net.proj
    assert not torch.equal(encoder.net.proj.weight, head.weight)  # the head did train
    # the cached path (backbone once per image, then the head) is the plain forward pass
    items = torch.arange(demo_dataset.n_items)
    direct = encoder.eval()(
        torch.from_numpy(np.asarray(pixels.pixels[pixels.rows(demo_dataset.items)]))
    )
    assert torch.allclose(model.item_embeddings(), direct, atol=1e-5)
    assert torch.allclose(model.module.embed(items), direct, atol=1e-5)
    module = model.module.train()
    assert not encoder.net.body.training and encoder.net.proj.training
    first = module.pooled()
    assert module.pooled() is first  # computed once
    # a second fit on the same pixels with the same backbone reuses the vectors; other weights do not
    again = fit_model(create("dvbpr", {**config, "lr": 1e-2}), demo_dataset, pixels)
    assert again.module.pooled() is first
    with torch.no_grad():
        next(again.module.encoder.net.body.parameters()).mul_(0.5)
    again.module._pooled = None
    changed = again.module.pooled()
    assert changed is not first and not torch.allclose(changed, first)


def test_a_from_scratch_dvbpr_on_a_cold_split_points_to_the_pretrained_trunk(
    demo_dir, demo_dataset, pixels, caplog
):
    from visrec.data.split import SplitSpec

    cold = open_dataset(demo_dir).build(SplitSpec("cold-items", cold_fraction=0.1, seed=2))
    hint = "freeze_backbone=true"
    with caplog.at_level("INFO", logger="visrec.models.dvbpr"):
        fit_model(create("dvbpr", {**TINY, "epochs": 1}), demo_dataset, pixels)
    assert hint not in caplog.text  # warm split: no hint
    with caplog.at_level("INFO", logger="visrec.models.dvbpr"):
        fit_model(create("dvbpr", {**TINY, "epochs": 1}), cold, pixels)
    assert hint in caplog.text

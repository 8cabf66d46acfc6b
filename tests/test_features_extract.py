"""extract_features: store contents, preprocessing, report of bad images, resume, precision, weights."""

from __future__ import annotations

import shutil
from urllib.error import URLError

import numpy as np
import pytest
import torch

from features_support import BAD, GOOD, make_zoo
from visrec.cli import main as visrec
from visrec.errors import ConfigError, DataError, VisrecError
from visrec.features import FeatureStore, create_backbone, extract_features, load_rgb, runtime
from visrec.features import extract as extract_module
from visrec.features.images import center_crop_resize

TINY = {
    "backbone": "resnet18",
    "weights": "none",
    "input_size": 32,
    "workers": 0,
    "batch_size": 16,
    "device": "cpu",  # compared with CPU pipelines below; the CUDA path has its own gpu test
    "precision": "fp32",  # auto would pick bf16 on CPUs with AMX
}


@pytest.fixture(scope="module")
def images(demo_dir):
    return demo_dir / "images"


@pytest.fixture(scope="module")
def tiny_store(images, tmp_path_factory):
    return extract_features(images, tmp_path_factory.mktemp("x") / "r18", **TINY)


def test_store_matches_images_and_metadata(tiny_store, images):
    assert list(tiny_store.ids) == sorted(p.stem for p in images.iterdir())
    assert tiny_store.array.shape == (len(tiny_store), 512) and tiny_store.array.dtype == np.float32
    meta = tiny_store.meta
    assert (meta["backbone"], meta["layer"], meta["weights"]) == ("resnet18", "pooled", "none")
    assert meta["input_size"] == 32 and meta["resize"] == 37 and meta["precision"] == "fp32"
    assert meta["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert tiny_store.report["n_failed"] == 0 and tiny_store.failed == []
    assert not (tiny_store.path.parent / f".{tiny_store.path.name}.partial").exists()


def test_features_equal_a_hand_written_pipeline(tiny_store, images):
    body, prep = create_backbone("resnet18", "none")
    item = tiny_store.ids[3]
    pixels = center_crop_resize(load_rgb(images / f"{item}.jpg"), 37, 32)
    x = torch.from_numpy(pixels.copy()).permute(2, 0, 1).float()[None] / 255
    x = (x - torch.tensor(prep["mean"]).view(1, 3, 1, 1)) / torch.tensor(prep["std"]).view(
        1, 3, 1, 1
    )
    with torch.no_grad():
        expected = body(x)[0].numpy()
    np.testing.assert_allclose(tiny_store.array[3], expected, rtol=1e-4, atol=1e-4)


def test_spatial_layer_float16(images, tmp_path):
    subset = {p.stem: p for p in sorted(images.iterdir())[:12]}
    store = extract_features(
        subset, tmp_path / "maps", layer="layer4", dtype="float16", **{**TINY, "input_size": 64}
    )
    assert store.is_spatial and store.array.shape == (len(store), 2, 2, 512)
    assert store.array.dtype == np.float16 and store.meta["layer"] == "layer4"


def test_report_lists_exactly_the_bad_images_and_items_without_image(tmp_path):
    zoo = make_zoo(tmp_path / "zoo")
    store = extract_features(zoo, tmp_path / "out", items=["rgb", "ghost", "phantom"], **TINY)
    assert sorted(store.ids) == sorted(GOOD)
    assert sorted(row["item_id"] for row in store.failed) == sorted(BAD)
    for row in store.failed:
        assert BAD[row["item_id"]] in row["reason"] and row["path"].endswith(
            row["item_id"] + ".jpg"
        )
    assert store.missing_images == ["ghost", "phantom"]
    assert store.report["n_failed"] == 3 and store.report["n_missing_images"] == 2
    table = (tmp_path / "out" / "failed.csv").read_text().splitlines()
    assert len(table) == 1 + 3 + 2 and "ghost,,no image file" in table


def test_resume_after_a_crash_gives_the_same_store(images, tiny_store, tmp_path, monkeypatch):
    original, calls = extract_module._write_batch, []

    def crash_on_third_batch(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated crash")
        original(*args)

    monkeypatch.setattr(extract_module, "_write_batch", crash_on_third_batch)
    out = tmp_path / "r18"
    with pytest.raises(KeyboardInterrupt):
        extract_features(images, out, **TINY)
    assert not out.exists() and (tmp_path / ".r18.partial").is_dir()
    with pytest.raises(ConfigError, match="--resume"):
        extract_features(images, out, **TINY)
    monkeypatch.setattr(extract_module, "_write_batch", original)
    resumed = extract_features(images, out, resume=True, **TINY)
    assert resumed.report["images_processed"] == len(resumed) - 2 * TINY["batch_size"]
    assert list(resumed.ids) == list(tiny_store.ids)
    np.testing.assert_allclose(resumed.array, tiny_store.array, rtol=1e-5, atol=1e-5)
    assert resumed.meta == tiny_store.meta


def test_resume_refuses_other_settings(images, tmp_path, monkeypatch):
    monkeypatch.setattr(extract_module, "_write_batch", _raise)
    with pytest.raises(RuntimeError):
        extract_features(images, tmp_path / "s", **TINY)
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="different settings"):
        extract_features(images, tmp_path / "s", resume=True, **{**TINY, "input_size": 40})


def _raise(*_):
    raise RuntimeError("boom")


def test_bf16_features_agree_with_fp32(images, tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    kwargs = {**TINY, "backbone": "efficientnet_lite0", "weights": "imagenet", "input_size": 64}
    subset = {p.stem: p for p in sorted(images.iterdir())[:16]}
    fp32 = extract_features(subset, tmp_path / "fp32", **kwargs)
    bf16 = extract_features(subset, tmp_path / "bf16", **{**kwargs, "precision": "bf16"})
    assert bf16.meta["precision"] == "bf16"
    a, b = np.asarray(fp32.array), np.asarray(bf16.array)
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cosine.mean() >= 0.99


def test_auto_precision_follows_the_hardware(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert runtime.resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx512f", "amx_bf16"}))
    assert runtime.resolve_precision("auto", cpu) == "bf16"
    assert runtime.resolve_precision("fp16", cpu) == "fp16"
    with pytest.raises(ConfigError, match="precision"):
        runtime.resolve_precision("int8", cpu)


def test_decoding_workers_give_the_same_features(images, tiny_store, tmp_path):
    subset = {i: images / f"{i}.jpg" for i in tiny_store.ids[:20]}
    store = extract_features(subset, tmp_path / "w", **{**TINY, "workers": 1})
    np.testing.assert_allclose(store.array, tiny_store.array[:20], rtol=1e-4, atol=1e-4)


def test_weights_from_a_file(tmp_path):
    from safetensors.torch import save_file
    from torchvision.models import resnet18

    model = resnet18(num_classes=10)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        reference = torch.nn.Sequential(*list(model.eval().children())[:-1])(x).flatten(1)
    for name in ("w.pt", "w.safetensors"):
        body, prep = create_backbone("resnet18", tmp_path / name)
        assert prep["weights"].startswith(f"file:{name}:sha256=")
        with torch.no_grad():
            torch.testing.assert_close(body(x), reference)


def test_weights_file_with_code_or_wrong_shape_is_refused(tmp_path):
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "wrong.pt")
    with pytest.raises(DataError, match="does not fit"):
        create_backbone("resnet18", tmp_path / "wrong.pt")
    torch.save({"x": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(DataError, match="not a loadable state dict"):
        create_backbone("resnet18", tmp_path / "evil.pt")


class _Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_offline_imagenet_weights_give_a_clear_error(monkeypatch):
    import torchvision.models

    def offline(*_, **__):
        raise URLError("Name or service not known")

    monkeypatch.setattr(torchvision.models, "get_model", offline)
    with pytest.raises(VisrecError, match="--weights PATH.*efficientnet"):
        create_backbone("resnet50", "imagenet")


def test_unknown_backbone_and_layer():
    with pytest.raises(ConfigError, match="did you mean resnet50"):
        create_backbone("resnet5", "none")
    with pytest.raises(ConfigError, match="no layer 'layer9'.*layer4"):
        create_backbone("resnet18", "none", "layer9")


def test_cli_on_a_dataset_folder_lists_items_without_image(demo_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_dir, data)
    removed = sorted((data / "images").iterdir())[:2]
    for path in removed:
        path.unlink()
    out = tmp_path / "feats"
    argv = [
        "extract",
        str(data),
        "-o",
        str(out),
        "--backbone",
        "resnet18",
        "--weights",
        "none",
        "--input-size",
        "32",
        "--workers",
        "0",
    ]
    assert visrec(argv) == 0
    store = FeatureStore.open(out)
    assert len(store) == 88 and store.missing_images == sorted(p.stem for p in removed)
    assert visrec(argv) == 2  # refuses to clobber


@pytest.mark.slow
def test_resnet50_pooled_and_layer4_shapes():
    for layer, shape in (("pooled", (1, 2048)), ("layer4", (1, 2048, 7, 7))):
        body, prep = create_backbone("resnet50", "none", layer)
        assert prep["input_size"] == 224
        with torch.no_grad():
            assert tuple(body(torch.zeros(1, 3, 224, 224)).shape) == shape


@pytest.mark.realdata
@pytest.mark.slow
def test_movielens_posters_with_offline_efficientnet(real_data, tmp_path):
    store = extract_features(
        real_data / "posters",
        tmp_path / "posters",
        backbone="efficientnet_lite0",
        weights="imagenet",
        progress=False,
    )
    assert len(store) == 1663 and store.failed == [] and store.dim == 1280


@pytest.mark.gpu
def test_cuda_features_agree_with_cpu(tiny_store, images, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    subset = {item: images / f"{item}.jpg" for item in tiny_store.ids}
    cuda = {**TINY, "device": "cuda"}
    fp32 = extract_features(subset, tmp_path / "fp32", **cuda)
    assert fp32.meta["precision"] == "fp32" and list(fp32.ids) == list(tiny_store.ids)
    # PyTorch runs fp32 convolutions on CUDA as TF32 by default (10-bit mantissa): ~1e-3 differences
    np.testing.assert_allclose(fp32.array, tiny_store.array, rtol=2e-2, atol=2e-2)
    auto = extract_features(subset, tmp_path / "auto", **{**cuda, "precision": "auto"})
    assert auto.meta["precision"] == "bf16"  # the default on a GPU
    a, b = np.asarray(auto.array, dtype=np.float64), np.asarray(tiny_store.array, dtype=np.float64)
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cosine.min() >= 0.99

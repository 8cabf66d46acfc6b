"""The ONNX Runtime backend and JPEG draft decoding agree with PyTorch's reference path (cosine >= 0.999)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from features_support import GOOD, make_zoo
from visrec.cli import main as visrec
from visrec.errors import ConfigError
from visrec.features import create_backbone, extract_features
from visrec.features import onnx_backend as onnx_module

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

TINY = {
    "backbone": "resnet18",
    "weights": "none",
    "input_size": 64,
    "workers": 0,
    "batch_size": 8,
    "device": "cpu",
    "precision": "fp32",
}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VISREC_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _large_jpegs(folder, n=3):
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i in range(n):
        coarse = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((1600, 1200), Image.Resampling.BICUBIC)
        noisy = np.asarray(image, dtype=np.int16) + rng.integers(-12, 12, (1200, 1600, 3))
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(folder / f"{i}.jpg")
    return folder


def test_onnx_features_match_torch_on_every_image_kind(tmp_path):
    zoo = make_zoo(tmp_path / "zoo", huge=False)
    torch_store = extract_features(zoo, tmp_path / "t", **TINY)
    onnx_store = extract_features(zoo, tmp_path / "o", backend="onnx", **TINY)
    assert list(onnx_store.ids) == list(torch_store.ids) == sorted(set(GOOD) - {"huge"})
    assert [r["item_id"] for r in onnx_store.failed] == [r["item_id"] for r in torch_store.failed]
    assert _cosines(onnx_store.array, torch_store.array).min() >= 0.999
    assert not np.array_equal(onnx_store.array, np.zeros_like(onnx_store.array))
    assert onnx_store.meta["backend"] == "onnx" and torch_store.meta["backend"] == "torch"


def test_onnx_spatial_layer_matches_torch(tmp_path):
    folder = _large_jpegs(tmp_path / "big", n=2)
    kwargs = {**TINY, "layer": "layer4"}
    torch_store = extract_features(folder, tmp_path / "t", **kwargs)
    onnx_store = extract_features(folder, tmp_path / "o", backend="onnx", **kwargs)
    assert onnx_store.array.shape == torch_store.array.shape == (2, 2, 2, 512)
    assert _cosines(onnx_store.array, torch_store.array).min() >= 0.999


def test_second_run_uses_the_cache_without_building_the_model(tmp_path, cache, monkeypatch):
    zoo = make_zoo(tmp_path / "zoo", huge=False)
    first = extract_features(zoo, tmp_path / "a", backend="onnx", **TINY)
    assert len(list((cache / "onnx").glob("resnet18-pooled-*.onnx"))) == 1

    def fail(*_, **__):
        raise AssertionError("the cached graph should have been used")

    monkeypatch.setattr(torch.onnx, "export", fail)
    monkeypatch.setattr("visrec.features.extract.create_backbone", fail)
    second = extract_features(zoo, tmp_path / "b", backend="onnx", **TINY)
    np.testing.assert_array_equal(second.array, first.array)
    assert second.meta == first.meta
    with pytest.raises(AssertionError, match="cached graph"):  # another input size: a new key
        extract_features(zoo, tmp_path / "c", backend="onnx", **{**TINY, "input_size": 48})


def test_damaged_cache_is_exported_again(tmp_path, cache):
    zoo = make_zoo(tmp_path / "zoo", huge=False)
    first = extract_features(zoo, tmp_path / "a", backend="onnx", **TINY)
    (graph,) = (cache / "onnx").glob("*.onnx")
    graph.write_bytes(b"not an onnx graph")
    second = extract_features(zoo, tmp_path / "b", backend="onnx", **TINY)
    np.testing.assert_array_equal(second.array, first.array)
    assert graph.stat().st_size > 1000


def test_export_that_disagrees_with_torch_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_module, "MIN_COSINE", 1.5)  # no export can reach it
    with pytest.raises(Exception, match="differ from PyTorch"):
        extract_features(make_zoo(tmp_path / "zoo", huge=False), tmp_path / "o", backend="onnx",
                         **TINY)  # fmt: skip
    assert not list((tmp_path / "cache" / "onnx").glob("*.onnx"))


def test_onnx_backend_option_errors(tmp_path):
    zoo = make_zoo(tmp_path / "zoo", huge=False)
    with pytest.raises(ConfigError, match="fp32"):
        extract_features(zoo, tmp_path / "o", backend="onnx", **{**TINY, "precision": "bf16"})
    with pytest.raises(ConfigError, match="backend must be one of"):
        extract_features(zoo, tmp_path / "o", backend="tensorrt", **TINY)
    code = visrec(["extract", str(zoo), "-o", str(tmp_path / "o"), "--backend", "onnx",
                   "--device", "meta", "--weights", "none"])  # fmt: skip
    assert code == 2


def test_cli_backend_onnx(tmp_path, capsys):
    zoo = make_zoo(tmp_path / "zoo", huge=False)
    args = ["extract", str(zoo), "--backbone", "resnet18", "--weights", "none", "--input-size",
            "64", "--workers", "0", "--device", "cpu", "--backend", "onnx"]  # fmt: skip
    assert visrec([*args, "-o", str(tmp_path / "o")]) == 0
    assert "resnet18/pooled" in capsys.readouterr().out


def test_draft_decoding_of_large_jpegs_matches_full_decode_reference(tmp_path):
    """visrec decodes a 1600x1200 JPEG at 1/4 scale (libjpeg DCT scaling) and resizes once; the
    reference decodes it fully and applies torchvision's Resize + CenterCrop + ToTensor + Normalize.
    Pixels differ slightly; the features agree at cosine >= 0.999 per image."""
    from torchvision import transforms

    folder = _large_jpegs(tmp_path / "big")
    kwargs = {**TINY, "input_size": None, "layer": "layer4"}
    store = extract_features(folder, tmp_path / "s", **kwargs)
    body, prep = create_backbone("resnet18", "none", "layer4")
    reference = transforms.Compose([
        transforms.Resize(prep["resize"]),
        transforms.CenterCrop(prep["input_size"]),
        transforms.ToTensor(),
        transforms.Normalize(prep["mean"], prep["std"]),
    ])  # fmt: skip
    batch = torch.stack(
        [reference(Image.open(folder / f"{i}.jpg").convert("RGB")) for i in store.ids]
    )
    with torch.no_grad():
        expected = body(batch).permute(0, 2, 3, 1).numpy()
    cosines = _cosines(store.array, expected)
    assert cosines.min() >= 0.999, cosines


def test_resume_refuses_another_backend(tmp_path, monkeypatch):
    from visrec.features import extract as extract_module

    zoo = make_zoo(tmp_path / "zoo", huge=False)

    def crash(*_):
        raise RuntimeError("boom")

    monkeypatch.setattr(extract_module, "_write_batch", crash)
    with pytest.raises(RuntimeError):
        extract_features(zoo, tmp_path / "s", **TINY)
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="different settings"):
        extract_features(zoo, tmp_path / "s", resume=True, backend="onnx", **TINY)

"""Untrusted image folders: links leaving the folder, EPS named .jpg, pixel bombs, bad file names."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from hostile_support import BAD_NAMES, EPS, fake_gs, hostile_folder, png_header
from visrec.data.check import check_dataset
from visrec.data.images import ImageReadError, id_problem, load_rgb, open_image, scan_image_folder
from visrec.features import extract_features

TINY = {"backbone": "resnet18", "weights": "none", "input_size": 32, "workers": 0,
        "batch_size": 8, "device": "cpu", "precision": "fp32"}  # fmt: skip


@pytest.fixture
def gs(tmp_path, monkeypatch):
    """A fake Ghostscript first on PATH; the test fails if anything ever runs it."""
    bin_dir, marker = fake_gs(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    yield marker
    assert not marker.exists(), "an external program (gs) was launched on an untrusted file"


def test_scan_refuses_links_leaving_the_folder_and_bad_names(tmp_path):
    paths = hostile_folder(tmp_path)
    scan = scan_image_folder(paths["images"])
    assert sorted(scan.images) == ["eps", "good0", "good1", "good2", "good3"]
    reasons = {os.path.basename(r["path"]): r["reason"] for r in scan.rejected}
    assert "outside the folder" in reasons["escape.png"]
    for name, reason in BAD_NAMES.items():
        assert reason in reasons[f"{name}.png"]


def test_a_link_inside_the_folder_is_an_item(tmp_path):
    paths = hostile_folder(tmp_path)
    os.symlink(paths["images"] / "good0.jpg", paths["images"] / "alias.jpg")
    assert "alias" in scan_image_folder(paths["images"]).images


@pytest.mark.parametrize(
    "name,problem",
    [("ok id", None), ("", "empty"), (" x", "spaces"), ("x\n", "spaces"), ("a\rb", "line break"),
     ("a\x00b", "control"), ("a\udcffb", "undecodable"), ("a\u2028b", "line break")],
)  # fmt: skip
def test_id_problem(name, problem):
    found = id_problem(name)
    assert (found is None) if problem is None else (problem in found)


def test_eps_named_jpg_is_refused_without_running_gs(tmp_path, gs):
    path = tmp_path / "poster.jpg"
    path.write_bytes(EPS)
    with Image.open(path) as image:  # the hazard is real: plain Pillow takes it for EPS
        assert image.format == "EPS"
    with pytest.raises(ImageReadError, match="format visrec does not decode") as info:
        load_rgb(path)
    assert str(path) in str(info.value)


def test_png_over_the_pixel_budget_is_refused_before_decoding(tmp_path):
    bomb = png_header(tmp_path / "bomb.png", 15_000, 10_000)  # 150 megapixels claimed
    with pytest.raises(ImageReadError, match=r"15000x10000 = 150,000,000 pixels is above"):
        load_rgb(bomb)
    small = tmp_path / "small.png"
    Image.new("RGB", (300, 200), (5, 6, 7)).save(small)
    with pytest.raises(ImageReadError, match="above the pixel budget of 10,000"):
        open_image(small, max_pixels=10_000)
    assert load_rgb(small, max_pixels=60_000).size == (300, 200)


def test_png_beyond_pillows_bomb_limit_is_refused(tmp_path):
    bomb = png_header(tmp_path / "bomb.png", 40_000, 40_000)
    with pytest.raises(ImageReadError, match="too large to decode safely"):
        load_rgb(bomb)


def test_extraction_skips_hostile_files_and_reports_them(tmp_path, gs):
    paths = hostile_folder(tmp_path)
    png_header(paths["images"] / "bomb.png", 15_000, 10_000)
    store = extract_features(paths["images"], tmp_path / "store", **TINY)
    assert sorted(store.ids) == ["good0", "good1", "good2", "good3"]
    failed = {f["item_id"]: f["reason"] for f in store.failed}
    assert "format visrec does not decode" in failed["eps"]
    assert "pixel budget" in failed["bomb"]
    refused = {os.path.basename(r["path"]): r["reason"] for r in store.report["refused_files"]}
    assert set(refused) == {"escape.png", *(f"{n}.png" for n in BAD_NAMES)}
    assert store.report["n_refused_files"] == len(BAD_NAMES) + 1
    assert not (tmp_path / ".store.partial").exists()


def test_data_check_reports_hostile_files(tmp_path, gs):
    paths = hostile_folder(tmp_path)
    png_header(paths["images"] / "bomb.png", 15_000, 10_000)
    (tmp_path / "interactions.csv").write_text(
        "user_id,item_id,timestamp\nu1,good0,1\nu1,good1,2\nu2,good2,3\n", encoding="utf-8"
    )
    report = check_dataset(tmp_path)
    refused = report.of_kind("refused-image-file")[0].ids
    assert any("escape.png" in r and "outside the folder" in r for r in refused)
    unreadable = dict(i.split(" ", 1) for i in report.of_kind("unreadable-image")[0].ids)
    assert "format visrec does not decode" in unreadable["eps"]
    assert "pixel budget" in unreadable["bomb"]


def test_a_link_loop_is_refused(tmp_path):
    paths = hostile_folder(tmp_path)
    os.symlink(paths["images"] / "loop2.jpg", paths["images"] / "loop1.jpg")
    os.symlink(paths["images"] / "loop1.jpg", paths["images"] / "loop2.jpg")
    scan = scan_image_folder(paths["images"])
    assert "loop1" not in scan.images and "loop2" not in scan.images
    assert sum("cannot be resolved" in r["reason"] for r in scan.rejected) == 2

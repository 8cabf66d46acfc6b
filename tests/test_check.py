"""``visrec data check``: every problem reported at once, exit code 0 only when usable."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visrec.cli import main
from visrec.data.loaders import load_movielens, write_folder
from visrec.features.check import check_dataset


def _image(path: Path, fmt: str = "JPEG") -> Path:
    Image.new("RGB", (6, 6), (10, 200, 30)).save(path, fmt)
    return path


def _folder(tmp_path: Path, interactions: str) -> Path:
    folder = tmp_path / "mine"
    (folder / "images").mkdir(parents=True)
    (folder / "interactions.csv").write_text(interactions, encoding="utf-8")
    return folder


GOOD = "user_id,item_id,timestamp\nu1,a,1\nu1,b,2\nu2,a,3\nu2,c,4\nu2,d,5\n"


def test_a_clean_folder_is_usable(tmp_path):
    folder = _folder(tmp_path, GOOD)
    for item in "abcd":
        _image(folder / "images" / f"{item}.jpg")
    report = check_dataset(folder)
    assert report.problems == [] and report.usable
    assert report.counts == {"users": 2, "items": 4, "interactions": 5, "images": 4}


def test_every_problem_is_reported_at_once(tmp_path, capsys):
    folder = _folder(tmp_path, GOOD)
    _image(folder / "images" / "a.jpg")
    _image(folder / "images" / "b.jpg")
    _image(folder / "images" / "b.png", "PNG")  # same id, other extension
    (folder / "images" / "c.jpg").write_bytes(b"not an image at all")
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, "JPEG")
    (folder / "images" / "e.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    _image(folder / "images" / "f.jpg")
    report = check_dataset(folder)
    kinds = {p.kind: p for p in report.problems}
    assert set(kinds) == {"duplicate-image-id", "unreadable-image", "missing-image", "unused-image"}
    assert kinds["duplicate-image-id"].ids == ("b (b.jpg, b.png)",)
    assert [i.split()[0] for i in kinds["unreadable-image"].ids] == ["c", "e"]
    assert kinds["missing-image"].ids == ("d",)
    assert kinds["unused-image"].ids == ("e", "f")
    assert not report.usable

    assert main(["data", "check", str(folder)]) == 1
    out = capsys.readouterr().out
    for text in (
        "[duplicate-image-id]",
        "[unreadable-image]",
        "[missing-image]",
        "[unused-image]",
        "NOT usable (2 error(s), 2 warning(s))",
    ):
        assert text in out


def test_quick_mode_skips_decoding_but_catches_garbage(tmp_path):
    folder = _folder(tmp_path, GOOD)
    for item in "abd":
        _image(folder / "images" / f"{item}.jpg")
    (folder / "images" / "c.jpg").write_bytes(b"")
    pixels = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG")
    truncated = buf.getvalue()[: len(buf.getvalue()) // 2]  # headers intact: only decoding sees it
    (folder / "images" / "d.jpg").write_bytes(truncated)
    full = check_dataset(folder).of_kind("unreadable-image")[0].ids
    quick = check_dataset(folder, decode=False).of_kind("unreadable-image")[0].ids
    assert [i.split()[0] for i in full] == ["c", "d"]
    assert quick == ("c (empty file)",)


def test_timestamp_problems_do_not_hide_the_image_checks(tmp_path):
    folder = _folder(tmp_path, "user_id,item_id,timestamp\nu1,a,1\nu1,b,2021-03-04\nu2,c,3\n")
    _image(folder / "images" / "a.jpg")
    (folder / "images" / "b.jpg").write_bytes(b"junk")
    report = check_dataset(folder)
    kinds = {p.kind: p for p in report.problems}
    assert "line 3" in kinds["timestamps"].message and "2021-03-04" in kinds["timestamps"].message
    assert kinds["missing-image"].ids == ("c",)
    assert "unreadable-image" in kinds and not report.usable


def test_timestamps_without_anything_to_hold_out(tmp_path):
    folder = _folder(tmp_path, "user_id,item_id,timestamp\nu1,a,7\nu1,b,7\nu2,a,7\n")
    _image(folder / "images" / "a.jpg")
    _image(folder / "images" / "b.jpg")
    report = check_dataset(folder)
    assert [p.kind for p in report.errors] == ["timestamps"]
    with_eval = _folder(
        tmp_path / "x", "user_id,item_id,timestamp,evaluation\nu1,a,7,false\nu1,b,7,true\n"
    )
    _image(with_eval / "images" / "a.jpg")
    _image(with_eval / "images" / "b.jpg")
    assert check_dataset(with_eval).problems == []


def test_mixed_timestamp_units_warn(tmp_path):
    folder = _folder(tmp_path, "user_id,item_id,timestamp\nu1,a,1600000000\nu1,b,1600000000000\n")
    _image(folder / "images" / "a.jpg")
    _image(folder / "images" / "b.jpg")
    report = check_dataset(folder)
    assert [(p.kind, p.severity) for p in report.problems] == [("timestamps", "warning")]
    assert report.usable


def test_missing_pieces(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert [p.kind for p in check_dataset(empty).errors] == ["interactions"]
    folder = _folder(tmp_path, GOOD)
    (folder / "dataset.json").write_text('{"images": "pics", "features": "feats"}')
    report = check_dataset(folder)
    assert {p.kind for p in report.errors} == {"images", "features"}
    (folder / "feats").mkdir()  # exists but is not a feature store
    (folder / "dataset.json").write_text('{"features": "feats"}')
    pytest.importorskip("visrec.features.store")
    report = check_dataset(folder)
    assert [p.kind for p in report.errors] == ["features"]
    assert "feature store is missing" in report.errors[0].message
    (folder / "dataset.json").write_text("{not json")
    assert "manifest" in {p.kind for p in check_dataset(folder).errors}


def test_strict_turns_warnings_into_a_failure(tmp_path, capsys):
    folder = _folder(tmp_path, GOOD)
    for item in "abc":
        _image(folder / "images" / f"{item}.jpg")
    assert main(["data", "check", str(folder)]) == 0
    assert main(["data", "check", "--strict", str(folder)]) == 1
    assert "[missing-image] 1 item(s) have no image" in capsys.readouterr().out


@pytest.mark.realdata
@pytest.mark.slow
def test_movielens_posters_report_exactly_the_movies_without_a_poster(real_data, tmp_path, capsys):
    out = write_folder(load_movielens(real_data), tmp_path / "ml")
    assert not (out / "images").exists()  # the manifest references the posters, nothing is copied
    movies = {
        line.split("|")[0]
        for line in (real_data / "u.item").read_text(encoding="latin-1").splitlines()
        if line
    }
    posters = {p.stem for p in (real_data / "posters").iterdir()}
    expected = movies - posters
    assert len(expected) == 19

    report = check_dataset(out)  # decodes all 1,663 posters
    assert [(p.kind, p.severity) for p in report.problems] == [("missing-image", "warning")]
    assert set(report.problems[0].ids) == expected
    assert main(["data", "check", "--quick", str(out)]) == 0
    assert "19 item(s) have no image" in capsys.readouterr().out

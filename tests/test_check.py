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


def test_every_bad_row_is_reported_in_one_pass_capped_with_a_count(tmp_path, capsys):
    rows = [f"u{n % 3},i{n},{n}" for n in range(40)]
    for n in range(5, 35):  # 30 bad timestamps on lines n + 2
        rows[n] = f"u1,i{n},day{n}"
    rows[36], rows[38] = ",i36,36", "u2,,38"
    folder = _folder(tmp_path, "user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    report = check_dataset(folder, decode=False)
    messages = {p.kind: p.message for p in report.errors}
    expected = ", ".join(str(n + 2) for n in range(5, 25))
    assert messages["timestamps"].endswith(
        f"timestamp must be an integer (e.g. Unix seconds), got 'day5' on 30 rows: lines "
        f"{expected} (and 10 more)"
    )
    assert [p.message.split(": ", 1)[1] for p in report.of_kind("interactions")] == [
        "empty user_id on line 38",
        "empty item_id on line 40",
    ]
    assert report.counts["interactions"] == 8  # the good rows are still counted
    assert main(["data", "check", "--quick", str(folder)]) == 1
    assert "NOT usable (3 error(s)" in capsys.readouterr().out


def _movielens(folder: Path, ratings: list[str]) -> Path:
    (folder / "posters").mkdir(parents=True)
    (folder / "u.data").write_text("\n".join(ratings) + "\n", encoding="utf-8")
    genres = "|".join(["0"] * 19)
    items = [f"{i}|Movie {i} (1995)|01-Jan-1995||http://x|{genres}" for i in (1, 2, 3)]
    (folder / "u.item").write_text("\n".join(items) + "\n", encoding="latin-1")
    for item in ("1", "2"):
        _image(folder / "posters" / f"{item}.jpg")
    return folder


def test_movielens_layout_is_checked_like_the_loader_reads_it(tmp_path):
    folder = _movielens(
        tmp_path / "ml", ["1\t1\t5\t10", "1\t2\t3\t11", "2\t1\t4\t12", "2\t3\t1\t13"]
    )
    report = check_dataset(folder)
    assert report.counts == {"users": 2, "items": 3, "interactions": 4, "images": 2}
    assert [(p.kind, p.ids) for p in report.problems] == [("missing-image", ("3",))]
    assert report.usable
    bad = _movielens(
        tmp_path / "bad", ["1\t1\t5\t10", "1\t2\tfive\t11", "2\t1\t4\t-3", "2\t3\t1\t13"]
    )
    errors = [p.message for p in check_dataset(bad).errors]
    assert errors == [
        f"{bad / 'u.data'}: rating is not a number on line 2",
        f"{bad / 'u.data'}: negative timestamp on line 3",
    ]


def test_wikimedia_layout_is_checked_like_the_loader_reads_it(tmp_path):
    folder = tmp_path / "wiki"
    (folder / "images").mkdir(parents=True)
    (folder / "train.csv").write_text("user,image_id,timestamp\nu1,a,1\nu1,b,2\nu2,a,3\n")
    (folder / "test.csv").write_text("user,image_id,timestamp\nu1,c,9\nu2,b,x\n")
    for item in "abc":
        _image(folder / "images" / f"{item}.jpg")
    report = check_dataset(folder)
    assert [p.message for p in report.errors] == [
        f"{folder / 'test.csv'}: timestamp must be an integer (e.g. Unix seconds), got 'x' on line 3"
    ]
    assert report.counts == {"users": 2, "items": 3, "interactions": 4, "images": 3}
    (folder / "test.csv").write_text("user,image_id,timestamp\nu1,c,9\nu2,b,4\n")
    assert check_dataset(folder).problems == []


def test_a_folder_in_no_layout_names_the_layouts(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.csv").write_text("a,b\n1,2\n")
    [problem] = check_dataset(tmp_path / "x").errors
    assert "u.data (MovieLens)" in problem.message and "interactions.csv" in problem.message

"""Dataset folders and real formats (MovieLens, the tutorial's Wikimedia CSVs), on files written here."""

from __future__ import annotations

import pytest
from PIL import Image

from conftest import write
from visrec.data import load_movielens, load_wikimedia, open_dataset
from visrec.data.images import scan_images
from visrec.data.loaders import write_folder
from visrec.errors import DataError


def _image(path):
    Image.new("RGB", (4, 4), (255, 0, 0)).save(path)


def test_generic_folder_with_images_and_items(tmp_path):
    write(tmp_path / "interactions.csv", "user_id,item_id,timestamp\nu,a,1\nu,b,2\nv,a,3\nv,c,4\n")
    write(tmp_path / "items.csv", "item_id,group\na,x\nb,y\nc,x\nd,y\n")
    (tmp_path / "images").mkdir()
    for item in "abcd":
        _image(tmp_path / "images" / f"{item}.png")
    src = open_dataset(tmp_path)
    assert sorted(src.image_paths) == ["a", "b", "c", "d"]
    ds = src.build()
    assert ds.n_items == 4  # d has an image but no interaction
    assert ds.group_names == ("x", "y")


def test_image_clashes_are_reported(tmp_path):
    _image(tmp_path / "12.jpg")
    _image(tmp_path / "12.png")
    _image(tmp_path / "13.JPEG")
    (tmp_path / "notes.txt").write_text("x")
    images, clashes = scan_images(tmp_path)
    assert sorted(images) == ["12", "13"]
    assert [p.name for p in clashes["12"]] == ["12.jpg", "12.png"]


def test_movielens_files(tmp_path):
    write(tmp_path / "u.data", "1\t10\t5\t881250949\n1\t20\t3\t881250950\n2\t10\t4\t881250951\n")
    genres = "unknown|0\nAction|1\nComedy|2\n"
    write(tmp_path / "u.genre", genres)
    item_rows = [
        "10|Toy Story (1995)|01-Jan-1995||http://x|0|0|1",
        "20|Heat (1995)|01-Jan-1995||u|0|1|0",
    ]
    (tmp_path / "u.item").write_bytes(("\n".join(item_rows) + "\n").encode("latin-1"))
    (tmp_path / "posters").mkdir()
    _image(tmp_path / "posters" / "10.jpg")
    src = open_dataset(tmp_path)
    assert src.name == "movielens-100k"
    assert len(src.interactions) == 3
    assert src.items.loc["10", "group"] == "Comedy"
    assert src.items.loc["20", "title"] == "Heat (1995)"
    assert list(src.image_paths) == ["10"]
    assert src.interactions.frame["rating"].tolist() == [5.0, 3.0, 4.0]


def test_movielens_bad_file(tmp_path):
    write(tmp_path / "u.data", "1\t10\n")
    with pytest.raises(DataError, match="expected 4 columns"):
        load_movielens(tmp_path)


def test_wikimedia_files(tmp_path):
    write(tmp_path / "train.csv", "user,image_id,timestamp\n1,100,10\n1,101,20\n2,100,5\n2,102,6\n")
    write(tmp_path / "test.csv", "user,image_id,timestamp\n1,103,30\n2,104,7\n")
    src = open_dataset(tmp_path)
    assert src.interactions.frame["evaluation"].sum() == 2
    from visrec.data import SplitSpec

    ds = src.build(SplitSpec("given", validation=False))
    assert ds.test.nnz == 2 and ds.train.nnz == 4
    with pytest.raises(DataError, match="missing column"):
        write(tmp_path / "bad.csv", "u,i\n1,2\n")
        load_wikimedia(tmp_path / "bad.csv", tmp_path / "test.csv")


def test_write_folder_round_trip(tmp_path, demo_dir):
    src = open_dataset(demo_dir)
    out = write_folder(src, tmp_path / "copy")
    again = open_dataset(out)
    assert again.interactions.frame.equals(src.interactions.frame)
    assert again.image_paths == src.image_paths  # referenced, not copied
    assert not (out / "images").exists()


def test_not_a_dataset(tmp_path):
    with pytest.raises(DataError, match="not a dataset folder"):
        open_dataset(tmp_path)


def _layouts(root, demo_dir):
    """One folder of each layout (and a bare file): visrec, MovieLens, Wikimedia."""
    ml = root / "ml"
    ml.mkdir()
    write(ml / "u.data", "1\t10\t5\t881250949\n1\t20\t3\t881250950\n2\t10\t4\t881250951\n")
    (ml / "posters").mkdir()
    _image(ml / "posters" / "10.jpg")
    wiki = root / "wiki"
    wiki.mkdir()
    write(wiki / "train.csv", "user,image_id,timestamp\n1,100,10\n1,101,20\n2,100,5\n2,102,6\n")
    write(wiki / "test.csv", "user,image_id,timestamp\n1,103,30\n2,104,7\n")
    (wiki / "images").mkdir()
    _image(wiki / "images" / "100.png")
    return [demo_dir, ml, wiki, demo_dir / "interactions.csv"]


def test_open_images_and_inputs_follow_open_dataset(tmp_path, demo_dir):
    from visrec.data.loaders import dataset_inputs, open_images

    for path in _layouts(tmp_path, demo_dir):
        src = open_dataset(path)
        assert open_images(path) == (src.images_dir, src.image_paths), path
        files, folders = dataset_inputs(path)
        assert folders == ([src.images_dir] if src.images_dir else [])
        assert all(f.is_file() for f in files) and files
    assert {f.name for f in dataset_inputs(tmp_path / "wiki")[0]} == {"train.csv", "test.csv"}
    assert {f.name for f in dataset_inputs(demo_dir)[0]} >= {"interactions.csv", "items.csv"}
    assert dataset_inputs(tmp_path / "nothing") is None
    with pytest.raises(DataError, match="no such file"):
        open_images(tmp_path / "nothing")

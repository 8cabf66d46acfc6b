"""The viewer over an untrusted image folder: only item images inside it, errors without server paths."""

from __future__ import annotations

import os
import shutil

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from hostile_support import png_header  # noqa: E402
from visrec.cli import main  # noqa: E402
from visrec.viewer.app import create_app, public_message  # noqa: E402
from visrec.viewer.state import ViewerState  # noqa: E402


@pytest.fixture(scope="module")
def setup(demo_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-viewer")
    assert main(["train", "pop", "--data", str(demo_dir), "-o", str(root / "pop")]) == 0
    images = root / "images"
    shutil.copytree(demo_dir / "images", images)
    items = sorted(p.stem for p in images.iterdir())
    secret = root / "secret.png"
    shutil.copy(images / f"{items[1]}.jpg", secret)
    (images / f"{items[0]}.jpg").unlink()
    os.symlink(secret, images / f"{items[0]}.png")  # an item's image that leaves the folder
    shutil.copy(images / f"{items[2]}.jpg", images / "not-an-item.jpg")  # outside the vocabulary
    (images / f"{items[3]}.jpg").unlink()
    png_header(images / f"{items[3]}.png", 15_000, 10_000)  # a pixel bomb
    state = ViewerState.open([root / "pop"], images, root / "thumbs")
    return TestClient(create_app(state)), items, root


def test_a_link_leaving_the_folder_is_not_served(setup):
    client, items, _ = setup
    assert client.get(f"/images/{items[0]}").status_code == 404
    assert client.get(f"/thumbs/{items[0]}").status_code == 404
    assert client.get(f"/images/{items[1]}").status_code == 200


def test_only_items_of_the_vocabulary_are_served(setup):
    client, _, _ = setup
    assert client.get("/images/not-an-item").status_code == 404


def test_a_link_swapped_in_after_start_up_is_not_served(setup, tmp_path):
    client, items, root = setup
    target = client.app.state.viewer.image_path(items[4])
    saved = tmp_path / "saved.jpg"
    shutil.move(target, saved)
    os.symlink(root / "secret.png", target)
    try:
        assert client.get(f"/images/{items[4]}").status_code == 404
    finally:
        target.unlink()
        shutil.move(saved, target)
    assert client.get(f"/images/{items[4]}").status_code == 200


def test_an_unreadable_thumbnail_is_a_422_without_server_paths(setup):
    client, items, root = setup
    r = client.get(f"/thumbs/{items[3]}", params={"size": 32})
    assert r.status_code == 422
    message = r.json()["error"]
    assert "pixel budget" in message and f"{items[3]}.png" in message
    assert str(root) not in message and "/" not in message


def test_public_message_strips_every_absolute_path():
    from visrec.errors import DataError

    exc = DataError("cannot read /srv/data/b.csv (see /tmp/x)", path="/srv/data/a b.png")
    assert public_message(exc) == "a b.png: cannot read b.csv (see x)"
    assert public_message(ValueError("1/4 scale")) == "1/4 scale"

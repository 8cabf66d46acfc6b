"""The demo generator: determinism, heavy-tailed activity, tastes that show in the data."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from visrec.data.demo import DemoSpec, generate_demo
from visrec.errors import VisrecError


def _digest(folder):
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes(tmp_path):
    spec = DemoSpec(n_users=20, n_items=30, image_size=24, seed=11)
    a = generate_demo(tmp_path / "a", spec)
    b = generate_demo(tmp_path / "b", spec)
    c = generate_demo(tmp_path / "c", DemoSpec(n_users=20, n_items=30, image_size=24, seed=12))
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_refuses_to_clobber_without_force(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "mine.txt").write_text("precious")
    with pytest.raises(VisrecError, match="--force"):
        generate_demo(out, DemoSpec(n_users=5, n_items=12, image_size=16))
    assert (out / "mine.txt").read_text() == "precious"


def test_activity_and_tastes(tmp_path):
    out = generate_demo(tmp_path / "d", DemoSpec(n_users=200, n_items=200, image_size=16, seed=1))
    frame = pd.read_csv(out / "interactions.csv", dtype=str)
    counts = frame["user_id"].value_counts()
    assert 10 <= counts.median() <= 22
    assert counts.max() > 3 * counts.median()  # long tail
    truth = json.loads((out / "truth.json").read_text())
    palette_of = {k: v["palette"] for k, v in truth["items"].items()}
    match = np.mean(
        [
            palette_of[i] == truth["users"][u]["palette"]
            for u, i in zip(frame.user_id, frame.item_id, strict=True)
        ]
    )
    assert match > 0.4  # chance level is 1/6
    baskets = frame.groupby(["user_id", "timestamp"]).size()
    assert (baskets > 1).any()
    assert len(list((out / "images").glob("*.jpg"))) == 200


def test_outputs_get_ordinary_permissions(tmp_path):
    import os
    import stat

    from visrec._io import write_json

    write_json(tmp_path / "x.json", {"a": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o666 & ~mask
    out = generate_demo(tmp_path / "d", DemoSpec(n_users=5, n_items=12, image_size=16))
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask

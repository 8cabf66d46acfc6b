"""`visrec grid`: the tutorial-style PNG contact sheet (profile, top-k with hit/consumed frames, truth)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from visrec.cli import main
from visrec.models import create
from visrec.serving.grid import CONSUMED, HIT, GridLayout, draw_grid, user_sections


@pytest.fixture(scope="module")
def pop_run(demo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "pop"
    assert main(["train", "pop", "--data", str(demo_dir), "-o", str(out)]) == 0
    return out


def _user_with_hit(model, ds, k):
    """A user whose top-k (consumed kept) holds both a held-out hit and a consumed item."""
    for u in range(ds.n_users):
        marks = user_sections(model, ds, u, k, exclude_consumed=False)[1].marks
        if "hit" in marks and "consumed" in marks:
            return u
    pytest.skip("no demo user with both a hit and a consumed item in the top-k")


def test_sections_mark_hits_and_consumed(demo_dataset):
    model = create("pop").fit(demo_dataset)
    u = _user_with_hit(model, demo_dataset, 20)
    profile, top, truth = user_sections(model, demo_dataset, u, 20, last=5, exclude_consumed=False)
    ids = demo_dataset.items
    # the whole profile: train, then validation and test baskets
    history = demo_dataset.consumed_history(u)
    assert profile.item_ids == ids.ids_of(history[-5:]).tolist()
    assert set(ids.ids_of(demo_dataset.test[u].indices)) <= set(profile.item_ids)
    assert set(truth.item_ids) == set(ids.ids_of(demo_dataset.test[u].indices))
    consumed = set(ids.ids_of(demo_dataset.consumed[u].indices))
    for item, mark in zip(top.item_ids, top.marks, strict=True):
        expect = "hit" if item in truth.item_ids else "consumed" if item in consumed else None
        assert mark == expect
    excluded = user_sections(model, demo_dataset, u, 20)[1]  # the default
    assert set(excluded.marks) == {None} and len(excluded.item_ids) == 20
    assert not set(excluded.item_ids) & consumed


def test_grid_png_size_and_frame_colours(pop_run, demo_dataset, demo_dir, tmp_path):
    model = create("pop").fit(demo_dataset)
    u = _user_with_hit(model, demo_dataset, 12)
    user = demo_dataset.users.id(u)
    out = tmp_path / "sheet.png"
    args = ["grid", str(pop_run), "--user", user, "-k", "12", "--last", "7", "-o", str(out)]
    args.append("--show-consumed")
    assert (
        main(args + ["--thumb", "40", "--columns", "5", "--images", str(demo_dir / "images")]) == 0
    )
    img = Image.open(out).convert("RGB")
    # geometry: pad 8, frame 4, label 14, title 22; cells 40+8+8 wide, 40+8+14+8 high
    n_truth = demo_dataset.test[u].nnz
    n_profile = min(7, len(demo_dataset.consumed_history(u)))
    lines = [-(-n_profile // 5), 3, -(-n_truth // 5)]  # 5 per line; 12 recommendations
    assert img.size == (8 + 5 * 56, 8 + sum(22 + n * 70 for n in lines))
    marks = user_sections(model, demo_dataset, u, 12, exclude_consumed=False)[1].marks
    top = 8 + 22 + lines[0] * 70 + 22  # where the recommendation cells start
    for pos, mark in enumerate(marks):
        row, col = divmod(pos, 5)
        x, y = 8 + col * 56, top + row * 70
        corner = img.getpixel((x + 1, y + 1))  # inside the 4-px frame, outside the thumbnail
        expect = {"hit": HIT, "consumed": CONSUMED, None: (255, 255, 255)}[mark]
        assert corner == expect, (pos, mark, corner)
        centre = np.asarray(img.crop((x + 4, y + 4, x + 44, y + 44))).std()
        assert centre > 0  # a real image was pasted, not a flat placeholder


def test_grid_placeholder_and_errors(pop_run, demo_dataset, tmp_path, capsys):
    sections = user_sections(create("pop").fit(demo_dataset), demo_dataset, 0, 3)
    sheet = draw_grid(sections, {}, GridLayout(thumb=20, columns=3))
    assert sheet.getpixel((8 + 4 + 10, 8 + 22 + 4 + 10)) == (215, 215, 215)
    assert main(["grid", str(pop_run), "--user", "nobody", "-o", str(tmp_path / "x.png")]) == 2
    assert "unknown user 'nobody'" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()

"""The demo's taste check: shares of a top-k in each user's palette and shape (truth.json)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from visrec.cli import main
from visrec.data.demo_truth import chance_shares, format_taste, read_truth, taste_shares
from visrec.errors import DataError
from visrec.serving.taste import taste_report

TRUTH = {
    "users": {
        "u1": {"palette": "ocean", "shape": "circle"},
        "u2": {"palette": "mono", "shape": "rings"},
    },
    "items": {
        "a": {"palette": "ocean", "shape": "circle"},
        "b": {"palette": "ocean", "shape": "square"},
        "c": {"palette": "mono", "shape": "circle"},
        "d": {"palette": "mono", "shape": "rings"},
    },
}


def test_taste_shares_by_hand():
    shares = taste_shares(TRUTH, {"u1": ["a", "b", "c", "d"], "u2": ["d", "c"], "u3": []})
    assert shares == {
        "palette": (0.5 + 1.0) / 2,
        "shape": (0.5 + 0.5) / 2,
        "both": (0.25 + 0.5) / 2,
    }
    assert chance_shares(TRUTH, ["u1", "u2"]) == {"palette": 0.5, "shape": 0.375, "both": 0.25}


def test_read_truth_needs_the_demo(tmp_path):
    with pytest.raises(DataError, match="truth.json"):
        read_truth(tmp_path)


def test_a_model_that_sees_the_tastes_beats_pop_and_chance(demo_dir, tmp_path):
    from visrec.data import open_dataset
    from visrec.features import FeatureStore

    truth = json.loads((demo_dir / "truth.json").read_text())
    ids = list(open_dataset(demo_dir).build().items.ids)
    palettes = sorted({v["palette"] for v in truth["items"].values()})
    shapes = sorted({v["shape"] for v in truth["items"].values()})
    feats = np.zeros((len(ids), len(palettes) + len(shapes)), dtype=np.float32)
    for row, item in enumerate(ids):
        feats[row, palettes.index(truth["items"][item]["palette"])] = 1.0
        feats[row, len(palettes) + shapes.index(truth["items"][item]["shape"])] = 1.0
    FeatureStore.write(tmp_path / "feats", ids, feats, {"backbone": "truth", "layer": "pooled"})
    for name in ("pop", "visrank"):
        args = ["train", name, "--data", str(demo_dir), "-o", str(tmp_path / name)]
        assert (
            main(args + (["--features", str(tmp_path / "feats")] if name == "visrank" else [])) == 0
        )
    rows = taste_report(demo_dir, {"pop": tmp_path / "pop", "visrank": tmp_path / "visrank"}, k=5)
    by_model = {r["model"]: r for r in rows}
    assert [r["model"] for r in rows] == ["visrank", "pop", "(chance)"]
    assert by_model["(chance)"]["palette"] == pytest.approx(1 / 6, abs=0.02)
    for aspect in ("palette", "shape"):
        assert by_model["visrank"][aspect] > by_model["pop"][aspect] + 0.1
        assert by_model["visrank"][aspect] > by_model["(chance)"][aspect] + 0.1
    # (few items match both, on 90 items: most of them are consumed already; still above Pop)
    assert by_model["visrank"]["both"] > by_model["pop"]["both"]
    assert by_model["visrank"]["users"] == 80
    table = format_taste(rows, k=5)
    assert table.splitlines()[0].startswith("| model | top-5 in the user's palette")
    assert len(table.splitlines()) == 5

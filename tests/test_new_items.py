"""New items after training: `visrec recommend RUN --new-items`, the Python API and the viewer.

A run is trained on a cold-item split of the demo with features extracted by visrec (resnet18, random
weights, 32 px); new items are copies of the images of cold items (known ids, no train interaction)
under new ids, so the features the run's own extraction settings give them must equal those items' rows,
and so must their scores.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from visrec.cli import main
from visrec.features import FeatureStore
from visrec.runs import load_run
from visrec.serving.new_content import load_new_items, models_scoring_new_items
from visrec.serving.new_items import new_item_audience, new_item_placement

TINY = ["--backbone", "resnet18", "--weights", "none", "--input-size", "32", "--workers", "0",
        "--batch-size", "16", "--device", "cpu", "--precision", "fp32"]  # fmt: skip
COLD = ["--split", "cold-items", "--cold-fraction", "0.2"]
COPIED = 3


@pytest.fixture(scope="module")
def setup(demo_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("newitems")
    store = root / "store"
    assert main(["extract", str(demo_dir), "-o", str(store), *TINY]) == 0
    runs = {}
    for name in ("visrank", "bpr"):
        extra = ["--features", str(store)] if name == "visrank" else ["--set", "epochs=1"]
        args = ["train", name, "--data", str(demo_dir), *COLD, "-o", str(root / name), *extra]
        assert main(args) == 0
        runs[name] = root / name
    new = root / "new"
    new.mkdir()
    dataset = load_run(runs["visrank"]).dataset  # twins: cold items (no train interaction)
    cold = set(dataset.items.ids_of(dataset.cold_items("test")[:COPIED]).tolist())
    images = sorted(p for p in (demo_dir / "images").iterdir() if p.stem in cold)
    for k, path in enumerate(images):
        shutil.copy(path, new / f"new{k}{path.suffix}")
    (new / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return {"store": store, "runs": runs, "new": new, "copied": [p.stem for p in images]}


def test_visual_models_are_declared_able(setup):
    able = models_scoring_new_items()
    assert "visrank" in able and "bpr" not in able and "pop" not in able


def test_features_are_extracted_with_the_runs_own_settings(setup):
    run = load_run(setup["runs"]["visrank"])
    items = load_new_items(run, setup["new"])
    assert items.ids == [f"new{k}" for k in range(COPIED)]
    assert [p["path"].endswith("broken.jpg") for p in items.problems] == [True]
    trained = FeatureStore.open(setup["store"])
    rows = trained.vocab.indices(setup["copied"])
    np.testing.assert_allclose(items.content, trained.array[rows], rtol=1e-5, atol=1e-5)


def test_audience_is_the_known_twin_columns_top_users(setup):
    run = load_run(setup["runs"]["visrank"])
    audiences = new_item_audience(run, setup["new"], k=5)
    scores = run.model.score(np.arange(run.dataset.n_users)).float()
    for audience, twin in zip(audiences, setup["copied"], strict=True):
        column = scores[:, run.model.items.index(twin)]
        order = np.lexsort((np.arange(len(column)), -column.numpy()))[:5]
        np.testing.assert_allclose(audience.scores, column[order].numpy(), rtol=1e-5, atol=1e-6)
        assert np.all(np.diff(audience.scores) <= 0)


def test_placement_counts_the_unconsumed_items_above(setup):
    run = load_run(setup["runs"]["visrank"])
    user = 0
    rows = new_item_placement(run, setup["new"], user)
    known = run.model.score(np.array([user])).float()[0]
    known[torch.from_numpy(run.dataset.train[user].indices.astype(np.int64))] = -torch.inf
    news = sorted(r["score"] for r in rows)
    for row in rows:
        above = int((known > torch.tensor(row["score"])).sum())
        assert row["position_among_known"] == above + 1
        assert row["position"] == above + sum(s > row["score"] for s in news) + 1
    assert [r["position"] for r in rows] == sorted(r["position"] for r in rows)


def test_cli_serves_a_folder_and_reports_the_unreadable_image(setup, capsys):
    run_dir, new = setup["runs"]["visrank"], setup["new"]
    assert main(["recommend", str(run_dir), "--new-items", str(new), "-k", "4", "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert [i["item_id"] for i in out["new_items"]] == [f"new{k}" for k in range(COPIED)]
    assert all(len(i["users"]) == 4 and i["image"].startswith(str(new)) for i in out["new_items"])
    assert "warning: skipped" in captured.err and "broken.jpg" in captured.err
    assert [s["path"].endswith("broken.jpg") for s in out["skipped"]] == [True]
    api = new_item_audience(load_run(run_dir), new, k=4)
    assert [r["user_id"] for r in out["new_items"][0]["users"]] == [
        str(load_run(run_dir).model.users.ids[u]) for u in api[0].users
    ]
    user = load_run(run_dir).model.users.id(0)
    assert main(["recommend", str(run_dir), "--new-items", str(new), "--user", user]) == 0
    text = capsys.readouterr().out
    assert f"new items land for user {user}" in text and "new0" in text


def test_cli_errors(setup, tmp_path, capsys):
    bpr, visrank, new = setup["runs"]["bpr"], setup["runs"]["visrank"], setup["new"]
    assert main(["recommend", str(bpr), "--new-items", str(new)]) == 2
    err = capsys.readouterr().err
    assert "bpr cannot score new items" in err and "models that can: " in err and "visrank" in err
    assert len(err.strip().splitlines()) == 1
    wrong = FeatureStore.write(tmp_path / "wrong", ["n1"], np.ones((1, 7), np.float32), {})
    assert main(["recommend", str(visrank), "--new-items", str(wrong.path)]) == 2
    assert "shape (7,)" in capsys.readouterr().err
    trained = FeatureStore.open(setup["store"])
    known = str(trained.ids[0])
    clash = FeatureStore.write(tmp_path / "clash", [known], trained.array[:1], trained.meta)
    assert main(["recommend", str(visrank), "--new-items", str(clash.path)]) == 2
    assert f"already name items the run knows: ['{known}']" in capsys.readouterr().err
    store = FeatureStore.write(tmp_path / "ok", ["n1"], trained.array[:1], trained.meta)
    assert main(["recommend", str(visrank), "--new-items", str(store.path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["new_items"][0]["item_id"] == "n1"
    assert main(["recommend", str(visrank), "--new-items", str(new), "--items", known]) == 2
    assert "--new-items" in capsys.readouterr().err


def test_viewer_new_item_audience(setup, demo_dir, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from visrec.viewer.app import create_app
    from visrec.viewer.state import ViewerState

    run_dir, new = setup["runs"]["visrank"], setup["new"]
    state = ViewerState.open([run_dir], demo_dir / "images", tmp_path, new_items=new)
    client = TestClient(create_app(state))
    listing = client.get("/api/new-items").json()
    assert listing["items"] == ["new0", "new1", "new2"]
    assert listing["skipped"][0]["file"] == "broken.jpg"
    body = client.get("/api/new-items/new1/audience?k=3").json()
    expected = new_item_audience(load_run(run_dir), new, k=3)[1]
    assert [u["score"] for u in body["users"]] == pytest.approx(expected.scores.tolist())
    page = client.get("/new-items/new1?k=3")
    assert page.status_code == 200 and "/new-thumbs/new1" in page.text
    assert client.get("/new-thumbs/new1").status_code == 200
    assert client.get("/api/new-items/nope/audience").status_code == 404
    assert client.get("/new-thumbs/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_dvbpr_new_items_from_pixels_match_the_known_twins(setup, demo_dir, tmp_path):
    """A pixel model: new images decoded as its pixel cache decodes them score as their known twins."""
    sets = ["image_size=16", "factors=4", "latent_dim=3", "fc_dim=16", "width=0.125", "epochs=1",
            "batch_size=256", "device=cpu"]  # fmt: skip
    run_dir = tmp_path / "dvbpr"
    args = ["train", "dvbpr", "--data", str(demo_dir), *COLD, "-o", str(run_dir)]
    assert main(args + [x for s in sets for x in ("--set", s)]) == 0
    run = load_run(run_dir)
    items = load_new_items(run, setup["new"])
    assert items.kind == "pixels" and items.content.shape == (COPIED, 16, 16, 3)
    assert items.content.dtype == np.uint8 and len(items.problems) == 1
    scores = run.model.score(np.arange(run.dataset.n_users)).float()
    twins = run.model.items.indices(setup["copied"])
    news = run.model.score_new_items(np.arange(run.dataset.n_users), items.content).float()
    torch.testing.assert_close(news, scores[:, torch.from_numpy(twins)], rtol=1e-4, atol=1e-5)
    with pytest.raises(Exception, match="from pixels: give a folder of their images"):
        load_new_items(run, setup["store"])

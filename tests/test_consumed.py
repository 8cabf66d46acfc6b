"""Serving's "consumed": every interaction of a user in the data (train + validation + test).

No default recommendation (library, CLI, JSON API, grid) holds a consumed item, for any user of the demo;
asked for, consumed items come back flagged.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from visrec.cli import main
from visrec.models import create
from visrec.runs import load_run
from visrec.serving import recommend_users
from visrec.serving.grid import user_sections
from visrec.viewer.app import create_app
from visrec.viewer.state import ViewerState


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """A smaller demo than the session's (every user goes through the CLI once)."""
    from visrec.data.demo import DemoSpec, generate_demo

    out = tmp_path_factory.mktemp("consumed-demo") / "data"
    return generate_demo(out, DemoSpec(n_users=30, n_items=50, image_size=32, seed=5))


@pytest.fixture(scope="module")
def demo_dataset(demo_dir):
    from visrec.data import open_dataset

    return open_dataset(demo_dir).build()


@pytest.fixture(scope="module")
def runs(demo_dir, tmp_path_factory):
    """A popularity run (recommends the most consumed items: the worst case) and a VisRank run."""
    root = tmp_path_factory.mktemp("consumed")
    store = root / "store"
    extract = ["extract", str(demo_dir), "-o", str(store), "--backbone", "resnet18"]
    assert main([*extract, "--weights", "none", "--input-size", "32", "--no-progress"]) == 0
    assert main(["train", "pop", "--data", str(demo_dir), "-o", str(root / "pop")]) == 0
    visrank = ["train", "visrank", "--data", str(demo_dir), "-o", str(root / "visrank")]
    assert main([*visrank, "--features", str(store)]) == 0
    return [root / "pop", root / "visrank"]


def _consumed_ids(ds, u: int) -> set[str]:
    return set(ds.items.ids_of(ds.consumed[u].indices).tolist())


def test_consumed_is_train_validation_and_test(demo_dataset):
    ds = demo_dataset
    expect = (ds.train + ds.validation + ds.test).astype(bool)
    assert (ds.consumed != expect).nnz == 0
    assert ds.validation.nnz > 0 and ds.test.nnz > 0
    for u in range(ds.n_users):
        history = ds.consumed_history(u)
        assert set(history.tolist()) == set(ds.consumed[u].indices.tolist())
        n_held = ds.validation[u].nnz + ds.test[u].nnz
        assert history[: len(history) - n_held].tolist() == ds.profile(u).tolist()
        assert set(history[len(history) - ds.test[u].nnz :].tolist()) == set(ds.test[u].indices)


def test_library_never_serves_consumed(demo_dataset):
    ds = demo_dataset
    users = np.arange(ds.n_users)
    model = create("pop").fit(ds)
    for u, rec in zip(users, recommend_users(model, ds, users, k=20), strict=True):
        assert not set(rec.items.tolist()) & set(ds.consumed[u].indices.tolist())
        assert len(rec.items) == 20 and not rec.consumed.any()
    shown = recommend_users(model, ds, users, k=20, exclude_consumed=False)
    flagged = sum(int(rec.consumed.sum()) for rec in shown)
    assert flagged > 0  # popular items are consumed by many: the switch really shows them
    for u, rec in zip(users, shown, strict=True):
        assert rec.consumed.tolist() == np.isin(rec.items, ds.consumed[u].indices).tolist()


def test_cli_never_serves_consumed(runs, demo_dataset, capsys):
    ds = demo_dataset
    run = runs[0]  # popularity: the model most drawn to consumed items
    for u in range(ds.n_users):
        user = ds.users.id(u)
        assert main(["recommend", str(run), "--user", user, "-k", "10", "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert len(rows) == 10 and not any(r["consumed"] for r in rows)
        assert not {r["item_id"] for r in rows} & _consumed_ids(ds, u), user


def test_cli_show_consumed_marks_them(runs, demo_dataset, capsys):
    ds = demo_dataset
    u = int(np.argmax(ds.consumed.getnnz(axis=1)))
    args = ["recommend", str(runs[0]), "--user", ds.users.id(u), "-k", "30"]
    assert main([*args, "--show-consumed", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    consumed = _consumed_ids(ds, u)
    assert any(r["consumed"] for r in rows)
    assert all(r["consumed"] == (r["item_id"] in consumed) for r in rows)
    assert main([*args, "--show-consumed"]) == 0
    assert "[consumed]" in capsys.readouterr().out


def test_api_never_serves_consumed(runs, demo_dir, demo_dataset, tmp_path):
    ds = demo_dataset
    state = ViewerState.open(runs, demo_dir / "images", tmp_path / "thumbs")
    client = TestClient(create_app(state))
    for run in range(len(runs)):
        for u in range(ds.n_users):
            user = ds.users.id(u)
            url = f"/api/users/{user}/recommendations"
            body = client.get(url, params={"k": 10, "run": run}).json()
            assert len(body["items"]) == 10 and body["consumed"] == "hide"
            assert not {r["item_id"] for r in body["items"]} & _consumed_ids(ds, u)
            assert not any(r["consumed"] for r in body["items"])
    u = int(np.argmax(ds.consumed.getnnz(axis=1)))
    params = {"k": 30, "run": 0, "consumed": "show"}
    body = client.get(f"/api/users/{ds.users.id(u)}/recommendations", params=params).json()
    consumed = _consumed_ids(ds, u)
    assert any(r["consumed"] for r in body["items"])
    assert all(r["consumed"] == (r["item_id"] in consumed) for r in body["items"])
    bad = client.get(f"/api/users/{ds.users.id(u)}/recommendations", params={"consumed": "x"})
    assert bad.status_code == 422
    page = client.get(f"/users/{ds.users.id(u)}").text
    assert "consumed=show" in page and "left out" in page
    profile = ds.items.ids_of(ds.profile(u)[:2]).tolist()
    body = client.post("/api/recommend", json={"items": profile, "k": 5, "run": 1}).json()
    assert not {r["item_id"] for r in body["items"]} & set(profile)
    shown = {"items": profile, "k": ds.n_items, "run": 1, "consumed": "show"}
    rows = client.post("/api/recommend", json=shown).json()["items"]
    assert {r["item_id"] for r in rows if r["consumed"]} == set(profile)


def test_grid_default_leaves_consumed_out(runs, demo_dataset):
    ds = demo_dataset
    run = load_run(runs[0])
    for u in range(ds.n_users):
        profile, top, _ = user_sections(run.model, ds, u, 10, last=1000)
        assert set(profile.item_ids) == _consumed_ids(ds, u)  # the whole profile, latest basket too
        assert not set(top.item_ids) & _consumed_ids(ds, u)

"""The web viewer's API and pages through FastAPI's test client: every endpoint, 404/422, traversal."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from visrec.cli import main  # noqa: E402
from visrec.viewer.app import create_app  # noqa: E402
from visrec.viewer.state import ViewerState  # noqa: E402


@pytest.fixture(scope="module")
def runs(demo_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("viewer")
    feats = np.random.default_rng(0).normal(size=(90, 8)).astype(np.float32)
    from visrec.data import open_dataset
    from visrec.features import FeatureStore

    ids = open_dataset(demo_dir).build().items.ids
    FeatureStore.write(root / "feats", ids, feats, {"backbone": "random", "layer": "pooled"})
    out = []
    for name in ("pop", "visrank"):
        args = ["train", name, "--data", str(demo_dir), "-o", str(root / name)]
        if name == "visrank":
            args += ["--features", str(root / "feats")]
        assert main(args) == 0
        out.append(root / name)
    return out


@pytest.fixture(scope="module")
def client(runs, demo_dir, tmp_path_factory):
    state = ViewerState.open(runs, demo_dir / "images", tmp_path_factory.mktemp("thumbs"))
    return TestClient(create_app(state))


@pytest.fixture(scope="module")
def ids(demo_dataset):
    user = next(
        demo_dataset.users.id(u) for u in range(demo_dataset.n_users) if demo_dataset.test[u].nnz
    )
    return user, demo_dataset.items.id(0)


def test_health(client):
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["runs"] == ["pop", "visrank"]


def test_recommendations_api(client, ids, demo_dataset):
    user, _ = ids
    consumed = set(
        demo_dataset.items.ids_of(demo_dataset.consumed[demo_dataset.users.index(user)].indices)
    )
    params = {"k": 7, "run": 1, "consumed": "show"}
    body = client.get(f"/api/users/{user}/recommendations", params=params).json()
    assert body["model"] == "visrank" and len(body["items"]) == 7
    assert all(row["consumed"] == (row["item_id"] in consumed) for row in body["items"])
    body = client.get(f"/api/users/{user}/recommendations", params={"k": 7, "run": 1}).json()
    assert len(body["items"]) == 7 and not any(row["consumed"] for row in body["items"])
    assert not {row["item_id"] for row in body["items"]} & consumed


def test_similar_and_recommend_post(client, ids):
    _, item = ids
    body = client.get(f"/api/items/{item}/similar", params={"k": 5}).json()
    assert len(body["items"]) == 5 and item not in [r["item_id"] for r in body["items"]]
    body = client.post("/api/recommend", json={"items": [item], "k": 4, "run": 1}).json()
    assert len(body["items"]) == 4 and item not in [r["item_id"] for r in body["items"]]


def test_errors_are_json(client, ids):
    user, item = ids
    r = client.get("/api/users/nobody/recommendations")
    assert r.status_code == 404 and "unknown user" in r.json()["error"]
    assert client.get("/api/items/nothing/similar").status_code == 404
    r = client.get(f"/api/users/{user}/recommendations", params={"k": "many"})
    assert r.status_code == 422 and r.json()["details"][0]["where"] == "query.k"
    assert client.get(f"/api/users/{user}/recommendations", params={"k": 0}).status_code == 422
    assert client.get(f"/api/users/{user}/recommendations", params={"run": 9}).status_code == 404
    assert client.post("/api/recommend", json={"items": []}).status_code == 422
    assert client.post("/api/recommend", json={"items": ["zzz"], "run": 1}).status_code == 404
    assert client.post("/api/recommend", json={"items": [item], "run": 0}).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/images/..%2F..%2Finteractions.csv",
        "/images/../interactions.csv",
        "/thumbs/..%2Fitems.csv",
        "/images/%2Fetc%2Fpasswd",
    ],
)
def test_traversal_is_404(client, path):
    r = client.get(path)
    assert r.status_code == 404
    assert b"user_id" not in r.content and b"root:" not in r.content


def test_images_and_thumbnails_cached(client, ids, tmp_path):
    _, item = ids
    r = client.get(f"/images/{item}")
    assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"
    t = client.get(f"/thumbs/{item}", params={"size": 24})
    assert t.status_code == 200 and t.headers["content-type"] == "image/jpeg"
    cached = list((client.app.state.viewer.thumbs_dir / "24").glob("*.jpg"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    assert client.get(f"/thumbs/{item}", params={"size": 24}).content == t.content
    assert cached[0].stat().st_mtime_ns == stamp  # served from the disk cache, not regenerated


def test_pages(client, ids):
    user, item = ids
    page = client.get(f"/users/{user}", params={"k": 5})
    assert page.status_code == 200 and page.text.count('class="card') >= 5
    assert "Held-out truth" in page.text
    assert client.get(f"/items/{item}").status_code == 200
    assert "side by side" in client.get(f"/compare/{user}").text
    r = client.get("/", params={"user": user}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/users/{user}"
    assert client.get("/users/nobody").status_code == 404
    assert client.get("/openapi.json").json()["info"]["title"] == "visrec viewer"

"""The viewer's HTML pages through FastAPI's test client: search, users table, user page (scores,
titles, explanations), item page, compare page, run labels, HTML 404 and 422 pages."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from viewer_support import evaluate, titled_demo, train, write_stores  # noqa: E402
from visrec.viewer.app import create_app  # noqa: E402
from visrec.viewer.state import ViewerState  # noqa: E402

ROW = re.compile(r'<tr><td><a href="/users/([^"?]+)\?run=\d+">[^<]*</a></td><td>(\d+)</td>')


@pytest.fixture(scope="module")
def setup(demo_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("pages")
    data = titled_demo(demo_dir, root / "data")
    pooled, _ = write_stores(data, root / "features")
    runs = [
        evaluate(train(data, root / "pop", "pop", None)),
        evaluate(train(data, root / "visrank", "visrank", pooled, "device=cpu")),
        train(data, root / "visrank-avg", "visrank", pooled, "aggregation=average", "device=cpu"),
        train(data, root / "vbpr", "vbpr", pooled),
        train(data, root / "curatornet", "curatornet", pooled),
    ]
    state = ViewerState.open(runs, data / "images", root / "thumbs")
    return root, state, TestClient(create_app(state))


@pytest.fixture(scope="module")
def client(setup):
    return setup[2]


@pytest.fixture(scope="module")
def state(setup):
    return setup[1]


def _user_with_truth(state) -> str:
    ds = state.dataset
    return next(
        ds.users.id(u) for u in range(ds.n_users) if ds.test[u].nnz and len(ds.profile(u)) > 3
    )


def test_runs_are_labelled_by_model_and_options(client, state):
    labels = state.labels
    assert labels[:3] == ["pop", "visrank", "visrank (aggregation=average)"]
    assert labels[3].startswith("vbpr (") and "visual_factors=4" in labels[3]
    assert "device" not in " ".join(labels)  # technical options are not part of a label
    page = client.get("/").text
    assert "visrank (aggregation=average)" in page and "Browse the users" in page


def test_search_by_title_id_and_user(client, state):
    page = client.get("/search", params={"q": "Circle"})
    assert page.status_code == 200
    titles = [state.catalog.title(i) for i in state.dataset.items.ids]
    circles = [t for t in titles if "circle" in t.lower()]
    assert circles and all(t in page.text for t in circles)
    user, item = state.dataset.users.id(3), state.dataset.items.id(5)
    r = client.get("/search", params={"q": user}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/users/{user}"
    r = client.get("/search", params={"q": f" {item} "}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/items/{item}"
    r = client.get("/search", params={"q": "no such thing"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "No user, item or title matches" in r.text
    r = client.get("/search", params={"q": "<script>alert(1)</script>"})
    assert r.status_code == 404 and "<script>alert" not in r.text and "&lt;script&gt;" in r.text


def test_users_page_sorts_filters_and_pages(client, state):
    sizes = state.dataset.profile_sizes
    r = client.get("/users", params={"sort": "profile", "order": "desc", "per_page": 10, "page": 2})
    rows = ROW.findall(r.text)
    order = sorted(range(len(sizes)), key=lambda u: (-sizes[u], state.dataset.users.id(u)))
    assert [u for u, _ in rows] == [state.dataset.users.id(u) for u in order[10:20]]
    assert "page 2 of" in r.text
    r = client.get("/users", params={"min_profile": 5, "max_profile": 8, "per_page": 500})
    got = [int(n) for _, n in ROW.findall(r.text)]
    assert (
        got
        and all(5 <= n <= 8 for n in got)
        and len(got) == int(((sizes >= 5) & (sizes <= 8)).sum())
    )
    # the filter form sends an empty box as an empty value: no upper bound
    r = client.get("/users", params={"min_profile": 30, "max_profile": "", "per_page": 500})
    assert r.status_code == 200 and len(ROW.findall(r.text)) == int((sizes >= 30).sum())


def test_users_page_reads_the_stored_metric_and_hits(client, state, setup):
    root = setup[0]
    per_user = pd.read_csv(root / "visrank" / "eval" / "test-full.csv", dtype={"user_id": str})
    r = client.get(
        "/users",
        params={"run": 1, "metric": "R@20", "sort": "metric", "order": "desc", "per_page": 500},
    )
    assert r.status_code == 200 and "R@20 (run 1)" in r.text
    listed = [u for u, _ in ROW.findall(r.text)]
    values = per_user.set_index("user_id")["R@20"]
    shown = [values.get(u, np.nan) for u in listed]
    evaluated = [v for v in shown if not np.isnan(v)]
    assert evaluated == sorted(evaluated, reverse=True) and len(evaluated) == len(per_user)
    hits = client.get("/users", params={"run": 1, "hits": "yes", "k": 5, "per_page": 500})
    expected = set(per_user.loc[per_user.first_hit_rank < 5, "user_id"])
    assert {u for u, _ in ROW.findall(hits.text)} == expected
    misses = client.get("/users", params={"run": 1, "hits": "no", "k": 5, "per_page": 500})
    assert {u for u, _ in ROW.findall(misses.text)} == set(per_user.user_id) - expected
    assert "has no stored evaluation" in client.get("/users", params={"run": 2}).text
    assert client.get("/users", params={"run": 1, "metric": "nope"}).status_code == 404


def test_user_page_shows_rank_score_title_and_why(client, state):
    user = _user_with_truth(state)
    api = client.get(f"/api/users/{user}/recommendations", params={"k": 5, "run": 1}).json()
    page = client.get(f"/users/{user}", params={"k": 5, "run": 1}).text
    for row in api["items"]:
        assert f"#{row['rank']} · {row['score']:.3f}" in page
        assert state.catalog.title(row["item_id"]) in page
    assert page.count('class="why"') == 5 and page.count("because of") == 6  # + the note
    assert "cosine similarity" in page
    vbpr = client.get(f"/users/{user}", params={"k": 4, "run": 3}).text
    assert vbpr.count(">collaborative<") == 4 and vbpr.count(">visual<") == 4
    curator = client.get(f"/users/{user}", params={"k": 4, "run": 4}).text
    assert curator.count('class="why"') == 4 and "score drop" in curator
    assert 'class="why"' not in client.get(f"/users/{user}", params={"k": 4, "run": 0}).text


def _rec_cards(page: str) -> list[tuple[str, str]]:
    """(class, item id) of each card of the #recs grid."""
    recs = page.split('id="recs">')[1].split("</div>\n<h2>")[0]
    return re.findall(r'<div class="card ([^"]*)"><a href="/items/([^"]+)"', recs)


def test_consumed_items_are_hidden_unless_toggled(client, state):
    ds = state.dataset
    u = max(range(ds.n_users), key=lambda u: len(ds.profile(u)))
    user = ds.users.id(u)
    hidden = client.get(f"/users/{user}", params={"run": 0, "k": 10}).text
    toggle = f'id="consumed-toggle" href="/users/{user}?run=0&amp;k=10&amp;consumed=show"'
    assert toggle in hidden
    cards = _rec_cards(hidden)
    assert len(cards) == 10 and not any("consumed" in cls for cls, _ in cards)
    consumed = set(ds.items.ids_of(ds.consumed[u].indices))  # train, validation and test
    assert not consumed & {item for _, item in cards}
    shown = client.get(f"/users/{user}", params={"run": 0, "k": 10, "consumed": "show"}).text
    framed = [item for cls, item in _rec_cards(shown) if "consumed" in cls]
    assert framed and set(framed) <= consumed
    assert "consumed=hide" in shown
    assert client.get(f"/users/{user}", params={"consumed": "maybe"}).status_code == 422


def test_item_page_shows_title_and_metadata(client, state):
    item = state.dataset.items.id(7)
    page = client.get(f"/items/{item}").text
    title = state.catalog.title(item)
    assert f"<h1>{title} <small>(item {item})</small></h1>" in page
    assert "<th>palette</th>" in page and "<th>group</th>" in page


def test_compare_shows_metrics_and_overlap(client, state):
    user = _user_with_truth(state)
    a = client.get(f"/api/users/{user}/recommendations", params={"k": 10, "run": 1}).json()
    b = client.get(f"/api/users/{user}/recommendations", params={"k": 10, "run": 2}).json()
    shared = {r["item_id"] for r in a["items"]} & {r["item_id"] for r in b["items"]}
    page = client.get(f"/compare/{user}", params={"a": 1, "b": 2, "k": 10}).text
    assert f"<b>{len(shared)}</b> shared item" in page
    assert page.count('class="card hit shared"') + page.count('class="card  shared"') + page.count(
        'class="card consumed shared"'
    ) == 2 * len(shared)
    assert "visrank (aggregation=average)" in page and "nDCG@20" in page and "AUC" in page


@pytest.mark.parametrize(
    "path",
    ["/users/nobody", "/items/nothing", "/compare/nobody", "/no/such/page", "/?user=nobody"],
)
def test_unknown_ids_get_an_html_404(client, path):
    r = client.get(path)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "<h1>404" in r.text


@pytest.mark.parametrize(
    "path, params",
    [
        ("/users", {"sort": "../etc"}),
        ("/users", {"per_page": "many"}),
        ("/users", {"hits": "maybe"}),
        ("/users", {"max_profile": "-3"}),
        ("/search", {"q": ""}),
        ("/users/{user}", {"k": 0}),
        ("/compare/{user}", {"a": -1}),
    ],
)
def test_bad_parameters_get_an_html_422_without_paths(client, state, setup, path, params):
    r = client.get(path.format(user=state.dataset.users.id(0)), params=params)
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "<h1>422" in r.text and str(setup[0]) not in r.text and "/tmp" not in r.text


def test_api_errors_stay_json(client):
    r = client.get("/api/users/nobody/recommendations")
    assert r.status_code == 404 and r.json() == {"error": "unknown user 'nobody'"}


def test_labels_of_runs_alike_name_their_features_then_their_folders():
    from pathlib import Path

    from visrec.runs import Run
    from visrec.viewer.labels import run_labels

    def run(folder, features, **config):
        meta = {"model": "visrank", "config": config, "features": features}
        return Run(Path("/runs") / folder, meta, None, None)

    runs = [
        run("a", "/f/resnet50", device="cuda"),
        run("b", "/f/vit", device="cpu"),
        run("c", "/f/vit", aggregation="average", k=5),
        run("d", "/f/vit", aggregation="average", k=5),
    ]
    assert run_labels(runs) == [
        "visrank [resnet50]",
        "visrank [vit]",
        "visrank (aggregation=average, k=5) [vit] [c]",
        "visrank (aggregation=average, k=5) [vit] [d]",
    ]

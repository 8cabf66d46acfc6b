"""Browser test: Playwright drives Debian's chromium against a live viewer on 127.0.0.1.

The walk: users page (sorted by a stored metric) -> search a title -> item page -> a user -> toggle
consumed items -> VBPR and ACF explanations -> compare page -> an unknown user in the search box. With
``VISREC_SCREENSHOTS=docs/img`` the screenshots of docs/viewer.md are written there.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(demo_dir, tmp_path):
    """A live viewer over pop, VisRank, VBPR, CuratorNet and ACF runs of the titled demo."""
    import uvicorn

    from viewer_support import evaluate, titled_demo, train, write_stores
    from visrec.viewer.app import create_app
    from visrec.viewer.state import ViewerState

    data = titled_demo(demo_dir, tmp_path / "data")
    pooled, spatial = write_stores(data, tmp_path / "features")
    runs = [
        evaluate(train(data, tmp_path / "pop", "pop", None)),
        evaluate(train(data, tmp_path / "visrank", "visrank", pooled, "device=cpu")),
        train(data, tmp_path / "vbpr", "vbpr", pooled),
        train(data, tmp_path / "curatornet", "curatornet", pooled),
        train(data, tmp_path / "acf", "acf", spatial),
    ]
    state = ViewerState.open(runs, data / "images", tmp_path / "thumbs")
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield state, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _loaded(page, selector: str) -> list[int]:
    page.wait_for_load_state("networkidle")
    return page.eval_on_selector_all(selector, "imgs => imgs.map(i => i.naturalWidth)")


def test_walk_through_the_viewer(served, tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    state, base = served
    shots = Path(os.environ.get("VISREC_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            _walk(page, state, base, shots)
        finally:
            browser.close()
    assert all((shots / f"{n}.jpg").stat().st_size > 5000 for n in ("users", "user-visrank"))


def _shot(page, path: Path, full_page: bool = False) -> None:
    page.screenshot(path=str(path), type="jpeg", quality=80, full_page=full_page)


def _walk(page, state, base: str, shots: Path) -> None:
    # users page, sorted by VisRank's stored nDCG@20
    page.goto(f"{base}/users?run=1&sort=metric&order=desc&per_page=15")
    rows = page.locator("#users tr")
    assert rows.count() == 16 and "nDCG@20 (run 1)" in page.inner_text("#users")
    _shot(page, shots / "users.jpg")
    page.fill("#filters input[name=min_profile]", "10")  # the filter form, max_profile left empty
    page.click("#filters button")
    page.wait_for_load_state("networkidle")
    sizes = page.eval_on_selector_all(
        "#users tr td:nth-child(2)", "tds => tds.map(t => +t.innerText)"
    )
    assert sizes and min(sizes) >= 10 and "min_profile=10" in page.url
    # search a title in the header's box
    title = state.catalog.title(state.dataset.items.id(4))
    word = title.split()[1]  # the shape, shared by several titles
    page.fill("header input[name=q]", word)
    page.press("header input[name=q]", "Enter")
    page.wait_for_url("**/search?q=*")
    assert all(w > 0 for w in _loaded(page, "#items img")) and title in page.inner_text("#items")
    _shot(page, shots / "search.jpg")
    page.click(f"#items a[title='{state.dataset.items.id(4)}']")
    page.wait_for_load_state("networkidle")
    assert page.inner_text("h1").startswith(title)
    _shot(page, shots / "item.jpg")
    # a user (the best one by nDCG), VisRank's explanations
    page.goto(f"{base}/users?run=1&sort=metric&order=desc")
    page.click("#users tr:nth-child(2) a")
    page.wait_for_load_state("networkidle")
    user = page.url.split("/users/")[1].split("?")[0]
    assert all(w > 0 for w in _loaded(page, "#recs img"))
    assert page.locator("#recs .why").count() == 20 and "#1 · " in page.inner_text("#recs")
    _shot(page, shots / "user-visrank.jpg")
    # toggle consumed items on and off
    assert page.locator("#recs .consumed").count() == 0
    page.click("#consumed-toggle")
    page.wait_for_url("**consumed=show*")
    assert page.locator("#recs .consumed").count() > 0
    _shot(page, shots / "user-consumed.jpg")
    page.click("#consumed-toggle")
    page.wait_for_load_state("networkidle")
    assert page.locator("#recs .consumed").count() == 0
    # VBPR's score parts, ACF's attention
    page.goto(f"{base}/users/{user}?run=2&k=10")
    assert page.locator("#recs .part").count() == 20
    _shot(page, shots / "user-vbpr.jpg")
    page.goto(f"{base}/users/{user}?run=4&k=10")
    assert all(w > 0 for w in _loaded(page, "#attention img"))
    _shot(page, shots / "user-acf.jpg", full_page=True)
    # compare VisRank and CuratorNet for this user
    page.goto(f"{base}/users/{user}?run=1")
    page.click("#compare")
    page.wait_for_load_state("networkidle")
    assert "/compare/" in page.url and "shared item" in page.inner_text("#overlap")
    page.select_option("select[name=b]", "3")
    page.click("form button >> nth=1")
    page.wait_for_load_state("networkidle")
    assert "b=3" in page.url and page.locator("#metrics tr").count() == 3
    _shot(page, shots / "compare.jpg")
    # an unknown user in the search box: an HTML 404 page, not JSON
    page.fill("header input[name=q]", "nobody-here")
    page.press("header input[name=q]", "Enter")
    page.wait_for_load_state("networkidle")
    assert "No user, item or title matches" in page.inner_text("body")

"""Browser test: Playwright drives Debian's chromium against a live viewer on 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
import threading
import time

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_user_page_in_a_real_browser(demo_dir, tmp_path):
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    import uvicorn

    from visrec.cli import main
    from visrec.viewer.app import create_app
    from visrec.viewer.state import ViewerState

    assert main(["train", "pop", "--data", str(demo_dir), "-o", str(tmp_path / "pop")]) == 0
    state = ViewerState.open([tmp_path / "pop"], demo_dir / "images", tmp_path / "thumbs")
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    user = state.dataset.users.id(0)
    k = 6
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                ],
            )
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/users/{user}?k={k}")
            page.wait_for_load_state("networkidle")
            widths = page.eval_on_selector_all("#recs img", "imgs => imgs.map(i => i.naturalWidth)")
            assert len(widths) == k and all(w > 0 for w in widths)
            page.screenshot(path=str(tmp_path / "user.png"), full_page=True)
            page.click("#recs a >> nth=0")
            page.wait_for_load_state("networkidle")
            assert "/items/" in page.url and page.locator("h1").inner_text().startswith("Item ")
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert (tmp_path / "user.png").stat().st_size > 1000

"""The viewer's /docs and /redoc work offline: every script, style and icon they load is served locally."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("fastapi_offline")
from fastapi.testclient import TestClient  # noqa: E402

from visrec.cli import main  # noqa: E402
from visrec.viewer.app import create_app  # noqa: E402
from visrec.viewer.state import ViewerState  # noqa: E402

URL = re.compile(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""")


@pytest.fixture(scope="module")
def client(demo_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("docs") / "pop"
    assert main(["train", "pop", "--data", str(demo_dir), "-o", str(run)]) == 0
    state = ViewerState.open([run], demo_dir / "images", tmp_path_factory.mktemp("thumbs"))
    return TestClient(create_app(state))


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_only_local_urls_that_answer(client, page):
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert re.findall(r"https?://\S+", html) == []  # no CDN, no web fonts
    urls = URL.findall(html)
    assert "/openapi.json" in urls
    assets = [u for u in urls if u.startswith("/docs-static/")]
    assert len(assets) >= (3 if page == "/docs" else 2)  # script(s), style, icon
    for url in urls:
        assert url.startswith("/"), url
        got = client.get(url)
        assert got.status_code == 200, url
        assert len(got.content) > 100, url


def test_swagger_bundle_is_the_real_script(client):
    body = client.get("/docs-static/swagger-ui-bundle.js")
    assert "javascript" in body.headers["content-type"]
    assert "SwaggerUIBundle" in body.text

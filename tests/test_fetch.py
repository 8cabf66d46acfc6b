"""Fetchers and the downloader against a local HTTP server started by the test (no internet)."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import sys
import threading
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from visrec.cli import main
from visrec.data import SplitSpec, open_dataset
from visrec.data.download import FileCache, Remote
from visrec.data.fetch import RECIPES, fetch_dataset, match_from_files
from visrec.errors import ConfigError, DataError

# ---- a tiny server with dropped connections and Range support ------------------------------------


@dataclass
class Route:
    data: bytes
    drops: int = 0  # how many responses are cut off half-way
    ranges: bool = True  # honour Range requests


@dataclass
class Server:
    url: str
    routes: dict[str, Route]
    log: list[tuple[str, str | None]] = field(default_factory=list)


def _make_handler(server: Server):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            server.log.append((self.path, self.headers.get("Range")))
            route = server.routes.get(urllib.parse.urlsplit(self.path).path)
            if route is None:
                self.send_error(404)
                return
            start, status, headers = 0, 200, {"Content-Type": "application/octet-stream"}
            wanted = self.headers.get("Range")
            if wanted and route.ranges:
                start, total = int(wanted.split("=")[1].split("-")[0]), len(route.data)
                status, headers["Content-Range"] = 206, f"bytes {start}-{total - 1}/{total}"
            body = route.data[start:]
            self.send_response(status)
            for key, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(key, value)
            self.end_headers()
            if route.drops > 0:  # half the body, then the connection goes away
                route.drops -= 1
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def server():
    state = Server("", {})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path) -> FileCache:
    return FileCache(tmp_path / "cache", retries=3, timeout=5.0)


def _payload(n: int = 200_000, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.bin"


def _ranges(server: Server) -> list[int | None]:
    return [int(r.split("=")[1].rstrip("-")) if r else None for _, r in server.log]


# ---- the downloader: our behaviour around gdown -------------------------------------------------


def test_download_is_recorded_with_size_and_sha256(server, cache):
    data = _payload()
    server.routes["/big.bin"] = Route(data)
    path = cache.obtain(Remote("big.bin", server.url + "/big.bin"))
    assert path.read_bytes() == data
    entry = json.loads(cache.registry_path.read_text())["files"]["big.bin"]
    assert entry["size"] == len(data)
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()


def test_dropped_connection_resumes_with_range(server, cache):
    data = _payload(3_000_000)  # several of gdown's 512 KiB chunks arrive before each drop
    server.routes["/f.bin"] = Route(data, drops=2)
    path = cache.obtain(Remote("f.bin", server.url + "/f.bin"))
    assert path.read_bytes() == data
    first, *offsets = _ranges(server)
    assert first is None and len(offsets) == 2  # each retry asks only for the missing bytes
    assert 0 < offsets[0] < offsets[1] < len(data)
    assert not list(cache.downloads.glob("*.part"))


def test_an_interrupted_run_resumes_its_partial_file(server, tmp_path):
    data = _payload(2_000_000, seed=5)
    server.routes["/f.bin"] = Route(data, drops=1)
    cache = FileCache(tmp_path / "cache", retries=0, timeout=5.0)
    remote = Remote("f.bin", server.url + "/f.bin")
    with pytest.raises(DataError, match="--from-file f.bin=PATH"):
        cache.obtain(remote)
    (part,) = cache.downloads.glob("f.bin*.part")
    kept = part.stat().st_size
    assert 0 < kept < len(data)
    assert cache.obtain(remote).read_bytes() == data
    assert _ranges(server)[-1] == kept  # the next run asked only for the rest


def test_server_ignoring_range_restarts_cleanly(server, cache):
    data = _payload(2_000_000, seed=1)
    server.routes["/f.bin"] = Route(data, drops=1, ranges=False)
    assert cache.obtain(Remote("f.bin", server.url + "/f.bin")).read_bytes() == data
    assert not list(cache.downloads.glob("*.part"))
    ranges = _ranges(server)  # the resume was answered with the whole file: start again
    assert ranges[0] is None and ranges[1] > 0 and ranges[-1] is None


def test_checksum_mismatch_is_an_error_and_keeps_the_file_aside(server, cache):
    first, changed = _payload(50_000, seed=2), _payload(50_000, seed=3)
    server.routes["/f.bin"] = Route(first)
    remote = Remote("f.bin", server.url + "/f.bin")
    path = cache.obtain(remote)
    path.unlink()  # force a fresh download; upstream now serves other bytes of the same size
    server.routes["/f.bin"] = Route(changed, drops=1)
    with pytest.raises(DataError, match="checksum mismatch") as info:
        cache.obtain(remote)
    aside = cache.downloads / "f.bin.mismatch"
    assert aside.read_bytes() == changed and not path.exists()
    assert str(aside) in str(info.value) and hashlib.sha256(first).hexdigest() in str(info.value)


def test_from_file_is_verified_against_the_registry(tmp_path, server, cache):
    data = _payload(10_000, seed=4)
    server.routes["/f.bin"] = Route(data)
    remote = Remote("f.bin", server.url + "/f.bin")
    cache.obtain(remote)
    good, bad = tmp_path / "good.bin", tmp_path / "bad.bin"
    good.write_bytes(data)
    bad.write_bytes(data[:-1] + b"\x00" if data[-1] else data[:-1] + b"\x01")
    assert cache.obtain(remote, from_file=good).read_bytes() == data
    with pytest.raises(DataError, match="checksum mismatch"):
        cache.obtain(remote, from_file=bad)
    assert (cache.downloads / "f.bin.mismatch").read_bytes() == bad.read_bytes()


def test_cached_file_is_reused_without_network(server, cache):
    server.routes["/f.bin"] = Route(b"hello")
    remote = Remote("f.bin", server.url + "/f.bin")
    cache.obtain(remote)
    assert cache.obtain(Remote("f.bin", _closed_port_url())).read_bytes() == b"hello"
    assert len(server.log) == 1


def test_offline_error_names_the_url_and_from_file(tmp_path):
    url = _closed_port_url()
    with pytest.raises(DataError) as info:
        FileCache(tmp_path, retries=0).obtain(Remote("file.bin", url, page="https://example.org/p"))
    message = str(info.value)
    assert url in message and "--from-file file.bin=PATH" in message
    assert "https://example.org/p" in message and "\n" not in message


def test_without_gdown_the_error_names_the_extra_and_from_file(server, cache, monkeypatch):
    server.routes["/f.bin"] = Route(b"hello")
    monkeypatch.setitem(sys.modules, "gdown", None)  # import gdown -> ImportError
    with pytest.raises(DataError, match=r"visrec\[fetch\].*--from-file f.bin=PATH"):
        cache.obtain(Remote("f.bin", server.url + "/f.bin"))
    assert not server.log


def test_http_errors_and_html_pages_are_refused(server, cache):
    with pytest.raises(DataError, match="HTTP 404"):
        cache.obtain(Remote("missing.bin", server.url + "/missing.bin"))
    server.routes["/page"] = Route(b"<!DOCTYPE html><html><title>Quota exceeded</title></html>")
    with pytest.raises(DataError, match="HTML page"):
        cache.obtain(Remote("page.bin", server.url + "/page"))
    assert not (cache.downloads / "page.bin").exists() and not cache.registry_path.exists()


# ---- fixture archives ------------------------------------------------------------------------


def _jpeg(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, "JPEG")
    return buf.getvalue()


def _wikimedia_zip(with_test: bool = True) -> bytes:
    train = "user,image_id,timestamp\n" + "".join(
        f"u{u},{i},{100 + 10 * u + i}\n" for u in range(4) for i in range(u, u + 3)
    )
    test = "user,image_id,timestamp\nu0,5,900\nu1,6,900\nu2,0,900\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("wikimedia_recsys/data/train_interactions.csv", train)
        if with_test:
            archive.writestr("wikimedia_recsys/data/test_interactions.csv", test)
        archive.writestr("wikimedia_recsys/naive-user-evaluation.csv", "user_id,score\n1,2\n")
        for i in range(8):
            archive.writestr(f"wikimedia_recsys/images/{i}.jpg", _jpeg((30 * i, 0, 0)))
        archive.writestr("__MACOSX/wikimedia_recsys/images/._0.jpg", b"junk")
    return buf.getvalue()


def _movielens_zip() -> bytes:
    ratings = "".join(
        f"{u}\t{i}\t{1 + (u + i) % 5}\t{1000 + u * 10 + i}\n"
        for u in range(1, 6)
        for i in range(1, 5)
    )
    genres = "unknown|0\nAction|1\nComedy|2\n"
    movies = "".join(
        f"{i}|Movie {i} (1995)|01-Jan-1995||http://x|0|{i % 2}|{(i + 1) % 2}\n" for i in range(1, 5)
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("ml-100k/u.data", ratings)
        archive.writestr("ml-100k/u.item", movies.encode("latin-1"))
        archive.writestr("ml-100k/u.genre", genres)
        archive.writestr("ml-100k/README", "readme")
    return buf.getvalue()


def _fetch(name: str, server: Server, tmp_path: Path, **kwargs) -> Path:
    return fetch_dataset(
        name,
        tmp_path / name,
        cache_dir=tmp_path / "cache",
        base_url=server.url,
        retries=2,
        **kwargs,
    )


# ---- the fetchers ----------------------------------------------------------------------------


def test_fetch_wikimedia_through_a_drop(server, tmp_path):
    archive = _wikimedia_zip()
    server.routes["/wikimedia_recsys.zip"] = Route(archive, drops=1)
    out = _fetch("wikimedia", server, tmp_path, embeddings=False)
    frame = pd.read_csv(out / "interactions.csv", dtype={"item_id": str})
    test_rows = frame[frame["evaluation"]]
    assert sorted(zip(test_rows["user_id"], test_rows["item_id"], strict=True)) == [
        ("u0", "5"),
        ("u1", "6"),
        ("u2", "0"),
    ]
    assert len(frame) == 12 + 3
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"{i}.jpg" for i in range(8)]
    assert json.loads((out / "dataset.json").read_text())["images"] == "images"
    card = (out / "CARD.md").read_text()
    assert "test interactions: 3" in card and "images: 8" in card and "Parra" in card
    digest = hashlib.sha256(archive).hexdigest()
    assert digest in card
    dataset = open_dataset(out).build(SplitSpec(method="given"))
    assert dataset.test.nnz == 3 and dataset.n_items == 8


def test_fetch_wikimedia_without_a_test_csv_says_what_it_found(server, tmp_path):
    server.routes["/wikimedia_recsys.zip"] = Route(_wikimedia_zip(with_test=False))
    with pytest.raises(DataError, match="train_interactions.csv"):
        _fetch("wikimedia", server, tmp_path, embeddings=False)
    assert not (tmp_path / "wikimedia").exists()


def test_fetch_movielens(server, tmp_path):
    server.routes["/ml-100k.zip"] = Route(_movielens_zip())
    out = _fetch("movielens-100k", server, tmp_path)
    source = open_dataset(out)
    assert len(source.interactions) == 20 and source.interactions.has_rating
    assert source.items.loc["1", "group"] == "Action" and source.items.loc["2", "group"] == "Comedy"
    assert "GroupLens" in (out / "CARD.md").read_text()
    assert not (out / "images").exists()


def test_fetch_refuses_a_non_empty_output_unless_forced(server, tmp_path):
    server.routes["/ml-100k.zip"] = Route(_movielens_zip())
    (tmp_path / "movielens-100k").mkdir()
    (tmp_path / "movielens-100k" / "mine.txt").write_text("keep")
    with pytest.raises(DataError, match="--force"):
        _fetch("movielens-100k", server, tmp_path)
    out = _fetch("movielens-100k", server, tmp_path, force=True)
    assert (out / "interactions.csv").is_file() and not (out / "mine.txt").exists()


def _ugallery_files(purchases_user: str = "user_id_hash") -> dict[str, bytes]:
    purchases = (
        f"{purchases_user},purchase_timestamp,purchased_artwork_ids_hash\n"
        "ua,2017-01-02 10:00:00,\"['a1', 'a2']\"\nua,2017-03-01 09:00:00,\"['a3']\"\n"
        "ub,1480000000,\"['a2']\"\nub,1490000000,\"['a4', 'a1']\"\n"
    )
    inventory = (
        "artwork_id_hash,artist_id_hash,upload_timestamp\n"
        "a1,x,1400000000\na2,x,1400000001\na3,y,1400000002\na4,z,1400000003\n"
    )
    clusters = json.dumps({"a1": 0, "a2": 1, "a3": 1, "a4": 2})
    return {
        "purchases.csv": purchases.encode(),
        "inventory.csv": inventory.encode(),
        "clusters.json": clusters.encode(),
    }


def test_fetch_ugallery(server, tmp_path):
    for name, data in _ugallery_files().items():
        server.routes["/" + name] = Route(data)
    out = _fetch("ugallery", server, tmp_path, embeddings=False)
    source = open_dataset(out)
    frame = source.interactions.frame
    assert len(frame) == 6 and set(frame["user_id"]) == {"ua", "ub"}
    first = frame[(frame["user_id"] == "ua") & (frame["item_id"] == "a1")]["timestamp"].item()
    assert first == int(pd.Timestamp("2017-01-02 10:00:00", tz="UTC").timestamp())
    assert source.items.loc["a3", "group"] == "y" and source.items.loc["a4", "cluster"] == "2"
    dataset = source.build()
    assert dataset.test.nnz == 3  # ua's last basket (a3) and ub's last basket (a4, a1)


def test_ugallery_columns_are_explicit_and_validated(server, tmp_path):
    for name, data in _ugallery_files(purchases_user="buyer").items():
        server.routes["/" + name] = Route(data)
    with pytest.raises(DataError, match=r"purchases\.user.*buyer.*--column purchases\.user=NAME"):
        _fetch("ugallery", server, tmp_path, embeddings=False)
    with pytest.raises(DataError, match="'nobody' given for purchases.user"):
        _fetch("ugallery", server, tmp_path, embeddings=False, columns={"purchases.user": "nobody"})
    with pytest.raises(ConfigError, match="unknown UGallery column"):
        _fetch("ugallery", server, tmp_path, embeddings=False, columns={"purchase.user": "buyer"})
    out = _fetch(
        "ugallery", server, tmp_path, embeddings=False, columns={"purchases.user": "buyer"}
    )
    assert len(open_dataset(out).interactions) == 6


def test_from_file_matching():
    recipe = RECIPES["wikimedia"]
    assert match_from_files(recipe, {"": "/x/wikimedia_recsys.zip"}) == {
        "zip": Path("/x/wikimedia_recsys.zip")
    }
    assert match_from_files(recipe, {"": "/x/download(1).zip"}) == {
        "zip": Path("/x/download(1).zip")
    }
    assert match_from_files(recipe, {"embeddings": "/x/e.npy"}) == {"embeddings": Path("/x/e.npy")}
    with pytest.raises(ConfigError, match="KEY=PATH"):
        match_from_files(RECIPES["ugallery"], {"": "/x/whatever.csv"})


def test_cli_fetch_from_file_offline(tmp_path, capsys):
    archive = tmp_path / "ml-100k.zip"
    archive.write_bytes(_movielens_zip())
    args = [
        "data",
        "fetch",
        "movielens-100k",
        "-o",
        str(tmp_path / "ml"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--base-url",
        _closed_port_url().rsplit("/", 1)[0],
    ]
    assert main(args + ["--from-file", str(archive)]) == 0
    assert len(pd.read_csv(tmp_path / "ml" / "interactions.csv")) == 20
    assert main(["data", "check", str(tmp_path / "ml")]) == 0


def test_cli_fetch_offline_message(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VISREC_FETCH_URL", _closed_port_url().rsplit("/", 1)[0])
    monkeypatch.setenv("VISREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(FileCache, "__init__", _fast_cache_init)
    code = main(["data", "fetch", "movielens-100k", "-o", str(tmp_path / "ml")])
    err = capsys.readouterr().err
    assert code == 2 and "ml-100k.zip" in err and "--from-file ml-100k.zip=PATH" in err
    assert "files.grouplens.org" in err  # the page to download it from by hand
    assert (tmp_path / "cache").is_dir() and not (tmp_path / "ml").exists()


_real_init = FileCache.__init__


def _fast_cache_init(self, root=None, **kwargs):
    _real_init(self, root, retries=0, timeout=2.0)


# ---- precomputed embeddings through the explicit legacy import (tested last) -------------------


def _legacy_npy(ids: list[str], dim: int = 5) -> tuple[bytes, np.ndarray]:
    vectors = np.random.default_rng(7).normal(size=(len(ids), dim)).astype(np.float32)
    rows = np.empty((len(ids), 2), dtype=object)
    for k, item_id in enumerate(ids):
        rows[k, 0], rows[k, 1] = item_id, vectors[k]
    buf = io.BytesIO()
    np.save(buf, rows, allow_pickle=True)
    return buf.getvalue(), vectors


def test_fetch_wikimedia_embeddings_become_a_feature_store(server, tmp_path):
    store_mod = pytest.importorskip("visrec.features.store")
    from visrec.features.check import check_dataset
    from visrec.features.legacy import import_tutorial_embeddings

    npy, vectors = _legacy_npy([str(i) for i in range(7)])  # image 7 has no vector
    server.routes["/wikimedia_recsys.zip"] = Route(_wikimedia_zip())
    server.routes["/embedding-resnet50.npy"] = Route(npy)
    out = _fetch(
        "wikimedia",
        server,
        tmp_path,
        embeddings=True,
        convert_embeddings=import_tutorial_embeddings,
    )
    store = store_mod.FeatureStore.open(out / "features")
    assert [str(i) for i in store.ids] == [str(i) for i in range(7)]
    np.testing.assert_array_equal(np.asarray(store.array), vectors)
    assert json.loads((out / "dataset.json").read_text())["features"] == "features"
    card = (out / "CARD.md").read_text()
    assert "feature vectors: 7" in card and "items without features: 1" in card
    report = check_dataset(out)
    kinds = [(p.kind, p.ids) for p in report.problems]
    assert kinds == [("unused-image", ("7",)), ("missing-features", ("7",))]
    assert report.usable and report.counts["feature vectors"] == 7


def test_fetch_ugallery_with_embeddings(server, tmp_path):
    pytest.importorskip("visrec.features.legacy")
    from visrec.features.check import check_dataset
    from visrec.features.legacy import import_tutorial_embeddings

    for name, data in _ugallery_files().items():
        server.routes["/" + name] = Route(data)
    server.routes["/resnet_embeddings.npy"] = Route(_legacy_npy(["a1", "a2", "a3", "a4"])[0])
    out = _fetch(
        "ugallery",
        server,
        tmp_path,
        embeddings=True,
        convert_embeddings=import_tutorial_embeddings,
    )
    assert "items without features: 0" in (out / "CARD.md").read_text()
    report = check_dataset(out)
    assert report.problems == []  # no images, but features: nothing to warn about

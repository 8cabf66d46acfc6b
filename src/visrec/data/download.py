"""Resumable, verified HTTP downloads into a local cache (standard library ``urllib`` only).

- **Resumable**: bytes go to ``<name>.part``; a dropped connection is retried with an HTTP ``Range`` request
  from the bytes already on disk (a server that ignores ``Range`` answers 200 and the file restarts).
- **Verified**: the size and sha256 of the first successful download are recorded in ``registry.json`` in
  the cache; a later download (or a file placed by hand) that differs is an error, and the file is kept
  aside as ``<name>.mismatch`` for inspection instead of being used or deleted.
- **Google Drive**: a large public file first answers with an HTML "can't scan this file for viruses" page;
  its download form (``drive.usercontent.google.com``), its ``confirm=`` link (older pages) or its
  ``download_warning`` cookie give the real download URL, which is followed automatically.
- **Offline**: a host that cannot be reached gives a :class:`~visrec.errors.DataError` naming the URL and
  explaining how to place the file by hand (``--from-file``).
"""

from __future__ import annotations

import hashlib
import http.client
import http.cookiejar
import logging
import os
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

from visrec._io import read_json, write_json
from visrec.errors import DataError

log = logging.getLogger(__name__)

USER_AGENT = "visrec-fetch/0.1 (+https://github.com/; python urllib)"
CHUNK = 1 << 16
_TRANSIENT = (http.client.IncompleteRead, ConnectionError, TimeoutError, http.client.HTTPException)


@dataclass(frozen=True)
class Remote:
    """A file to fetch: its cache file name and the URL it comes from."""

    name: str
    url: str
    page: str | None = None
    """A page a person can open in a browser to download the file by hand (defaults to ``url``)."""


def default_cache_dir() -> Path:
    """``$VISREC_CACHE`` if set, else ``~/.cache/visrec``."""
    env = os.environ.get("VISREC_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "visrec"


def gdrive_url(file_id: str) -> str:
    """The direct-download URL of a public Google Drive file."""
    return f"https://drive.google.com/uc?export=download&id={file_id}"


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class FileCache:
    """Downloaded files under ``root/downloads`` plus ``root/registry.json`` (name -> url, size, sha256)."""

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        retries: int = 4,
        backoff: float = 0.5,
        timeout: float = 60.0,
    ):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.downloads = self.root / "downloads"
        self.registry_path = self.root / "registry.json"
        self.retries, self.backoff, self.timeout = retries, backoff, timeout

    def registry(self) -> dict[str, dict]:
        if not self.registry_path.is_file():
            return {}
        try:
            return dict(read_json(self.registry_path).get("files", {}))
        except (ValueError, AttributeError) as exc:
            raise DataError(
                f"not a valid registry ({exc}); delete it to start afresh", path=self.registry_path
            ) from exc

    def _record(self, remote: Remote, path: Path, digest: str, origin: str) -> None:
        files = self.registry()
        files[remote.name] = {
            "url": remote.url,
            "size": path.stat().st_size,
            "sha256": digest,
            "origin": origin,
            "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        write_json(self.registry_path, {"files": files})

    def obtain(self, remote: Remote, *, from_file: str | Path | None = None) -> Path:
        """Return a verified local copy of ``remote``: cached, placed by hand, or downloaded."""
        self.downloads.mkdir(parents=True, exist_ok=True)
        final = self.downloads / remote.name
        expected = self.registry().get(remote.name)
        if from_file is not None:
            return self._place(remote, Path(from_file), final, expected)
        if final.is_file() and (expected is None or final.stat().st_size == expected["size"]):
            self._verify(remote, final, expected, origin="cache")
            log.info("using cached %s", final)
            return final
        part = final.with_name(final.name + ".part")
        _download(remote, part, self)
        os.replace(part, final)
        self._verify(remote, final, expected, origin="download")
        return final

    def _place(self, remote: Remote, source: Path, final: Path, expected: dict | None) -> Path:
        if not source.is_file():
            raise DataError("--from-file: no such file", path=source)
        if source.resolve() != final.resolve():
            tmp = final.with_name(final.name + ".part")
            shutil.copyfile(source, tmp)
            os.replace(tmp, final)
        self._verify(remote, final, expected, origin=f"from-file {source}")
        return final

    def _verify(self, remote: Remote, path: Path, expected: dict | None, origin: str) -> None:
        size, digest = path.stat().st_size, sha256_of(path)
        if expected is None:
            self._record(remote, path, digest, origin)
            log.info("recorded %s: %d bytes, sha256 %s", remote.name, size, digest)
            return
        if size == expected["size"] and digest == expected["sha256"]:
            return
        aside = path.with_name(path.name + ".mismatch")
        os.replace(path, aside)
        raise DataError(
            f"checksum mismatch for {remote.name} ({origin}): got {size} bytes sha256 {digest}, "
            f"expected {expected['size']} bytes sha256 {expected['sha256']} (recorded "
            f"{expected.get('recorded', '?')}). The file was kept aside as {aside}. If the upstream "
            f"file really changed, remove the {remote.name!r} entry from {self.registry_path}",
            path=remote.url,
        )


def _download(remote: Remote, part: Path, cache: FileCache) -> None:
    """Fetch ``remote.url`` into ``part``, resuming after dropped connections."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    url, failures, hops = remote.url, 0, 0
    while True:
        offset = part.stat().st_size if part.exists() else 0
        try:
            next_url, done = _attempt(opener, url, part, offset, cache.timeout)
            if next_url != url:
                hops += 1
                if hops > 3:
                    raise DataError("too many download confirmation pages", path=remote.url)
                url = next_url
                continue
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or failures >= cache.retries:
                raise DataError(
                    f"HTTP {exc.code} {exc.reason} from {url}", path=remote.url
                ) from exc
            done = False
        except (urllib.error.URLError, *_TRANSIENT) as exc:
            if failures >= cache.retries:
                raise _offline_error(remote, exc) from exc
            log.warning("%s: %s; retrying", remote.name, getattr(exc, "reason", exc))
            done = False
        if done:
            return
        failures += 1
        time.sleep(cache.backoff * 2 ** (failures - 1))


def _offline_error(remote: Remote, exc: BaseException) -> DataError:
    reason = getattr(exc, "reason", None) or exc
    return DataError(
        f"could not download {remote.url} ({reason}). If this machine is offline or the host is "
        f"blocked, download the file by hand from {remote.page or remote.url} on another machine, "
        f"then pass it with --from-file {remote.name}=PATH"
    )


def _attempt(opener, url: str, part: Path, offset: int, timeout: float) -> tuple[str, bool]:
    """One request. Returns (url to use next, finished?); raises on network errors."""
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            total = _range_total(exc.headers.get("Content-Range", ""))
            if total == offset:
                return url, True
            part.unlink(missing_ok=True)
            return url, False
        raise
    with response:
        if response.headers.get_content_type() == "text/html":
            next_url = _confirmation_url(response.read(1 << 20), response.geturl(), opener)
            log.info("following the download confirmation of %s", url)
            return next_url, False
        status = response.status
        if status == 206:
            start = _range_start(response.headers.get("Content-Range", ""))
            if start != offset:
                part.unlink(missing_ok=True)
                return url, False
            mode = "ab"
        else:
            offset, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        expected = offset + int(length) if length and length.isdigit() else None
        received = _copy(response, part, mode, offset, expected)
    if expected is not None and received < expected:
        raise http.client.IncompleteRead(b"", expected - received)
    return url, True


def _copy(response, part: Path, mode: str, offset: int, total: int | None) -> int:
    from tqdm.auto import tqdm

    received = offset
    with (
        open(part, mode) as handle,
        tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            desc=part.name.removesuffix(".part"),
            disable=None,
            leave=False,
        ) as bar,
    ):
        while True:
            block = response.read(CHUNK)
            if not block:
                break
            handle.write(block)
            received += len(block)
            bar.update(len(block))
    return received


def _range_start(header: str) -> int:
    try:
        return int(header.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return -1


def _range_total(header: str) -> int:
    try:
        return int(header.rsplit("/", 1)[1])
    except (IndexError, ValueError):
        return -1


class _ConfirmParser(HTMLParser):
    """Collects forms (action + hidden inputs), links carrying ``confirm=`` and the page title."""

    def __init__(self):
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self.links: list[str] = []
        self.title, self._in_title = "", False

    def handle_starttag(self, tag, attrs):
        attr = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((attr.get("action", ""), {}))
        elif tag == "input" and self.forms and attr.get("name"):
            self.forms[-1][1][attr["name"]] = attr.get("value", "")
        elif tag == "a" and "confirm=" in attr.get("href", ""):
            self.links.append(attr["href"])
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def _confirmation_url(body: bytes, base: str, opener) -> str:
    """The real download URL behind a Google-Drive-style confirmation page."""
    parser = _ConfirmParser()
    parser.feed(body.decode("utf-8", errors="replace"))
    for action, fields in parser.forms:
        if "confirm" in fields or "download" in action:
            query = urllib.parse.urlencode(fields)
            return urllib.parse.urljoin(base, action) + ("?" + query if query else "")
    if parser.links:
        return urllib.parse.urljoin(base, parser.links[0])
    for cookie in _cookies(opener):
        if cookie.name.startswith("download_warning"):
            parts = urllib.parse.urlsplit(base)
            query = urllib.parse.urlencode(
                [*urllib.parse.parse_qsl(parts.query), ("confirm", cookie.value)]
            )
            return urllib.parse.urlunsplit(parts._replace(query=query))
    title = parser.title.strip() or "no title"
    raise DataError(
        f"got an HTML page ({title!r}) instead of the file and found no download link in it; "
        "the file may be private, removed, or over its download quota",
        path=base,
    )


def _cookies(opener) -> list[http.cookiejar.Cookie]:
    for handler in opener.handlers:
        if isinstance(handler, urllib.request.HTTPCookieProcessor):
            return list(handler.cookiejar)
    return []

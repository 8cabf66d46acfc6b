"""Verified downloads into a local cache; the transfer itself is gdown's (the ``fetch`` extra).

- **Transfer** (``gdown.download``, on ``requests``): follows Google Drive's "can't scan this file for
  viruses" confirmation page, retries a dropped connection with an HTTP ``Range`` request from the bytes
  already received, and resumes a partial ``<name>XXXXXXXX.part`` file left by an interrupted run. A
  server that cannot resume (no ``Range`` support) makes us start that file again from the first byte.
- **Verified** (ours): the size and sha256 of the first successful download are recorded in
  ``registry.json`` in the cache; a later download (or a file placed by hand) that differs is an error, and
  the file is kept aside as ``<name>.mismatch`` for inspection instead of being used or deleted. An HTML
  page received instead of the file (a Drive quota or login page) is refused, never recorded.
- **Offline**: a host that cannot be reached gives a :class:`~visrec.errors.DataError` naming the URL and
  explaining how to place the file by hand (``--from-file``), which needs neither gdown nor the network.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from visrec._io import read_json, write_json
from visrec.errors import DataError

log = logging.getLogger(__name__)


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
        timeout: float = 60.0,
    ):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.downloads = self.root / "downloads"
        self.registry_path = self.root / "registry.json"
        self.retries, self.timeout = retries, timeout

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
        _download(remote, final, self)
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


def _download(remote: Remote, final: Path, cache: FileCache) -> None:
    """Fetch ``remote.url`` into ``final`` with gdown (resuming its own partial file)."""
    try:
        import gdown
        import requests
    except ImportError as exc:
        raise DataError(
            f"downloading {remote.url} needs gdown: pip install 'visrec[fetch]', or download it by "
            f"hand and pass it with --from-file {remote.name}=PATH"
        ) from exc
    final.unlink(missing_ok=True)  # a stale copy of another size: gdown would keep it
    for attempt in (1, 2):
        try:
            gdown.download(
                remote.url,
                str(final),
                quiet=True,
                use_cookies=False,  # nothing written to ~/.cache/gdown
                resume=True,
                retries=cache.retries,
                timeout=cache.timeout,
                progress=_progress_bar(remote.name),
            )
            break
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            reason = exc.response.reason if exc.response is not None else exc
            raise DataError(f"HTTP {status} {reason} from {remote.url}", path=remote.url) from exc
        except (requests.RequestException, gdown.exceptions.DownloadError) as exc:
            if _is_network(exc, requests):
                raise _offline_error(remote, exc) from exc
            parts = list(final.parent.glob(f"{final.name}????????.part"))
            if attempt == 2 or not parts:
                raise DataError(" ".join(str(exc).split()), path=remote.url) from exc
            log.warning("%s: %s; starting again from the first byte", remote.name, exc)
            for part in parts:
                part.unlink()
    _refuse_html(final, remote)


def _is_network(exc: BaseException, requests) -> bool:
    """A connection refused, timed out or cut (directly or as the cause of gdown's error)."""
    network = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
    return isinstance(exc, network) or isinstance(exc.__cause__, network)


def _offline_error(remote: Remote, exc: BaseException) -> DataError:
    reason = " ".join(str(exc.__cause__ or exc).split())
    errno = re.findall(r"\[Errno -?\d+\][^'\")(]*", reason)  # urllib3 nests it three levels deep
    reason = errno[-1].strip() if errno else reason
    return DataError(
        f"could not download {remote.url} ({reason}). If this machine is offline or the host is "
        f"blocked, download the file by hand from {remote.page or remote.url} on another machine, "
        f"then pass it with --from-file {remote.name}=PATH"
    )


def _refuse_html(path: Path, remote: Remote) -> None:
    """An HTML page instead of the file (quota, login or removed-file page) is an error."""
    with open(path, "rb") as handle:
        start = handle.read(512).lstrip().lower()
    if start.startswith((b"<!doctype html", b"<html")) and not remote.name.endswith(
        (".htm", ".html")
    ):
        path.unlink()
        raise DataError(
            "got an HTML page instead of the file; the file may be private, removed, or over its "
            "download quota",
            path=remote.url,
        )


def _progress_bar(name: str):
    """A gdown progress callback drawing a tqdm bar (off when stderr is not a terminal)."""
    from tqdm.auto import tqdm

    bar = tqdm(unit="B", unit_scale=True, desc=name, disable=None, leave=False)

    def update(done: int, total: int | None) -> None:
        bar.total = total
        bar.update(done - bar.n)
        if total is not None and done >= total:
            bar.close()

    return update

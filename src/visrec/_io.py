"""Atomic file output: a crash never leaves a half-written artifact, and a failed run never clobbers one.

Every writer in visrec goes through these helpers: write to a temporary file in the destination folder,
flush and fsync, then ``os.replace`` over the final name (atomic on POSIX and Windows).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from visrec.errors import DataError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed to ``path``, else deleted."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes 0600 files: give the result the usual permissions
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file for writing; it replaces ``path`` only when the block succeeds."""
    if "w" not in mode:
        raise ValueError("atomic_open is for writing")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(obj, handle, indent=2, sort_keys=False, default=_json_default)
        handle.write("\n")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


# --- loading stored artefacts: every failure is one clear error ---------------------------------


def read_json_object(path: str | os.PathLike, *, what: str, fix: str) -> dict:
    """Read a JSON object from ``path``; any failure raises ``DataError`` naming the file, what is
    wrong and ``fix`` (e.g. "pass --force to start again")."""
    try:
        data = read_json(path)
    except FileNotFoundError:
        raise DataError(f"{what} is missing; {fix}", path=path) from None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise DataError(f"damaged {what} ({_first_line(exc)}); {fix}", path=path) from None
    if not isinstance(data, dict):
        raise DataError(f"damaged {what} (not a JSON object); {fix}", path=path)
    return data


def load_tensor_file(path: str | os.PathLike, *, what: str, fix: str, map_location="cpu") -> dict:
    """``torch.load(path, weights_only=True)`` of a dict, with every failure turned into ``DataError``.

    ``weights_only`` means no pickled code ever runs; a truncated, tampered or foreign file (including
    one that holds code) is refused with the file name, the reason and ``fix``.
    """
    import torch  # here: the bottom layer stays importable without torch loaded

    if not Path(path).is_file():
        raise DataError(f"{what} is missing; {fix}", path=path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise DataError(
            f"damaged or unsafe {what} ({type(exc).__name__}: {_first_line(exc)}); {fix}", path=path
        ) from None
    if not isinstance(state, dict):
        raise DataError(f"damaged {what} (not a dict of tensors); {fix}", path=path)
    return state


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; on success it replaces ``path`` (which must not exist).

    Used for outputs made of several files (feature stores, saved models): readers see either the old
    folder or the complete new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700 folders
        if path.exists():
            backup = path.with_name(f".{path.name}.old")
            if backup.exists():
                shutil.rmtree(backup)
            os.replace(path, backup)
            os.replace(tmp, path)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def default_cache_dir() -> Path:
    """Root of visrec's rebuildable caches (pixels, built datasets): ``$VISREC_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/visrec``, else ``~/.cache/visrec``."""
    if os.environ.get("VISREC_CACHE_DIR"):
        return Path(os.environ["VISREC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "visrec"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")

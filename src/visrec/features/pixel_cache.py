"""Decoded item images for models trained from pixels (DVBPR): a uint8 memory-mapped array on disk.

End-to-end models read every item image once per epoch; decoding JPEGs each time would dominate the
training time (the DVBPR paper's code re-decoded them in four loader threads). Here the images are decoded
once, at the training resolution (shorter side resized to ``size``, central ``size`` x ``size`` crop), into
``pixels.npy`` of shape ``(n_items, size, size, 3)`` uint8, opened with ``mmap_mode="r"``: epochs and later
runs page it in from the OS cache without decoding anything.

A cache folder is keyed by (resolved image folder, item ids, size) and lives under ``cache_dir``
(default ``$VISREC_CACHE_DIR`` or ``~/.cache/visrec``, subfolder ``pixels/``)::

    <key>/pixels.npy      (n, size, size, 3) uint8, rows in the order of ids.txt
    <key>/ids.txt         one item id per line
    <key>/manifest.json   images_dir, size, ids and files fingerprints, problems (item_id, path, reason)

The manifest also fingerprints the image files (name, byte size, mtime), so a changed folder is decoded
again. Items whose image is missing or unreadable follow the feature-store policy: they are listed in
``problems`` (and logged), never silently, and their row holds the mean image of the readable ones, so
training goes on. Only a folder where no item has a readable image is an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from visrec import __version__
from visrec._io import atomic_dir, default_cache_dir, read_json, write_json
from visrec.data.images import ImageReadError, load_rgb, scan_image_folder
from visrec.data.vocab import Vocabulary
from visrec.errors import ConfigError, DataError
from visrec.features.images import center_crop_resize

log = logging.getLogger(__name__)

PIXELS, IDS, MANIFEST = "pixels.npy", "ids.txt", "manifest.json"
FORMAT_VERSION = 1
_CHUNK = 256


class PixelCache:
    """Read-only view of a built cache folder: ``pixels`` (memmap), ``ids``, ``size``, ``problems``."""

    def __init__(self, path: Path, ids: np.ndarray, pixels: np.ndarray, manifest: dict):
        self.path = path
        self.ids = ids
        self.vocab = Vocabulary(ids, name="item")
        self.pixels = pixels
        self.manifest = manifest

    @property
    def size(self) -> int:
        return int(self.manifest["size"])

    @property
    def images_dir(self) -> Path:
        return Path(self.manifest["images_dir"])

    @property
    def problems(self) -> list[dict[str, str]]:
        """Items without a usable image: ``{item_id, path, reason}`` (their row holds the mean image)."""
        return list(self.manifest.get("problems", []))

    def __len__(self) -> int:
        return int(self.pixels.shape[0])

    def __repr__(self) -> str:
        return (
            f"PixelCache({len(self)} items, {self.size}px, {len(self.problems)} without image, "
            f"{self.path})"
        )

    def rows(self, items: Vocabulary) -> np.ndarray:
        """Row of each item of ``items`` in :attr:`pixels`; raises when an item is not in the cache."""
        if items == self.vocab:
            return np.arange(len(items), dtype=np.int64)
        rows = self.vocab.indices(list(items.ids), missing="-1")
        absent = np.flatnonzero(rows < 0)
        if len(absent):
            names = [str(i) for i in items.ids_of(absent[:5])]
            raise DataError(
                f"{len(absent)} items are not in this pixel cache (e.g. {names}); open it "
                "with the dataset's item vocabulary",
                path=self.path,
            )
        return np.asarray(rows, dtype=np.int64)


def open_pixels(
    images_dir: str | os.PathLike,
    item_vocab: Vocabulary | list[str],
    size: int,
    cache_dir: str | os.PathLike | None = None,
) -> PixelCache:
    """The pixel cache of ``item_vocab``'s images in ``images_dir`` at ``size`` px, built if needed.

    Reuses an existing cache with the same key whose files fingerprint still matches (no decoding);
    otherwise decodes every image once with :func:`visrec.data.images.load_rgb` and writes the
    cache atomically. Returns it opened read-only (memory-mapped), rows in ``item_vocab`` order.
    """
    if not 8 <= int(size) <= 2048:
        raise ConfigError(f"image size must be in [8, 2048] pixels, got {size}")
    size = int(size)
    images_dir = Path(images_dir).resolve()
    if not images_dir.is_dir():
        raise DataError("image folder not found", path=images_dir)
    ids = [str(i) for i in (item_vocab.ids if isinstance(item_vocab, Vocabulary) else item_vocab)]
    if not ids:
        raise DataError("no items to cache")
    paths = scan_image_folder(images_dir).images  # links leaving the folder are not items
    ids_sha = _sha256("\n".join(ids))
    files_sha = _fingerprint(ids, paths)
    key = _sha256(json.dumps([str(images_dir), size, ids_sha]))[:20]
    folder = Path(cache_dir or default_cache_dir() / "pixels") / key
    manifest = _read_manifest(folder)
    if manifest is not None and manifest.get("files_sha256") == files_sha:
        log.info("reusing the pixel cache %s (%d items, %d px)", folder, len(ids), size)
        return _open(folder, manifest)
    if manifest is not None:
        log.info("images in %s changed since the pixel cache was built: decoding again", images_dir)
    manifest = {
        "format": FORMAT_VERSION,
        "images_dir": str(images_dir),
        "size": size,
        "n_items": len(ids),
        "ids_sha256": ids_sha,
        "files_sha256": files_sha,
        "layout": "NHWC uint8, shorter side resized then centre crop",
        "created_with": f"visrec {__version__}",
    }
    _build(folder, ids, paths, size, manifest)
    return _open(folder, _read_manifest(folder))


# --- building -------------------------------------------------------------------------------------


def _build(folder: Path, ids: list[str], paths: dict[str, Path], size: int, manifest: dict) -> None:
    log.info("decoding %d images at %d px into %s", len(ids), size, folder)
    with atomic_dir(folder) as tmp:
        pixels = np.lib.format.open_memmap(
            tmp / PIXELS, mode="w+", dtype=np.uint8, shape=(len(ids), size, size, 3)
        )
        problems = _decode_all(pixels, ids, paths, size)
        bad = np.array([row for row, _ in problems], dtype=np.int64)
        if len(bad) == len(ids):
            raise DataError(
                f"none of the {len(ids)} items has a readable image (first problem: "
                f"{problems[0][1]['reason']})",
                path=manifest["images_dir"],
            )
        if len(bad):
            pixels[bad] = _mean_image(pixels, bad)
        pixels.flush()
        del pixels
        (tmp / IDS).write_text("".join(i + "\n" for i in ids), encoding="utf-8")
        write_json(
            tmp / MANIFEST,
            {**manifest, "fill": "mean image", "problems": [record for _, record in problems]},
        )
    if problems:
        shown = ", ".join(f"{r['item_id']} ({r['reason']})" for _, r in problems[:5])
        log.warning(
            "%d of %d items have no usable image (filled with the mean image, listed in %s): %s%s",
            len(problems),
            len(ids),
            folder / MANIFEST,
            shown,
            " ..." if len(problems) > 5 else "",
        )


def _decode_all(
    pixels: np.ndarray, ids: list[str], paths: dict[str, Path], size: int
) -> list[tuple[int, dict[str, str]]]:
    """Decode every image into ``pixels`` (threads: PIL releases the GIL while decoding)."""
    problems: list[tuple[int, dict[str, str]]] = []
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(ids), _CHUNK):
            rows = range(start, min(start + _CHUNK, len(ids)))
            for row, result in zip(
                rows, pool.map(lambda r: _decode(ids[r], paths, size), rows), strict=True
            ):
                if isinstance(result, dict):
                    problems.append((row, result))
                else:
                    pixels[row] = result
    return problems


def decode_pixels(path: str | os.PathLike, size: int) -> np.ndarray:
    """One image as the cache stores it: shorter side resized to ``size``, central square, uint8 HWC
    (also how new items are decoded for a pixel model). Raises :class:`ImageReadError`."""
    return center_crop_resize(load_rgb(path, min_side=size), size, size)


def _decode(item_id: str, paths: dict[str, Path], size: int) -> np.ndarray | dict[str, str]:
    path = paths.get(item_id)
    if path is None:
        return {"item_id": item_id, "path": "", "reason": "no image file"}
    try:
        return decode_pixels(path, size)
    except ImageReadError as exc:
        reason = str(exc).removeprefix(f"{exc.path}: ")
        return {"item_id": item_id, "path": str(path), "reason": reason}


def _mean_image(pixels: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """Mean of the readable rows (float64 accumulation in chunks), rounded to uint8."""
    good = np.setdiff1d(np.arange(len(pixels)), bad)
    total = np.zeros(pixels.shape[1:], dtype=np.float64)
    for start in range(0, len(good), _CHUNK):
        total += pixels[good[start : start + _CHUNK]].sum(axis=0, dtype=np.float64)
    return np.rint(total / len(good)).astype(np.uint8)


# --- reading --------------------------------------------------------------------------------------


def _open(folder: Path, manifest: dict) -> PixelCache:
    try:
        pixels = np.load(folder / PIXELS, mmap_mode="r", allow_pickle=False)
        ids = np.asarray((folder / IDS).read_text(encoding="utf-8").splitlines(), dtype=object)
    except (OSError, ValueError) as exc:
        raise DataError(
            f"damaged pixel cache ({exc}); delete the folder to rebuild it", path=folder
        ) from None
    size = manifest["size"]
    if pixels.dtype != np.uint8 or pixels.shape != (len(ids), size, size, 3):
        raise DataError(
            f"damaged pixel cache: pixels {pixels.dtype}{pixels.shape} for {len(ids)} "
            f"ids at {size}px; delete the folder to rebuild it",
            path=folder,
        )
    return PixelCache(folder, ids, pixels, manifest)


def _read_manifest(folder: Path) -> dict | None:
    """The manifest of a complete cache folder, or None (absent, old format or unreadable)."""
    try:
        manifest = read_json(folder / MANIFEST)
    except (OSError, ValueError):
        return None
    ok = isinstance(manifest, dict) and manifest.get("format") == FORMAT_VERSION
    return manifest if ok and (folder / PIXELS).is_file() else None


def _fingerprint(ids: list[str], paths: dict[str, Path]) -> str:
    """Hash of (file name, byte size, mtime) of each item's image: a changed file changes the hash."""
    digest = hashlib.sha256()
    for item_id in ids:
        path = paths.get(item_id)
        if path is None:
            digest.update(f"{item_id}\0-\n".encode())
            continue
        stat = path.stat()
        digest.update(f"{item_id}\0{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

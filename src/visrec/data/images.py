"""Item image folders and the one function that opens an image file.

A folder holds one file per item; the file stem is the item id. Image folders are untrusted input (see
docs/security.md), so:

- a file is an item only if it resolves inside the folder: a symbolic link that leaves it is reported,
  never followed;
- a file name that is not a usable id (empty, outer spaces, line breaks or other control characters,
  undecodable bytes) is reported with the reason, and the rest of the folder is used;
- :func:`open_image` decodes only the formats in :data:`FORMATS` (never Pillow's EPS/PS plugin, which runs
  Ghostscript) and enforces a pixel budget *before* decoding: JPEGs are decoded at reduced size (libjpeg
  "draft" mode: DCT scaling by 1/2, 1/4 or 1/8), other formats above the budget are refused with the reason;
- EXIF orientation is applied; palette, CMYK, 16-bit and grey images become RGB; transparent images are
  composited on white; animated images give their first frame;
- truncated, empty or non-image files raise :class:`ImageReadError` with the reason, for the caller to
  report and skip.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin

from visrec.errors import DataError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff")
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
"""Pillow formats visrec decodes; anything else (EPS, PS, PDF, ...) is refused whatever its name."""
DEFAULT_MAX_PIXELS = 50_000_000
"""Pixel budget of one decoded image (about 150 MB as RGB); JPEGs are drafted down to fit."""

_TRANSPARENT_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_DRAFT_SCALES = (8, 4, 2, 1)
_RESULT_FORMATS = (*FORMATS, "MPO")  # the JPEG plugin reports multi-picture JPEGs as MPO


class ImageReadError(DataError):
    """An image file cannot be decoded (empty, truncated, not an image, not allowed, too large)."""


# --- folders --------------------------------------------------------------------------------------


@dataclass
class ImageScan:
    """What :func:`scan_image_folder` found: usable images, id clashes, and files refused with a reason."""

    images: dict[str, Path] = field(default_factory=dict)
    clashes: dict[str, list[Path]] = field(default_factory=dict)
    rejected: list[dict[str, str]] = field(default_factory=list)
    """``{"path", "reason"}`` per refused file (link leaving the folder, bad name)."""


def id_problem(item_id: str) -> str | None:
    """Why ``item_id`` (from a file name) cannot be an item id, or None when it can."""
    if not item_id:
        return "empty item id"
    if item_id != item_id.strip():
        return "item id has leading or trailing spaces"
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") for ch in item_id):
        return "item id contains a line break, control character or undecodable byte"
    return None


def scan_image_folder(folder: str | Path) -> ImageScan:
    """Map item id (file stem) -> image path for every image file directly in ``folder``.

    Files that resolve outside the folder (symbolic links leaving it) and files whose stem is not a usable
    id are listed in ``rejected``; ids with several files differing only in extension (``12.jpg`` and
    ``12.png``) in ``clashes`` (the first by sorted name is kept).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: image folder not found")
    root = folder.resolve()
    scan = ImageScan()
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        resolved = _resolve(path)
        if resolved is None:
            scan.rejected.append(_reject(path, "link that cannot be resolved (a loop?)"))
            continue
        if root not in resolved.parents:
            scan.rejected.append(_reject(path, f"link to {resolved.name!r} outside the folder"))
            continue
        if not resolved.is_file():
            continue
        stem = path.stem
        problem = id_problem(stem)
        if problem is not None:
            scan.rejected.append(_reject(path, problem))
        elif stem in scan.images:
            scan.clashes.setdefault(stem, [scan.images[stem]]).append(path)
        else:
            scan.images[stem] = path
    return scan


def folder_fingerprint(folder: str | Path) -> str:
    """SHA-256 of what :func:`scan_image_folder`'s result depends on, read without resolving every file:
    the folder's resolved path and, per entry with an image extension, its name and kind (a symbolic
    link adds where it resolves to and whether that is a file). Image bytes are not read: the catalogue
    is made of names. A cached dataset build is keyed by it (:mod:`visrec.data.cache`)."""
    folder = Path(folder)
    digest = hashlib.sha256(str(folder.resolve()).encode("utf-8", "surrogateescape"))
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if Path(entry.name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            if entry.is_symlink():
                target = _resolve(Path(entry.path))
                kind = f"link {target} {target is not None and target.is_file()}"
            else:
                kind = "file" if entry.is_file(follow_symlinks=False) else "other"
            digest.update(f"{entry.name}\0{kind}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _resolve(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symbolic link loop (Python < 3.13)
        return None


def _reject(path: Path, reason: str) -> dict[str, str]:
    return {"path": str(path), "reason": reason}


def scan_images(folder: str | Path) -> tuple[dict[str, Path], dict[str, list[Path]]]:
    """``(images, clashes)`` of :func:`scan_image_folder`; refused files are left out (and logged)."""
    scan = scan_image_folder(folder)
    for record in scan.rejected:
        log.warning("not an item: %s (%s)", record["path"], record["reason"])
    return scan.images, scan.clashes


def inside(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` resolves (links followed) to a file inside ``folder``."""
    resolved = _resolve(Path(path))
    return (
        resolved is not None and Path(folder).resolve() in resolved.parents and resolved.is_file()
    )


# --- decoding -------------------------------------------------------------------------------------


def load_rgb(
    path: str | os.PathLike,
    max_side: int | None = None,
    *,
    min_side: int | None = None,
    max_pixels: int | None = None,
) -> Image.Image:
    """Read ``path`` as an RGB :class:`PIL.Image.Image`, robustly (see module docstring).

    ``max_side``: the result's longer side is at most this (downscaled, aspect kept). ``min_side``: the
    caller only needs the shorter side to be at least this many pixels, so a JPEG may be decoded at
    reduced size (never below ``min_side``). ``max_pixels``: the pixel budget (default
    :data:`DEFAULT_MAX_PIXELS`). Raises :class:`ImageReadError` naming the file and the reason.
    """
    path = Path(path)
    try:
        image = open_image(path, max_side=max_side, min_side=min_side, max_pixels=max_pixels)
        try:
            image.load()
            image = ImageOps.exif_transpose(image)
            rgb = to_rgb(image)
        finally:
            image.close()
    except ImageReadError:
        raise
    except (OSError, SyntaxError, ValueError, TypeError, EOFError, MemoryError) as exc:
        raise ImageReadError(_reason(exc), path=path) from None
    if max_side is not None and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return rgb


def open_image(
    path: str | os.PathLike,
    *,
    max_side: int | None = None,
    min_side: int | None = None,
    max_pixels: int | None = None,
) -> Image.Image:
    """Open ``path`` lazily (header only): an allowed format, drafted or checked against the budget.

    The returned image decodes at most ``max_pixels`` pixels when loaded. Raises :class:`ImageReadError`.
    """
    path = Path(path)
    budget = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    image = _open(path)
    try:
        if (
            image.format not in _RESULT_FORMATS
        ):  # belt and braces: Image.open was given the allow-list
            raise ImageReadError(f"format {image.format} is not allowed", path=path)
        if image.format in ("JPEG", "MPO"):
            _draft(image, max_side=max_side, min_side=min_side, budget=budget)
        width, height = image.size
        if width * height > budget:
            raise ImageReadError(
                f"image too large to decode safely: {width}x{height} = {width * height:,} "
                f"pixels is above the pixel budget of {budget:,}",
                path=path,
            )
    except BaseException:
        image.close()
        raise
    return image


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, Image.UnidentifiedImageError):
        return (
            "not a readable image (unknown or corrupt format, or a format visrec does not "
            f"decode; allowed: {', '.join(FORMATS)})"
        )
    if "truncated" in text:
        return f"truncated image ({text})"
    return f"cannot decode image: {text}"


def _open(path: Path) -> Image.Image:
    """Open lazily with the format allow-list; Pillow's own bomb check is replaced by the budget."""
    if not path.is_file():
        raise ImageReadError("no such file", path=path)
    if path.stat().st_size == 0:
        raise ImageReadError("empty file (0 bytes)", path=path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(path, formats=FORMATS)
        except Image.DecompressionBombError as exc:
            try:
                # The JPEG plugin class itself does not run the bomb check; the draft and the budget
                # bound the decoded size instead. Other formats this large are refused.
                return JpegImagePlugin.JpegImageFile(str(path))
            except (SyntaxError, OSError):
                raise ImageReadError(
                    f"image too large to decode safely: {exc}", path=path
                ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageReadError(_reason(exc), path=path) from None


def _draft(image: Image.Image, *, max_side: int | None, min_side: int | None, budget: int) -> None:
    """Pick the largest JPEG DCT scale that keeps the requested size, then shrink to fit the budget."""
    width, height = image.size
    chosen = 1
    if min_side is not None or max_side is not None:
        for scale in _DRAFT_SCALES:
            w, h = _scaled(width, scale), _scaled(height, scale)
            if (min_side is None or min(w, h) >= min_side) and (
                max_side is None or min_side is not None or max(w, h) >= max_side
            ):
                chosen = scale
                break
    while chosen < 8 and _scaled(width, chosen) * _scaled(height, chosen) > budget:
        chosen *= 2  # a huge JPEG: decode smaller rather than refuse
    if chosen > 1:
        mode = image.mode if image.mode in ("RGB", "L") else None
        image.draft(mode, (_scaled(width, chosen), _scaled(height, chosen)))


def _scaled(size: int, scale: int) -> int:
    return math.ceil(size / scale)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB; transparent pixels are composited on white."""
    if image.mode == "RGB":
        return image.copy()
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        image = _to_8bit(image)
    if image.mode in _TRANSPARENT_MODES:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit / integer / float grey images: scale to 0..255 (16-bit by 1/257, others by their max)."""
    values = np.asarray(image, dtype=np.float32)
    peak = 65535.0 if image.mode.startswith("I;16") else max(float(values.max()), 1.0)
    if image.mode == "F" and peak <= 1.0:
        peak = 1.0
    scaled = np.clip(values * (255.0 / peak), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


def center_crop_resize(image: Image.Image, resize: int, crop: int) -> np.ndarray:
    """Resize the shorter side to ``resize`` and take the central ``crop`` x ``crop`` square.

    Done as one PIL resize of the source box that maps onto the crop (same pixels as torchvision's
    ``Resize(resize)`` + ``CenterCrop(crop)``, one interpolation pass). Returns uint8 HWC.
    """
    width, height = image.size
    # torchvision's Resize: shorter side -> resize, longer side truncated; CenterCrop rounds the offset.
    if width <= height:
        new_w, new_h = resize, int(resize * height / width)
    else:
        new_w, new_h = int(resize * width / height), resize
    left, top = round((new_w - crop) / 2), round((new_h - crop) / 2)
    sx, sy = width / new_w, height / new_h
    box = (left * sx, top * sy, (left + crop) * sx, (top + crop) * sy)
    out = image.resize((crop, crop), Image.Resampling.BILINEAR, box=box, reducing_gap=3.0)
    return np.asarray(out, dtype=np.uint8)

"""Robust image reading for real-world item folders.

The tutorial's notebook opened every image at full size with PIL after raising ``MAX_IMAGE_PIXELS`` to 3e9
and setting ``LOAD_TRUNCATED_IMAGES``, which is slow on large Wikimedia images and silently feeds half-grey
pictures to the CNN. Here:

- JPEGs are decoded at reduced size (libjpeg "draft" mode: DCT scaling by 1/2, 1/4 or 1/8) whenever the
  caller needs fewer pixels, which also makes huge JPEGs (e.g. 20000x20000) readable without touching
  Pillow's global decompression-bomb limit;
- EXIF orientation is applied; palette, CMYK, 16-bit and grey images become RGB; transparent images are
  composited on white; animated images give their first frame;
- truncated, empty or non-image files raise :class:`ImageReadError` with the reason, for the caller to
  report and skip.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin

from visrec.errors import DataError

_TRANSPARENT_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_DRAFT_SCALES = (8, 4, 2, 1)


class ImageReadError(DataError):
    """An image file cannot be decoded (empty, truncated, not an image, too large)."""


def load_rgb(
    path: str | os.PathLike, max_side: int | None = None, *, min_side: int | None = None
) -> Image.Image:
    """Read ``path`` as an RGB :class:`PIL.Image.Image`, robustly.

    ``max_side``: the result's longer side is at most this (downscaled, aspect kept). ``min_side``: the
    caller only needs the shorter side to be at least this many pixels, so a JPEG may be decoded at
    reduced size (never below ``min_side``). Raises :class:`ImageReadError` naming the file and the reason.
    """
    path = Path(path)
    try:
        image = _open(path)
        try:
            _draft(image, max_side=max_side, min_side=min_side)
            image.load()
            _check_pixels(image, path)
            image = ImageOps.exif_transpose(image)
            rgb = to_rgb(image)
        finally:
            image.close()
    except ImageReadError:
        raise
    except (
        OSError,
        SyntaxError,
        ValueError,
        TypeError,
        EOFError,
        Image.DecompressionBombError,
    ) as exc:
        raise ImageReadError(_reason(exc), path=path) from None
    if max_side is not None and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return rgb


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, Image.UnidentifiedImageError):
        return "not a readable image (unknown or corrupt format)"
    if "truncated" in text:
        return f"truncated image ({text})"
    return f"cannot decode image: {text}"


def _open(path: Path) -> Image.Image:
    """Open lazily; a JPEG over Pillow's bomb limit is opened without the check, to be drafted down."""
    if not path.is_file():
        raise ImageReadError("no such file", path=path)
    if path.stat().st_size == 0:
        raise ImageReadError("empty file (0 bytes)", path=path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except Image.DecompressionBombError as exc:
            try:
                # The plugin class itself does not run the bomb check; _draft and _check_pixels bound
                # the decoded size instead.
                return JpegImagePlugin.JpegImageFile(str(path))
            except (SyntaxError, OSError):
                raise ImageReadError(
                    f"image too large to decode safely: {exc}", path=path
                ) from None


def _draft(image: Image.Image, *, max_side: int | None, min_side: int | None) -> None:
    """Pick the largest JPEG DCT scale that keeps the requested size (and Pillow's pixel limit)."""
    if image.format != "JPEG":
        return
    width, height = image.size
    limit = Image.MAX_IMAGE_PIXELS or math.inf
    chosen = 1
    if min_side is None and max_side is None:  # full size, unless that exceeds the pixel limit
        chosen = next(
            (s for s in (1, 2, 4, 8) if _scaled(width, s) * _scaled(height, s) <= limit), 8
        )
    else:
        for scale in _DRAFT_SCALES:
            w, h = _scaled(width, scale), _scaled(height, scale)
            if (min_side is None or min(w, h) >= min_side) and (
                max_side is None or min_side is not None or max(w, h) >= max_side
            ):
                chosen = scale
                break
        while chosen < 8 and _scaled(width, chosen) * _scaled(height, chosen) > 2 * limit:
            chosen *= 2  # a huge JPEG: decode smaller rather than refuse
    if chosen > 1:
        mode = image.mode if image.mode in ("RGB", "L") else None
        image.draft(mode, (_scaled(width, chosen), _scaled(height, chosen)))


def _scaled(size: int, scale: int) -> int:
    return math.ceil(size / scale)


def _check_pixels(image: Image.Image, path: Path) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and image.size[0] * image.size[1] > 2 * limit:
        raise ImageReadError(
            f"image too large to decode safely ({image.size[0]}x{image.size[1]} pixels even at the "
            "smallest JPEG draft scale)",
            path=path,
        )


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

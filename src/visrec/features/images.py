"""Image reading for feature extraction: re-exports of :mod:`visrec.data.images` plus the crop.

The image-reading primitive (format allow-list, pixel budget, RGB conversion) lives in the ``data`` layer,
so that ``data check``, extraction, the pixel cache, grids and the viewer all open images the same way.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from visrec.data.images import (
    DEFAULT_MAX_PIXELS,
    FORMATS,
    ImageReadError,
    load_rgb,
    open_image,
    to_rgb,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "FORMATS",
    "ImageReadError",
    "center_crop_resize",
    "load_rgb",
    "open_image",
    "to_rgb",
]


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

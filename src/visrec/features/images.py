"""Image reading for feature extraction: re-exports of :mod:`visrec.data.images` (crop included).

The image-reading primitive (format allow-list, pixel budget, RGB conversion) lives in the ``data`` layer,
so that ``data check``, extraction, the pixel cache, grids and the viewer all open images the same way.
"""

from __future__ import annotations

from visrec.data.images import (
    DEFAULT_MAX_PIXELS,
    FORMATS,
    ImageReadError,
    center_crop_resize,
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

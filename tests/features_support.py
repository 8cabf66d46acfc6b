"""Image files of every kind the feature extractor must handle, generated in code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

GOOD = ("rgb", "exif", "cmyk", "palette", "rgba", "la", "gif", "webp", "bmp", "tiff16", "huge")
BAD = {"truncated": "truncated", "empty": "empty file", "text": "not a readable image"}


def make_zoo(folder: Path, *, huge: bool = True) -> Path:
    """Write one file per kind: ``<kind>.<ext>`` (good ones in GOOD, unreadable ones in BAD)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), "RGB")
    noise.save(folder / "rgb.jpg", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.new("RGB", (40, 20), (200, 30, 30)).save(folder / "exif.jpg", exif=exif)
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(folder / "cmyk.jpg")  # red in CMYK
    palette = Image.new("P", (32, 32), 0)
    palette.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    palette.paste(1, (0, 0, 16, 32))
    palette.save(folder / "palette.png", transparency=0)  # left half green, right half transparent
    Image.new("RGBA", (32, 32), (0, 0, 255, 0)).save(folder / "rgba.png")  # fully transparent
    Image.new("LA", (32, 32), (0, 255)).save(folder / "la.png")  # opaque black
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(folder / "gif.gif", save_all=True, append_images=frames[1:], duration=100)
    noise.save(folder / "webp.webp")
    noise.save(folder / "bmp.bmp")
    grey16 = np.full((32, 32), 65535 // 2, dtype=np.uint16)
    Image.fromarray(grey16).save(folder / "tiff16.tif")
    if huge:
        # 20000 x 20000 (4e8 pixels, over Pillow's bomb limit): solid grey, cheap to encode.
        Image.new("L", (20000, 20000), 90).save(folder / "huge.jpg", quality=1)
    data = (folder / "rgb.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("this is not an image\n", encoding="utf-8")
    return folder

"""Hostile and careless input, generated in code: escaping links, EPS named .jpg, pixel bombs, bad names."""

from __future__ import annotations

import os
import stat
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n%%EndComments\n"
    b"newpath 0 0 moveto 16 16 lineto stroke\nshowpage\n%%EOF\n"
)
BAD_NAMES = {" lead": "leading or trailing spaces", "trail ": "leading or trailing spaces",
             "new\nline": "line break", "tab\there": "control character"}  # fmt: skip


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` pixels, with one tiny IDAT (a 'pixel bomb')."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def fake_gs(folder: Path) -> tuple[Path, Path]:
    """A ``gs`` executable in ``folder`` that records each run in ``folder/gs-ran``: (bin dir, marker)."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "gs-ran"
    script = folder / "gs"
    script.write_text(f"#!/bin/sh\necho ran >> '{marker}'\nexit 1\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder, marker


def hostile_folder(root: Path, n_good: int = 4) -> dict[str, Path]:
    """An image folder with good images, an escaping link, an EPS named .jpg and bad names.

    Returns the notable paths: ``images``, ``secret`` (outside the folder), ``link``, ``eps``.
    """
    images = root / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(n_good):
        pixels = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"good{i}.jpg")
    secret = root / "secret.png"
    Image.new("RGB", (20, 20), (1, 2, 3)).save(secret)
    os.symlink(secret, images / "escape.png")
    (images / "eps.jpg").write_bytes(EPS)
    for name in BAD_NAMES:
        Image.new("RGB", (20, 20), (9, 9, 9)).save(images / f"{name}.png")
    return {"images": images, "secret": secret, "link": images / "escape.png",
            "eps": images / "eps.jpg"}  # fmt: skip

"""Item image folders: one file per item, file stem = item id."""

from __future__ import annotations

from pathlib import Path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff")


def scan_images(folder: str | Path) -> tuple[dict[str, Path], dict[str, list[Path]]]:
    """Map item id (file stem) -> image path for every image file directly in ``folder``.

    Returns ``(images, clashes)``: ``clashes`` lists ids with several files differing only in extension
    (e.g. ``12.jpg`` and ``12.png``); the first by sorted name is kept in ``images``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: image folder not found")
    images: dict[str, Path] = {}
    clashes: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_EXTENSIONS or not path.is_file():
            continue
        stem = path.stem
        if stem in images:
            clashes.setdefault(stem, [images[stem]]).append(path)
            continue
        images[stem] = path
    return images, clashes

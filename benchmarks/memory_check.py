"""Memory of extraction and thumbnails with a >=150-megapixel PNG in the image folder (issue 15).

    python benchmarks/memory_check.py [--megapixels 150] [--n-small 48] [--unbounded]

Writes a folder of small JPEGs (400x300) and a copy of it with one huge RGB PNG added (default
12500x12000 = 150 megapixels; random blocks, so Pillow cannot skip work). Then, each in a fresh process:

(a) peak RSS of ``extract_features`` (resnet18, random weights, 64 px input, decoding in the main process
    so one process holds everything) over the folder without and with the huge PNG; target: with <= 1.3x
    without;
(b) the viewer's thumbnail of the huge PNG (``ViewerState.thumbnail``, what ``GET /thumbs/ID`` calls):
    peak RSS growth over a process that has already made one small thumbnail; target: <= 200 MB.

``--unbounded`` repeats both with the pixel budget lifted (``DEFAULT_MAX_PIXELS`` = 10**12), i.e. the
behaviour before the budget existed, for comparison. Peak RSS is the child's ``ru_maxrss``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

EXTRACT = """
import json, resource, sys, time
import visrec.data.images as images
if {unbounded}:
    images.DEFAULT_MAX_PIXELS = 10**12
from visrec.features import extract_features
start = time.perf_counter()
store = extract_features({folder!r}, {out!r}, backbone="resnet18", weights="none", input_size=64,
                         workers=0, batch_size=16, device="cpu", precision="fp32", progress=False)
print(json.dumps({{"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "seconds": time.perf_counter() - start, "n": len(store),
                   "failed": [f["reason"][-90:] for f in store.failed]}}))
"""

THUMB = """
import json, resource, time
from pathlib import Path
import visrec.data.images as images
if {unbounded}:
    images.DEFAULT_MAX_PIXELS = 10**12
from visrec.errors import DataError
from visrec.viewer.state import ViewerState
paths = {{"small": Path({small!r}), "huge": Path({huge!r})}}
state = ViewerState([], Path({folder!r}), Path({thumbs!r}), paths)
state.thumbnail("small", 160)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
try:
    state.thumbnail("huge", 160)
    answer = "200 (thumbnail made)"
except DataError as exc:
    answer = "422: " + str(exc)[-90:]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"growth_mb": after - before, "rss_mb": after,
                   "seconds": time.perf_counter() - start, "answer": answer}}))
"""


def make_small(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        coarse = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((400, 300), Image.Resampling.BICUBIC).save(
            folder / f"img{i:03d}.jpg", quality=90
        )


def make_huge(path: Path, megapixels: int) -> tuple[int, int]:
    """An RGB PNG of about ``megapixels`` megapixels, written in a child process (frees its memory)."""
    height = int(math.sqrt(megapixels * 1e6 / 1.04))
    width = math.ceil(megapixels * 1e6 / height)
    code = (
        "import numpy as np; from PIL import Image; "
        "rng = np.random.default_rng(1); "
        f"blocks = rng.integers(0, 255, ({height // 50 + 1}, {width // 50 + 1}, 3), dtype=np.uint8); "
        f"a = np.repeat(np.repeat(blocks, 50, 0), 50, 1)[:{height}, :{width}]; "
        f"Image.fromarray(np.ascontiguousarray(a)).save({str(path)!r}, compress_level=1)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    return width, height


def child(code: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(root: Path, width: int, height: int, unbounded: bool) -> dict:
    tag = "unbounded" if unbounded else "budget"
    results = {}
    for name in ("small", "with-huge"):
        out = root / f"store-{name}-{tag}"
        code = EXTRACT.format(unbounded=unbounded, folder=str(root / name), out=str(out))
        results[name] = child(code)
    thumb = THUMB.format(
        unbounded=unbounded,
        small=str(root / "with-huge" / "img000.jpg"),
        huge=str(root / "with-huge" / "huge.png"),
        folder=str(root / "with-huge"),
        thumbs=str(root / f"thumbs-{tag}"),
    )
    results["thumbnail"] = child(thumb)
    return results


def report(results: dict, label: str) -> None:
    small, huge, thumb = results["small"], results["with-huge"], results["thumbnail"]
    ratio = huge["rss_mb"] / small["rss_mb"]
    print(f"[{label}]")
    print(f"  extract, {small['n']} small JPEGs: peak RSS {small['rss_mb']:.0f} MB, "
          f"{small['seconds']:.1f} s")  # fmt: skip
    print(f"  extract, same + huge PNG: peak RSS {huge['rss_mb']:.0f} MB ({ratio:.2f}x), "
          f"{huge['seconds']:.1f} s, failed: {huge['failed']}")  # fmt: skip
    print(f"  viewer thumbnail of the huge PNG: +{thumb['growth_mb']:.0f} MB peak RSS, "
          f"{thumb['seconds']:.2f} s, answer {thumb['answer']}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=int, default=150)
    parser.add_argument("--n-small", type=int, default=48)
    parser.add_argument("--unbounded", action="store_true", help="Also measure without the budget.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="visrec-memory-") as tmp:
        root = Path(tmp)
        make_small(root / "small", args.n_small)
        make_small(root / "with-huge", args.n_small)
        start = time.perf_counter()
        width, height = make_huge(root / "with-huge" / "huge.png", args.megapixels)
        size_mb = (root / "with-huge" / "huge.png").stat().st_size / 1e6
        print(f"huge PNG: {width}x{height} = {width * height / 1e6:.1f} MP, {size_mb:.1f} MB on "
              f"disk (written in {time.perf_counter() - start:.0f} s)")  # fmt: skip
        results = measure(root, width, height, unbounded=False)
        report(results, "with the pixel budget (default)")
        ok_extract = results["with-huge"]["rss_mb"] <= 1.3 * results["small"]["rss_mb"]
        ok_thumb = results["thumbnail"]["growth_mb"] <= 200
        print(f"targets: extraction <= 1.3x: {'met' if ok_extract else 'MISSED'}; "
              f"thumbnail <= 200 MB: {'met' if ok_thumb else 'MISSED'}")  # fmt: skip
        if args.unbounded:
            report(measure(root, width, height, unbounded=True), "budget lifted (before)")


if __name__ == "__main__":
    main()

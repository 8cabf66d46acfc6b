"""Real-data benchmark on ../shared/data/movielens-100k-posters (docs/benchmarks.md).

1. extracts the EfficientNet-Lite0 features of the posters into .bench/movielens/features/ when missing
   (pooled 1280-d vectors for VisRank/VBPR/CuratorNet, 7x7x320 maps of the last MBConv block for ACF;
   DVBPR reads the poster pixels itself);
2. runs ``benchmarks/movielens_posters.toml`` (train what is missing, choose grids on validation, test,
   tables with 95% bootstrap CIs and Holm-corrected marks, plots) into .bench/movielens/out/.

Usage: .venv/bin/python benchmarks/run_movielens.py [--config TOML] [--out DIR] [--force]
(``--config benchmarks/movielens_posters_cold.toml``: warm and cold items side by side, out in
.bench/movielens/out-cold/). Re-running reuses every finished run, so an interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "benchmarks" / "movielens_posters.toml"
DATA = ROOT.parent / "shared" / "data" / "movielens-100k-posters"
FEATURES = ROOT / ".bench" / "movielens" / "features"


def extract(name: str, layer: str, dtype: str) -> None:
    from visrec.features import extract_features

    out = FEATURES / name
    if (out / "meta.json").is_file():
        print(f"features: reusing {out}", flush=True)
        return
    began = time.perf_counter()
    extract_features(
        DATA / "posters", out, backbone="efficientnet_lite0", layer=layer, weights="imagenet",
        dtype=dtype, resume=True,
    )  # fmt: skip
    print(f"features: {out} ({time.perf_counter() - began:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG, help="benchmark TOML")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--force", action="store_true", help="retrain every model")
    args = parser.parse_args()
    default_out = (
        "out" if args.config.resolve() == CONFIG else f"out-{args.config.stem.split('_')[-1]}"
    )
    args.out = args.out or ROOT / ".bench" / "movielens" / default_out
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not (DATA / "u.data").is_file():
        raise SystemExit(f"the real data is not here: {DATA}")
    extract("effnet-lite0-pooled", "pooled", "float32")
    extract("effnet-lite0-b15", "blocks.15", "float16")
    from visrec.benchmark import run_suite
    from visrec.benchmark.sections import tables_text

    began = time.perf_counter()
    summary = run_suite(
        args.config, args.out, force=args.force, echo=lambda s: print(s, flush=True)
    )
    print(f"\n{tables_text(summary)}\n\nbenchmark: {time.perf_counter() - began:.0f} s; "
          f"results in {args.out}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

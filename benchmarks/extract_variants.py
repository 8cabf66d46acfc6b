"""The candidates of ``extract_speed.py --ab``: decode, forward and whole-loop variants, A/B alternating.

Everything runs in one process with one thread (``torch.set_num_threads(1)``, ORT intra-op 1,
DataLoader workers 0). Per-image costs are CPU (process) time, robust to other load on the machine;
whole loops are wall time. Each round runs every variant once, in the same order; the table gives
the median over rounds and the ratio to the tutorial's variant.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from extract_speed import naive_transform
from PIL import Image

BATCH = 8  # the tutorial notebook's batch size


def decode_variants(paths: list[Path]) -> dict[str, Callable[[Path], object]]:
    from visrec.features.images import center_crop_resize, load_rgb

    tutorial = naive_transform()

    def full_box(path: Path):
        with Image.open(path) as image:
            return center_crop_resize(image.convert("RGB"), 256, 224)

    def draft_no_gap(path: Path):
        image = load_rgb(path, min_side=256)
        return np.asarray(_box_resize(image, 256, 224, None))

    return {
        "full decode + torchvision transforms (tutorial)": lambda p: tutorial(
            Image.open(p).convert("RGB")
        ),
        "full decode + one box resize": full_box,
        "draft 1/4 + box resize, reducing_gap None": draft_no_gap,
        "draft 1/4 + box resize, reducing_gap 3 (visrec)": lambda p: center_crop_resize(
            load_rgb(p, min_side=256), 256, 224
        ),
    }


def _box_resize(image: Image.Image, resize: int, crop: int, gap: float | None) -> Image.Image:
    width, height = image.size
    scale = resize / min(width, height)
    new_w, new_h = int(width * scale), int(height * scale)
    left, top = round((new_w - crop) / 2), round((new_h - crop) / 2)
    box = (left / scale, top / scale, (left + crop) / scale, (top + crop) / scale)
    return image.resize((crop, crop), Image.Resampling.BILINEAR, box=box, reducing_gap=gap)


def forward_variants(backbone: str, cache: Path) -> dict[str, Callable[[], object]]:
    from torchvision.models import get_model

    from visrec.features import create_backbone, runtime
    from visrec.features.onnx_backend import onnx_model

    naive = get_model(backbone, weights=None).eval()
    naive.fc = torch.nn.Identity()
    body, prep = create_backbone(backbone, "none")
    ours = runtime.prepare_model(body, prep, torch.device("cpu"), "fp32")
    pixels = torch.randint(0, 255, (BATCH, 224, 224, 3), dtype=torch.uint8)
    floats = torch.randn(BATCH, 3, 224, 224)
    with torch.no_grad():
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(ours, pixels)))
    ort, _ = onnx_model(backbone, "none", "pooled", None, lambda: (ours, prep), cache_dir=cache)

    return {
        "eager NCHW fp32 (tutorial)": lambda: naive(floats),
        "channels_last + fused normalisation (visrec torch)": lambda: ours(pixels),
        "torch.jit.freeze + optimize_for_inference": lambda: frozen(pixels),
        "ONNX Runtime (visrec --backend onnx)": lambda: ort(pixels),
    }


def bf16_ms(backbone: str) -> float:
    """bf16 autocast, CPU ms per image (batch 2, once: without AMX it is emulated and slow)."""
    from visrec.features import create_backbone, runtime

    body, prep = create_backbone(backbone, "none")
    model = runtime.prepare_model(body, prep, torch.device("cpu"), "fp32")
    pixels = torch.randint(0, 255, (2, 224, 224, 3), dtype=torch.uint8)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        model(pixels[:1])
        start = time.process_time()
        model(pixels)
    return (time.process_time() - start) * 1000 / 2


def loop_variants(folder: Path, backbone: str) -> dict[str, Callable[[], tuple[float, float]]]:
    """Each returns (loop images/s, whole-call images/s)."""
    from extract_speed import naive, visrec_extract

    n = len(list(folder.iterdir()))

    def tutorial():
        start = time.perf_counter()
        loop = naive(folder, backbone, n)
        return loop, n / (time.perf_counter() - start)

    def ours(backend: str):
        whole, loop, _ = visrec_extract(folder, backbone, "fp32", 32, 0, backend)
        return loop, whole

    return {
        "tutorial loop (full decode, NCHW, batch 8)": tutorial,
        "visrec extract, backend torch (main)": lambda: ours("torch"),
        "visrec extract, backend onnx": lambda: ours("onnx"),
    }


def _alternate(variants: dict, rounds: int, measure: Callable) -> dict[str, list]:
    results: dict[str, list] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            results[name].append(measure(fn))
    return results


def _cpu_ms_per_image(paths: list[Path]) -> Callable:
    def measure(fn):
        start = time.process_time()
        for path in paths:
            fn(path)
        return (time.process_time() - start) * 1000 / len(paths)

    return measure


def _cpu_ms_per_forward(fn) -> float:
    with torch.inference_mode():
        start = time.process_time()
        fn()
    return (time.process_time() - start) * 1000 / BATCH


def _print_ms(title: str, results: dict[str, list]) -> None:
    base = statistics.median(next(iter(results.values())))
    print(f"\n{title}: CPU ms per image, median [rounds]; speed-up vs the first row")
    for name, values in results.items():
        med = statistics.median(values)
        shown = " ".join(f"{v:.1f}" for v in values)
        print(f"  {name:55s} {med:7.1f} ms  [{shown}]  {base / med:.2f}x")


def run_ab(folder: Path, backbone: str, rounds: int) -> None:
    torch.set_num_threads(1)
    paths = sorted(folder.iterdir())
    print(
        f"torch {torch.__version__}, 1 thread, {os.cpu_count()} cpus, {len(paths)} JPEGs "
        f"1600x1200, {backbone}, load average {os.getloadavg()[0]:.2f} at start"
    )
    _print_ms(
        "decode + resize + crop to 224",
        _alternate(decode_variants(paths), rounds, _cpu_ms_per_image(paths[:16])),
    )
    with tempfile.TemporaryDirectory() as cache:
        os.environ["VISREC_CACHE_DIR"] = cache
        forward = forward_variants(backbone, Path(cache))
        _alternate(forward, 1, _cpu_ms_per_forward)  # warm-up (oneDNN primitive caches)
        _print_ms("forward, batch 8", _alternate(forward, rounds, _cpu_ms_per_forward))
        del forward
        print(f"  {'bf16 autocast (measured once, batch 2; no AMX here)':55s} "
              f"{bf16_ms(backbone):7.1f} ms")  # fmt: skip
        loops = loop_variants(folder, backbone)
        results = _alternate(loops, rounds, lambda fn: fn())
    base_loop = statistics.median(r[0] for r in results[next(iter(results))])
    base_call = statistics.median(r[1] for r in results[next(iter(results))])
    print("\nwhole loops: images/s, median over rounds (loop only / whole call with model build)")
    for name, values in results.items():
        loop = statistics.median(v[0] for v in values)
        call = statistics.median(v[1] for v in values)
        print(
            f"  {name:45s} loop {loop:5.2f} img/s ({loop / base_loop:.2f}x)  "
            f"call {call:5.2f} img/s ({call / base_call:.2f}x)  "
            f"[{' '.join(f'{v[0]:.2f}' for v in values)}]"
        )
    print(f"load average at end {os.getloadavg()[0]:.2f}")

"""Feature-extraction throughput: the tutorial's naive loop vs visrec's extractor vs the pure forward pass.

    python benchmarks/extract_speed.py [--backbone resnet50] [--n-large 200] [--n-small 200]

Generates JPEGs of 1600x1200 and 400x300 (smooth random content plus fine noise, quality 90), then times
for each set:

(a) naive: the tutorial's way: full PIL decode, Resize(256) + CenterCrop(224) + ToTensor + Normalize,
    fp32, contiguous memory, batches of 8, one process;
(b) visrec: ``extract_features`` (draft-mode decoding in DataLoader workers, channels_last, the chosen
    precision, streaming to a memory-mapped store), wall time of the whole call;
(c) pure forward: the same prepared model on random uint8 batches (no decoding at all).

Prints images/s for each and the ratios b/a and b/c. Weights are random (``none``): speed does not
depend on them.

    python benchmarks/extract_speed.py --ab [--n-large 48] [--rounds 3] [--backbone resnet50]

One thread, in one process, on the same generated 1600x1200 JPEGs, alternating the variants round by
round (A B C A B C ...) so that a shared machine's drift hits all alike; prints per-image CPU ms of each
stage's candidates (decode, forward) and images/s of the whole loops, each as a median over rounds and
as a ratio to the tutorial's loop:

- decode: full decode + torchvision transforms (tutorial), full decode + one box resize, JPEG draft
  (1/4 scale) + box resize with and without ``reducing_gap`` (visrec: draft, ``reducing_gap=3``);
- forward (batch 8): eager NCHW (tutorial), channels_last with fused normalisation (visrec's torch
  path), ``torch.jit.freeze`` + ``optimize_for_inference``, bf16 autocast, ONNX Runtime;
- loops: the tutorial's loop vs ``extract_features(workers=0)`` with ``backend="torch"`` (main) and
  ``backend="onnx"`` (cache warmed first), loop rate (the report's images/s) and whole-call rate.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def make_images(folder: Path, n: int, size: tuple[int, int], seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        path = folder / f"img{i:04d}.jpg"
        if path.exists():
            continue
        coarse = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)
        noisy = np.asarray(image, dtype=np.int16) + rng.integers(-12, 12, (size[1], size[0], 3))
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, quality=90)
    return folder


def naive_transform():
    """The tutorial's preprocessing: full decode, Resize 256, CenterCrop 224, ImageNet normalisation."""
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )


def naive(folder: Path, backbone: str, limit: int) -> float:
    """The tutorial's loop: PIL full decode, torchvision transforms, fp32, batch 8."""
    from torchvision.models import get_model

    model = get_model(backbone, weights=None).eval()
    model.fc = torch.nn.Identity()
    prep = naive_transform()
    paths = sorted(folder.iterdir())[:limit]
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(paths), 8):
            batch = torch.stack([prep(Image.open(p).convert("RGB")) for p in paths[i : i + 8]])
            model(batch)
    return len(paths) / (time.perf_counter() - start)


def visrec_extract(
    folder: Path,
    backbone: str,
    precision: str,
    batch: int,
    workers: int | None,
    backend: str = "torch",
) -> tuple[float, float, str]:
    from visrec.features import extract_features

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        store = extract_features(
            folder,
            Path(tmp) / "store",
            backbone=backbone,
            weights="none",
            precision=precision,
            batch_size=batch,
            workers=workers,
            backend=backend,
            progress=False,
        )
        wall = time.perf_counter() - start
        return len(store) / wall, store.report["images_per_s"], store.meta["precision"]


def pure_forward(backbone: str, precision: str, batch: int, n: int) -> float:
    from visrec.devices import resolve_device
    from visrec.features import create_backbone, runtime

    body, prep = create_backbone(backbone, "none")
    device = resolve_device(None)
    model = runtime.prepare_model(body, prep, device, runtime.resolve_precision(precision, device))
    x = torch.randint(0, 255, (batch, 224, 224, 3), dtype=torch.uint8, device=device)
    with torch.inference_mode():
        model(x)  # warm-up
        start, done = time.perf_counter(), 0
        while done < n:
            model(x)
            done += batch
    return done / (time.perf_counter() - start)


def decode_cpu_ms(folder: Path, limit: int) -> tuple[float, float]:
    """CPU milliseconds per image (process time: robust to other load) to decode and crop to 224:
    the naive way (full decode, torchvision Resize/CenterCrop/ToTensor/Normalize) vs visrec's
    (draft-mode decode, one box resize, uint8)."""

    from visrec.features.images import center_crop_resize, load_rgb

    prep = naive_transform()
    paths = sorted(folder.iterdir())[:limit]
    torch.set_num_threads(1)
    start = time.process_time()
    for path in paths:
        prep(Image.open(path).convert("RGB"))
    naive_ms = (time.process_time() - start) * 1000 / len(paths)
    start = time.process_time()
    for path in paths:
        center_crop_resize(load_rgb(path, min_side=256), 256, 224)
    ours_ms = (time.process_time() - start) * 1000 / len(paths)
    torch.set_num_threads(os.cpu_count() or 1)
    return naive_ms, ours_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--n-large", type=int, default=200)
    parser.add_argument("--n-small", type=int, default=200)
    parser.add_argument(
        "--naive-limit",
        type=int,
        default=None,
        help="Time the naive loop on the first N images only (it is slow).",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument(
        "--decode-only",
        action="store_true",
        help="Only the per-image decoding CPU cost (fast; robust to other load).",
    )
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "visrec-bench")
    parser.add_argument(
        "--ab",
        action="store_true",
        help="1 thread, alternating A/B rounds of every candidate on 1600x1200 JPEGs (see above).",
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.ab:
        from extract_variants import run_ab

        folder = make_images(args.data / "1600x1200", args.n_large, (1600, 1200), seed=9)
        run_ab(folder, args.backbone, args.rounds)
        return
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}"
    )
    if args.decode_only:
        for name, n, size in (
            ("1600x1200", args.n_large, (1600, 1200)),
            ("400x300", args.n_small, (400, 300)),
        ):
            naive_ms, ours_ms = decode_cpu_ms(
                make_images(args.data / name, n, size, len(name)), min(n, 50)
            )
            print(f"{name}: decode+crop CPU ms/image: naive {naive_ms:.1f}, visrec {ours_ms:.1f}")
        return
    forward = pure_forward(args.backbone, args.precision, args.batch_size, 3 * args.batch_size)
    for name, n, size in (
        ("1600x1200", args.n_large, (1600, 1200)),
        ("400x300", args.n_small, (400, 300)),
    ):
        folder = make_images(args.data / name, n, size, seed=len(name))
        naive_ms, ours_ms = decode_cpu_ms(folder, min(n, 50))
        print(
            f"{name}: decode+crop CPU time per image: naive {naive_ms:.1f} ms, "
            f"visrec {ours_ms:.1f} ms ({naive_ms / ours_ms:.1f}x less)"
        )
        a = naive(folder, args.backbone, args.naive_limit or n)
        b, loop, precision = visrec_extract(
            folder, args.backbone, args.precision, args.batch_size, args.workers
        )
        print(
            f"{name} ({n} images, {args.backbone}, {precision}): naive {a:.1f} img/s | "
            f"visrec {b:.1f} img/s (loop {loop:.1f}) | pure forward {forward:.1f} img/s | "
            f"visrec/naive {b / a:.2f}x | visrec/forward {b / forward:.0%}"
        )


if __name__ == "__main__":
    main()

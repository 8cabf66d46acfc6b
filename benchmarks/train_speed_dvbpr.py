"""Section (e) of ``benchmarks/train_speed.py``: DVBPR's image path.

- image input at 224 px: decoding the JPEG at each use (as DVBPR's released code does, per triplet) vs
  reading rows of visrec's pixel cache (decoded once, not counted);
- images/s through CNN-F (paper widths: 5 conv + 3 fc, fc 4096, K = 100), forward + backward + Adam step,
  at 224 px (the paper) and at 64 px (the demo); on CUDA also fp32 and bf16 autocast.

Run: ``python benchmarks/train_speed.py --only dvbpr [--quick]``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

DVBPR_SIZES = ((224, 32), (64, 128))  # (image size, batch): the paper's resolution and the demo's


def _jpeg_folder(folder: Path, n: int, seed: int) -> Path:
    """``n`` photo-sized (500x375) JPEGs, for the decoding comparison."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        small = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(small).resize((500, 375)).save(folder / f"i{k}.jpg", quality=90)
    return folder


def input_rates(tmp: Path, seed: int, n: int = 256) -> tuple[float, float]:
    """Images/s at 224 px: JPEG decoded at each use vs rows of the pixel cache, batches of 32."""
    from visrec.features.images import center_crop_resize, load_rgb
    from visrec.features.pixel_cache import open_pixels

    folder = _jpeg_folder(tmp / "jpegs", n, seed)
    ids = [f"i{k}" for k in range(n)]
    began = time.perf_counter()
    for item_id in ids:
        center_crop_resize(load_rgb(folder / f"{item_id}.jpg", min_side=224), 224, 224)
    decode = n / (time.perf_counter() - began)
    cache = open_pixels(folder, ids, 224, tmp / "pixel-cache")
    rows = np.random.default_rng(seed).permutation(n)
    began = time.perf_counter()
    for lo in range(0, n, 32):
        torch.from_numpy(np.ascontiguousarray(cache.pixels[rows[lo : lo + 32]]))
    return decode, n / (time.perf_counter() - began)


def cnn_rate(size: int, batch: int, device: str, bf16: bool, steps: int) -> float:
    """Images/s through CNN-F, forward + backward + Adam step (one warm-up step not counted)."""
    from visrec.models.image_encoders import build_encoder

    torch.manual_seed(0)
    encoder = build_encoder(arch="cnnf", image_size=size, out_dim=100).to(device).train()
    optimizer = torch.optim.Adam(encoder.parameters(), lr=1e-4)
    pixels = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8, device=device)

    def step() -> None:
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            loss = encoder(pixels).float().square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    if device == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - began)


def section_dvbpr(bench) -> None:
    """``bench``: train_speed.Bench (``tmp``, ``args.seed``, ``args.quick``, ``report``)."""
    decode, cached = input_rates(bench.tmp, bench.args.seed)
    threads = torch.get_num_threads()
    print(f"(e) DVBPR, CNN-F (5 conv + 3 fc, fc 4096, K 100), {threads} torch threads")
    bench.report("(e) DVBPR image input, 224 px", decode, cached, "images/s", higher_is_better=True)
    runs = [("cpu", False)]
    if torch.cuda.is_available():
        runs += [("cuda", False), ("cuda", True)]
    for device, bf16 in runs:
        steps = (2 if bench.args.quick else 5) if device == "cpu" else 20
        for size, batch in DVBPR_SIZES:
            rate = cnn_rate(size, batch, device, bf16, steps)
            label = f"{device} {'bf16 autocast' if bf16 else 'fp32'}"
            print(
                f"(e) DVBPR CNN-F forward+backward, {size} px, batch {batch}, {label}: "
                f"{rate:,.1f} images/s",
                flush=True,
            )

"""The built-in demo dataset: procedurally drawn item images and users with visual tastes.

Every item has a palette, a shape family and a texture, drawn into a small image, so that visual similarity
is real and visible. Every user likes one palette and one shape; they consume items by a softmax over
``palette_weight * [palette matches] + shape_weight * [shape matches] + popularity_weight *
log(popularity)`` (4, 3 and 0.7 by default: taste dominates, so a visual model beats Pop), with
heavy-tailed activity (log-normal, median ~16 like the tutorial's Wikimedia data) and integer timestamps in
which some consecutive items share a timestamp (multi-item baskets). ``truth.json`` records each user's
generating taste for known-answer tests. Same options -> identical bytes.
"""

from __future__ import annotations

import io
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFilter

from visrec._io import atomic_dir, write_json
from visrec.data.demo_spec import DemoSpec
from visrec.errors import VisrecError

PALETTES = {
    "ember": [(196, 48, 43), (240, 140, 60), (255, 214, 120)],
    "ocean": [(18, 52, 120), (40, 130, 190), (160, 220, 240)],
    "forest": [(30, 80, 40), (90, 150, 60), (200, 220, 140)],
    "violet": [(80, 30, 110), (160, 80, 190), (230, 190, 240)],
    "mono": [(25, 25, 25), (120, 120, 120), (235, 235, 235)],
    "candy": [(240, 90, 150), (120, 220, 210), (250, 240, 150)],
}
SHAPES = ("circle", "square", "triangle", "stripes", "rings")
TEXTURES = ("plain", "noise", "grid")


def _item_attributes(spec: DemoSpec, rng: np.random.Generator) -> pd.DataFrame:
    palettes = list(PALETTES)
    n = spec.n_items
    palette = np.arange(n) % len(palettes)
    shape = (np.arange(n) // len(palettes)) % len(SHAPES)
    perm = rng.permutation(n)
    frame = pd.DataFrame(
        {
            "item_id": [f"i{k:04d}" for k in range(n)],
            "palette": np.asarray(palettes, dtype=object)[palette[perm]],
            "shape": np.asarray(SHAPES, dtype=object)[shape[perm]],
            "texture": np.asarray(TEXTURES, dtype=object)[rng.integers(0, len(TEXTURES), n)],
        }
    )
    # two "artists" per (palette, shape) cluster: CuratorNet's optional item group
    artist = rng.integers(0, 2, n)
    frame["group"] = [
        f"{p}-{s}-{a}" for p, s, a in zip(frame.palette, frame["shape"], artist, strict=True)
    ]
    return frame


def draw_item(
    palette: str, shape: str, texture: str, size: int, rng: np.random.Generator
) -> Image.Image:
    """Draw one item image: palette background gradient, a shape family, a texture."""
    colors = PALETTES[palette]
    bg, fg, accent = (colors[i] for i in rng.permutation(3))
    ramp = np.linspace(0.0, 1.0, size)[:, None, None]
    base = (
        (1 - ramp) * np.asarray(bg) + ramp * np.asarray(accent) * 0.6 + ramp * np.asarray(bg) * 0.4
    )
    img = Image.fromarray(np.repeat(base, size, axis=1).clip(0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    s = size
    cx, cy = rng.uniform(0.35, 0.65, 2) * s
    r = rng.uniform(0.18, 0.32) * s
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif shape == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    elif shape == "stripes":
        width = max(2, int(s / rng.integers(8, 14)))
        for x in range(0, s, 2 * width):
            draw.rectangle([x, 0, x + width - 1, s], fill=fg)
    else:  # rings
        for k in range(4, 0, -1):
            rk = r * k / 3
            draw.ellipse([cx - rk, cy - rk, cx + rk, cy + rk], outline=fg, width=max(2, s // 40))
    if texture == "grid":
        step = max(4, s // 10)
        for x in range(0, s, step):
            draw.line([(x, 0), (x, s)], fill=accent, width=1)
            draw.line([(0, x), (s, x)], fill=accent, width=1)
    arr = np.asarray(img, dtype=np.float32)
    if texture == "noise":
        arr = arr + rng.normal(0, 18, arr.shape)
    img = Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB")
    return img.filter(ImageFilter.SMOOTH) if texture == "plain" else img


def _users(spec: DemoSpec, items: pd.DataFrame, rng: np.random.Generator):
    palettes = list(PALETTES)
    taste_palette = rng.integers(0, len(palettes), spec.n_users)
    taste_shape = rng.integers(0, len(SHAPES), spec.n_users)
    popularity = rng.pareto(1.5, spec.n_items) + 1.0
    item_palette = items["palette"].map({p: k for k, p in enumerate(palettes)}).to_numpy()
    item_shape = items["shape"].map({s: k for k, s in enumerate(SHAPES)}).to_numpy()
    activity = np.exp(rng.normal(np.log(spec.median_activity), 0.8, spec.n_users))
    activity = np.clip(np.round(activity), 3, spec.n_items // 2).astype(int)
    rows = []
    for u in range(spec.n_users):
        logits = (
            spec.palette_weight * (item_palette == taste_palette[u])
            + spec.shape_weight * (item_shape == taste_shape[u])
            + spec.popularity_weight * np.log(popularity)
        )
        p = np.exp(logits - logits.max())
        chosen = rng.choice(spec.n_items, size=activity[u], replace=False, p=p / p.sum())
        t = int(rng.integers(880_000_000, 890_000_000))
        for k, item in enumerate(chosen):
            if k > 0 and rng.random() >= spec.basket_prob:
                t += int(rng.integers(60, 86_400 * 7))
            rows.append((f"u{u:04d}", items["item_id"].iat[item], t))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    truth = {
        f"u{u:04d}": {"palette": palettes[taste_palette[u]], "shape": SHAPES[taste_shape[u]]}
        for u in range(spec.n_users)
    }
    return frame, truth


def generate_demo(
    out_dir: str | Path, spec: DemoSpec | None = None, *, force: bool = False
) -> Path:
    """Write the demo dataset folder (interactions.csv, items.csv, images/, truth.json, dataset.json).

    Refuses to replace an existing non-empty folder unless ``force``; the folder is written atomically
    (a failed run leaves any previous one untouched).
    """
    spec = spec or DemoSpec()
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise VisrecError(f"{out_dir} exists and is not empty; pass --force to replace it")
    rng = np.random.default_rng(spec.seed)
    items = _item_attributes(spec, rng)
    interactions, user_truth = _users(spec, items, rng)
    with atomic_dir(out_dir) as tmp:
        (tmp / "images").mkdir()
        for row in items.itertuples(index=False):
            img = draw_item(
                row.palette,
                row.shape,
                row.texture,
                spec.image_size,
                np.random.default_rng([spec.seed, int(row.item_id[1:])]),
            )
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=90, optimize=False)
            (tmp / "images" / f"{row.item_id}.jpg").write_bytes(buf.getvalue())
        interactions.to_csv(tmp / "interactions.csv", index=False)
        items.to_csv(tmp / "items.csv", index=False)
        write_json(
            tmp / "truth.json",
            {
                "spec": asdict(spec),
                "users": user_truth,
                "items": {
                    r.item_id: {"palette": r.palette, "shape": r.shape, "texture": r.texture}
                    for r in items.itertuples(index=False)
                },
            },
        )
        write_json(
            tmp / "dataset.json",
            {
                "name": "visrec-demo",
                "interactions": "interactions.csv",
                "items": "items.csv",
                "images": "images",
                "licence": "CC0 (generated by visrec)",
                "description": "Synthetic users with palette/shape tastes over procedurally drawn images.",
            },
        )
    return out_dir

"""A PNG contact sheet of one user's recommendations, like the figures of the VisRec tutorial notebooks.

Three sections, one thumbnail per item with its id underneath:

1. ``consumed (whole profile, last N)``: the user's most recent items, oldest first, from everything the
   user consumed (train, then the validation and test baskets; the latest basket is framed green);
2. ``top-k recommendations``: by default without any consumed item (serving's definition,
   :attr:`visrec.data.Dataset.consumed`); with ``exclude_consumed=False`` (``--show-consumed``) consumed
   items stay, framed: green for a held-out (test) item, red for any other consumed item, so a model that
   only re-ranks the profile shows up red;
3. ``ground truth``: the held-out test items.

PIL only, so it works without matplotlib; written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from visrec._io import atomic_path
from visrec.data.dataset import Dataset
from visrec.data.images import ImageReadError, load_rgb
from visrec.models.base import Recommender
from visrec.serving.topk import recommend_users

HIT = (22, 163, 74)
CONSUMED = (220, 38, 38)
BACKGROUND = (255, 255, 255)
PLACEHOLDER = (215, 215, 215)
TEXT = (20, 20, 20)


@dataclass(frozen=True)
class GridSection:
    """One titled section: item ids and, per item, ``"hit"``, ``"consumed"`` or ``None`` (no frame)."""

    title: str
    item_ids: list[str]
    marks: list[str | None]


@dataclass(frozen=True)
class GridLayout:
    """Pixel geometry of the sheet. Every cell is ``thumb`` wide plus ``pad``; a frame is ``frame`` wide."""

    thumb: int = 96
    columns: int = 10
    pad: int = 8
    frame: int = 4
    label_h: int = 14
    title_h: int = 22

    @property
    def cell_w(self) -> int:
        return self.thumb + 2 * self.frame + self.pad

    @property
    def cell_h(self) -> int:
        return self.thumb + 2 * self.frame + self.label_h + self.pad

    def lines(self, n_items: int) -> int:
        return max(1, -(-n_items // self.columns))

    def size(self, sections: list[GridSection]) -> tuple[int, int]:
        """(width, height) of the sheet for these sections."""
        width = self.pad + self.columns * self.cell_w
        height = self.pad + sum(
            self.title_h + self.lines(len(s.item_ids)) * self.cell_h for s in sections
        )
        return width, height

    def cell_origin(self, top: int, position: int) -> tuple[int, int]:
        """Top-left corner of the frame box of item ``position`` in a section whose cells start at ``top``."""
        row, col = divmod(position, self.columns)
        return self.pad + col * self.cell_w, top + row * self.cell_h


def user_sections(
    model: Recommender,
    dataset: Dataset,
    user_idx: int,
    k: int = 20,
    *,
    last: int | None = None,
    exclude_consumed: bool = True,
) -> list[GridSection]:
    """The three sections of the tutorial's figure for one user (index ``user_idx``)."""
    ids = dataset.items.ids
    history = dataset.consumed_history(user_idx)
    shown = history[-(last or k) :]
    truth = dataset.test[user_idx].indices
    rec = recommend_users(model, dataset, [user_idx], k, exclude_consumed=exclude_consumed)[0]
    truth_set = set(truth.tolist())
    marks = [
        "hit" if int(i) in truth_set else "consumed" if flag else None
        for i, flag in zip(rec.items, rec.consumed, strict=True)
    ]
    what = "consumed excluded" if exclude_consumed else "consumed shown"
    return [
        GridSection(
            f"consumed (whole profile, last {len(shown)} of {len(history)})",
            _ids(ids, shown),
            ["hit" if int(i) in truth_set else None for i in shown],
        ),
        GridSection(f"top-{k} recommendations ({what})", _ids(ids, rec.items), marks),
        GridSection(f"ground truth ({len(truth)} held-out)", _ids(ids, truth), [None] * len(truth)),
    ]


def _ids(ids: np.ndarray, idx: np.ndarray) -> list[str]:
    return [str(ids[int(i)]) for i in idx]


def draw_grid(
    sections: list[GridSection],
    image_paths: dict[str, Path],
    layout: GridLayout = GridLayout(),
    *,
    title: str | None = None,
) -> Image.Image:
    """Render ``sections``; an item without a readable image gets a grey placeholder."""
    width, height = layout.size(sections)
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=layout.label_h - 3)
    bold = ImageFont.load_default(size=layout.title_h - 8)
    top = layout.pad
    for n, section in enumerate(sections):
        heading = f"{title}: {section.title}" if title and n == 0 else section.title
        draw.text((layout.pad, top + 3), heading, fill=TEXT, font=bold)
        top += layout.title_h
        for pos, (item_id, mark) in enumerate(zip(section.item_ids, section.marks, strict=True)):
            x, y = layout.cell_origin(top, pos)
            if mark is not None:
                colour = HIT if mark == "hit" else CONSUMED
                box = (
                    x,
                    y,
                    x + layout.thumb + 2 * layout.frame - 1,
                    y + layout.thumb + 2 * layout.frame - 1,
                )
                draw.rectangle(box, fill=colour)
            inner = (x + layout.frame, y + layout.frame)
            try:
                path = image_paths[item_id]
                img = load_rgb(path, max_side=layout.thumb * 2)
            except (KeyError, ImageReadError):
                draw.rectangle(
                    (*inner, inner[0] + layout.thumb - 1, inner[1] + layout.thumb - 1),
                    fill=PLACEHOLDER,
                )
            else:
                sheet.paste(_fit(img, layout.thumb), inner)
            label = _clip(draw, item_id, font, layout.thumb + 2 * layout.frame)
            draw.text((x, y + layout.thumb + 2 * layout.frame + 1), label, fill=TEXT, font=font)
        top += layout.lines(len(section.item_ids)) * layout.cell_h
    return sheet


def _fit(img: Image.Image, side: int) -> Image.Image:
    """Scale (up or down) and letterbox ``img`` into a ``side`` x ``side`` white square (aspect kept)."""
    scale = side / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    img = img.resize(size, Image.Resampling.BICUBIC)
    square = Image.new("RGB", (side, side), BACKGROUND)
    square.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    return square


def _clip(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def write_grid(image: Image.Image, out: str | Path) -> Path:
    """Save ``image`` as PNG at ``out``, atomically (a crash never leaves a half-written file)."""
    out = Path(out)
    with atomic_path(out, suffix=".png") as tmp:
        image.save(tmp, format="PNG")
    return out

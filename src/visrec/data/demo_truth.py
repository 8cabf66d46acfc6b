"""Does a model recommend what the demo's users like? The demo records each user's generating taste (a
palette and a shape, ``truth.json``); this scores a top-k against it.

For every user, the share of the top-k (consumed items excluded) in the user's palette, in the user's shape,
and in both; averaged over users. ``chance`` is the same share for the whole catalogue (what a random
top-k scores in expectation), so a visual model should be far above it, and above Pop.
:func:`visrec.serving.taste.taste_report` applies this to finished runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from visrec._io import read_json
from visrec.errors import DataError

ASPECTS = ("palette", "shape", "both")


def read_truth(data_dir: str | Path) -> dict:
    """The demo's truth.json (users' tastes and items' attributes); a clear error if absent."""
    path = Path(data_dir) / "truth.json"
    if not path.is_file():
        raise DataError("no truth.json: taste checks need the demo dataset", path=path.parent)
    truth = read_json(path)
    if not isinstance(truth, dict) or not {"users", "items"} <= set(truth):
        raise DataError("expected an object with 'users' and 'items'", path=path)
    return truth


def _matches(taste: Mapping, item: Mapping) -> dict[str, bool]:
    palette, shape = item["palette"] == taste["palette"], item["shape"] == taste["shape"]
    return {"palette": palette, "shape": shape, "both": palette and shape}


def taste_shares(truth: Mapping, top: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Mean over the users in ``top`` (user id -> recommended item ids) of the share of their items in
    the user's palette, shape and both. Users with an empty list are skipped."""
    items, users = truth["items"], truth["users"]
    sums = dict.fromkeys(ASPECTS, 0.0)
    n = 0
    for user, recommended in top.items():
        if not recommended:
            continue
        flags = [_matches(users[user], items[i]) for i in recommended]
        for aspect in ASPECTS:
            sums[aspect] += float(np.mean([f[aspect] for f in flags]))
        n += 1
    return {a: sums[a] / n if n else float("nan") for a in ASPECTS}


def chance_shares(truth: Mapping, users: Iterable[str]) -> dict[str, float]:
    """What a top-k drawn uniformly from the catalogue scores in expectation."""
    catalogue = list(truth["items"])
    return taste_shares(truth, {u: catalogue for u in users})


def format_taste(rows: list[dict], k: int = 10) -> str:
    """A Markdown table of :func:`taste_report`'s rows."""
    lines = [
        f"| model | top-{k} in the user's palette | in the user's shape | in both |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {r['palette']:.1%} | {r['shape']:.1%} | {r['both']:.1%} |" for r in rows
    ]
    return "\n".join(lines)

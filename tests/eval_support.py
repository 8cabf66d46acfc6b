"""Small synthetic datasets and straightforward per-user reference metrics for the evaluation tests.

The references are written from DESIGN.md's formulas, one user at a time, with plain Python loops, so they
share no code with the batched engine.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from visrec.data import Dataset, Interactions


def frame_dataset(rows: list[tuple[str, str, int]], **kw) -> Dataset:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return Dataset.build(Interactions.from_frame(frame), **kw)


def random_dataset(
    n_users: int = 30, n_items: int = 40, seed: int = 0, item_prefix: str = "i"
) -> Dataset:
    """Users with 3-20 events over a few timestamps, so baskets of several items are common."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        count = int(rng.integers(3, min(21, n_items + 1)))
        items = rng.choice(n_items, size=count, replace=False)
        times = rng.integers(0, 5, size=count)
        rows += [
            (f"u{u:03d}", f"{item_prefix}{i:03d}", int(t))
            for i, t in zip(items, times, strict=True)
        ]
    return frame_dataset(rows)


def history(ds: Dataset, user: int, split: str) -> list[int]:
    items = list(ds.profile(user))
    if split == "test":
        items += list(ds.validation[user].indices)
    return items


def _dcg(ranks, k):
    return sum(1.0 / math.log2(r + 2) for r in ranks if r < k)


def reference_full(scores: np.ndarray, ds: Dataset, user: int, split: str, ks) -> dict | None:
    """DESIGN.md's full-ranking metrics for one user (None when it has no negative candidate)."""
    consumed = set(history(ds, user, split))
    truth = list(ds.targets(split)[user].indices)
    cands = [i for i in range(ds.n_items) if i not in consumed]
    negs = [i for i in cands if i not in truth]
    if not negs:
        return None
    s = scores[user]
    ranks = []
    for t in truth:
        higher = sum(1 for c in cands if s[c] > s[t])
        tied = sum(1 for c in cands if c != t and s[c] == s[t])
        ranks.append(higher + 0.5 * tied)
    pairs = [1.0 if s[t] > s[n] else 0.5 if s[t] == s[n] else 0.0 for t in truth for n in negs]
    out = {"AUC": sum(pairs) / len(pairs), "RR": 1.0 / (min(ranks) + 1)}
    for k in ks:
        hits = sum(1 for r in ranks if r < k)
        ideal = sum(1.0 / math.log2(j + 2) for j in range(min(len(truth), k)))
        out[f"R@{k}"] = hits / len(truth)
        out[f"P@{k}"] = hits / k
        out[f"nDCG@{k}"] = _dcg(ranks, k) / ideal
    return out


def reference_tutorial(scores: np.ndarray, ds: Dataset, user: int, split: str, ks, window=10):
    """The tutorial's per-user loop: argsort all items, correct positions for the profile window."""
    profile = set(history(ds, user, split)[-window:]) if window else set()
    truth = set(ds.targets(split)[user].indices)
    order = np.argsort(-scores[user], kind="stable")
    positions, seen_profile = [], 0
    for pos, item in enumerate(order):
        if item in profile:
            seen_profile += 1
        elif item in truth:
            positions.append(pos - seen_profile)
    n, big_n = len(positions), ds.n_items
    auc = sum(((big_n - (p + 1)) - (n - i)) / (big_n - n) / n for i, p in enumerate(positions, 1))
    out = {"AUC": auc, "RR": 1.0 / (positions[0] + 1)}
    for k in ks:
        hits = [p for p in positions if p < k]
        ideal = sum(1.0 / math.log2(j + 1) for j in range(1, len(hits) + 1))
        out[f"R@{k}"] = len(hits) / n
        out[f"P@{k}"] = len(hits) / k
        out[f"nDCG@{k}"] = _dcg(hits, k) / ideal if hits else 0.0
    return out

"""CuratorNet's guided triplet sampling (Messina et al., "CuratorNet", 2020, section 3.3).

Six strategies, each producing (profile, positive, negatives) rows (``profile`` left-padded with -1, most
recent item last; ``users`` is -1 for the fake one-item profiles of strategies 2 and 4):

1. real profile (the user's last ``max_profile`` train items): a profile item above a non-profile item;
2. fake one-item profile [i] (i a train item): i above any other item;
3. real profile: an item the user never consumed that shares a (group, visual cluster) cell with a profile
   item, above an item whose group and cluster the user never consumed;
4. fake one-item profile [i]: another item of i's group above an item of another group;
5. next basket: given the earlier baskets, an item of the next basket above an item from a never-consumed
   group and cluster;
6. hidden item: given the first k baskets with one item of basket k hidden, the hidden item above an item
   from a never-consumed group and cluster.

Negatives come from the positive's own visual cluster with probability ``fine_grained`` (0.6 in the
paper), else from a uniformly random cluster; a strategy's own constraint wins (strategy 3's positive
shares its cluster with the profile, so its negatives always come from another cluster). A visually
identical (cosine 1) pair is never a (positive, negative) pair. Without item groups, strategies 3-6 use the
visual clusters alone. Rows whose constraints cannot be met are redrawn; a strategy that yields no row at all
gives its share to strategy 1 (logged).

Positives are always items with train interactions; real-profile rows never take a positive from the
user's validation or test targets (those pairs are excluded, never learnt), and their negatives are never
among the user's train positives. A cold-item split's new items are never drawn at all (they do not exist
at training time; before, a negative could be one, which taught the item tower to rank new items down).
The clusters, groups and shared draws live in :mod:`visrec.sampling.guided`
(:func:`~visrec.sampling.guided.build_guided_index`).
"""

from __future__ import annotations

import logging

import numpy as np

from visrec.data.dataset import Dataset
from visrec.errors import DataError
from visrec.sampling.guided import ROUNDS, GuidedIndex, SamplingContext
from visrec.sampling.triplets import last_profiles, profile_windows

log = logging.getLogger(__name__)
N_STRATEGIES = 6


def _rows(users, profile, pos, neg, ok) -> tuple[dict[str, np.ndarray], np.ndarray]:
    return {"users": users, "profile": profile, "pos": pos, "neg": neg}, ok


class _Cells:
    """Train items grouped by a cell label (group, cluster or (group, cluster)); draws random members."""

    def __init__(self, labels: np.ndarray, universe: np.ndarray):
        keep = labels[universe] >= 0
        items = universe[keep]
        order = np.argsort(labels[items], kind="stable")
        self.items, self.sorted = items[order], labels[items][order]

    def size(self, cells: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.sorted, cells, "right") - np.searchsorted(
            self.sorted, cells, "left"
        )

    def draw(self, cells: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        lo = np.searchsorted(self.sorted, cells, "left")
        size = self.size(cells)
        pick = np.minimum(
            lo + (rng.random(len(cells)) * size).astype(np.int64), len(self.items) - 1
        )
        return np.where((size > 0) & (cells >= 0), self.items[pick], -1)


def _cell_labels(ix: GuidedIndex, with_cluster: bool) -> np.ndarray:
    if ix.groups is None:
        return ix.clusters
    if not with_cluster:
        return ix.groups
    return np.where(ix.groups >= 0, ix.groups * ix.n_clusters + ix.clusters, -1)


def _s1_real_profile(ctx: SamplingContext, m: int):
    eligible = ctx.eligible_users()
    if not len(eligible):
        return None
    users = ctx.rng.choice(eligible, m)
    profile = last_profiles(ctx.ds, users, ctx.L)
    pos = ctx.pick_from_profile(profile)
    neg, ok = ctx.negatives(pos, bad=lambda r, j: ctx.consumed(users[r], j))
    return _rows(users, profile, pos, neg, ok)


def _s2_one_item(ctx: SamplingContext, m: int):
    items = ctx.train_entries(m)
    neg, ok = ctx.negatives(items)
    return _rows(np.full(m, -1, dtype=np.int64), ctx.one_item(items), items, neg, ok)


def _s3_shared_cell(ctx: SamplingContext, m: int):
    eligible = ctx.eligible_users(novel=True)
    if not len(eligible):
        return None
    labels = _cell_labels(ctx.ix, with_cluster=True)
    cells = _Cells(labels, np.flatnonzero(ctx.in_train))
    users = ctx.rng.choice(eligible, m)
    profile = last_profiles(ctx.ds, users, ctx.L)
    pos = np.full(m, -1, dtype=np.int64)
    todo = np.arange(m)
    for _ in range(ROUNDS // 5):
        if not len(todo):
            break
        j = cells.draw(labels[ctx.pick_from_profile(profile[todo])], ctx.rng)
        u = users[todo]
        wrong = (j < 0) | ctx.consumed(u, np.maximum(j, 0)) | ctx.heldout(u, np.maximum(j, 0))
        pos[todo[~wrong]] = j[~wrong]
        todo = todo[wrong]
    keep = pos >= 0
    users, profile, pos = users[keep], profile[keep], pos[keep]
    neg, ok = ctx.negatives(pos, *reversed(ctx.novel_negative(users)))
    return _rows(users, profile, pos, neg, ok)


def _s4_same_group(ctx: SamplingContext, m: int):
    labels = _cell_labels(ctx.ix, with_cluster=False)
    cells = _Cells(labels, np.flatnonzero(ctx.in_train))
    items = ctx.train_entries(m)
    items = items[cells.size(labels[items]) >= 2]
    if not len(items):
        return None
    pos = np.full(len(items), -1, dtype=np.int64)
    todo = np.arange(len(items))
    for _ in range(ROUNDS):
        if not len(todo):
            break
        j = cells.draw(labels[items[todo]], ctx.rng)
        wrong = j == items[todo]
        pos[todo[~wrong]] = j[~wrong]
        todo = todo[wrong]
    keep = pos >= 0
    items, pos = items[keep], pos[keep]
    if ctx.ix.groups is None:
        neg, ok = ctx.negatives(pos, cluster_bad=lambda r, c: c == ctx.ix.clusters[pos[r]])
    else:
        neg, ok = ctx.negatives(pos, bad=lambda r, j: labels[j] == labels[pos[r]])
    return _rows(np.full(len(pos), -1, dtype=np.int64), ctx.one_item(items), pos, neg, ok)


def _novel_rows(ctx: SamplingContext, q: np.ndarray, profile: np.ndarray):
    users = ctx.owner[q]
    pos = ctx.items[q]
    neg, ok = ctx.negatives(pos, *reversed(ctx.novel_negative(users)))
    return _rows(users, profile, pos, neg, ok)


def _s5_next_basket(ctx: SamplingContext, m: int):
    start = ctx.indptr[ctx.owner]
    eligible = np.flatnonzero((ctx.basket_start > start) & ctx.has_novel[ctx.owner])
    if not len(eligible):
        return None
    q = ctx.rng.choice(eligible, m)
    profile = profile_windows(ctx.ds, ctx.basket_start[q], ctx.owner[q], ctx.L)
    return _novel_rows(ctx, q, profile)


def _s6_hidden_item(ctx: SamplingContext, m: int):
    start = ctx.indptr[ctx.owner]
    eligible = np.flatnonzero((ctx.basket_end - start >= 2) & ctx.has_novel[ctx.owner])
    if not len(eligible):
        return None
    q = ctx.rng.choice(eligible, m)
    idx = ctx.basket_end[q, None] - (ctx.L + 1) + np.arange(ctx.L + 1)[None, :]
    valid = (idx >= start[q, None]) & (idx != q[:, None])
    order = np.argsort(valid, axis=1, kind="stable")
    idx, valid = np.take_along_axis(idx, order, 1), np.take_along_axis(valid, order, 1)
    profile = np.where(valid, ctx.items[np.clip(idx, 0, None)], -1)[:, 1:]
    return _novel_rows(ctx, q, profile)


STRATEGIES = (
    _s1_real_profile,
    _s2_one_item,
    _s3_shared_cell,
    _s4_same_group,
    _s5_next_basket,
    _s6_hidden_item,
)


def _collect(strategy, ctx: SamplingContext, n: int) -> dict[str, np.ndarray] | None:
    """``n`` valid rows of one strategy (redrawing rejected rows); None when it yields none at all."""
    parts, have = [], 0
    for _ in range(10):
        drawn = strategy(ctx, int((n - have) * 1.25) + 8)
        if drawn is None:
            return None
        rows, ok = drawn
        parts.append({k: v[ok] for k, v in rows.items()})
        have += int(ok.sum())
        if have >= n:
            break
    if have == 0:
        return None
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    take = np.arange(n) if have >= n else ctx.rng.integers(0, have, n)
    return {k: v[take] for k, v in out.items()}


def strategy_counts(n: int, shares) -> np.ndarray:
    """Split ``n`` rows over the strategies by ``shares`` (largest remainder, deterministic)."""
    shares = np.asarray(shares, dtype=np.float64)
    if shares.shape != (N_STRATEGIES,) or (shares < 0).any() or shares.sum() <= 0:
        raise DataError(f"strategy shares must be {N_STRATEGIES} non-negative numbers, not all 0")
    exact = n * shares / shares.sum()
    counts = np.floor(exact).astype(np.int64)
    counts[np.argsort(counts - exact, kind="stable")[: n - counts.sum()]] += 1
    return counts


def guided_triplets(
    dataset: Dataset,
    n: int,
    rng: np.random.Generator,
    index: GuidedIndex,
    *,
    shares=(1.0,) * N_STRATEGIES,
    n_negatives: int = 1,
    max_profile: int = 10,
    fine_grained: float = 0.6,
    return_strategy: bool = False,
) -> dict[str, np.ndarray]:
    """``n`` (users, profile, pos, neg) rows from CuratorNet's six strategies in ``shares``, shuffled.

    ``return_strategy`` adds a ``strategy`` column (1-6) for inspection."""
    ctx = SamplingContext(dataset, index, rng, n_negatives, max_profile, fine_grained)
    parts, moved = [], 0
    for s, count in enumerate(strategy_counts(n, shares)):
        got = _collect(STRATEGIES[s], ctx, int(count)) if count else None
        if count and got is None:
            log.warning(
                "guided sampling: strategy %d found no valid row; strategy 1 takes its share", s + 1
            )
            moved += int(count)
        elif got is not None:
            parts.append({**got, "strategy": np.full(int(count), s + 1, dtype=np.int8)})
    if moved:
        got = _collect(STRATEGIES[0], ctx, moved)
        if got is None:
            raise DataError("guided sampling: no user has an item left to use as a negative")
        parts.append({**got, "strategy": np.ones(moved, dtype=np.int8)})
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    perm = rng.permutation(n)
    out = {k: v[perm] for k, v in out.items()}
    if not return_strategy:
        del out["strategy"]
    return out

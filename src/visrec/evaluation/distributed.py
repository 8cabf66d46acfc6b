"""Evaluation under ``torchrun``: users split across ranks, per-user results gathered and merged.

Each rank evaluates a contiguous share (:func:`visrec.distributed.shard`) of the users that have targets
in the split, with the ordinary :func:`~visrec.evaluation.engine.evaluate_modes`; the per-rank
:class:`~visrec.evaluation.results.EvalResult` objects are gathered on every rank and merged with
:meth:`EvalResult.concat`. Per-user metrics depend only on the user's scores, targets and seeded
negatives (``candidates.user_rng(seed, user)``), and the means are exactly rounded sums over the
user-sorted table, so the merged result equals a one-process run. Sharding makes full-ranking
evaluation affordable on large catalogues instead of falling back to sampled metrics (Krichene and
Rendle, "On Sampled Metrics for Item Recommendation", KDD 2020).
"""

from __future__ import annotations

import numpy as np

from visrec.data import Dataset
from visrec.distributed import gather_objects, shard
from visrec.evaluation.engine import EvalSettings, Scorer, evaluate_modes, mode_tuple
from visrec.evaluation.results import EvalResult


def evaluate_sharded(
    scorer: Scorer, dataset: Dataset, split: str, ctx, *, mode: str = "full", **kwargs
) -> EvalResult:
    """The one-mode case of :func:`evaluate_sharded_modes`."""
    return evaluate_sharded_modes(scorer, dataset, split, ctx, modes=(mode,), **kwargs)[mode]


def evaluate_sharded_modes(
    scorer: Scorer,
    dataset: Dataset,
    split: str,
    ctx,
    *,
    modes,
    settings: EvalSettings | None = None,
    **options,
) -> dict[str, EvalResult]:
    """:func:`evaluate_modes` over this rank's share of the users (``ctx``: a DistContext), merged on
    every rank per mode. ``settings``/``options`` must be the same on every rank; ``users`` is not allowed
    (the shard is chosen here)."""
    if "users" in options:
        raise TypeError("evaluate_sharded chooses the users of each rank; do not pass users=")
    modes = mode_tuple(modes)
    if not ctx.active:
        return evaluate_modes(
            scorer, dataset, split=split, modes=modes, settings=settings, **options
        )
    with_targets = np.flatnonzero(np.diff(dataset.targets(split).indptr) > 0)
    users = shard(with_targets, ctx)
    parts = evaluate_modes(
        scorer, dataset, split=split, modes=modes, settings=settings, users=users, **options
    )
    gathered = gather_objects(parts, ctx)
    merged = {}
    for mode in parts:
        result = EvalResult.concat([part[mode] for part in gathered])
        # one process lists skipped users in user-index order
        result.skipped = sorted(result.skipped, key=dataset.users.index)
        merged[mode] = result
    return merged

"""Entry points: :func:`evaluate_modes` / :func:`evaluate` (any split, explicit) and
:func:`validation_score` (training code); every setting travels in one :class:`EvalSettings`.

Five modes (docs/evaluation.md has the definitions side by side and a worked example):

- ``full``: rank every item the user has not consumed (DESIGN.md "Evaluation protocol");
- ``sampled``: rank the truth items among ``n_negatives`` random unconsumed items per user (as the DVBPR
  paper, Kang et al., ICDM 2017); every key is labelled ``[sampled@N]``;
- ``tutorial``: the IUI 2021 VisRec notebooks' definitions (last-10 profile window, inventory-normalised AUC,
  hits-normalised nDCG), to set numbers beside the published table;
- ``cold`` (cold-item splits only): rank each user's new items among all new items of the split, every
  candidate unseen in training (the one-of-a-kind protocol of CuratorNet, Messina et al. 2020); keys are
  labelled ``[cold]``;
- ``mixed`` (cold-item splits only): rank them among all unconsumed items, warm and new together (the
  candidates of ``full``); keys are labelled ``[mixed]``.

Which metrics are computed, and in which modes, is data (:mod:`visrec.evaluation.registry`).

Users are scored in blocks of ``block_size`` with one scorer call each (by default as many users as make
about ``AUTO_BLOCK_SCORES`` scores); ranks are exact integer counts, so every per-user value is identical for
any block size and on CPU or CUDA.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from visrec._lazy import loaded
from visrec.data import Dataset
from visrec.errors import ConfigError
from visrec.evaluation import candidates as cand
from visrec.evaluation import kernels
from visrec.evaluation import lists as lst
from visrec.evaluation import registry as reg
from visrec.evaluation.ranking import (
    BlockRanks,
    beside,
    fused_counts,
    gather_padded,
    has_nan,
    host,
    on_device,
    rank_block,
    ranks_from_counts,
    row_counts,
)
from visrec.evaluation.results import EvalResult, build_table, means_of, metric_key
from visrec.evaluation.scoring import Scorer, check_finite, matrix_scorer, score_block
from visrec.evaluation.settings import (
    AUTO_BLOCK_SCORES,
    COLD_MODES,
    MODES,
    SPLITS,
    EvalSettings,
    auto_block_size,
    check_request,
    mode_tuple,
    settings_of,
)

log = logging.getLogger(__name__)

__all__ = [
    "AUTO_BLOCK_SCORES",
    "COLD_MODES",
    "MODES",
    "SPLITS",
    "EvalSettings",
    "Scorer",
    "auto_block_size",
    "evaluate",
    "evaluate_modes",
    "matrix_scorer",
    "mode_tuple",
    "validation_score",
    "selection_mode",
]


def evaluate(
    scorer: Scorer,
    dataset: Dataset,
    *,
    split: str,
    mode: str = "full",
    settings: EvalSettings | None = None,
    users: np.ndarray | None = None,
    **options,
) -> EvalResult:
    """Evaluate ``scorer`` on the ``split`` targets of ``dataset`` in one mode (see
    :func:`evaluate_modes`, of which it is the one-mode case)."""
    return evaluate_modes(
        scorer, dataset, split=split, modes=(mode,), settings=settings, users=users, **options
    )[mode]


def evaluate_modes(
    scorer: Scorer,
    dataset: Dataset,
    *,
    split: str,
    modes: str | Iterable[str] = ("full",),
    settings: EvalSettings | None = None,
    users: np.ndarray | None = None,
    **options,
) -> dict[str, EvalResult]:
    """Evaluate ``scorer`` on the ``split`` targets of ``dataset`` in each mode: ``{mode: EvalResult}``.

    ``scorer(user_idx)`` takes a CPU ``LongTensor`` of user indices ``(B,)`` and returns scores
    ``(B, n_items)``, higher is better; NaN scores raise :class:`VisrecError`, ``-inf`` is a valid lowest
    score. ``split`` ('test' or 'validation') has no default on purpose. ``users`` restricts evaluation to
    those user indices (e.g. one rank's shard); users without targets in the split are not counted.
    ``settings`` (an :class:`EvalSettings`) holds everything else; keyword ``options`` (``ks=``,
    ``block_size=``, ...) override single settings. Each block of users is scored once for all modes;
    ``full``, ``mixed`` and ``tutorial`` also share the pass that counts the scores above and equal to each
    truth item. Every result is identical to a separate one-mode evaluation.
    """
    settings = settings_of(settings, options)
    run = _Pass.build(dataset, split, mode_tuple(modes), settings, users)
    if set(run.modes) & {"full", "mixed", "tutorial"}:  # whole-row counts: the kernel may pay off
        kernels.expect(int(np.diff(run.targets.indptr)[run.users].sum()) * dataset.n_items)
    for start in range(0, len(run.users), run.block_size):
        block = run.users[start : start + run.block_size]
        scores = score_block(scorer, block, dataset, settings.device)
        ranked = _rank_modes(run, scores, block)
        lists = _top_lists(run, scores, block)
        for mode, ranks in ranked.items():
            ok = _has_negatives(ranks, mode, dataset.n_items)
            run.skipped[mode].append(block[~ok])
            _collect(run, mode, block[ok], ranks, ok, lists.get(mode))
    return {mode: _result(run, mode) for mode in run.modes}


@dataclass(eq=False)
class _Pass:
    """One evaluation in progress: its inputs, settings and the per-mode columns collected so far."""

    dataset: Dataset
    split: str
    modes: tuple[str, ...]
    settings: EvalSettings
    metrics: tuple[reg.Metric, ...]
    targets: object
    history: cand.History
    users: np.ndarray
    block_size: int
    cold: np.ndarray | None
    items: lst.ItemInfo | None
    list_k: int
    columns: dict[str, dict[str, list[np.ndarray]]]
    skipped: dict[str, list[np.ndarray]]

    @classmethod
    def build(cls, dataset, split, modes, settings: EvalSettings, users) -> _Pass:
        check_request(dataset, split, modes, settings)
        chosen = reg.resolve(settings.metrics)
        targets = dataset.targets(split)
        list_k = max(settings.ks) if any(m.needs_lists for m in chosen) else 0
        items = None
        if list_k and any(mode in reg.LIST_MODES for mode in modes):
            items = lst.ItemInfo.build(dataset.item_popularity(), settings.item_features)
        return cls(
            dataset=dataset,
            split=split,
            modes=modes,
            settings=settings,
            metrics=chosen,
            targets=targets,
            history=cand.build_history(dataset, split),
            users=_users_to_evaluate(dataset, targets, users),
            block_size=settings.block_size or auto_block_size(dataset.n_items),
            cold=dataset.cold_items(split) if set(modes) & set(COLD_MODES) else None,
            items=items,
            list_k=list_k,
            columns={mode: {} for mode in modes},
            skipped={mode: [] for mode in modes},
        )

    def per_user_keys(self, mode: str) -> list[str]:
        keys = reg.keys_for(self.metrics, self.settings.ks, mode)
        return [k for k in keys if not reg.parse_key(k)[0].catalogue]


def _result(run: _Pass, mode: str) -> EvalResult:
    label = run.settings.label(mode)
    dataset = run.dataset
    finished = _finish_columns(run, mode, label)
    table = build_table(finished)
    skipped = run.skipped[mode]
    skipped_ids = dataset.users.ids_of(np.concatenate(skipped or [np.zeros(0, np.int64)])).tolist()
    if skipped_ids:
        log.warning(
            "%d users skipped (no unconsumed non-target item left): %s",
            len(skipped_ids),
            skipped_ids[:10],
        )
    means = means_of(finished, [metric_key(n, label) for n in run.per_user_keys(mode)])
    covered = {}
    n_listable = len(run.cold) if mode == "cold" else dataset.n_items
    for key in reg.keys_for(run.metrics, run.settings.ks, mode):
        metric, k = reg.parse_key(key)
        if metric.catalogue:
            lists = [a[:, :k] for a in run.columns[mode].get("_lists", [])]
            value, covered[metric_key(key, label)] = lst.coverage(lists, n_listable)
            means[metric_key(key, label)] = value
    order = [metric_key(k, label) for k in reg.keys_for(run.metrics, run.settings.ks, mode)]
    meta = {
        "dataset": dataset.name,
        "n_items": dataset.n_items,
        "seed": run.settings.seed,
        "n_negatives": run.settings.n_negatives if mode == "sampled" else None,
        "profile_window": run.settings.profile_window if mode == "tutorial" else None,
    }
    if mode in COLD_MODES:
        meta |= {"split_method": dataset.split.method, "n_cold_items": len(run.cold)}
    if covered:
        meta["n_listable"] = n_listable
    result = EvalResult(
        mode=label,
        split=run.split,
        ks=run.settings.ks,
        means={k: means[k] for k in order},
        per_user=table,
        skipped=[str(u) for u in skipped_ids],
        meta=meta,
        covered=covered,
    )
    log.info("%s", result.summary())
    return result


def validation_score(
    scorer: Scorer,
    dataset: Dataset,
    metric: str = "AUC",
    *,
    settings: EvalSettings | None = None,
    mode: str | None = None,
    **options,
) -> float:
    """Mean ``metric`` ('AUC', 'RR', 'R@20', 'nDCG@100', 'MAP@20', ...) on the VALIDATION targets only.

    This is the one entry point for training code (model selection, early stopping): it cannot read the
    test targets. ``mode`` defaults to :func:`selection_mode` of the dataset. ``settings`` and keyword
    ``options`` are those of :func:`evaluate_modes`.
    """
    if "split" in options:
        raise ConfigError(
            "validation_score always uses the validation split; call evaluate(split=...) "
            "outside training code for test metrics"
        )
    if dataset.validation.nnz == 0:
        raise ConfigError(
            f"{dataset.name} has no validation targets: build it with "
            "SplitSpec(validation=True) to select models or stop early"
        )
    chosen, k = reg.parse_key(metric)
    settings = settings_of(settings, options)
    names = settings.metrics if settings.metrics is not None else reg.DEFAULT_METRICS
    extra = {}
    if chosen.name not in names:
        extra["metrics"] = (*names, chosen.name)
    if k is not None and k not in settings.ks:
        extra["ks"] = (*settings.ks, k)
    mode = selection_mode(dataset) if mode is None else mode
    result = evaluate(scorer, dataset, split="validation", mode=mode, settings=settings, **extra)
    return float(result.means[metric_key(metric, result.mode)])


def selection_mode(dataset: Dataset) -> str:
    """The mode that selects models and stops training: ``cold`` when the validation targets are new
    items (a cold-items split: the validation cold set measures cold-start, ranked among the new items,
    as the benchmark selects), else ``full``."""
    return "cold" if len(dataset.cold_items("validation")) else "full"


def _users_to_evaluate(dataset: Dataset, targets, users: np.ndarray | None) -> np.ndarray:
    has_targets = np.diff(targets.indptr) > 0
    if users is None:
        return np.flatnonzero(has_targets).astype(np.int64)
    users = np.unique(np.asarray(users, dtype=np.int64))
    if len(users) and (users[0] < 0 or users[-1] >= dataset.n_users):
        raise ConfigError(
            f"user indices must be in [0, {dataset.n_users}), got {users[0]}..{users[-1]}"
        )
    return users[has_targets[users]]


def _rank_modes(run: _Pass, scores, block: np.ndarray) -> dict[str, BlockRanks]:
    """Ranks of one block's truth items in each mode, from one pass over its scores (NumPy on the CPU,
    a tensor on an accelerator)."""
    n_items, window = run.dataset.n_items, run.settings.profile_window
    history = run.history
    truth = gather_padded(scores, beside(scores, cand.csr_rows(run.targets, block)))
    counted = [mode for mode in run.modes if mode in ("full", "mixed", "tutorial")]
    starts, ends = history.indptr[block], history.indptr[block + 1]
    fused = fused_counts(scores, truth, history.items, starts, ends, window) if counted else None
    if fused is not None:
        counts, nan_rows = (fused.greater, fused.equal), fused.nan_rows
    elif counted:
        greater, equal, nan_rows = row_counts(scores, truth)
        counts = (greater, equal)
    else:
        nan_rows = has_nan(scores)
    check_finite(nan_rows, block, run.dataset)
    out = {}
    for mode in run.modes:
        if mode == "sampled":
            settings = run.settings
            neg = cand.negatives_block(
                history, run.targets, block, n_items, settings.n_negatives, settings.seed
            )
            negatives = gather_padded(scores, beside(scores, neg))
            if on_device(scores):
                reference = loaded("torch").cat([truth, negatives], dim=1)
            else:
                reference = np.concatenate([truth, negatives], axis=1)
            out[mode] = rank_block(reference, truth)
        elif mode == "cold":  # candidates: the split's new items (none of them in any history)
            columns = beside(scores, np.array(run.cold))  # a copy: the array is read-only
            out[mode] = rank_block(scores[:, columns], truth)
        elif fused is not None:  # subtract the excluded items' counts: no gather of their scores
            x_greater, x_equal, n_excluded = fused.window if mode == "tutorial" else fused.history
            out[mode] = ranks_from_counts(
                truth, counts[0] - x_greater, counts[1] - x_equal, n_items - n_excluded
            )
        else:
            last = window if mode == "tutorial" else None
            excluded = beside(scores, history.rows(block, last=last))
            out[mode] = rank_block(
                scores, truth, excluded=gather_padded(scores, excluded), counts=counts
            )
    return out


def _top_lists(run: _Pass, scores, block: np.ndarray) -> dict[str, np.ndarray]:
    """Each list mode's ``(B, max k)`` top-k lists of the block, when a list metric is asked for."""
    wanted = [mode for mode in run.modes if mode in reg.LIST_MODES]
    if not run.list_k or not wanted:
        return {}
    values = host(scores)
    excluded = run.history.rows(block)
    out = {}
    for mode in wanted:
        columns = run.cold if mode == "cold" else None
        if mode != "cold" and "warm" in out:
            out[mode] = out["warm"]
            continue
        out[mode] = lst.top_lists(values, run.list_k, excluded, columns)
        if mode != "cold":
            out["warm"] = out[mode]
    return out


def _has_negatives(ranks: BlockRanks, mode: str, n_items: int) -> np.ndarray:
    if mode == "tutorial":
        return ranks.n_truth < n_items
    return ranks.n_negatives > 0


def _collect(run: _Pass, mode, users, ranks: BlockRanks, ok, lists) -> None:
    r = ranks.ranks[ok]
    values = reg.BlockValues(
        mode=mode,
        ranks=r,
        negatives_above=ranks.negatives_above[ok],
        n_negatives=ranks.n_negatives[ok],
        n_items=run.dataset.n_items,
        lists=None if lists is None else lists[ok],
        items=run.items,
    )
    parts = {
        "user_idx": users,
        "profile_size": run.history.sizes[users],
        "n_targets": ranks.n_truth[ok],
        "n_candidates": ranks.n_candidates[ok],
        "first_hit_rank": np.nanmin(r, axis=1) if len(r) else np.zeros(0),
        **reg.per_user_values(run.metrics, values, run.settings.ks),
    }
    if values.lists is not None:
        parts["_lists"] = values.lists
    columns = run.columns[mode]
    for name, value in parts.items():
        columns.setdefault(name, []).append(np.asarray(value))


def _finish_columns(run: _Pass, mode: str, label: str) -> dict[str, np.ndarray]:
    keys = run.per_user_keys(mode)
    names = ["user_idx", "profile_size", "n_targets", "n_candidates", "first_hit_rank", *keys]
    columns = run.columns[mode]
    joined = {n: np.concatenate(columns[n]) if n in columns else np.zeros(0) for n in names}
    user_idx = joined["user_idx"].astype(np.int64)
    ids = run.dataset.users.ids_of(
        user_idx
    )  # an object array of str: pandas takes it without a copy
    out = {"user_id": ids if ids.dtype == object else ids.astype(str), "user_idx": user_idx}
    for n in ("profile_size", "n_targets", "n_candidates"):
        out[n] = joined[n].astype(np.int64)
    out["first_hit_rank"] = joined["first_hit_rank"].astype(np.float64)
    for n in keys:
        out[metric_key(n, label)] = joined[n].astype(np.float64)
    return out

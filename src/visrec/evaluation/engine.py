"""Entry points: :func:`evaluate` (any split, explicit) and :func:`validation_score` (training code).

Three modes (docs/evaluation.md has the definitions side by side and a worked example):

- ``full``: rank every item the user has not consumed (DESIGN.md "Evaluation protocol");
- ``sampled``: rank the truth items among ``n_negatives`` random unconsumed items per user (as the DVBPR
  paper, Kang et al., ICDM 2017); every key is labelled ``[sampled@N]``;
- ``tutorial``: the IUI 2021 VisRec notebooks' definitions (last-10 profile window, inventory-normalised AUC,
  hits-normalised nDCG), to set numbers beside the published table.

Users are scored in blocks of ``block_size`` with one scorer call each (by default as many users as make
about ``AUTO_BLOCK_SCORES`` scores); ranks are exact integer counts, so every per-user value is identical for
any block size and on CPU or CUDA.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable

import numpy as np
import torch

from visrec.choices import EVAL_MODES, EVAL_SPLITS
from visrec.data import Dataset
from visrec.errors import ConfigError, VisrecError
from visrec.evaluation import candidates as cand
from visrec.evaluation import metrics
from visrec.evaluation.ranking import (
    BlockRanks,
    fused_counts,
    gather_padded,
    has_nan,
    rank_block,
    ranks_from_counts,
    row_counts,
)
from visrec.evaluation.results import EvalResult, build_table, means_of, metric_key

log = logging.getLogger(__name__)

Scorer = Callable[[torch.Tensor], torch.Tensor]
MODES = EVAL_MODES
SPLITS = EVAL_SPLITS
AUTO_BLOCK_SCORES = 1 << 24
"""Default block: users whose score rows hold about 16.8M scores together (128 MB in float64)."""


def mode_tuple(modes: str | Iterable[str]) -> tuple[str, ...]:
    """Distinct mode names in their given order (a single name is one mode)."""
    return tuple(dict.fromkeys([modes] if isinstance(modes, str) else modes))


def auto_block_size(n_items: int) -> int:
    """The default number of users scored at once for a catalogue of ``n_items``."""
    return max(1, AUTO_BLOCK_SCORES // max(1, n_items))


def evaluate(
    scorer: Scorer,
    dataset: Dataset,
    *,
    split: str,
    mode: str = "full",
    ks: Iterable[int] = metrics.DEFAULT_KS,
    block_size: int | None = None,
    n_negatives: int = 100,
    seed: int = 0,
    device: str | torch.device | None = None,
    users: np.ndarray | None = None,
    profile_window: int = 10,
) -> EvalResult:
    """Evaluate ``scorer`` on the ``split`` targets of ``dataset``.

    ``scorer(user_idx)`` takes a CPU ``LongTensor`` of user indices ``(B,)`` and returns scores
    ``(B, n_items)``, higher is better; NaN scores raise :class:`VisrecError`, ``-inf`` is a valid lowest
    score. ``split`` ('test' or 'validation') has no default on purpose. ``users`` restricts evaluation to
    those user indices (e.g. one rank's shard); users without targets in the split are not counted.
    ``device`` is where ranks are computed (default: wherever the scorer's output lives). ``block_size``
    users are scored per scorer call (default :func:`auto_block_size`); it bounds memory and never
    changes a result.
    """
    return evaluate_modes(
        scorer,
        dataset,
        split=split,
        modes=(mode,),
        ks=ks,
        block_size=block_size,
        n_negatives=n_negatives,
        seed=seed,
        device=device,
        users=users,
        profile_window=profile_window,
    )[mode]


def evaluate_modes(
    scorer: Scorer,
    dataset: Dataset,
    *,
    split: str,
    modes: Iterable[str],
    ks: Iterable[int] = metrics.DEFAULT_KS,
    block_size: int | None = None,
    n_negatives: int = 100,
    seed: int = 0,
    device: str | torch.device | None = None,
    users: np.ndarray | None = None,
    profile_window: int = 10,
) -> dict[str, EvalResult]:
    """Several modes of :func:`evaluate` from one scoring pass: ``{mode: EvalResult}``.

    Each block of users is scored once; ``full`` and ``tutorial`` also share the pass that counts the
    scores above and equal to each truth item. Every result is identical to a separate :func:`evaluate`.
    """
    modes = mode_tuple(modes)
    ks = _check_args(split, modes, ks, block_size, n_negatives, seed, profile_window)
    targets = dataset.targets(split)
    history = cand.build_history(dataset, split)
    users = _users_to_evaluate(dataset, targets, users)
    block_size = block_size or auto_block_size(dataset.n_items)
    columns: dict[str, dict[str, list[np.ndarray]]] = {mode: {} for mode in modes}
    skipped: dict[str, list[np.ndarray]] = {mode: [] for mode in modes}
    for start in range(0, len(users), block_size):
        block = users[start : start + block_size]
        scores = _score(scorer, block, dataset, device)
        ranked = _rank_modes(
            modes, scores, block, dataset, targets, history, n_negatives, seed, profile_window
        )
        for mode, ranks in ranked.items():
            ok = _has_negatives(ranks, mode, dataset.n_items)
            skipped[mode].append(block[~ok])
            _collect(columns[mode], block[ok], ranks, ok, history, mode, dataset.n_items, ks)
    return {
        mode: _result(
            columns[mode],
            skipped[mode],
            dataset,
            split,
            mode,
            ks,
            n_negatives,
            seed,
            profile_window,
        )
        for mode in modes
    }


def _result(columns, skipped, dataset, split, mode, ks, n_negatives, seed, window) -> EvalResult:
    label = f"sampled@{n_negatives}" if mode == "sampled" else mode
    finished = _finish_columns(columns, dataset, label, ks)
    table = build_table(finished)
    skipped_ids = dataset.users.ids_of(np.concatenate(skipped or [np.zeros(0, np.int64)])).tolist()
    if skipped_ids:
        log.warning(
            "%d users skipped (no unconsumed non-target item left): %s",
            len(skipped_ids),
            skipped_ids[:10],
        )
    keys = [metric_key(name, label) for name in metrics.metric_names(ks)]
    meta = {
        "dataset": dataset.name,
        "n_items": dataset.n_items,
        "seed": seed,
        "n_negatives": n_negatives if mode == "sampled" else None,
        "profile_window": window if mode == "tutorial" else None,
    }
    result = EvalResult(
        mode=label,
        split=split,
        ks=ks,
        means=means_of(finished, keys),
        per_user=table,
        skipped=[str(u) for u in skipped_ids],
        meta=meta,
    )
    log.info("%s", result.summary())
    return result


def matrix_scorer(scores: np.ndarray | torch.Tensor) -> Scorer:
    """A scorer over a precomputed ``(n_users, n_items)`` score matrix (NumPy or torch, any device).

    A block of consecutive users is returned as a view of the matrix rows (no copy); other blocks are
    gathered. Use it to evaluate scores computed elsewhere (another library, a saved matrix)."""
    table = torch.as_tensor(scores)
    if table.ndim != 2:
        raise ConfigError(
            f"a score matrix must be 2-D (users x items), got shape {tuple(table.shape)}"
        )

    def score(user_idx: torch.Tensor) -> torch.Tensor:
        if len(user_idx) and int(user_idx[-1]) - int(user_idx[0]) == len(user_idx) - 1:
            first = int(user_idx[0])
            if bool((user_idx == torch.arange(first, first + len(user_idx))).all()):
                return table[first : first + len(user_idx)]
        return table[user_idx.to(table.device)]

    return score


def validation_score(scorer: Scorer, dataset: Dataset, metric: str = "AUC", **kwargs) -> float:
    """Mean ``metric`` ('AUC', 'RR', 'R@20', 'nDCG@100', ...) on the VALIDATION targets only.

    This is the one entry point for training code (model selection, early stopping): it cannot read the
    test targets. Other keyword arguments are those of :func:`evaluate` (mode, block_size, ...).
    """
    if "split" in kwargs:
        raise ConfigError(
            "validation_score always uses the validation split; call evaluate(split=...) "
            "outside training code for test metrics"
        )
    if dataset.validation.nnz == 0:
        raise ConfigError(
            f"{dataset.name} has no validation targets: build it with "
            "SplitSpec(validation=True) to select models or stop early"
        )
    match = re.fullmatch(r"(AUC|RR|R|P|nDCG)(?:@(\d+))?", metric)
    if match is None or (match.group(1) in ("AUC", "RR")) != (match.group(2) is None):
        raise ConfigError(f"unknown metric {metric!r}; expected AUC, RR, R@k, P@k or nDCG@k")
    if match.group(2) is not None:
        ks = tuple(kwargs.pop("ks", metrics.DEFAULT_KS))
        kwargs["ks"] = ks if int(match.group(2)) in ks else (*ks, int(match.group(2)))
    result = evaluate(scorer, dataset, split="validation", **kwargs)
    return float(result.means[metric_key(metric, result.mode)])


def _check_args(split, modes, ks, block_size, n_negatives, seed, profile_window) -> tuple[int, ...]:
    if split not in SPLITS:
        raise ConfigError(f"split must be 'test' or 'validation', not {split!r}")
    if not modes:
        raise ConfigError(f"no evaluation mode given; choose from {', '.join(MODES)}")
    for mode in modes:
        if mode not in MODES:
            raise ConfigError(f"unknown evaluation mode {mode!r}; choose from {', '.join(MODES)}")
    ks = tuple(int(k) for k in ks)
    if not ks or min(ks) < 1 or len(set(ks)) != len(ks):
        raise ConfigError(f"ks must be distinct positive cut-offs, got {ks}")
    if block_size is not None and block_size < 1:
        raise ConfigError(f"block_size must be >= 1, got {block_size}")
    if "sampled" in modes and n_negatives < 1:
        raise ConfigError(f"n_negatives must be >= 1, got {n_negatives}")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    if profile_window < 0:
        raise ConfigError(f"profile_window must be >= 0, got {profile_window}")
    return ks


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


def _score(scorer: Scorer, block: np.ndarray, dataset: Dataset, device) -> torch.Tensor:
    scores = scorer(torch.from_numpy(block))
    if not isinstance(scores, torch.Tensor):
        scores = torch.as_tensor(np.asarray(scores))
    if tuple(scores.shape) != (len(block), dataset.n_items):
        raise VisrecError(
            f"the scorer returned shape {tuple(scores.shape)} for {len(block)} users; "
            f"expected ({len(block)}, {dataset.n_items})"
        )
    scores = scores.detach()
    if device is not None:
        scores = scores.to(device)
    if not scores.is_floating_point():
        scores = scores.double()
    elif scores.device.type == "cpu" and scores.dtype in (torch.float16, torch.bfloat16):
        scores = scores.float()  # exact: every half value is a float32; NumPy has no bfloat16
    return scores


def _check_finite(nan_rows: torch.Tensor, block: np.ndarray, dataset: Dataset) -> None:
    if bool(nan_rows.any()):
        users = dataset.users.ids_of(block[nan_rows.cpu().numpy()])
        raise VisrecError(
            f"the scorer returned NaN scores for {len(users)} users, e.g. "
            f"{users[:5].tolist()}; scores must be numbers (-inf is allowed)"
        )


def _rank_modes(
    modes, scores, block, dataset, targets, history, n_negatives, seed, window
) -> dict[str, BlockRanks]:
    """Ranks of one block's truth items in each mode, from one pass over its scores."""
    dev, n_items = scores.device, dataset.n_items
    truth = gather_padded(scores, torch.from_numpy(cand.csr_rows(targets, block)).to(dev))
    ranked = [mode for mode in modes if mode != "sampled"]
    starts, ends = history.indptr[block], history.indptr[block + 1]
    fused = fused_counts(scores, truth, history.items, starts, ends, window) if ranked else None
    if fused is not None:
        counts, nan_rows = (fused.greater, fused.equal), fused.nan_rows
    elif ranked:
        greater, equal, nan_rows = row_counts(scores, truth)
        counts = (greater, equal)
    else:
        nan_rows = has_nan(scores)
    _check_finite(nan_rows, block, dataset)
    out = {}
    for mode in modes:
        if mode == "sampled":
            neg = cand.negatives_block(history, targets, block, n_items, n_negatives, seed)
            negatives = gather_padded(scores, torch.from_numpy(neg).to(dev))
            out[mode] = rank_block(torch.cat([truth, negatives], dim=1), truth)
        elif fused is not None:  # subtract the excluded items' counts: no gather of their scores
            x_greater, x_equal, n_excluded = fused.history if mode == "full" else fused.window
            out[mode] = ranks_from_counts(
                truth, counts[0] - x_greater, counts[1] - x_equal, n_items - n_excluded
            )
        else:
            last = window if mode == "tutorial" else None
            excluded = torch.from_numpy(history.rows(block, last=last)).to(dev)
            out[mode] = rank_block(
                scores, truth, excluded=gather_padded(scores, excluded), counts=counts
            )
    return out


def _has_negatives(ranks: BlockRanks, mode: str, n_items: int) -> np.ndarray:
    if mode == "tutorial":
        return ranks.n_truth < n_items
    return ranks.n_negatives > 0


def _collect(columns, users, ranks: BlockRanks, ok, history, mode, n_items, ks) -> None:
    r = ranks.ranks[ok]
    if mode == "tutorial":
        values = metrics.tutorial_metrics(r, n_items, ks)
    else:
        values = metrics.standard_metrics(r, ranks.negatives_above[ok], ranks.n_negatives[ok], ks)
    parts = {
        "user_idx": users,
        "profile_size": history.sizes[users],
        "n_targets": ranks.n_truth[ok],
        "n_candidates": ranks.n_candidates[ok],
        "first_hit_rank": np.nanmin(r, axis=1) if len(r) else np.zeros(0),
        **values,
    }
    for name, value in parts.items():
        columns.setdefault(name, []).append(np.asarray(value))


def _finish_columns(columns, dataset: Dataset, label: str, ks) -> dict[str, np.ndarray]:
    names = [
        "user_idx",
        "profile_size",
        "n_targets",
        "n_candidates",
        "first_hit_rank",
        *metrics.metric_names(ks),
    ]
    joined = {n: np.concatenate(columns[n]) if n in columns else np.zeros(0) for n in names}
    user_idx = joined["user_idx"].astype(np.int64)
    ids = dataset.users.ids_of(user_idx)  # an object array of str: pandas takes it without a copy
    out = {"user_id": ids if ids.dtype == object else ids.astype(str), "user_idx": user_idx}
    for n in ("profile_size", "n_targets", "n_candidates"):
        out[n] = joined[n].astype(np.int64)
    out["first_hit_rank"] = joined["first_hit_rank"].astype(np.float64)
    for n in metrics.metric_names(ks):
        out[metric_key(n, label)] = joined[n].astype(np.float64)
    return out

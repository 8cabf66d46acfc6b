"""Entry points: :func:`evaluate` (any split, explicit) and :func:`validation_score` (training code).

Three modes (docs/evaluation.md has the definitions side by side and a worked example):

- ``full``: rank every item the user has not consumed (DESIGN.md "Evaluation protocol");
- ``sampled``: rank the truth items among ``n_negatives`` random unconsumed items per user (as the DVBPR
  paper, Kang et al., ICDM 2017); every key is labelled ``[sampled@N]``;
- ``tutorial``: the IUI 2021 VisRec notebooks' definitions (last-10 profile window, inventory-normalised AUC,
  hits-normalised nDCG), to set numbers beside the published table.

Users are scored in blocks of ``block_size`` with one scorer call each; ranks are exact integer counts, so
every per-user value is identical for any block size and on CPU or CUDA.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable

import numpy as np
import torch

from visrec.data import Dataset
from visrec.errors import ConfigError, VisrecError
from visrec.evaluation import candidates as cand
from visrec.evaluation import metrics
from visrec.evaluation.ranking import BlockRanks, gather_padded, rank_block
from visrec.evaluation.results import EvalResult, build_table, means_of, metric_key

log = logging.getLogger(__name__)

Scorer = Callable[[torch.Tensor], torch.Tensor]
MODES = ("full", "sampled", "tutorial")
SPLITS = ("test", "validation")


def evaluate(
    scorer: Scorer,
    dataset: Dataset,
    *,
    split: str,
    mode: str = "full",
    ks: Iterable[int] = metrics.DEFAULT_KS,
    block_size: int = 256,
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
    ``device`` is where ranks are computed (default: wherever the scorer's output lives).
    """
    ks = _check_args(split, mode, ks, block_size, n_negatives, seed, profile_window)
    label = f"sampled@{n_negatives}" if mode == "sampled" else mode
    targets = dataset.targets(split)
    history = cand.build_history(dataset, split)
    users = _users_to_evaluate(dataset, targets, users)
    columns: dict[str, list[np.ndarray]] = {}
    skipped: list[np.ndarray] = []
    for start in range(0, len(users), block_size):
        block = users[start : start + block_size]
        scores = _score(scorer, block, dataset, device)
        ranks = _block_ranks(
            scores,
            block,
            mode,
            targets,
            history,
            dataset.n_items,
            n_negatives,
            seed,
            profile_window,
        )
        ok = _has_negatives(ranks, mode, dataset.n_items)
        skipped.append(block[~ok])
        _collect(columns, block[ok], ranks, ok, history, mode, dataset.n_items, ks)
    table = build_table(_finish_columns(columns, dataset, label, ks))
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
        "profile_window": profile_window if mode == "tutorial" else None,
    }
    result = EvalResult(
        mode=label,
        split=split,
        ks=ks,
        means=means_of(table, keys),
        per_user=table,
        skipped=[str(u) for u in skipped_ids],
        meta=meta,
    )
    log.info("%s", result.summary())
    return result


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


def _check_args(split, mode, ks, block_size, n_negatives, seed, profile_window) -> tuple[int, ...]:
    if split not in SPLITS:
        raise ConfigError(f"split must be 'test' or 'validation', not {split!r}")
    if mode not in MODES:
        raise ConfigError(f"unknown evaluation mode {mode!r}; choose from {', '.join(MODES)}")
    ks = tuple(int(k) for k in ks)
    if not ks or min(ks) < 1 or len(set(ks)) != len(ks):
        raise ConfigError(f"ks must be distinct positive cut-offs, got {ks}")
    if block_size < 1:
        raise ConfigError(f"block_size must be >= 1, got {block_size}")
    if mode == "sampled" and n_negatives < 1:
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
    # one cheap reduction first: a row sum is NaN iff the row holds a NaN (or both +inf and -inf)
    # (NumPy's row sum on the CPU: several times faster than torch's here, same NaN propagation)
    if scores.device.type == "cpu":
        with np.errstate(invalid="ignore"):  # inf - inf is the NaN we look for
            suspect = torch.from_numpy(np.isnan(scores.numpy().sum(axis=1)))
    else:
        suspect = torch.isnan(scores.sum(dim=1))
    if bool(suspect.any()):
        bad = torch.zeros_like(suspect)
        bad[suspect] = torch.isnan(scores[suspect]).any(dim=1)
        if bool(bad.any()):
            users = dataset.users.ids_of(block[bad.cpu().numpy()])
            raise VisrecError(
                f"the scorer returned NaN scores for {len(users)} users, e.g. "
                f"{users[:5].tolist()}; scores must be numbers (-inf is allowed)"
            )
    return scores


def _block_ranks(scores, block, mode, targets, history, n_items, n_negatives, seed, window):
    dev = scores.device
    truth_items = torch.from_numpy(cand.csr_rows(targets, block)).to(dev)
    truth = gather_padded(scores, truth_items)
    if mode == "sampled":
        neg = cand.negatives_block(history, targets, block, n_items, n_negatives, seed)
        reference = torch.cat([truth, gather_padded(scores, torch.from_numpy(neg).to(dev))], dim=1)
    else:
        last = window if mode == "tutorial" else None
        excluded = torch.from_numpy(history.rows(block, last=last)).to(dev)
        return rank_block(scores, truth, excluded=gather_padded(scores, excluded))
    return rank_block(reference, truth)


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
    out = {"user_id": dataset.users.ids_of(user_idx).astype(str), "user_idx": user_idx}
    for n in ("profile_size", "n_targets", "n_candidates"):
        out[n] = joined[n].astype(np.int64)
    out["first_hit_rank"] = joined["first_hit_rank"].astype(np.float64)
    for n in metrics.metric_names(ks):
        out[metric_key(n, label)] = joined[n].astype(np.float64)
    return out

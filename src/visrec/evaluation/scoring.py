"""Scorers: the callable contract the engine evaluates, a scorer over a saved matrix, and score checks.

A scorer is called with a block of user indices and returns their scores of every item. By default it gets a
CPU ``LongTensor`` (torch code can index with it directly); a scorer with a true ``numpy_users`` attribute
(:func:`matrix_scorer`, :class:`visrec.models.factors.DotScorer`) gets an int64 NumPy array and may return
NumPy scores, so evaluating it never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from visrec._lazy import loaded
from visrec.data import Dataset
from visrec.errors import ConfigError, VisrecError
from visrec.evaluation.ranking import beside, host

Scorer = Callable[..., object]
"""``scorer(user_idx)``: user indices ``(B,)`` (a CPU LongTensor, or int64 NumPy for a scorer marked
``numpy_users``) -> scores ``(B, n_items)`` (a tensor on any device, or NumPy)."""


class _MatrixScorer:
    numpy_users = True

    def __init__(self, table):
        self.table = table

    def __call__(self, user_idx):
        user_idx = host(user_idx)
        if len(user_idx) and int(user_idx[-1]) - int(user_idx[0]) == len(user_idx) - 1:
            first = int(user_idx[0])
            if np.array_equal(user_idx, np.arange(first, first + len(user_idx))):
                return self.table[first : first + len(user_idx)]
        return self.table[beside(self.table, user_idx)]


def matrix_scorer(scores) -> Scorer:
    """A scorer over a precomputed ``(n_users, n_items)`` score matrix (NumPy or torch, any device).

    A block of consecutive users is returned as a view of the matrix rows (no copy); other blocks are
    gathered. Use it to evaluate scores computed elsewhere (another library, a saved matrix)."""
    torch = loaded("torch")
    table = scores if torch is not None and isinstance(scores, torch.Tensor) else np.asarray(scores)
    if table.ndim != 2:
        raise ConfigError(
            f"a score matrix must be 2-D (users x items), got shape {tuple(table.shape)}"
        )
    return _MatrixScorer(table)


def score_block(scorer: Scorer, block: np.ndarray, dataset: Dataset, device):
    """One block's scores: NumPy (float32/float64) for the CPU path, or a tensor on ``device`` (or on the
    accelerator the scorer answered on, when ``device`` is None)."""
    if getattr(scorer, "numpy_users", False):
        scores = scorer(block)
    else:
        scores = scorer(_torch().from_numpy(block))
    torch = loaded("torch")
    is_tensor = torch is not None and isinstance(scores, torch.Tensor)
    if tuple(scores.shape) != (len(block), dataset.n_items):
        raise VisrecError(
            f"the scorer returned shape {tuple(scores.shape)} for {len(block)} users; "
            f"expected ({len(block)}, {dataset.n_items})"
        )
    if _accelerator(device) or (device is None and is_tensor and scores.device.type != "cpu"):
        return _on_accelerator(scores, device)
    if is_tensor:
        scores = scores.detach().cpu()
        if scores.dtype in (torch.float16, torch.bfloat16):
            scores = scores.float()  # exact: every half value is a float32; NumPy has no bfloat16
        scores = scores.numpy()
    scores = np.asarray(scores)
    if scores.dtype.kind != "f":
        return scores.astype(np.float64)
    if scores.dtype == np.float16:
        return scores.astype(np.float32)  # exact
    return scores


def _torch():
    import torch  # a scorer that takes tensors is torch code: torch is loaded already or needed now

    return torch


def _accelerator(device) -> bool:
    return device is not None and str(device) != "cpu" and not str(device).startswith("cpu:")


def _on_accelerator(scores, device):
    torch = _torch()
    scores = torch.as_tensor(scores).detach()
    if device is not None:
        scores = scores.to(device)
    if not scores.is_floating_point():
        scores = scores.double()
    return scores


def check_finite(nan_rows, block: np.ndarray, dataset: Dataset) -> None:
    nan_rows = host(nan_rows)
    if nan_rows.any():
        users = dataset.users.ids_of(block[nan_rows])
        raise VisrecError(
            f"the scorer returned NaN scores for {len(users)} users, e.g. "
            f"{users[:5].tolist()}; scores must be numbers (-inf is allowed)"
        )

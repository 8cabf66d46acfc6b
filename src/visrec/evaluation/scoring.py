"""Scorers: the callable contract the engine evaluates, a scorer over a saved matrix, and score checks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from visrec.data import Dataset
from visrec.errors import ConfigError, VisrecError

Scorer = Callable[[torch.Tensor], torch.Tensor]
"""``scorer(user_idx)``: a CPU LongTensor ``(B,)`` of user indices -> scores ``(B, n_items)``."""


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


def score_block(scorer: Scorer, block: np.ndarray, dataset: Dataset, device) -> torch.Tensor:
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


def check_finite(nan_rows: torch.Tensor, block: np.ndarray, dataset: Dataset) -> None:
    if bool(nan_rows.any()):
        users = dataset.users.ids_of(block[nan_rows.cpu().numpy()])
        raise VisrecError(
            f"the scorer returned NaN scores for {len(users)} users, e.g. "
            f"{users[:5].tolist()}; scores must be numbers (-inf is allowed)"
        )

"""Pairwise ranking losses on (positive score, negative scores) pairs.

Each takes ``pos`` of shape (B,) and ``neg`` of shape (B, K) and returns the mean loss over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """BPR (Rendle et al., UAI 2009, eq. 4 without the prior): mean of -ln sigma(x_ui - x_uj)."""
    return bpr_loss_of_differences(pos[:, None] - neg)


def bpr_loss_of_differences(differences: torch.Tensor) -> torch.Tensor:
    """:func:`bpr_loss` from the differences x_ui - x_uj (B, K) a model computed directly."""
    return -F.logsigmoid(differences).mean()


def bce_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy: positives labelled 1, negatives 0; -ln sigma(x_ui) - mean_j ln(1 - sigma(x_uj))."""
    return -(F.logsigmoid(pos) + F.logsigmoid(-neg).mean(dim=1)).mean()


def warp_loss(
    pos: torch.Tensor, neg: torch.Tensor, n_items: int, margin: float = 1.0
) -> torch.Tensor:
    """Sampled WARP (Weston et al., IJCAI 2011): hinge on margin violators, weighted by L(rank).

    With K sampled negatives, the rank of the positive among the ``n_items - 1`` others is estimated as
    ``(n_items - 1) * v / K`` where v is the number of violators (neg > pos - margin); the weight is
    L(r) = sum_{j=1..r} 1/j ~ ln(r) + 0.5772 (0 when r = 0). The loss per triplet is
    L(r) * mean over violators of (margin - pos + neg); triplets with no violator contribute 0.
    """
    hinge = (margin - pos[:, None] + neg).clamp(min=0)
    violators = (hinge > 0).to(pos.dtype)
    n_viol = violators.sum(dim=1)
    rank = torch.floor((n_items - 1) * n_viol / neg.shape[1])
    weight = torch.where(
        rank > 0, torch.log(rank.clamp(min=1)) + 0.5772156649, torch.zeros_like(rank)
    )
    per_triplet = weight * hinge.sum(dim=1) / n_viol.clamp(min=1)
    return per_triplet.mean()


def harmonic(r: int) -> float:
    """Exact L(r) = sum_{j=1..r} 1/j (reference for tests of the approximation)."""
    return sum(1.0 / j for j in range(1, r + 1)) if r > 0 else 0.0


__all__ = ["bce_loss", "bpr_loss", "bpr_loss_of_differences", "harmonic", "warp_loss"]

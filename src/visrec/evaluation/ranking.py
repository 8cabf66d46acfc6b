"""Batched, exact, tie-aware ranks of truth items for a block of users (CPU or CUDA, one code path).

The rank of a truth item t with score s is ``#{candidates > s} + (#{candidates == s} - 1) / 2`` (the -1
removes t itself). In full and tutorial mode the candidates are all items minus an *excluded* set (the
consumed history, or its last-10 window): the counts are taken over the whole score row and the counts over
the (small) excluded set are subtracted, which is the same as masking the excluded items but needs no copy
of the block. In sampled mode the reference is the gathered ``truth + negatives`` matrix with NaN pads.
NaN is the "absent" marker because it compares False with everything: a scorer's own ``-inf`` scores stay
ordinary, lowest-possible candidate scores that tie with each other (NaN scores are rejected upstream).

Whole rows are never sorted when a block's truth sets are small: each truth column is compared against the
block (``B x n_items`` booleans at a time, so memory is bounded by the block size); blocks with large truth
sets sort each row once and use binary search. Both give the same integer counts, so results do not depend
on the block size or on the path taken.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

COMPARE_MAX_TRUTH = 16
"""Use per-column comparisons up to this many truth items per row, sorting + binary search above."""


def tie_counts(
    reference: torch.Tensor, queries: torch.Tensor, *, method: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each ``queries[b, j]``, count entries of ``reference[b]`` strictly greater and equal.

    NaN entries of ``reference`` are absent; results for NaN queries are meaningless (callers mask them).
    ``method`` is ``compare`` (no sorting), ``sort`` (row sort + searchsorted) or ``auto``.
    """
    if method == "auto":
        method = "compare" if queries.shape[1] <= COMPARE_MAX_TRUTH else "sort"
    if method == "compare":
        return _counts_by_comparison(reference, queries)
    if method == "sort":
        return _counts_by_sorting(reference, queries)
    raise ValueError(f"unknown method {method!r}")


def _counts_by_comparison(
    reference: torch.Tensor, queries: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    if reference.device.type == "cpu":
        return _counts_by_comparison_numpy(reference, queries)
    shape = queries.shape
    greater = torch.zeros(shape, dtype=torch.int64, device=queries.device)
    equal = torch.zeros(shape, dtype=torch.int64, device=queries.device)
    for j in range(shape[1]):
        column = queries[:, j : j + 1]
        greater[:, j] = torch.sum(reference > column, dim=1, dtype=torch.int32)
        equal[:, j] = torch.sum(reference == column, dim=1, dtype=torch.int32)
    return greater, equal


def _counts_by_comparison_numpy(
    reference: torch.Tensor, queries: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same integer counts with NumPy on the CPU: its SIMD boolean counting is several times faster
    than torch's boolean reductions here (measured: 2.6 ms vs 14 ms for a 256 x 9,636 block)."""
    ref = reference.detach().numpy()
    q = queries.detach().numpy()
    greater = np.empty(q.shape, dtype=np.int64)
    equal = np.empty(q.shape, dtype=np.int64)
    for j in range(q.shape[1]):
        column = q[:, j : j + 1]
        greater[:, j] = np.count_nonzero(ref > column, axis=1)
        equal[:, j] = np.count_nonzero(ref == column, axis=1)
    return torch.from_numpy(greater), torch.from_numpy(equal)


def _counts_by_sorting(
    reference: torch.Tensor, queries: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    absent = torch.isnan(reference)
    n_absent = absent.sum(dim=1, keepdim=True)
    ordered = torch.sort(reference.masked_fill(absent, -torch.inf), dim=1).values
    values = torch.where(torch.isnan(queries), torch.zeros_like(queries), queries).contiguous()
    left = torch.searchsorted(ordered, values, side="left")
    right = torch.searchsorted(ordered, values, side="right")
    greater = reference.shape[1] - right
    # absent entries were filled with -inf: they "tie" with a -inf query and must not count
    equal = right - left - torch.where(values == -torch.inf, n_absent, torch.zeros_like(n_absent))
    return greater, equal


@dataclass(frozen=True)
class BlockRanks:
    """Ranks of one block's truth items (numpy float64, NaN-padded ``(B, t)``) and candidate counts."""

    ranks: np.ndarray
    """Tie-aware 0-based rank of each truth item among all candidates (other truth items included)."""
    negatives_above: np.ndarray
    """Tie-aware count of non-truth candidates ranked above each truth item."""
    n_candidates: np.ndarray
    n_truth: np.ndarray

    @property
    def n_negatives(self) -> np.ndarray:
        return self.n_candidates - self.n_truth


def gather_padded(scores: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """``scores[b, items[b, j]]`` with NaN where ``items`` is -1."""
    pad = items < 0
    values = torch.gather(scores, 1, items.clamp(min=0))
    return values.masked_fill(pad, torch.nan)


def rank_block(
    reference: torch.Tensor,
    truth_scores: torch.Tensor,
    *,
    excluded: torch.Tensor | None = None,
    method: str = "auto",
) -> BlockRanks:
    """Ranks of ``truth_scores`` (NaN-padded ``(B, t)``) among the candidates of each row.

    Candidates are the non-NaN entries of ``reference``; or, when ``excluded`` is given, every entry of
    ``reference`` (then a full score row without NaN) minus the excluded ones, given by their scores
    (NaN-padded ``(B, h)``, each item at most once per row). Every truth item must be a candidate.
    """
    pad = torch.isnan(truth_scores)
    greater, equal = tie_counts(reference, truth_scores, method=method)
    if excluded is None:
        n_candidates = (~torch.isnan(reference)).sum(dim=1)
    else:
        x_greater, x_equal = tie_counts(excluded, truth_scores, method=method)
        greater, equal = greater - x_greater, equal - x_equal
        n_candidates = reference.shape[1] - (~torch.isnan(excluded)).sum(dim=1)
    t_greater, t_equal = tie_counts(truth_scores, truth_scores, method=method)
    ranks = greater.double() + 0.5 * (equal.double() - 1.0)
    within = t_greater.double() + 0.5 * (t_equal.double() - 1.0)
    n_truth = (~pad).sum(dim=1)
    ranks = ranks.masked_fill(pad, torch.nan)
    above = (ranks - within).masked_fill(pad, torch.nan)
    return BlockRanks(
        ranks=ranks.cpu().numpy(),
        negatives_above=above.cpu().numpy(),
        n_candidates=n_candidates.cpu().numpy(),
        n_truth=n_truth.cpu().numpy(),
    )

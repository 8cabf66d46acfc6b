"""Dot products of chosen (left row, right row) pairs, without the dense product of the two tables.

``pair_dots(left, right, left_of, right_of)[t, s] = left[left_of[t]] . right[right_of[t, s]]``: VBPR's
score of triplet t's user against its item slot s, when a batch's users and items are each gathered once
into ``left`` and ``right``. The dense way, ``(left @ right.T)[left_of[:, None], right_of]``, computes
every (user, item) score of the batch; at the tutorial's batch of 42,000 that is ~1,070 x 9,636 scores for
84,000 wanted, and its backward is two more products of the same size with a gradient that is 99% zeros
(~400 ms of a ~590 ms step on one CPU thread). Here the forward gathers the pairs' rows a chunk of
triplets at a time (the gathered rows stay in cache) and the backward multiplies the sparse matrix of the
pairs' gradients with each table (``torch.sparse.mm``, which sums duplicate pairs in a fixed order): the
work is proportional to the pairs, not to the product of the tables. The same maths as the dense way;
float sums are taken in another order, so values differ from it by float rounding (~1e-7 relative).
"""

from __future__ import annotations

import torch

CHUNK = 512
"""Triplets whose rows are gathered at once in the forward pass (measured on one CPU thread, 301-wide
rows: 256-1,024 are equally fast, 8,192 3x slower)."""


def pair_dots(
    left: torch.Tensor, right: torch.Tensor, left_of: torch.Tensor, right_of: torch.Tensor
) -> torch.Tensor:
    """``(B, S)`` dot products of ``left[left_of[t]]`` (``left``: (L, d), ``left_of``: (B,)) with
    ``right[right_of[t, s]]`` (``right``: (R, d), ``right_of``: (B, S)); differentiable in both tables."""
    return _PairDots.apply(left, right, left_of, right_of)


class _PairDots(torch.autograd.Function):
    @staticmethod
    def forward(ctx, left, right, left_of, right_of):
        ctx.save_for_backward(left, right, left_of, right_of)
        n, slots = right_of.shape
        out = torch.empty(n, slots, dtype=torch.result_type(left, right), device=left.device)
        for lo in range(0, n, CHUNK):
            hi = min(lo + CHUNK, n)
            rows = left.index_select(0, left_of[lo:hi])
            cols = right.index_select(0, right_of[lo:hi].reshape(-1)).view(hi - lo, slots, -1)
            torch.sum(cols * rows[:, None, :], dim=-1, out=out[lo:hi])
        return out

    @staticmethod
    def backward(ctx, grad):
        left, right, left_of, right_of = ctx.saved_tensors
        slots = right_of.shape[1]
        pairs = torch.stack([left_of.repeat_interleave(slots), right_of.reshape(-1)])
        g = torch.sparse_coo_tensor(
            pairs, grad.reshape(-1).to(left.dtype), (len(left), len(right)), check_invariants=False
        )
        grad_left = torch.sparse.mm(g, right) if ctx.needs_input_grad[0] else None
        grad_right = torch.sparse.mm(g.t(), left) if ctx.needs_input_grad[1] else None
        return grad_left, grad_right, None, None

"""VBPR's pair differences x_ui - x_uj and the batch's L2 terms, with a hand-written backward.

At the batch sizes of the papers and of Cornac (100-1,024) a VBPR step on the CPU is mostly small
operators: autograd records ~60 of them for the forward of ``VBPRModule._differences`` and runs one or
more backward operators for each, each with its own dispatch, allocation and bookkeeping. The gradient
of this forward is short to write down (below), so :class:`_PairDifferences` computes the same forward
with the same operators (the values are bit for bit those of the autograd graph; the feature differences
come from one ``embedding_bag`` with weights (1, -1), which gives f_i - f_j exactly) and its backward in
~20 operators: each table's gradient is one ``index_add_`` into zeros, as autograd's embedding backward
does, and E's and beta''s gradient is one product, as before. Float sums are taken in another order than
autograd's, so gradients differ from it by float rounding (``tests/test_models_vbpr.py`` compares them in
float64).

With ``rows = [gamma_u, theta_u, 1]``, ``item = [gamma_i - gamma_j, E (f_i - f_j), beta_i - beta_j +
beta'.(f_i - f_j)]`` (one per (triplet, negative)) and ``x = rows . item``, for an upstream gradient c of
x and g of the penalty (``0.5 mean_t(lambda_theta (|gamma_u|^2 + |theta_u|^2 + |gamma_i|^2 +
mean_j |gamma_j|^2) + lambda_beta (beta_i^2 + mean_j beta_j^2)) + 0.5 lambda_E (|E|^2 + |beta'|^2)``):

- d rows_t = sum_k c_tk item_tk (+ g lambda_theta rows_t / B on gamma_u and theta_u)
- d (gamma_i, beta_i) of the positive = sum_k c_tk (gamma_u, 1), of negative k = -c_tk (gamma_u, 1), plus
  the penalty's g lambda (row) / B (positive) or / (B K) (negatives)
- d [E; beta'] = [c theta_u, c]^T (f_i - f_j) (+ g lambda_E [E; beta'])
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F


def pair_differences(
    module, users: torch.Tensor, items: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_ui - x_uj (B, K), penalty)`` of a :class:`~visrec.models.vbpr.VBPRModule` for ``items`` (B,
    1 + K; positive first), as ``VBPRModule._differences`` computes them, through
    :class:`_PairDifferences`."""
    return _PairDifferences.apply(
        users,
        items,
        module.features,
        module.lambdas,
        module.gamma_user.weight,
        module.theta_user.weight,
        module.gamma_item.weight,
        module.beta_item,
        module.E,
        module.beta_visual,
    )


@lru_cache(maxsize=16)
def _signs(pairs: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(pairs, 2) weights [1, -1]: ``embedding_bag`` of rows (i, j) with them is f_i - f_j, exactly (a
    product by +-1 is exact and the sum of two terms is the subtraction), without gathering both rows
    (kept per shape: only read)."""
    return torch.tensor([1.0, -1.0], dtype=dtype, device=device).repeat(pairs, 1)


@lru_cache(maxsize=16)
def _shares(n: int, k: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(1, 1 + k) weight of each item slot's L2 term in the batch's mean: 1 / n for the positive, 1 / (n
    k) for each negative (kept per shape: only read)."""
    share = torch.full((1, k + 1), 1.0 / (n * k), dtype=dtype, device=device)
    share[0, 0] = 1.0 / n
    return share


class _PairDifferences(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, users, items, features, lambdas, gamma_user, theta_user, gamma_item, beta_item, E, bv
    ):
        n, slots = items.shape
        k = slots - 1
        lam_theta, lam_beta, lam_e = lambdas
        flat = items.reshape(-1)
        pairs = torch.stack(
            [items[:, :1].expand(n, k).reshape(-1), items[:, 1:].reshape(-1)], dim=1
        )
        diff = F.embedding_bag(
            pairs,
            features,
            mode="sum",
            per_sample_weights=_signs(n * k, features.dtype, features.device),
        )
        dims = E.shape[0]
        pad = E.new_zeros(-(dims + 1) % 8, E.shape[1])
        both = diff @ torch.cat([E, bv[None, :], pad]).T
        gamma_i = gamma_item.index_select(0, flat).view(n, slots, -1)
        beta_i = beta_item[flat].view(n, slots)
        item = torch.cat(
            [
                gamma_i[:, :1] - gamma_i[:, 1:],
                both[:, :dims].view(n, k, dims),
                (beta_i[:, :1] - beta_i[:, 1:] + both[:, dims].view(n, k))[..., None],
            ],
            dim=2,
        )
        ones = torch.ones(n, 1, dtype=item.dtype, device=item.device)
        rows = torch.cat(
            [gamma_user.index_select(0, users), theta_user.index_select(0, users), ones], 1
        )
        x = (item * rows[:, None, :]).sum(-1)
        item_reg = (lam_theta * gamma_i.pow(2).sum(-1) + lam_beta * beta_i.pow(2)).view(n, slots)
        total = (
            lam_theta * rows[:, :-1].pow(2).sum(-1) + item_reg[:, 0] + item_reg[:, 1:].mean(1)
        ).mean()
        if lam_e:
            total = total + lam_e * (E.pow(2).sum() + bv.pow(2).sum())
        ctx.state = (users, flat, diff, gamma_i, beta_i, item, rows, lambdas, dims, pad.shape[0])
        ctx.tables = (gamma_user.shape, theta_user.shape, gamma_item.shape, beta_item.shape)
        ctx.save_for_backward(E, bv)
        return x, 0.5 * total

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_x, grad_penalty):
        users, flat, diff, gamma_i, beta_i, item, rows, lambdas, dims, padding = ctx.state
        E, bv = ctx.saved_tensors
        lam_theta, lam_beta, lam_e = lambdas
        n, k = grad_x.shape
        factors = gamma_i.shape[2]
        c = grad_x.to(item.dtype)
        g = grad_penalty.to(item.dtype)
        need = ctx.needs_input_grad
        # the user rows: sum over the negatives of c item, and the penalty's share
        d_rows = item[:, 0] * c if k == 1 else (item * c[..., None]).sum(1)
        d_rows = d_rows[:, :-1].add_(rows[:, :-1] * (g * (lam_theta / n)))
        # item rows: the positive gets sum_k c (gamma_u, 1), negative k gets -c_k (gamma_u, 1)
        slots = k + 1
        weight = torch.cat([c.sum(1, keepdim=True), -c], dim=1)  # (n, slots)
        share = _shares(n, k, item.dtype, item.device) * g
        d_gamma = torch.addcmul(
            weight[..., None] * rows[:, None, :factors], gamma_i, (lam_theta * share)[..., None]
        )
        d_beta = torch.addcmul(weight, beta_i, lam_beta * share)
        grads = [None] * 4
        for index, (at, size, values) in enumerate(
            (
                (users, ctx.tables[0], d_rows[:, :factors] if need[4] else None),
                (users, ctx.tables[1], d_rows[:, factors:] if need[5] else None),
                (flat, ctx.tables[2], d_gamma.view(n * slots, -1) if need[6] else None),
                (flat, ctx.tables[3], d_beta.view(-1) if need[7] else None),
            )
        ):
            if values is not None:
                grads[index] = values.new_zeros(size).index_add_(0, at, values)
        d_e = d_bv = None
        if need[8] or need[9]:
            # [c theta_u, c] is c times the user row's [theta_u, 1]; padded like the forward's [E; beta']
            user = rows[:, factors:] if k == 1 else rows[:, None, factors:].expand(n, k, dims + 1)
            d_both = F.pad(c.reshape(n * k, 1) * user.reshape(n * k, dims + 1), (0, padding))
            d_w = d_both.T @ diff
            d_e, d_bv = d_w[:dims], d_w[dims]
            if lam_e:
                d_e = d_e.add_(E * (g * lam_e))
                d_bv = d_bv.add_(bv * (g * lam_e))
        return (None, None, None, None, *grads, d_e, d_bv)

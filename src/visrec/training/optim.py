"""Optimisers of the Trainer: Adam (fused or per-tensor) and a lazy "sparse" Adam for embedding tables.

:class:`Adam` is ``torch.optim.Adam`` itself, called without the wrappers that mark its methods as not to
be traced by ``torch.compile``: those wrappers import ``torch._dynamo`` on first use (~1.9 s of wall time
on the 2-core CI machine, as much again as ``import torch``), which every training process paid once
although the Trainer never compiles its optimiser. Same update, same state layout, same checkpoints.

``optimizer = "sparse_adam"`` (TrainConfig) makes every ``nn.Embedding`` of the module return a sparse
gradient (only the rows a batch looked up) and steps it with :class:`LazyAdam`: Adam (Kingma & Ba 2015,
Algorithm 1, with PyTorch's L2 ``weight_decay`` added to the gradient) applied to the touched rows only,
the way TensorFlow's ``LazyAdamOptimizer`` and PyTorch's ``SparseAdam`` do. Every other parameter (VBPR's
E and beta', item biases, towers) gets a dense gradient and the ordinary Adam step (fused when
``fused_adam``), in the same optimiser, so the learning-rate scheduler and checkpoints are unchanged.

What it changes against dense Adam: a row that a batch did not touch keeps its moments and its value (dense
Adam decays its moments and still moves it by the remaining momentum, and decays it by weight decay); the
bias correction uses the parameter's step count, as dense Adam does. At batch 100 a VBPR step touches
~200 of 10,000 item rows, so the step costs O(rows touched) instead of O(table), and no full-size gradient
is zeroed and accumulated. It is a different optimiser: same seed gives the same numbers run to run, not
dense Adam's numbers (docs/training.md "Optimisers" has the measured effect on validation AUC).
"""

from __future__ import annotations

import torch
from torch import nn


def use_sparse_gradients(module: nn.Module, sparse: bool = True) -> list[nn.Parameter]:
    """Switch every ``nn.Embedding`` of ``module`` to sparse gradients; returns their weights."""
    tables = [m for m in module.modules() if isinstance(m, nn.Embedding)]
    for table in tables:
        table.sparse = sparse
    return [t.weight for t in tables]


def _undecorated(method):
    """``method`` without torch's ``_disable_dynamo`` / ``_use_grad_for_differentiable`` wrapper (each
    keeps the wrapped function as ``__wrapped__``); ``method`` itself if a torch version has no wrapper."""
    return getattr(method, "__wrapped__", method)


class Adam(torch.optim.Adam):
    """``torch.optim.Adam`` without importing ``torch._dynamo`` (see the module's docstring).

    The step runs under ``no_grad``, as torch's own wrapper does for a non-``differentiable`` Adam (the
    only kind the Trainer builds); nothing here may be traced by ``torch.compile`` (it never is)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.defaults.get("differentiable"):
            raise ValueError("visrec's Adam does not support differentiable=True")

    def add_param_group(self, param_group: dict) -> None:
        _undecorated(torch.optim.Optimizer.add_param_group)(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _undecorated(torch.optim.Optimizer.zero_grad)(self, set_to_none)

    def state_dict(self) -> dict:
        return _undecorated(torch.optim.Optimizer.state_dict)(self)

    def load_state_dict(self, state_dict: dict) -> None:
        _undecorated(torch.optim.Optimizer.load_state_dict)(self, state_dict)

    @torch.no_grad()
    def step(self, closure=None):
        if closure is None and self._fused_step():
            return None
        return _undecorated(torch.optim.Adam.step)(self, closure)

    def _fused_step(self) -> bool:
        """The fused update of every group, as ``torch.optim.Adam.step`` ends up calling it (the step
        counts incremented, then ``torch._fused_adam_`` on the same lists), without its per-step Python:
        state checks, grouping by device and dtype, value unwrapping (~0.4-0.7 ms per step for VBPR's
        seven parameters on one CPU thread, ~5% of a batch-100 step). Same kernel, same arguments, so the
        same numbers (``tests/test_optim.py`` compares with torch's Adam bit for bit). False, and nothing
        done, wherever torch's own step has more to do: a first step (state to create), a group that is
        not fused or uses amsgrad, capturable, differentiable, decoupled weight decay or a tensor lr,
        sparse or complex gradients, tensors of several devices or dtypes in a group, or a GradScaler's
        ``grad_scale`` / ``found_inf`` set on the optimiser."""
        fused_adam = getattr(torch, "_fused_adam_", None)
        if fused_adam is None or getattr(self, "grad_scale", None) is not None:
            return False  # no kernel, or a GradScaler's unscaling to pass on: torch's step
        if getattr(self, "found_inf", None) is not None:
            return False
        calls = []
        for group in self.param_groups:
            if (
                not group.get("fused")
                or group.get("amsgrad")
                or group.get("capturable")
                or group.get("differentiable")
                or group.get("decoupled_weight_decay")
                or torch.is_tensor(group["lr"])
            ):
                return False
            lists: tuple[list, ...] = ([], [], [], [], [])
            kinds = set()
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.get(p)
                if not state or "exp_avg" not in state or p.grad.is_sparse or p.is_complex():
                    return False
                kinds.add((p.device, p.dtype, p.grad.dtype))
                for out, value in zip(
                    lists,
                    (p, p.grad, state["exp_avg"], state["exp_avg_sq"], state["step"]),
                    strict=True,
                ):
                    out.append(value)
            if len(kinds) > 1:
                return False
            calls.append((group, lists))
        for group, (params, grads, exp_avgs, exp_avg_sqs, steps) in calls:
            if not params:
                continue
            beta1, beta2 = group["betas"]
            torch._foreach_add_(steps, 1)
            fused_adam(
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                [],
                steps,
                amsgrad=False,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=group["maximize"],
                grad_scale=None,
                found_inf=None,
            )
        return True


class LazyAdam(Adam):
    """Adam whose parameters with a sparse gradient are updated row-wise (touched rows only).

    Dense gradients take Adam's own step (fused or foreach as constructed); the state
    of every parameter has Adam's layout (``step``, ``exp_avg``, ``exp_avg_sq``), so a checkpoint loads into
    either class and a table may receive a dense gradient on one step (then all its rows are updated, as
    by Adam) and a sparse one on the next. ``amsgrad`` and ``maximize`` are not supported for sparse rows.
    With ``fused`` (the Trainer's default on CPU and CUDA), the touched rows of a group's tables take one
    fused Adam pass together (the same update up to float rounding, ~0.4 ms less per VBPR step at batch
    100 on one CPU thread).
    """

    @torch.no_grad()
    def step(self, closure=None):
        sparse = [
            (p, group)
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None and p.grad.is_sparse
        ]
        grads = [p.grad for p, _ in sparse]
        for p, _ in sparse:
            p.grad = None  # Adam's dense step skips them
        try:
            loss = super().step(closure)
        finally:
            for (p, _), grad in zip(sparse, grads, strict=True):
                p.grad = grad
        by_group: dict[int, list] = {}
        for (p, group), grad in zip(sparse, grads, strict=True):
            if group["fused"]:
                by_group.setdefault(id(group), [group]).append((p, grad))
            else:
                self._lazy_step(p, grad, group)
        for group, *tables in by_group.values():
            self._fused_rows_step(tables, group)
        return loss

    def _fused_rows_step(self, tables: list[tuple], group: dict) -> None:
        """:meth:`_lazy_step` of several tables at once with Adam's fused kernel: their touched rows
        (and moments) gathered, one fused Adam pass over them all, written back (8 kernels per table
        instead of ~15)."""
        if group["amsgrad"] or group["maximize"]:
            raise ValueError("sparse_adam supports neither amsgrad nor maximize")
        rows, params, grads, ms, vs, steps = [], [], [], [], [], []
        for p, grad in tables:
            state = self._state(p, group)
            grad = grad.coalesce()  # duplicate rows summed, rows sorted and unique
            r = grad.indices()[0]
            rows.append(r)
            params.append(p.index_select(0, r))
            grads.append(grad.values())
            ms.append(state["exp_avg"].index_select(0, r))
            vs.append(state["exp_avg_sq"].index_select(0, r))
            steps.append(state["step"])
        torch._foreach_add_(steps, 1)
        beta1, beta2 = group["betas"]
        torch._fused_adam_(
            params, grads, ms, vs, [], steps, lr=group["lr"], beta1=beta1, beta2=beta2,
            weight_decay=group["weight_decay"], eps=group["eps"], amsgrad=False, maximize=False,
        )  # fmt: skip
        for (p, _), r, new_p, m, v in zip(tables, rows, params, ms, vs, strict=True):
            p.index_copy_(0, r, new_p)
            self.state[p]["exp_avg"].index_copy_(0, r, m)
            self.state[p]["exp_avg_sq"].index_copy_(0, r, v)

    def _state(self, p: torch.Tensor, group: dict) -> dict:
        state = self.state[p]
        if not state:  # the layout of torch.optim.Adam's lazy initialisation
            on_device = group["fused"] or group["capturable"]
            state["step"] = torch.zeros(
                (), dtype=torch.float32, device=p.device if on_device else "cpu"
            )
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    def _lazy_step(self, p: torch.Tensor, grad: torch.Tensor, group: dict) -> None:
        """Adam on the rows of ``grad`` (a sparse COO gradient of a (rows, ...) table)."""
        if group["amsgrad"] or group["maximize"]:
            raise ValueError("sparse_adam supports neither amsgrad nor maximize")
        state = self._state(p, group)
        grad = grad.coalesce()  # duplicate rows summed, rows sorted and unique
        rows, g = grad.indices()[0], grad.values()
        if group["weight_decay"]:
            g = g.add(p.index_select(0, rows), alpha=group["weight_decay"])
        beta1, beta2 = group["betas"]
        state["step"] += 1
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        m = exp_avg.index_select(0, rows).lerp_(g, 1 - beta1)
        v = exp_avg_sq.index_select(0, rows).mul_(beta2).addcmul_(g, g, value=1 - beta2)
        exp_avg.index_copy_(0, rows, m)
        exp_avg_sq.index_copy_(0, rows, v)
        # p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
        if state["step"].device.type == "cpu":  # Adam's own precision: the corrections in float64
            t = float(state["step"])
            step_size, bias2 = -group["lr"] / (1 - beta1**t), (1 - beta2**t) ** 0.5
        else:  # a device tensor: no host sync
            t = state["step"]
            step_size, bias2 = (
                (1 - beta1**t).reciprocal_().mul_(-group["lr"]),
                (1 - beta2**t).sqrt_(),
            )
        denom = v.sqrt_().div_(bias2).add_(group["eps"])
        p.index_add_(0, rows, m.div_(denom).mul_(step_size))

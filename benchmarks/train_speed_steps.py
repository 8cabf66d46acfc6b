"""Section (f) of ``benchmarks/train_speed.py``: the per-step cost of VBPR at small batches.

At the batch sizes of the papers and of Cornac (100-1,024) a step's time is mostly per-step overhead,
not maths. For each batch size this times the Trainer's own step (``Trainer._update(_batch_loss(batch))``:
forward, the per-triplet penalty, backward, optimiser step) over pre-sampled batches, alternating
``optimizer=adam`` and ``optimizer=sparse_adam`` (A B A B ...) so a shared machine's drift hits both;
the report gives the median of each and their ratio. ``--profile`` prints torch.profiler's table of the
first batch size's step for both optimisers (self CPU time by operator).

Run: ``python benchmarks/train_speed.py --only steps [--step-batches 100,256,1024] [--profile]``;
``--only compile`` times ``torch.compile`` of the same step against eager (section g), ``--only
differences`` VBPR's step from the pair differences against both scores (section h), ``--only
backward`` its hand-written backward against autograd's (section i).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

OPTIMIZERS = ("adam", "sparse_adam")


def _trainer(bench, batch: int, optimizer: str):
    """A set-up Trainer of VBPR at the tutorial's sizes (its module built and attached by ``fit``)."""
    from visrec.models import create
    from visrec.models.capabilities import TrainOptions
    from visrec.training.trainer import Trainer

    built = {}

    def setup_only(model, dataset, options):
        trainer = Trainer(model, dataset)
        trainer.setup()
        built["trainer"] = trainer
        return []

    config = {"batch_size": batch, "optimizer": optimizer, "device": "cpu", "seed": bench.args.seed}
    create("vbpr", config).fit(bench.dataset, bench.features, TrainOptions(trainer=setup_only))
    return built["trainer"]


def _batches(trainer, bench, batch: int, steps: int) -> list[dict[str, torch.Tensor]]:
    from visrec.training.trainer import epoch_rng

    sample = trainer.model.sample(bench.dataset, batch * steps, epoch_rng(bench.args.seed, 1))
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sample.items()}
    return [{k: v[i * batch : (i + 1) * batch] for k, v in tensors.items()} for i in range(steps)]


def _rate(trainer, batches) -> float:
    """Triplets/s of the steps over ``batches`` (after 10 unmeasured warm-up steps)."""
    for b in batches[:10]:
        trainer._update(trainer._batch_loss(b))
    began = time.perf_counter()
    for b in batches[10:]:
        trainer._update(trainer._batch_loss(b))
    return sum(len(b["users"]) for b in batches[10:]) / (time.perf_counter() - began)


def _profile(trainer, batches, title: str) -> None:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for b in batches[:40]:
            trainer._update(trainer._batch_loss(b))
    print(f"\nprofile: {title}, 40 steps, self CPU time by operator")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def _ab_rates(bench, batch: int, modes: tuple[str, str], prepare) -> tuple[dict, int]:
    """Triplets/s of each of two ``modes`` over ``--step-repeats`` rounds, alternating which goes first;
    ``prepare(batch, mode, steps)`` returns (a trainer, its pre-sampled batches)."""
    steps = max(20, min(200, bench.args.train_triplets // batch))
    rates: dict[str, list[float]] = {m: [] for m in modes}
    for rep in range(bench.args.step_repeats):
        for mode in modes if rep % 2 == 0 else modes[::-1]:
            rates[mode].append(_rate(*prepare(batch, mode, steps)))
    return rates, steps


def _ab_table(bench, modes: tuple[str, str], prepare) -> None:
    """One line per ``--step-batches`` size: each mode's median triplets/s and second / first."""
    for batch in bench.args.step_batches:
        rates, steps = _ab_rates(bench, batch, modes, prepare)
        first, second = (statistics.median(rates[m]) for m in modes)
        spread = ", ".join(f"{m} " + "/".join(f"{r:,.0f}" for r in rates[m]) for m in modes)
        print(
            f"batch {batch:>5,}: {modes[0]} {first:>9,.0f} triplets/s  {modes[1]} {second:>9,.0f} "
            f"triplets/s  ratio {second / first:.2f}x  ({steps} steps; runs: {spread})",
            flush=True,
        )


def section_steps(bench) -> None:
    args = bench.args
    print(f"(f) VBPR steps, latent 200 / visual 100, {torch.get_num_threads()} torch threads")

    def prepare(batch, optimizer, steps):
        trainer = _trainer(bench, batch, optimizer)
        return trainer, _batches(trainer, bench, batch, steps)

    _ab_table(bench, OPTIMIZERS, prepare)
    if args.profile:
        batch = args.step_batches[0]
        for optimizer in OPTIMIZERS:
            trainer = _trainer(bench, batch, optimizer)
            _profile(trainer, _batches(trainer, bench, batch, 60), f"batch {batch}, {optimizer}")


def _switch_table(bench, title: str, switch: str, modes: tuple[str, str]) -> None:
    """A/B of VBPR's step with the class attribute ``VBPRModule.<switch>`` off (``modes[0]``) and on
    (``modes[1]``, the default it is left at), dense Adam, one line per batch size."""
    from visrec.models.vbpr import VBPRModule

    print(f"{title}, {torch.get_num_threads()} torch threads")

    def prepare(batch, mode, steps):
        setattr(VBPRModule, switch, mode == modes[1])
        trainer = _trainer(bench, batch, "adam")
        return trainer, _batches(trainer, bench, batch, steps)

    try:
        _ab_table(bench, modes, prepare)
    finally:
        setattr(VBPRModule, switch, True)


def section_differences(bench) -> None:
    """(h) VBPR's BPR step from the pair differences (one projection E (f_i - f_j) per triplet, the
    default) against both scores (E f_i and E f_j), dense Adam, A/B alternating per batch size."""
    _switch_table(
        bench,
        "(h) VBPR steps, differences vs scores",
        "scores_differences",
        ("scores", "differences"),
    )


def section_backward(bench) -> None:
    """(i) VBPR's BPR step from the pair differences with the hand-written backward
    (``visrec.models.pair_differences``, the default on the CPU) against autograd's backward of the same
    forward, dense Adam, A/B alternating per batch size."""
    _switch_table(
        bench,
        "(i) VBPR steps, autograd vs hand-written backward",
        "hand_backward",
        ("autograd", "hand"),
    )


def section_compile(bench) -> None:
    """(g) ``torch.compile`` of the Trainer's batch loss (forward + penalty; AOTAutograd compiles the
    backward with it) against the eager step, VBPR with dense Adam, A/B alternating per batch size; the
    first compiled trainer of each batch size reports its compile + 10 warm-up steps' seconds (a new
    process pays it again, less what inductor's on-disk cache saves)."""
    print(f"(g) VBPR steps, eager vs torch.compile, {torch.get_num_threads()} torch threads")
    compile_s: list[float] = []

    def prepare(batch, mode, steps):
        trainer = _trainer(bench, batch, "adam")
        batches = _batches(trainer, bench, batch, steps)
        if mode == "compiled":
            began = time.perf_counter()
            trainer._batch_loss = torch.compile(trainer._batch_loss, dynamic=False)
            for b in batches[:10]:
                trainer._update(trainer._batch_loss(b))
            compile_s.append(time.perf_counter() - began)
        return trainer, batches

    for batch in bench.args.step_batches:
        compile_s.clear()
        rates, steps = _ab_rates(bench, batch, ("eager", "compiled"), prepare)
        eager, compiled = (statistics.median(rates[m]) for m in ("eager", "compiled"))
        print(
            f"batch {batch:>5,}: eager {eager:>9,.0f} triplets/s  compiled {compiled:>9,.0f} "
            f"triplets/s  ratio {compiled / eager:.2f}x  (compile + warm-up {compile_s[0]:.1f} s "
            f"first, {statistics.median(compile_s[1:] or compile_s):.1f} s after; {steps} steps)",
            flush=True,
        )

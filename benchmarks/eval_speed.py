"""Evaluation speed: the IUI 2021 tutorial's per-user loop vs visrec's batched engine.

Two synthetic cases, each with a VBPR-like dot-product scorer (random 300-d user and item vectors):

- ``wikimedia``: the tutorial's Wikimedia shape (1,079 users x 9,636 items, ~97k events, leave-last-out).
  A per-user reference loop written the tutorial's way (score one user, argsort every item, read the truth
  positions) computes both the tutorial metrics and the full-ranking metrics; the batched engine computes
  the same two modes from one pass (``evaluate_modes``) and must give the same values (max |difference|
  printed); the speed-up is printed, and each mode alone. Two settings: "evaluation only" ranks a
  precomputed score matrix (the reference reads row views, the engine ``matrix_scorer`` block views), and
  "end-to-end" also computes the 300-d dot products (one float64 GEMV per user vs one GEMM per block).
- ``catalogue``: 100,000 items x 10,000 users; the batched engine in full mode, with peak memory (maximum
  resident set size of a fresh process, so run it alone: ``--case catalogue``). The reference loop runs on a
  sample of users to give its rate.

    .venv/bin/python benchmarks/eval_speed.py --case wikimedia --threads 2
    .venv/bin/python benchmarks/eval_speed.py --case catalogue --threads 2
    .venv/bin/python benchmarks/eval_speed.py --case wikimedia --device cuda   # ranks on the GPU
    .venv/bin/python benchmarks/eval_speed.py --case wikimedia --dtype float32 # a trained model's precision

The engine's CPU counting uses numba when installed (``visrec[fast]``); ``VISREC_NUMBA=0`` measures the
NumPy fallback.
"""

from __future__ import annotations

import argparse
import gc
import math
import resource
import sys
import time
from functools import partial

import numpy as np
import pandas as pd
import torch

from visrec.data import Dataset, Interactions, SplitSpec
from visrec.evaluation import evaluate_modes, kernels, matrix_scorer
from visrec.evaluation.engine import auto_block_size

KS = (20, 100, 200)
DIM = 300


def synthetic(n_users: int, n_items: int, n_events: int, seed: int = 0) -> Dataset:
    """Popularity-skewed (Zipf-like) random events with distinct timestamps, split leave-last-out."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_items + 1) ** 0.8
    cdf = np.cumsum(weights) / weights.sum()
    users = rng.integers(0, n_users, n_events)
    items = np.minimum(np.searchsorted(cdf, rng.random(n_events)), n_items - 1)
    frame = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in users],
            "item_id": [f"i{i}" for i in rng.permutation(n_items)[items]],
            "timestamp": rng.permutation(n_events).astype(np.int64),
        }
    )
    extra = [f"i{i}" for i in range(n_items)]
    return Dataset.build(
        Interactions.from_frame(frame),
        SplitSpec(validation=False),
        extra_item_ids=extra,
        name=f"synthetic-{n_users}x{n_items}",
    )


def vectors(
    ds: Dataset, seed: int = 1, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random vectors in (-1, 1) on a grid where every dot product is exact whatever the summation order,
    so numpy's per-user matrix-vector product and torch's block matrix product give bit-identical scores
    and the reference and the engine rank exactly the same numbers.

    float64: a 2^-20 grid (300 products of 2^-40 multiples stay below 2^53 units). float32 (what trained
    models score in): k / 256 with |k| <= 236, so 300 products of 2^-16 multiples stay below 2^24 units;
    the coarser grid also makes tied scores a little more likely."""
    gen = torch.Generator().manual_seed(seed)
    steps, top = (2**20, 2**20) if dtype == torch.float64 else (256, 236)

    def grid(n: int) -> torch.Tensor:
        values = torch.rand(n, DIM, generator=gen, dtype=torch.float64) * 2 - 1
        return (torch.round(values * top) / steps).to(dtype)

    return grid(ds.n_users), grid(ds.n_items)


def tied_users(ds: Dataset, table: np.ndarray, users: np.ndarray) -> frozenset:
    """Users one of whose truth items has the same score as some other item."""
    out = set()
    for user in users:
        truth = ds.test.indices[ds.test.indptr[user] : ds.test.indptr[user + 1]]
        if ((table[user][None, :] == table[user][truth][:, None]).sum(axis=1) > 1).any():
            out.add(int(user))
    return frozenset(out)


def reference_loop(ds: Dataset, score_row, users, window: int = 10) -> dict[str, dict]:
    """The tutorial's way: one user at a time, argsort of all items, positions of the truth items.

    Computes both the tutorial metrics and the full-ranking metrics of each user."""
    n_items = ds.n_items
    out = {"tutorial": {}, "full": {}}
    for user in users:
        scores = score_row(user)
        truth = ds.test.indices[ds.test.indptr[user] : ds.test.indptr[user + 1]]
        profile = ds.profile(user)
        # tutorial: rank all items, remove the last-10 profile items placed before each truth item
        order = np.argsort(-scores)
        position = np.empty(n_items, dtype=np.int64)
        position[order] = np.arange(n_items)
        pos = np.sort(position[truth])
        window_pos = np.sort(position[profile[-window:]])
        corrected = pos - np.searchsorted(window_pos, pos)
        out["tutorial"][user] = tutorial_values(corrected, n_items)
        # full: consumed items masked to -inf, then ranked the same way
        masked = scores.copy()
        masked[profile] = -np.inf
        order = np.argsort(-masked)
        position[order] = np.arange(n_items)
        ranks = np.sort(position[truth])
        n_neg = n_items - len(profile) - len(truth)
        out["full"][user] = full_values(ranks, n_neg)
    return out


def _dcg(ranks) -> float:
    return sum(1.0 / math.log2(r + 2) for r in ranks)


def tutorial_values(p: np.ndarray, n_items: int) -> dict[str, float]:
    n = len(p)
    auc = sum(((n_items - (pi + 1)) - (n - i)) / (n_items - n) / n for i, pi in enumerate(p, 1))
    values = {"AUC": auc, "RR": 1.0 / (p[0] + 1)}
    for k in KS:
        hits = [r for r in p if r < k]
        ideal = sum(1.0 / math.log2(j + 1) for j in range(1, len(hits) + 1))
        values |= {
            f"R@{k}": len(hits) / n,
            f"P@{k}": len(hits) / k,
            f"nDCG@{k}": _dcg(hits) / ideal if hits else 0.0,
        }
    return values


def full_values(ranks: np.ndarray, n_neg: int) -> dict[str, float]:
    n = len(ranks)
    above = ranks - np.arange(n)  # negatives above each truth item (ranks sorted ascending)
    values = {"AUC": float(np.mean((n_neg - above) / n_neg)), "RR": 1.0 / (ranks[0] + 1)}
    for k in KS:
        hits = [r for r in ranks if r < k]
        ideal = sum(1.0 / math.log2(j + 2) for j in range(min(n, k)))
        values |= {
            f"R@{k}": len(hits) / n,
            f"P@{k}": len(hits) / k,
            f"nDCG@{k}": _dcg(hits) / ideal,
        }
    return values


def max_difference(result, reference: dict, skip: frozenset = frozenset()) -> float:
    """Largest |engine - reference| over users and metrics, leaving out the users in ``skip``."""
    table = result.per_user.set_index("user_idx")
    worst = 0.0
    for user, values in reference.items():
        if user in skip:
            continue
        for key, value in values.items():
            worst = max(worst, abs(float(table.loc[user, key]) - value))
    return worst


def batched(ds, scorer, modes, block_size, users=None):
    start = time.perf_counter()
    results = evaluate_modes(
        scorer, ds, split="test", modes=modes, ks=KS, block_size=block_size, users=users
    )
    return results, time.perf_counter() - start


def timed(fn):
    """(result, wall seconds, process CPU seconds) of fn()."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM, resettable; else ru_maxrss), in MB."""
    try:
        return _status_mb("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    return _status_mb("VmRSS")


def _status_mb(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise OSError(f"no {field} in /proc/self/status")


def reset_peak() -> None:
    """Reset the peak RSS counter (Linux: writing 5 to clear_refs resets VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        pass


def run_wikimedia(
    block_size: int | None, device: str, dtype: torch.dtype, repeats: int = 10
) -> None:
    ds = synthetic(1_079, 9_636, 96_991)
    user_vecs, item_vecs = vectors(ds, dtype=dtype)
    u_np, i_np = user_vecs.numpy(), item_vecs.numpy()
    table = user_vecs @ item_vecs.T
    t_np = table.numpy()
    users = np.flatnonzero(np.diff(ds.test.indptr))
    print(ds.summary())
    tied = tied_users(ds, t_np, users)
    if tied:
        print(
            f"{len(tied)} users have a truth item whose score ties with another item: the tutorial's "
            "argsort breaks such ties by item order, visrec counts them half (DESIGN.md), so they are "
            "left out of the comparison"
        )
    u_dev, i_dev, table_dev = (t.to(device) for t in (user_vecs, item_vecs, table))
    setups = {
        "evaluation only (precomputed score matrix)": (
            lambda u: t_np[u],
            matrix_scorer(table_dev),
        ),
        "end-to-end (300-d dot products + ranking + metrics)": (
            lambda u: i_np @ u_np[u],
            lambda u: u_dev[u.to(device)] @ i_dev.T,
        ),
    }
    for title, (row, scorer) in setups.items():
        print(f"\n{title}")
        ref_runs = [timed(lambda: reference_loop(ds, row, users)) for _ in range(3)]  # noqa: B023
        reference, ref_wall, ref_cpu = min(ref_runs, key=lambda r: r[1])
        print(
            f"  reference loop (best of 3), tutorial + full metrics: {len(users)} users, "
            f"{ref_wall:.2f} s wall "
            f"({len(users) / ref_wall:,.0f} users/s), {ref_cpu:.2f} s CPU"
        )
        for modes in (("tutorial", "full"), ("tutorial",), ("full",)):
            batched(ds, scorer, modes, block_size)  # warm-up (and numba compilation)
            runs = [timed(lambda: batched(ds, scorer, modes, block_size)) for _ in range(repeats)]  # noqa: B023
            (results, _), wall, cpu = min(runs, key=lambda r: r[1])
            diff = max(max_difference(results[m], reference[m], tied) for m in modes)
            n = results[modes[0]].n_users
            aucs = ", ".join(f"{results[m]['AUC']:.5f}" for m in modes)
            print(
                f"  batched {' + '.join(modes):17s}: {wall * 1000:7.1f} ms wall "
                f"({n / wall:,.0f} users/s), {cpu * 1000:7.1f} ms CPU; max |diff| vs reference "
                f"{diff:.1e}; AUC {aucs}"
            )
            if len(modes) == 2:
                print(
                    f"  speed-up, both modes in one pass: {ref_wall / wall:.0f}x wall, "
                    f"{ref_cpu / cpu:.0f}x CPU"
                )
        if "end-to-end" not in title:
            continue
        ref_scoring = min(timed(partial(score_rows, row, users))[1] for _ in range(3))
        scoring = min(
            timed(partial(score_blocks, scorer, users, block_size, ds))[1] for _ in range(repeats)
        )
        print(
            f"  scoring alone: reference {ref_scoring * 1000:.1f} ms (per-user), visrec "
            f"{scoring * 1000:.1f} ms (per block); bound on the speed-up if ranking and metrics "
            f"cost nothing: {ref_wall / max(scoring, 1e-9):.0f}x"
        )
    print(f"\npeak RSS {peak_rss_mb():.0f} MB")


def run_catalogue(block_size: int, n_reference: int) -> None:
    ds = synthetic(10_000, 100_000, 400_000)
    user_vecs, item_vecs = vectors(ds)
    print(
        f"{ds.summary()}\npeak RSS while building data + vectors: {peak_rss_mb():.0f} MB",
        flush=True,
    )
    sample = np.flatnonzero(np.diff(ds.test.indptr))[:n_reference]
    u_np, i_np = user_vecs.numpy(), item_vecs.numpy()
    reference, ref_time, ref_cpu = timed(
        lambda: reference_loop(ds, lambda u: i_np @ u_np[u], sample)
    )
    print(
        f"reference loop (tutorial + full metrics): {len(sample)} users in {ref_time:.2f} s wall = "
        f"{len(sample) / ref_time:,.1f} users/s, {ref_cpu / len(sample) * 1000:.0f} ms CPU/user",
        flush=True,
    )
    gc.collect()
    before = rss_mb()
    reset_peak()
    (results, seconds), _, cpu = timed(
        lambda: batched(ds, lambda u: user_vecs[u] @ item_vecs.T, ("full",), block_size)
    )
    result = results["full"]
    peak = peak_rss_mb()
    diff = max_difference(result, reference["full"])
    scoring = time_scoring(
        user_vecs[result.per_user["user_idx"].to_numpy().copy()], item_vecs, block_size
    )
    print(
        f"batched full: {result.n_users} users in {seconds:.2f} s wall = "
        f"{result.n_users / seconds:,.0f} users/s ({scoring:.2f} s of it scoring), "
        f"{cpu / result.n_users * 1000:.1f} ms CPU/user; max |diff| vs reference (sample) "
        f"{diff:.1e}; AUC {result['AUC']:.5f}"
    )
    print(
        f"memory: RSS {before:.0f} MB before evaluating (data, vectors, torch), peak {peak:.0f} MB "
        f"during evaluation (+{peak - before:.0f} MB for block size {block_size})"
    )


def score_rows(row, users: np.ndarray) -> None:
    for user in users:
        row(user)


def score_blocks(scorer, users: np.ndarray, block_size: int | None, ds: Dataset) -> None:
    """Call the scorer on the engine's blocks (and wait for a GPU), without ranking."""
    block_size = block_size or auto_block_size(ds.n_items)
    for first in range(0, len(users), block_size):
        out = scorer(torch.from_numpy(users[first : first + block_size]))
    if out.is_cuda:
        torch.cuda.synchronize()


def time_scoring(user_vecs, item_vecs, block_size) -> float:
    block_size = block_size or auto_block_size(item_vecs.shape[0])
    start = time.perf_counter()
    for first in range(0, len(user_vecs), block_size):
        _ = user_vecs[first : first + block_size] @ item_vecs.T
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=["wikimedia", "catalogue"], default="wikimedia")
    parser.add_argument(
        "--block-size", type=int, default=None, help="users per block (default: the engine's)"
    )
    parser.add_argument("--device", default="cpu", help="where the wikimedia case scores and ranks")
    parser.add_argument(
        "--dtype",
        choices=["float64", "float32"],
        default="float64",
        help="score precision of the wikimedia case (both sides; exact either way)",
    )
    parser.add_argument("--reference-users", type=int, default=300)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, block size "
        f"{args.block_size or 'auto'}, counting with {'numba' if kernels.enabled() else 'NumPy'}, "
        f"{args.dtype} scores"
    )
    if args.case == "wikimedia":
        run_wikimedia(args.block_size, args.device, getattr(torch, args.dtype))
    else:
        run_catalogue(args.block_size, args.reference_users)
    return 0


if __name__ == "__main__":
    sys.exit(main())

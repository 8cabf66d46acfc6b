"""The fused numba counting kernel against NumPy; one evaluation pass for several modes; padded rows."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from eval_support import random_dataset
from visrec.errors import ConfigError
from visrec.evaluation import evaluate, evaluate_modes, kernels, matrix_scorer, ranking
from visrec.evaluation.candidates import padded
from visrec.evaluation.engine import auto_block_size

KS = (1, 5, 20)
needs_numba = pytest.mark.skipif(
    not kernels.enabled(), reason="numba kernel not installed or disabled"
)


def numpy_counts(reference: np.ndarray, queries: np.ndarray):
    greater = (reference[:, None, :] > queries[:, :, None]).sum(axis=2)
    equal = (reference[:, None, :] == queries[:, :, None]).sum(axis=2)
    return greater, equal, np.isnan(reference).sum(axis=1)


def awkward_block(rng, n_rows, n_cols, n_queries, dtype):
    """Few distinct values (ties everywhere), infinities, NaN entries; queries drawn from the rows."""
    values = np.array([-np.inf, -1.5, 0.0, 0.25, 2.0, np.inf, np.nan], dtype=dtype)
    reference = values[rng.integers(0, len(values), (n_rows, n_cols))]
    cols = rng.integers(0, n_cols, (n_rows, n_queries))
    return reference, np.take_along_axis(reference, cols, axis=1)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 37, 3), (300, 1000, 2), (64, 9, 16)])
def test_kernel_counts_equal_numpy(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    reference, queries = awkward_block(rng, *shape, dtype)
    greater, equal, nan = kernels.row_counts(reference, queries)
    want_greater, want_equal, want_nan = numpy_counts(reference, queries)
    known = ~np.isnan(queries)  # NaN queries are pads: their counts are never read
    np.testing.assert_array_equal(greater[known], want_greater[known])
    np.testing.assert_array_equal(equal[known], want_equal[known])
    np.testing.assert_array_equal(nan, want_nan)


@needs_numba
def test_kernel_splits_rows_across_threads_without_changing_counts(monkeypatch):
    rng = np.random.default_rng(3)
    reference, queries = awkward_block(rng, 97, 500, 2, np.float64)
    monkeypatch.setattr(kernels, "MIN_PARALLEL_ELEMENTS", 0)
    previous = torch.get_num_threads()
    try:
        counts = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            counts.append(kernels.row_counts(reference, queries))
    finally:
        torch.set_num_threads(previous)
    for other in counts[1:]:
        for a, b in zip(counts[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("use_kernel", [True, False])
def test_row_counts_flags_nan_rows(use_kernel, monkeypatch):
    if not use_kernel:
        monkeypatch.setitem(kernels._state, "kernel", None)  # the NumPy path
    elif not kernels.enabled():
        pytest.skip("numba not installed")
    rng = np.random.default_rng(4)
    reference, queries = awkward_block(rng, 20, 30, 2, np.float64)
    greater, equal, nan_rows = ranking.row_counts(
        torch.from_numpy(reference), torch.from_numpy(queries)
    )
    want_greater, want_equal, want_nan = numpy_counts(reference, queries)
    known = ~np.isnan(queries)
    np.testing.assert_array_equal(nan_rows.numpy(), want_nan > 0)
    np.testing.assert_array_equal(greater.numpy()[known], want_greater[known])
    np.testing.assert_array_equal(equal.numpy()[known], want_equal[known])


@pytest.fixture(scope="module")
def ds():
    return random_dataset(n_users=60, n_items=45, seed=12)


def tied_scorer(ds, seed):
    table = np.random.default_rng(seed).integers(0, 4, (ds.n_users, ds.n_items)).astype(float)
    table[table == 0] = -np.inf
    scores = torch.from_numpy(table)
    return lambda users: scores[users]


def test_numba_and_numpy_paths_give_identical_results(ds, monkeypatch):
    scorer = tied_scorer(ds, seed=1)
    first = evaluate_modes(scorer, ds, split="test", modes=("full", "tutorial"), ks=KS)
    monkeypatch.setitem(kernels._state, "kernel", None)
    second = evaluate_modes(scorer, ds, split="test", modes=("full", "tutorial"), ks=KS)
    for mode in first:
        pd.testing.assert_frame_equal(first[mode].per_user, second[mode].per_user, check_exact=True)


@pytest.mark.parametrize("split", ["test", "validation"])
def test_several_modes_in_one_pass_equal_separate_evaluations(ds, split):
    scorer = tied_scorer(ds, seed=2)
    calls = []

    def counting(users):
        calls.append(len(users))
        return scorer(users)

    modes = ("tutorial", "sampled", "full")
    together = evaluate_modes(
        counting, ds, split=split, modes=modes, ks=KS, block_size=16, n_negatives=7
    )
    assert list(together) == list(modes)
    one = evaluate_modes(scorer, ds, split=split, modes="tutorial", ks=KS)  # a single name is fine
    assert list(one) == ["tutorial"]
    with pytest.raises(ConfigError, match="no evaluation mode"):
        evaluate_modes(scorer, ds, split=split, modes=())
    assert sum(calls) == together["full"].n_users  # every user scored once for all three modes
    for mode in modes:
        alone = evaluate(scorer, ds, split=split, mode=mode, ks=KS, block_size=5, n_negatives=7)
        assert together[mode].mode == alone.mode
        assert together[mode].means == alone.means
        pd.testing.assert_frame_equal(together[mode].per_user, alone.per_user, check_exact=True)


def test_default_block_size_is_bounded_by_score_count_and_changes_nothing(ds):
    assert auto_block_size(10) == (1 << 24) // 10  # 16.8M scores per block
    assert auto_block_size(1 << 30) == 1
    scorer = tied_scorer(ds, seed=3)
    auto = evaluate(scorer, ds, split="test", ks=KS)
    small = evaluate(scorer, ds, split="test", ks=KS, block_size=3)
    pd.testing.assert_frame_equal(auto.per_user, small.per_user, check_exact=True)


def test_padded_rows_keep_order_and_pad_with_minus_one():
    values = np.array([5, 6, 7, 8, 9])
    out = padded(values, np.array([1, 0, 4, 2]), np.array([4, 0, 5, 3]))
    assert out.tolist() == [[6, 7, 8], [-1, -1, -1], [9, -1, -1], [7, -1, -1]]
    assert padded(values, np.array([2]), np.array([2])).shape == (1, 0)
    assert padded(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)).shape == (
        0,
        0,
    )


def test_matrix_scorer_returns_views_for_consecutive_users_and_gathers_others(ds):
    table = np.random.default_rng(5).standard_normal((ds.n_users, ds.n_items))
    scorer = matrix_scorer(table)
    assert scorer.numpy_users  # the engine passes NumPy indices: no torch needed
    block = scorer(np.arange(3, 9))
    assert isinstance(block, np.ndarray) and np.shares_memory(block, table)  # a view, no copy
    np.testing.assert_array_equal(block, table[3:9])
    np.testing.assert_array_equal(scorer(np.array([0, 2, 1, 3])), table[[0, 2, 1, 3]])
    np.testing.assert_array_equal(scorer(torch.tensor([0, 2, 1, 3])), table[[0, 2, 1, 3]])
    on_torch = matrix_scorer(torch.from_numpy(table))
    assert on_torch(np.arange(3, 9)).data_ptr() == torch.from_numpy(table)[3].data_ptr()
    plain = torch.from_numpy(table)
    a = evaluate(matrix_scorer(table), ds, split="test", ks=KS)
    b = evaluate(lambda users: plain[users], ds, split="test", ks=KS)
    pd.testing.assert_frame_equal(a.per_user, b.per_user, check_exact=True)
    with pytest.raises(ConfigError, match="2-D"):
        matrix_scorer(np.zeros(3))


def _counts_in_child(reference, queries, queue):
    queue.put(kernels.row_counts(reference, queries)[0].sum())


@needs_numba
def test_kernel_threads_work_in_a_forked_child(monkeypatch):
    monkeypatch.setattr(kernels, "MIN_PARALLEL_ELEMENTS", 0)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rng = np.random.default_rng(6)
        reference, queries = awkward_block(rng, 40, 50, 1, np.float64)
        want = kernels.row_counts(reference, queries)[0].sum()  # the parent's pool now exists
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=_counts_in_child, args=(reference, queries, queue))
        child.start()
        got = queue.get(timeout=60)  # an inherited, thread-less pool would never answer
        child.join(timeout=60)
    finally:
        torch.set_num_threads(previous)
    assert got == want and child.exitcode == 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_scores_rank_like_their_float64_values(ds, dtype):
    table = torch.from_numpy(np.random.default_rng(7).standard_normal((ds.n_users, ds.n_items)))
    low = table.to(dtype)  # ties appear where values round together; both sides see the same values
    a = evaluate_modes(matrix_scorer(low), ds, split="test", modes=("full", "tutorial"), ks=KS)
    b = evaluate_modes(
        matrix_scorer(low.double()), ds, split="test", modes=("full", "tutorial"), ks=KS
    )
    for mode in a:
        pd.testing.assert_frame_equal(a[mode].per_user, b[mode].per_user, check_exact=True)


@needs_numba
def test_prefetch_loads_the_kernel_in_the_background_once():
    thread = kernels.prefetch()
    assert thread is not None and kernels.prefetch() is thread  # idempotent
    thread.join(120)
    assert not thread.is_alive() and kernels.enabled()
    reference, queries = awkward_block(np.random.default_rng(5), 7, 40, 2, np.float32)
    greater, equal, _ = kernels.row_counts(reference, queries)
    want_greater, want_equal, _ = numpy_counts(reference, queries)
    known = ~np.isnan(queries)
    np.testing.assert_array_equal(greater[known], want_greater[known])
    np.testing.assert_array_equal(equal[known], want_equal[known])


def _fresh_interpreter(code: str) -> list[str]:
    """What ``code`` prints in a new Python process (which has imported nothing yet), split in words."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@needs_numba
def test_the_kernel_loads_once_the_process_has_counted_enough(tmp_path):
    """Small evaluations count with NumPy (importing numba would cost more than it saves); the kernel is
    loaded once the process's announced comparisons reach KERNEL_MIN_WORK, and used from then on."""
    code = (
        "import sys, numpy as np\n"
        "from visrec.evaluation import kernels\n"
        "ref, q = np.array([[1.0, 2.0, 3.0]]), np.array([[2.0]])\n"
        "kernels.expect(kernels.KERNEL_MIN_WORK // 2)\n"
        "print(kernels.row_counts(ref, q) is None, 'numba' in sys.modules)\n"
        "kernels.expect(kernels.KERNEL_MIN_WORK // 2)\n"
        "kernels.prefetch().join(120)\n"
        "g, e, n = kernels.row_counts(ref, q)\n"
        "print(int(g[0, 0]), int(e[0, 0]), 'numba' in sys.modules)\n"
    )
    assert _fresh_interpreter(code) == ["True", "False", "1", "1", "True"]


@needs_numba
@pytest.mark.parametrize("threshold", ["1", "kernels.KERNEL_MIN_WORK"])
def test_an_evaluation_loads_the_kernel_only_when_it_is_large_enough(threshold):
    code = (
        "import sys, numpy as np\n"
        "from visrec.evaluation import evaluate, kernels, matrix_scorer\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from eval_support import random_dataset\n"
        f"kernels.KERNEL_MIN_WORK = {threshold}\n"
        "ds = random_dataset(n_users=30, n_items=40, seed=1)\n"
        "table = np.random.default_rng(0).standard_normal((ds.n_users, ds.n_items))\n"
        "r = evaluate(matrix_scorer(table), ds, split='test', mode='tutorial')\n"
        "print(kernels.ready(), 'numba' in sys.modules, 'torch' in sys.modules)\n"
    )
    loaded = "True" if threshold == "1" else "False"
    assert _fresh_interpreter(code) == [
        loaded,
        loaded,
        "False",
    ]  # and a NumPy scorer needs no torch


def test_prefetch_is_off_when_numba_is_disabled(monkeypatch):
    monkeypatch.setenv("VISREC_NUMBA", "0")
    assert kernels.prefetch() is None


@needs_numba
def test_unwritable_cache_folder_falls_back_silently(tmp_path):
    """A read-only install: numba cannot save the compiled kernel; counts are still computed."""
    import subprocess
    import sys

    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    code = (
        "import numpy as np\n"
        "from visrec.evaluation import kernels\n"
        "loaded = kernels.enabled()\n"
        "g, e, n = kernels.row_counts(np.array([[1.0, 2.0, 3.0]]), np.array([[2.0]]))\n"
        "print(int(g[0, 0]), int(e[0, 0]), loaded)\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(blocked / "cache")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1", "True"]

"""Fused CPU counting kernel for the ranking step (numba, optional: ``pip install 'visrec[fast]'``).

For each row ``b`` of a score block and each query score ``s = queries[b, j]`` the kernel counts, in one
pass over the row, the entries strictly greater than ``s`` and those equal to ``s``, and for ``j == 0`` also
the NaN entries (so the scorer's NaN check costs no pass of its own). NumPy needs one pass per comparison
plus one per reduction, and the block does not stay in cache between them; the kernel reads each row once
while it is in L1/L2. Rows are split across :func:`visrec._threads.cpu_threads` threads (the kernel releases
the GIL): torch's setting when torch is loaded, ``visrec --threads`` otherwise; no second threading runtime
is started.

When it is loaded: importing numba and loading the compiled code costs ~0.6-0.8 s of a process (the code
itself is cached on disk, numba ``cache=True``: ``__pycache__`` next to this file, or ``NUMBA_CACHE_DIR``;
where neither is writable, e.g. a read-only install, numba compiles in memory each process, silently).
NumPy counts ~1.7 ns per comparison here, the kernel ~0.5 ns, so the kernel only pays for itself over
~5e8 comparisons. The engine announces each evaluation's comparisons (:func:`expect`); once a process's total
reaches :data:`KERNEL_MIN_WORK` (at once for one large evaluation; after a few for a training run that
validates every epoch: rent until the rent reaches the price) the kernel is loaded, and every count after
that uses it. Until then counts use NumPy. :func:`prefetch` (in a background thread; counts use NumPy
until it is ready) and :func:`enabled` load it regardless.

The counts are exact integers, identical to NumPy's (``tests/test_eval_kernels.py`` compares both on
ties, NaN pads and infinities), so results never depend on which path ran. Without numba, or with
``VISREC_NUMBA=0``, :func:`row_counts` returns ``None`` and the caller uses NumPy.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from visrec._threads import cpu_threads

log = logging.getLogger(__name__)

MIN_PARALLEL_ELEMENTS = 1 << 18
"""Blocks with fewer score entries than this run on one thread (dispatch would cost more than it saves)."""

_state: dict[str, object] = {}
_lock = threading.Lock()


KERNEL_MIN_WORK = 1 << 29
"""Comparisons (truth items x catalogue, summed over a process's evaluations) after which the kernel is
loaded: ~0.65 s more of NumPy counting than of the kernel's, about what loading it costs."""


def enabled() -> bool:
    """Whether the numba kernel is used (numba importable and ``VISREC_NUMBA`` not ``0``); loads it."""
    return _kernel() is not None


def ready() -> bool:
    """Whether the kernel is loaded and counts use it now (never loads it)."""
    return _state.get("kernel") is not None


def expect(work: int) -> None:
    """Count ``work`` comparisons an evaluation is about to make; when the process's total reaches
    :data:`KERNEL_MIN_WORK`, load the kernel now (in this thread: numba's import and loading hold the GIL,
    so a background load would mostly slow the counting it overlaps)."""
    with _lock:
        total = int(_state.get("work", 0)) + int(work)
        _state["work"] = total
    if total >= KERNEL_MIN_WORK:
        _kernel()


def prefetch() -> threading.Thread | None:
    """Import numba and load (or compile) the kernel for float32 and float64 scores in a background
    thread; idempotent. Counts use NumPy until it is ready. ``None`` when disabled by ``VISREC_NUMBA=0``."""
    if os.environ.get("VISREC_NUMBA", "1") == "0":
        return None
    with _lock:
        thread = _state.get("prefetch")
        if thread is None:
            thread = threading.Thread(target=_warm, name="visrec-numba-prefetch", daemon=True)
            _state["prefetch"] = thread
            thread.start()
            # an interpreter exiting during an import in a daemon thread can abort: wait for it
            atexit.register(thread.join, 30.0)
    return thread


def _warm() -> None:
    try:
        _kernel()
        for dtype in (np.float32, np.float64):  # one tiny call per dtype loads its cached code
            row_counts(np.zeros((1, 1), dtype), np.zeros((1, 1), dtype))
    except Exception as exc:  # the first real call reports any problem itself
        log.debug("kernel prefetch failed: %s", exc)


def row_counts(
    reference: np.ndarray, queries: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(greater, equal, nan)``: ``greater[b, j] = #{reference[b] > queries[b, j]}``, ``equal`` likewise
    for ``==`` (int64, shape of ``queries``) and ``nan[b]`` the NaN entries of ``reference[b]`` (only
    counted when ``queries`` has a column; else zeros). ``None`` when the kernel is unavailable.

    ``reference`` and ``queries`` are float32 or float64 arrays of the same dtype.
    """
    none = np.zeros(reference.shape[0], dtype=np.int64)
    out = history_counts(reference, queries, np.zeros(0, np.int64), none, none, 0)
    return None if out is None else out[:3]


def history_counts(
    reference: np.ndarray,
    queries: np.ndarray,
    items: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    window: int,
) -> tuple[np.ndarray, ...] | None:
    """:func:`row_counts` plus the same counts over a subset of each row: ``(greater, equal, nan,
    h_greater, h_equal, w_greater, w_equal)``.

    Row ``b``'s subset is ``reference[b, items[starts[b]:ends[b]]]`` (its history: distinct item
    indices), counted whole (``h_``) and over its last ``window`` entries (``w_``). The engine subtracts
    them from the row counts to rank among unconsumed items (full mode) or outside the last-10 window
    (tutorial mode) without gathering the history's scores. ``None`` when the kernel is unavailable or not
    loaded (yet): see :func:`expect`.
    """
    kernel = _state.get("kernel")  # never loads it here
    if kernel is None:
        return None
    reference = np.ascontiguousarray(reference)
    queries = np.ascontiguousarray(queries, dtype=reference.dtype)
    items, starts, ends = (np.ascontiguousarray(a, dtype=np.int64) for a in (items, starts, ends))
    n_rows = reference.shape[0]
    counts = [np.empty(queries.shape, dtype=np.int64) for _ in range(6)]
    nan = np.zeros(n_rows, dtype=np.int64)
    out = (*counts[:2], nan, *counts[2:])
    threads = min(cpu_threads(), n_rows)
    if threads <= 1 or reference.size < MIN_PARALLEL_ELEMENTS:
        kernel(reference, queries, items, starts, ends, window, *out)
        return out
    step = -(-n_rows // threads)
    parts = [slice(first, first + step) for first in range(0, n_rows, step)]
    futures = [
        _pool(threads).submit(
            kernel,
            reference[p],
            queries[p],
            items,
            starts[p],
            ends[p],
            window,
            *(a[p] for a in out),
        )
        for p in parts
    ]
    for future in futures:
        future.result()
    return out


def _pool(threads: int) -> ThreadPoolExecutor:
    with _lock:
        pool = _state.get("pool")
        # a new pool when the thread count grew, or in a forked child (the parent's worker threads
        # do not exist there, and the inherited pool would never run a task)
        if pool is None or _state["pool_size"] < threads or _state["pool_pid"] != os.getpid():
            pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="visrec-count")
            _state.update(pool=pool, pool_size=threads, pool_pid=os.getpid())
        return pool


def _kernel():
    if "kernel" not in _state:
        with _lock:
            if "kernel" not in _state:
                _state["kernel"] = _compile()
    return _state["kernel"]


def _compile():
    if os.environ.get("VISREC_NUMBA", "1") == "0":
        log.info("VISREC_NUMBA=0: ranking counts use NumPy")
        return None
    try:
        import numba
    except ImportError:
        log.info("numba is not installed: ranking counts use NumPy (pip install 'visrec[fast]')")
        return None
    try:
        return numba.njit(nogil=True, cache=True)(_count_rows)
    except RuntimeError:  # no writable cache location (read-only install, no user cache dir)
        return numba.njit(nogil=True)(_count_rows)


def _count_rows(  # pragma: no cover (compiled by numba)
    reference, queries, items, starts, ends, window, greater, equal, nan, h_gt, h_eq, w_gt, w_eq
):
    n_rows, n_cols = reference.shape
    n_queries = queries.shape[1]
    for b in range(n_rows):
        row = reference[b]
        for j in range(n_queries):
            s = queries[b, j]
            g = np.int32(0)
            e = np.int32(0)
            c = np.int32(0)
            for i in range(n_cols):
                x = row[i]
                g += np.int32(x > s)
                e += np.int32(x == s)
                if j == 0:
                    c += np.int32(x != x)
            greater[b, j] = g
            equal[b, j] = e
            if j == 0:
                nan[b] = c
            # the row's history, whole and its last `window` entries (the row is still in cache)
            first_in_window = ends[b] - window
            g = e = wg = we = np.int32(0)
            for k in range(starts[b], ends[b]):
                x = row[items[k]]
                above = np.int32(x > s)
                same = np.int32(x == s)
                g += above
                e += same
                if k >= first_in_window:
                    wg += above
                    we += same
            h_gt[b, j] = g
            h_eq[b, j] = e
            w_gt[b, j] = wg
            w_eq[b, j] = we

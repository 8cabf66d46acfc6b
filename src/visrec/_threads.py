"""The CPU thread count visrec's numeric work uses, set once (``visrec --threads N``) and read without
importing torch: a process that never needs torch (evaluating exported factors) never loads it.

:func:`set_cpu_threads` applies to torch when torch is loaded and, for libraries not loaded yet, through the
environment they read at start-up (OpenMP, MKL, OpenBLAS: torch's and NumPy's BLAS).
"""

from __future__ import annotations

import os
import sys

_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_state: dict[str, int] = {}


def set_cpu_threads(threads: int) -> None:
    """Use ``threads`` CPU threads from now on (torch's intra-op pool, BLAS, the ranking kernel)."""
    _state["threads"] = int(threads)
    for name in _ENV:
        os.environ[name] = str(int(threads))
    torch = sys.modules.get("torch")  # loaded already, or not needed
    if torch is not None:
        torch.set_num_threads(int(threads))


def cpu_threads() -> int:
    """The thread count in force: torch's when torch is loaded (it may have been set there directly),
    else :func:`set_cpu_threads`'s, else ``OMP_NUM_THREADS``, else the usable cores."""
    torch = sys.modules.get("torch")  # loaded already, or not needed
    if torch is not None:
        return torch.get_num_threads()
    if "threads" in _state:
        return _state["threads"]
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)

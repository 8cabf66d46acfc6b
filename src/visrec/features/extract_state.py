"""The state of an interrupted extraction: ``.<out>.partial/`` (see :mod:`visrec.features.extract`).

``plan.json`` (settings, output shape, item count), ``ids.txt``, a preallocated ``features.npy``,
``done.npy`` (0 pending, 1 done, 2 unreadable) and ``failed.jsonl``. A resumed run checks that all of them
match the plan; a damaged or tampered folder gives one clear error suggesting ``--overwrite``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from visrec._io import read_json, write_json
from visrec.errors import ConfigError, DataError
from visrec.features.store import FEATURES

log = logging.getLogger(__name__)

PLAN, DONE, FAILED_LOG = "plan.json", "done.npy", "failed.jsonl"


def open_partial(
    partial: Path, plan: dict, ids: list[str], *, resume: bool, overwrite: bool
) -> None:
    if partial.exists():
        if resume and not overwrite:
            if _plan_matches(partial, plan, ids):
                done = np.load(partial / DONE, mmap_mode="r")
                log.info(
                    "resuming %s: %d of %d items already done",
                    partial,
                    int((done > 0).sum()),
                    len(ids),
                )
                return
            log.warning("%s is incomplete or damaged; starting again", partial)
        elif not overwrite:
            raise ConfigError(
                f"an interrupted run exists at {partial}: pass --resume to continue "
                "it or --overwrite to start again"
            )
        shutil.rmtree(partial)
    tmp = partial.with_name(partial.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    dtype = np.float16 if plan["config"]["dtype"] == "float16" else np.float32
    np.lib.format.open_memmap(
        tmp / FEATURES, mode="w+", dtype=dtype, shape=(len(ids), *plan["shape"])
    ).flush()
    np.save(tmp / DONE, np.zeros(len(ids), dtype=np.uint8))
    (tmp / "ids.txt").write_text("".join(i + "\n" for i in ids), encoding="utf-8")
    (tmp / FAILED_LOG).touch()
    write_json(tmp / PLAN, plan)
    os.replace(tmp, partial)


def _plan_matches(partial: Path, plan: dict, ids: list[str]) -> bool:
    try:
        old = read_json(partial / PLAN)
        old_ids = (partial / "ids.txt").read_text(encoding="utf-8").splitlines()
        ok = (partial / FEATURES).is_file() and (partial / DONE).is_file()
    except (OSError, ValueError):
        return False
    if old != json.loads(json.dumps(plan)) or old_ids != ids or not ok:
        raise ConfigError(
            f"cannot resume {partial}: it was started with different settings or "
            "images; pass --overwrite to start again"
        )
    _check_partial_arrays(partial, plan, len(ids))
    return True


def _check_partial_arrays(partial: Path, plan: dict, n: int) -> None:
    """The state arrays of an interrupted run must be plain arrays of the planned shapes."""
    dtype = np.float16 if plan["config"]["dtype"] == "float16" else np.float32
    expected = {FEATURES: (np.dtype(dtype), (n, *plan["shape"])), DONE: (np.dtype(np.uint8), (n,))}
    for name, (want_dtype, want_shape) in expected.items():
        try:
            array = np.load(partial / name, mmap_mode="r", allow_pickle=False)
            problem = None
            if array.dtype != want_dtype or array.shape != want_shape:
                problem = f"{array.dtype}{array.shape}, expected {want_dtype}{want_shape}"
            elif name == DONE and int(array.max(initial=0)) > 2:
                problem = "unknown status values"
        except (OSError, ValueError, EOFError) as exc:
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if problem is not None:
            raise DataError(
                f"damaged interrupted extraction ({problem}); pass --overwrite to start again",
                path=partial / name,
            )


def read_failed(path: Path, ids: list[str], done: np.ndarray) -> list[dict]:
    records = {}
    fix = "pass --overwrite to extract again"
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                records[str(record["item_id"])] = record
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"damaged list of unreadable images ({exc!r}); {fix}", path=path) from None
    failed_ids = {ids[i] for i in np.flatnonzero(done == 2)}
    return [
        records.get(i, {"item_id": i, "path": "", "reason": "unknown"}) for i in sorted(failed_ids)
    ]

"""The peer benchmark harness (benchmarks/peers) never loops forever: bounded negative retries, a
sampling quota the tutorial's notebook can meet, and a per-process timeout."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

PEERS = Path(__file__).resolve().parents[1] / "benchmarks" / "peers"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"peers_{name}", PEERS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    sys.path.insert(0, str(PEERS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(PEERS))
    return module


def test_triplets_of_a_user_who_consumed_every_item_stop_with_a_message():
    data = _module("data")
    full = SimpleNamespace(
        profile_indptr=np.array([0, 3]), profile_items=np.array([0, 1, 2]), n_items=3, n_users=1
    )
    with pytest.raises(SystemExit, match="consumed \\(nearly\\) every item; use a larger --scale"):
        data.triplets(full, 5, np.random.default_rng(0))


def test_sampling_quota_shrinks_a_request_the_notebook_could_never_meet(tmp_path):
    data = _module("data")
    info = data.prepare(tmp_path, scale=0.005)
    asked = round(5_000_000 * 0.005)  # what --scale 0.005 asks of the notebook
    used, note = data.sampling_quota(tmp_path, asked)
    assert used < asked and "it would retry forever" in note
    from visrec.data import open_dataset

    dataset = open_dataset(tmp_path / "visrec-data").build()
    k = np.diff((dataset.train + dataset.targets("validation")).tocsr().indptr)
    k = k[k > 0]
    per_user = np.ceil(used / len(k)) + np.ceil(max(1, used // 10) / len(k))
    # every user's quota is at most 3/4 of its distinct (user, positive, negative) triplets
    assert per_user <= 0.75 * (k * (info["items"] - k)).min() < asked / len(k)
    assert data.sampling_quota(tmp_path, 10) == (10, None)


def test_a_side_that_hangs_is_stopped_by_the_timeout():
    run = _module("run")
    with pytest.raises(SystemExit, match="timed out after 1 s"):
        run.timed([sys.executable, "-c", "import time; time.sleep(60)"], timeout=1)

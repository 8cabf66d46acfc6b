"""Evaluating a dot-product run from its saved factors: no torch, no pandas, the same numbers."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from visrec.cli import main
from visrec.errors import DataError
from visrec.evaluation import evaluate_modes
from visrec.evaluation.results import write_csv
from visrec.models.factors import FILES, DotScorer, load_factors
from visrec.runs import DataSpec, load_run, train_run

SRC = str(Path(__file__).resolve().parents[1] / "src")
MODES = ("full", "tutorial", "sampled")


@pytest.fixture(scope="module")
def features(demo_dir, tmp_path_factory):
    from visrec.data import open_dataset
    from visrec.features import FeatureStore

    ids = open_dataset(demo_dir).build().items.ids
    rows = np.random.default_rng(0).normal(size=(len(ids), 16)).astype(np.float32)
    path = tmp_path_factory.mktemp("factors") / "feats"
    FeatureStore.write(path, ids, rows, {"backbone": "random", "layer": "pooled"})
    return path


@pytest.fixture(scope="module")
def vbpr_run(demo_dir, features, tmp_path_factory):
    out = tmp_path_factory.mktemp("factors") / "vbpr"
    config = {"epochs": 2, "factors": 6, "visual_factors": 4, "batch_size": 64, "device": "cpu"}
    train_run("vbpr", DataSpec(str(demo_dir)), out, config=config, features=str(features))
    return out


def test_a_dot_product_model_saves_its_factors_with_checksums(vbpr_run):
    meta = json.loads((vbpr_run / "model" / "model.json").read_text())
    assert set(meta["factors"]) == {"users", "items"}
    run = load_run(vbpr_run)
    users, items = run.model.dot_factors()
    scorer = load_factors(vbpr_run / "model")
    np.testing.assert_array_equal(scorer.users, users.numpy())
    np.testing.assert_array_equal(scorer.items, items.numpy())
    assert meta["factors"]["items"]["shape"] == [run.dataset.n_items, items.shape[1]]


def test_profile_based_and_non_dot_models_save_no_factors(demo_dir, features, tmp_path):
    for name in ("pop", "curatornet"):
        config = {"epochs": 1} if name == "curatornet" else {}
        out = tmp_path / name
        feats = str(features) if name == "curatornet" else None
        train_run(name, DataSpec(str(demo_dir)), out, config=config, features=feats)
        assert "factors" not in json.loads((out / "model" / "model.json").read_text())
        assert load_factors(out / "model") is None
        assert not (out / "model" / FILES["users"]).exists()


def test_evaluating_from_the_files_equals_evaluating_the_loaded_model(vbpr_run, tmp_path):
    run = load_run(vbpr_run)
    scorer = run.model.scorer(run.dataset, "test")
    assert isinstance(scorer, DotScorer)  # on the CPU the model scores through its factors
    direct = evaluate_modes(scorer, run.dataset, split="test", modes=MODES, n_negatives=10)
    assert main(["evaluate", str(vbpr_run), *[f"--mode={m}" for m in MODES], "--negatives=10"]) == 0
    for mode, result in direct.items():
        stem = "test-sampled10" if mode == "sampled" else f"test-{mode}"
        stored = json.loads((vbpr_run / "eval" / f"{stem}.json").read_text())
        assert stored["means"] == result.means  # exactly: the same scorer over the same floats
        assert stored["meta"]["model"] == "vbpr"
        path = tmp_path / f"{stem}.csv"
        result.to_csv(path)
        assert path.read_bytes() == (vbpr_run / "eval" / f"{stem}.csv").read_bytes()


def test_visrec_evaluate_of_factors_imports_neither_torch_nor_pandas(vbpr_run):
    probe = (
        "import sys\n"
        "from visrec.cli import main\n"
        f"code = main(['--threads', '1', 'evaluate', {str(vbpr_run)!r}, '--mode', 'tutorial', "
        "'--force'])\n"
        "print(code, sorted(m for m in ('torch', 'pandas', 'numba') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "0 []"


@pytest.mark.parametrize(
    "damage", ["bytes", "missing", "shape"], ids=["changed", "missing", "wrong-shape"]
)
def test_damaged_factors_are_refused_with_one_line(vbpr_run, tmp_path, damage, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(vbpr_run, run)
    items = run / "model" / FILES["items"]
    if damage == "bytes":
        data = bytearray(items.read_bytes())
        data[-1] ^= 0xFF
        items.write_bytes(bytes(data))
    elif damage == "missing":
        items.unlink()
    else:  # a consistent file and checksum of the wrong shape
        meta_path = run / "model" / "model.json"
        meta = json.loads(meta_path.read_text())
        buffer = io.BytesIO()
        np.save(buffer, np.zeros((3, 2), np.float32))
        items.write_bytes(buffer.getvalue())
        import hashlib

        meta["factors"]["items"] |= {
            "sha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
            "shape": [3, 2],
        }
        meta_path.write_text(json.dumps(meta))
    with pytest.raises(DataError, match="factors|SHA-256"):
        load_factors(run / "model")
    stored = run / "eval" / "test-full.json"
    stored.parent.mkdir(exist_ok=True)
    stored.write_text("earlier result")
    capsys.readouterr()
    assert main(["evaluate", str(run), "--force"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1
    assert FILES["items"] in err or "factors" in err
    assert stored.read_text() == "earlier result"  # a failed run clobbers nothing


def test_the_csv_writer_writes_what_pandas_writes():
    columns = {
        "user_id": np.array(["a", 'b"q', "c,d", "e\nf"], dtype=object),
        "user_idx": np.array([0, 1, 2, 3], dtype=np.int64),
        "first_hit_rank": np.array([np.nan, 1.0, 0.5, 3.0]),
        "AUC": np.array([0.1, 1 / 3, np.inf, -0.0]),
        "R@20": np.array([1e-300, 2.5e20, 7.0, np.nan]),
    }
    ours = io.StringIO()
    write_csv(ours, columns)
    theirs = io.StringIO()
    pd.DataFrame(columns).to_csv(theirs, index=False, float_format="%.17g")
    assert ours.getvalue() == theirs.getvalue()


def test_threads_set_before_torch_is_loaded_reach_torch():
    probe = (
        "from visrec._threads import cpu_threads, set_cpu_threads\n"
        "set_cpu_threads(1)\n"
        "before = cpu_threads()\n"
        "import torch\n"
        "print(before, torch.get_num_threads())\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1"]

"""`visrec evaluate RUN_DIR`: stored metrics and per-user values, never silently overwritten."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from visrec.cli import main
from visrec.errors import VisrecError
from visrec.evaluation import evaluate
from visrec.runs import DataSpec, eval_paths, evaluate_run, load_evaluation, load_run, train_run


@pytest.fixture(scope="module")
def pop_run(demo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("evalcli") / "pop"
    train_run("pop", DataSpec(str(demo_dir)), out)
    return out


def test_evaluate_writes_means_and_per_user_values(pop_run, capsys):
    assert main(["evaluate", str(pop_run)]) == 0
    json_path, csv_path = eval_paths(pop_run, "test", "full")
    assert json_path.name == "test-full.json" and csv_path.name == "test-full.csv"
    stored = json.loads(json_path.read_text())
    run = load_run(pop_run)
    direct = evaluate(run.model.score, run.dataset, split="test")
    assert stored["means"] == pytest.approx(direct.means)
    assert stored["meta"]["model"] == "pop" and stored["split"] == "test"
    table = pd.read_csv(csv_path, dtype={"user_id": str})
    assert len(table) == direct.n_users
    assert table["AUC"].mean() == pytest.approx(direct.means["AUC"])
    assert "wrote" in capsys.readouterr().out
    again = load_evaluation(pop_run, "test")
    assert again.means == pytest.approx(direct.means) and again.n_users == direct.n_users


def test_an_earlier_evaluation_is_refused_then_replaced_with_force(pop_run, capsys):
    evaluate_run(pop_run, split="validation", existing="overwrite")
    json_path, _ = eval_paths(pop_run, "validation", "full")
    before = json_path.read_text()
    capsys.readouterr()
    assert main(["evaluate", str(pop_run), "--split", "validation"]) == 2
    err = capsys.readouterr().err
    assert str(json_path) in err and "--force" in err
    assert json_path.read_text() == before
    assert main(["evaluate", str(pop_run), "--split", "validation", "--force"]) == 0
    assert json.loads(json_path.read_text())["split"] == "validation"


def test_sampled_and_tutorial_modes_have_their_own_files(pop_run):
    assert main(["evaluate", str(pop_run), "--mode", "sampled", "--negatives", "10"]) == 0
    assert main(["evaluate", str(pop_run), "--mode", "tutorial"]) == 0
    sampled = json.loads((pop_run / "eval" / "test-sampled10.json").read_text())
    assert sampled["mode"] == "sampled@10" and "AUC[sampled@10]" in sampled["means"]
    assert json.loads((pop_run / "eval" / "test-tutorial.json").read_text())["mode"] == "tutorial"


def test_not_a_run_and_unfinished_runs_are_clear_errors(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "no run.json" in capsys.readouterr().err
    (tmp_path / "run.json").write_text(json.dumps({"status": "running"}))
    with pytest.raises(VisrecError, match="has not finished"):
        evaluate_run(tmp_path)
    assert not (tmp_path / "eval").exists()


def test_several_modes_from_one_command(demo_dir, tmp_path, capsys):
    run_dir = tmp_path / "pop"
    train_run("pop", DataSpec(str(demo_dir)), run_dir)
    assert main(["evaluate", str(run_dir), "--mode", "full", "--mode", "tutorial"]) == 0
    assert capsys.readouterr().out.count("wrote") == 2
    run = load_run(run_dir)
    for mode in ("full", "tutorial"):
        stored = load_evaluation(run_dir, "test", mode)
        direct = evaluate(run.model.score, run.dataset, split="test", mode=mode)
        assert stored.means == pytest.approx(direct.means, abs=1e-12)
    # one of the two exists already: refused before anything is computed or written
    sampled_json, _ = eval_paths(run_dir, "test", "sampled")
    tutorial_json, _ = eval_paths(run_dir, "test", "tutorial")
    before = tutorial_json.read_text()
    assert main(["evaluate", str(run_dir), "--mode", "sampled", "--mode", "tutorial"]) == 2
    assert str(tutorial_json) in capsys.readouterr().err
    assert not sampled_json.exists() and tutorial_json.read_text() == before


def test_threads_option_sets_torch_threads(capsys):
    import torch

    previous = torch.get_num_threads()
    try:
        assert main(["--threads", "1", "models"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)
    capsys.readouterr()
    assert main(["--threads", "0", "models"]) == 2
    assert "--threads" in capsys.readouterr().err


def test_cold_split_run_and_cold_modes_through_the_cli(demo_dir, tmp_path, capsys):
    from visrec.data import open_dataset
    from visrec.features import FeatureStore

    ids = open_dataset(demo_dir).build().items.ids
    feats = np.random.default_rng(0).normal(size=(len(ids), 8)).astype(np.float32)
    FeatureStore.write(tmp_path / "feats", ids, feats, {"backbone": "random", "layer": "pooled"})
    out = tmp_path / "visrank-cold"
    args = ["train", "visrank", "--data", str(demo_dir), "-o", str(out), "--split", "cold-items"]
    args += ["--features", str(tmp_path / "feats")]
    assert main([*args, "--cold-fraction", "0.2", "--split-seed", "3"]) == 0
    recorded = json.loads((out / "run.json").read_text())["data"]["split"]
    assert recorded["method"] == "cold-items" and recorded["cold_fraction"] == 0.2
    run = load_run(out)  # the run rebuilds the same cold sets from its record
    assert len(run.dataset.cold_items("test")) == round(0.2 * run.dataset.n_items)
    capsys.readouterr()
    metrics = ["--metric", "AUC", "--metric", "MAP", "--metric", "coverage", "--ks", "5"]
    assert main(["evaluate", str(out), "--mode", "cold", "--mode", "mixed", *metrics]) == 0
    cold = json.loads((out / "eval" / "test-cold.json").read_text())
    assert cold["mode"] == "cold"
    assert list(cold["means"]) == ["AUC[cold]", "MAP@5[cold]", "coverage@5[cold]"]
    table = pd.read_csv(out / "eval" / "test-mixed.csv", dtype={"user_id": str})
    assert {"AUC[mixed]", "MAP@5[mixed]"} <= set(table.columns)
    assert "coverage@5[mixed]" not in table.columns


def test_cold_modes_refuse_a_model_that_cannot_score_new_items(demo_dir, tmp_path, capsys):
    out = tmp_path / "pop-cold"
    args = ["train", "pop", "--data", str(demo_dir), "-o", str(out), "--split", "cold-items"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--mode", "cold"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: pop cannot score new items") and "Traceback" not in err
    assert not (out / "eval" / "test-cold.json").exists()
    assert main(["evaluate", str(out), "--mode", "full"]) == 0  # the warm question is still fine


def test_cold_mode_on_a_warm_run_is_a_clear_error(pop_run, capsys):
    assert main(["evaluate", str(pop_run), "--mode", "cold"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "cold-item split" in err and "Traceback" not in err

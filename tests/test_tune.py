"""Hyper-parameter search (visrec.tuning): search spaces, the Trainer's epoch hook, selection on
validation only, resume after an interrupted search, the report, `visrec tune` end to end."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

pytest.importorskip("optuna")

from visrec.cli import main as visrec  # noqa: E402
from visrec.errors import ConfigError  # noqa: E402
from visrec.models import create, registry  # noqa: E402
from visrec.models.base import Recommender  # noqa: E402
from visrec.models.capabilities import TrainOptions  # noqa: E402
from visrec.models.config import Config, TrainConfig  # noqa: E402
from visrec.models.search import Choice, FloatRange, IntRange, check_space, parse_param  # noqa: E402
from visrec.runs import data_spec, evaluate_run  # noqa: E402
from visrec.training import fit_model  # noqa: E402
from visrec.tuning import TuneSettings, tune  # noqa: E402
from visrec.tuning import study as study_module  # noqa: E402

TINY_BPR = {"epochs": 2, "factors": 4, "batch_size": 256, "device": "cpu"}


# --- search spaces ------------------------------------------------------------------------------------
def test_parse_param_kinds():
    assert parse_param("lr", "log:1e-4..1e-1") == FloatRange(1e-4, 1e-1, log=True)
    assert parse_param("dropout", "0.1..0.5") == FloatRange(0.1, 0.5)
    assert parse_param("factors", "8..64") == IntRange(8, 64)
    assert parse_param("factors", "16,32") == Choice((16, 32))
    assert parse_param("loss", "bpr,warp") == Choice(("bpr", "warp"))
    assert parse_param("factors", [16, 32]) == Choice((16, 32))


@pytest.mark.parametrize("spec", ["log:0..1", "5..1", "log:bpr", "a..b", "", "1..", {"x": 1}])
def test_parse_param_refuses_bad_specs(spec):
    with pytest.raises(ConfigError, match="search space lr"):
        parse_param("lr", spec)


@pytest.mark.parametrize("name", registry.names())
def test_declared_spaces_name_real_options(name):
    cls = registry.get(name)
    space = getattr(cls.config_class, "search_space", {})
    check_space(cls.config_class, space)  # raises on a name that is not an option
    if issubclass(cls.config_class, TrainConfig):
        assert isinstance(space["lr"], FloatRange) and space["lr"].log


def test_check_space_names_the_unknown_option():
    with pytest.raises(ConfigError, match="unknown option 'colour'"):
        check_space(registry.get("bpr").config_class, {"colour": Choice(("red",))})


# --- the Trainer's per-epoch hook and stop reason ------------------------------------------------------
def test_on_epoch_hook_sees_validation_and_can_stop(demo_dataset):
    seen = []

    class Stop(Exception):
        pass

    def on_epoch(row, epochs):
        assert epochs == 5
        seen.append((row["epoch"], row["val_AUC"]))
        if row["epoch"] == 2:
            raise Stop

    model = create("bpr", TINY_BPR | {"epochs": 5, "patience": 0})
    with pytest.raises(Stop):
        fit_model(model, demo_dataset, None, TrainOptions(on_epoch=on_epoch))
    assert [e for e, _ in seen] == [1, 2]
    assert all(0.0 <= v <= 1.0 for _, v in seen)


def test_training_records_why_it_stopped(demo_dataset):
    budget = fit_model(create("bpr", TINY_BPR | {"epochs": 2, "patience": 0}), demo_dataset)
    assert budget.info["training"]["stopped_by"] == "budget"
    # lr so small that nothing improves after the first epoch: patience 1 stops at epoch 2 of 50
    early = fit_model(
        create("bpr", TINY_BPR | {"epochs": 50, "patience": 1, "lr": 1e-12}), demo_dataset
    )
    info = early.info["training"]
    assert info["stopped_by"] == "patience" and info["epochs_run"] < 50


def test_train_command_says_why_it_stopped(demo_dir, tmp_path, capsys):
    argv = ["train", "bpr", "--data", str(demo_dir), "--set", "device=cpu", "--set", "factors=4"]
    assert (
        visrec([*argv, "-o", str(tmp_path / "a"), "--set", "epochs=2", "--set", "patience=0"]) == 0
    )
    assert "epoch budget reached (2 epochs)" in capsys.readouterr().out
    early = ["--set", "epochs=40", "--set", "patience=1", "--set", "lr=1e-12"]
    assert visrec([*argv, "-o", str(tmp_path / "b"), *early]) == 0
    assert "(patience)" in capsys.readouterr().out


# --- selection reads validation only -------------------------------------------------------------------
@dataclass(frozen=True)
class OracleConfig(Config):
    """Scores one split's held-out items 1, everything else 0 (a test double, not a model)."""

    target: str = "validation"
    """Which split's targets to score highest."""
    search_space: ClassVar[dict] = {"target": Choice(("validation", "test"))}


class Oracle(Recommender):
    config_class = OracleConfig

    def _fit(self, dataset, features) -> None:
        matrix = dataset.validation if self.config.target == "validation" else dataset.test
        self.scores = torch.from_numpy(matrix.toarray()).float()

    def _score(self, users):
        return self.scores[users]

    def state_dict(self):
        return {"scores": self.scores}

    def load_state_dict(self, state) -> None:
        self.scores = state["scores"]


@pytest.fixture
def oracle(monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "oracle", Oracle)
    monkeypatch.setattr(Oracle, "name", "oracle", raising=False)
    return "oracle"


def test_search_never_scores_test_targets(oracle, demo_dir, tmp_path, monkeypatch):
    import visrec.evaluation.engine as engine
    import visrec.runs.evaluate as run_evaluate

    splits = []  # the split of every evaluation pass (the engine's one entry point scores targets)
    real = engine.evaluate_modes

    def recording(scorer, dataset, *, split, **kw):
        splits.append(split)
        return real(scorer, dataset, split=split, **kw)

    monkeypatch.setattr(engine, "evaluate_modes", recording)
    monkeypatch.setattr(run_evaluate, "evaluate_modes", recording)
    settings = TuneSettings(oracle, data_spec(demo_dir), sampler="grid")
    result = tune(settings, tmp_path / "t", 2)
    assert result.params == {"target": "validation"}
    # validation only during the search; the chosen run alone on test, once, at the end
    assert splits.count("test") == 1 and splits[-1] == "test"
    assert splits.count("validation") >= 2
    # the dataset is one where reading test would have chosen the other configuration
    test_auc = {}
    for run in sorted((tmp_path / "t" / "trials").iterdir()):
        target = json.loads((run / "run.json").read_text())["config"]["target"]
        test_auc[target] = evaluate_run(run, split="test", existing="reuse").means["AUC"]
    assert test_auc["test"] > test_auc["validation"] + 0.2
    assert result.test["AUC"] == pytest.approx(test_auc["validation"])


# --- resume --------------------------------------------------------------------------------------------
def _bpr_settings(demo_dir, **kw):
    fixed = {"epochs": 2, "batch_size": 256, "device": "cpu", "patience": 0}
    space = {"lr": "log:1e-3..1e-1", "factors": "4,8"}
    return TuneSettings("bpr", data_spec(demo_dir), fixed=fixed, space=space, **kw)


def test_rerun_adds_only_missing_trials(demo_dir, tmp_path):
    out = tmp_path / "tune"
    first = tune(_bpr_settings(demo_dir), out, 2)
    assert len(first.trials) == 2
    lines = []
    second = tune(_bpr_settings(demo_dir), out, 4, echo=lines.append)
    assert [t["trial"] for t in second.trials] == [0, 1, 2, 3]
    assert sum(line.startswith("trial ") for line in lines) == 2  # only two new trials ran
    assert any("resuming the search" in line for line in lines)
    assert [t["param_lr"] for t in second.trials[:2]] == [t["param_lr"] for t in first.trials]
    with open(out / "trials.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 4
    assert (out / "history.png").stat().st_size > 1000
    best = json.loads((out / "best.json").read_text())
    assert best["validation_AUC"] == max(t["val_AUC"] for t in second.trials if t["val_AUC"])
    assert 0.0 <= best["test"]["AUC"] <= 1.0


def test_hopeless_trial_is_pruned_by_its_validation_curve(demo_dir, tmp_path):
    out = tmp_path / "tune"
    fixed = {"epochs": 4, "patience": 0, "factors": 8, "batch_size": 128, "device": "cpu"}
    # grid order: three learning trials (the pruner's start-up), then one that cannot learn
    space = {"lr": [0.02, 0.03, 0.04, 1e-9]}
    settings = TuneSettings(
        "bpr", data_spec(demo_dir), fixed=fixed, space=space, sampler="grid", prune_after=2
    )
    result = tune(settings, out, 4, evaluate_test=False)
    states = {t["param_lr"]: t["state"] for t in result.trials}
    assert states == {0.02: "complete", 0.03: "complete", 0.04: "complete", 1e-9: "pruned"}
    pruned = next(t for t in result.trials if t["state"] == "pruned")
    assert pruned["epochs"] == 2  # pruning starts at epoch prune_after: 2 of 4 epochs ran
    assert not (out / "trials" / f"{pruned['trial']:04d}").exists()
    assert "pruned" in (out / "trials.md").read_text()


def test_no_trial_is_pruned_before_prune_after(demo_dir, tmp_path):
    """The default lets every trial train 5 epochs first: a slow starter is not cut at epoch 2."""
    fixed = {"epochs": 6, "patience": 0, "factors": 8, "batch_size": 128, "device": "cpu"}
    space = {"lr": [0.02, 0.03, 0.04, 1e-9]}
    settings = TuneSettings("bpr", data_spec(demo_dir), fixed=fixed, space=space, sampler="grid")
    assert settings.prune_after == 5
    result = tune(settings, tmp_path / "tune", 4, evaluate_test=False)
    pruned = [t for t in result.trials if t["state"] == "pruned"]
    assert [(t["param_lr"], t["epochs"]) for t in pruned] == [(1e-9, 5)]
    with pytest.raises(ConfigError, match="prune_after"):
        TuneSettings("bpr", data_spec(demo_dir), prune_after=0)


def test_changed_settings_are_refused(demo_dir, tmp_path):
    out = tmp_path / "tune"
    tune(_bpr_settings(demo_dir), out, 1, evaluate_test=False)
    with pytest.raises(Exception, match="other settings"):
        tune(_bpr_settings(demo_dir, seed=5), out, 2)


def test_killed_trial_is_resumed_with_its_options(demo_dir, tmp_path, monkeypatch):
    out = tmp_path / "tune"
    real = study_module.train_run
    calls = []

    def interrupted(*args, on_epoch=None, **kw):
        calls.append(kw)

        def kill(row, epochs):
            if len(calls) == 2 and row["epoch"] == 1:
                raise KeyboardInterrupt  # as a kill during the second trial's second epoch
            on_epoch(row, epochs)

        return real(*args, on_epoch=kill, **kw)

    monkeypatch.setattr(study_module, "train_run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tune(_bpr_settings(demo_dir), out, 3)
    monkeypatch.setattr(study_module, "train_run", real)
    lines = []
    result = tune(_bpr_settings(demo_dir), out, 3, echo=lines.append)
    states = [t["state"] for t in result.trials]
    assert states.count("interrupted") == 1 and states.count("complete") == 3
    killed = next(t for t in result.trials if t["state"] == "interrupted")
    redo = next(t for t in result.trials if t["trial"] > killed["trial"])
    assert redo["param_lr"] == killed["param_lr"]
    assert any("interrupted" in line for line in lines)


# --- the command -----------------------------------------------------------------------------------------
def test_tune_command_end_to_end(demo_dir, tmp_path, capsys):
    out = tmp_path / "tune"
    argv = ["tune", "bpr", "--data", str(demo_dir), "-o", str(out), "--trials", "2"]
    argv += ["--set", "epochs=2", "--set", "device=cpu", "--space", "lr=log:1e-3..1e-1"]
    assert visrec(argv) == 0
    text = capsys.readouterr().out
    assert "best: trial" in text and "test of the chosen run" in text
    assert (out / "trials.md").read_text().count("| 0 |") + 1 >= 1
    assert visrec([*argv[:-2], "--space", "lr=0..1"]) == 2  # other settings: refused, exit 2
    assert "other settings" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--space", "colour=1,2"], "unknown option 'colour'"),
        (["--space", "lr=log:0..1"], "low must be > 0"),
        (["--metric", "AUX"], "metric 'AUX'"),
        (["--sampler", "grid"], "lr is a range"),
        (["--space", "lr"], "expected KEY=SPEC"),
        (["--no-validation"], "validation only"),
    ],
)
def test_tune_command_bad_input_is_one_line(demo_dir, tmp_path, capsys, extra, message):
    argv = ["tune", "bpr", "--data", str(demo_dir), "-o", str(tmp_path / "t"), "--trials", "1"]
    assert visrec([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "t").exists()  # refused before anything is written


# --- the benchmark's search block ------------------------------------------------------------------------
SEARCH_TOML = """
[dataset]
path = "{data}"
[benchmark]
n_boot = 50
[[models]]
model = "bpr"
config = {{epochs = 2, batch_size = 256, device = "cpu"}}
search = {{trials = 2, space = {{lr = "log:1e-3..1e-1", factors = [4, 8]}}}}
"""


def test_benchmark_search_block_tunes_on_validation(demo_dir, tmp_path, capsys):
    toml = tmp_path / "bench.toml"
    toml.write_text(SEARCH_TOML.format(data=demo_dir))
    out = tmp_path / "out"
    assert visrec(["benchmark", str(toml), "-o", str(out), "--no-plots"]) == 0
    assert "chosen on validation" in capsys.readouterr().out
    folder = out / "runs" / "bpr"
    assert (folder / "trials.md").is_file() and (folder / "study.db").is_file()
    summary = json.loads((out / "results.json").read_text())
    assert summary["models"][0]["status"] == "ok"
    tested = sorted(p.parent.parent.name for p in folder.glob("trials/*/eval/test-full.json"))
    best = json.loads((folder / "best.json").read_text())
    assert tested == [f"{best['trial']:04d}"]  # only the chosen trial saw test
    # a rerun reuses the study: no new trial
    assert visrec(["benchmark", str(toml), "-o", str(out), "--no-plots"]) == 0
    assert "none to run" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("search", "message"),
    [
        ("{trials = 2}\ngrid = {lr = [0.1]}", "a grid or a search, not both"),
        ("{space = {colour = [1, 2]}}", "unknown option 'colour'"),
        ('{sampler = "anneal"}', "sampler must be one of"),
        ("{trials = 0}", "trials must be >= 1"),
    ],
)
def test_benchmark_search_block_is_checked(demo_dir, tmp_path, search, message):
    from visrec.benchmark.config import load_config

    toml = tmp_path / "bench.toml"
    body = SEARCH_TOML.format(data=demo_dir).rsplit("search = ", 1)[0]
    toml.write_text(body + f"search = {search}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(toml)

"""`visrec train ... --resume` of a run written by an older visrec: options added since (absent from
its saved config) take their defaults, defaults changed since do not count as a change, a changed
option refuses in one line."""

from __future__ import annotations

import json

import pytest
import torch

from visrec._io import read_json, write_json
from visrec.errors import ConfigError
from visrec.runs.directory import RUN_FILE, DataSpec
from visrec.runs.train import train_run

OLD = {"epochs": 3, "factors": 4, "batch_size": 64, "lr": 0.02, "patience": 10}


def _old_interrupted_run(demo_dir, out) -> None:
    """A BPR run stopped after epoch 1, then made to look written before ``fused_adam`` and
    ``optimizer`` existed (run.json and checkpoint), with an epoch budget that is not today's default."""

    def crash(row, epochs):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run("bpr", DataSpec(str(demo_dir)), out, config=OLD, on_epoch=crash)
    meta = read_json(out / RUN_FILE)
    for newer in ("fused_adam", "optimizer"):
        del meta["config"][newer]
    write_json(out / RUN_FILE, meta)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    config = json.loads(state["config"])
    for newer in ("fused_adam", "optimizer"):
        del config[newer]
    state["config"] = json.dumps(config, sort_keys=True)
    torch.save(state, out / "checkpoint.pt")


def test_an_old_run_resumes_with_its_saved_options_and_new_defaults(demo_dir, tmp_path, caplog):
    out = tmp_path / "run"
    _old_interrupted_run(demo_dir, out)
    with caplog.at_level("INFO", logger="visrec.training.resume"):
        model = train_run("bpr", DataSpec(str(demo_dir)), out, resume=True)  # no options given
    assert [row["epoch"] for row in model.history] == [1, 2, 3]  # its own budget, not today's
    assert model.config.factors == 4 and model.config.optimizer == "adam"
    assert read_json(out / RUN_FILE)["status"] == "finished"
    assert any("predates option(s) fused_adam, optimizer" in r.getMessage() for r in caplog.records)


def test_an_old_run_resumed_with_a_changed_option_is_refused_in_one_line(demo_dir, tmp_path):
    out = tmp_path / "run"
    _old_interrupted_run(demo_dir, out)
    with pytest.raises(ConfigError) as caught:
        train_run("bpr", DataSpec(str(demo_dir)), out, config={"factors": 8}, resume=True)
    assert "another config (factors 4 -> 8)" in str(caught.value)
    assert "\n" not in str(caught.value)

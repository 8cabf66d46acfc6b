"""Losses against hand-computed values; the Trainer's resume, NaN guard and validation-only selection."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from visrec.errors import ConfigError
from visrec.models import create
from visrec.models.capabilities import TrainOptions
from visrec.training import TrainingError, bce_loss, bpr_loss, fit_model, warp_loss
from visrec.training.losses import harmonic


def test_bpr_loss_hand_computed():
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([[1.0], [3.0]])
    expected = (-math.log(1 / (1 + math.exp(-1))) - math.log(1 / (1 + math.exp(3)))) / 2
    assert bpr_loss(pos, neg).item() == pytest.approx(expected, rel=1e-6)


def test_bce_loss_hand_computed():
    pos, neg = torch.tensor([1.0]), torch.tensor([[0.0, 2.0]])
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = -math.log(sig(1.0)) - (math.log(1 - sig(0.0)) + math.log(1 - sig(2.0))) / 2
    assert bce_loss(pos, neg).item() == pytest.approx(expected, rel=1e-6)


def test_warp_loss_hand_computed():
    # pos 1.0; negatives 0.5 (violates margin 1: hinge 0.5), 2.0 (hinge 2.0), -1.0 (no violation)
    pos, neg = torch.tensor([1.0]), torch.tensor([[0.5, 2.0, -1.0]])
    n_items = 31  # rank estimate floor(30 * 2 / 3) = 20
    weight = math.log(20) + 0.5772156649
    expected = weight * (0.5 + 2.0) / 2
    assert warp_loss(pos, neg, n_items).item() == pytest.approx(expected, rel=1e-6)
    assert abs(weight - harmonic(20)) < 0.03  # the log approximation of L(r)
    assert warp_loss(torch.tensor([5.0]), torch.tensor([[0.0, 1.0]]), 10).item() == 0.0


def _bpr(**overrides):
    cfg = {"epochs": 4, "factors": 8, "batch_size": 64, "lr": 0.02, "patience": 10} | overrides
    return create("bpr", cfg)


def test_resume_after_interruption_matches_uninterrupted_run(demo_dataset, tmp_path):
    full = fit_model(_bpr(), demo_dataset, options=TrainOptions(run_dir=tmp_path / "a"))

    class Crash(Exception):
        pass

    def crash(epoch, batch):
        if epoch == 3 and batch == 2:
            raise Crash

    with pytest.raises(Crash):
        fit_model(
            _bpr(), demo_dataset, options=TrainOptions(run_dir=tmp_path / "b", on_batch=crash)
        )
    log = (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in log] == [1, 2]
    resumed = fit_model(
        _bpr(), demo_dataset, options=TrainOptions(run_dir=tmp_path / "b", resume=True)
    )
    users = np.arange(10)
    assert torch.allclose(full.score(users), resumed.score(users), atol=1e-6)
    assert len((tmp_path / "b" / "train_log.jsonl").read_text().splitlines()) == 4


def test_resume_refuses_other_config(demo_dataset, tmp_path):
    fit_model(_bpr(epochs=1), demo_dataset, options=TrainOptions(run_dir=tmp_path))
    with pytest.raises(Exception, match="another config"):
        fit_model(
            _bpr(epochs=1, factors=4),
            demo_dataset,
            options=TrainOptions(run_dir=tmp_path, resume=True),
        )


def test_nan_guard_names_epoch_and_batch(demo_dataset):
    model = _bpr(lr=1e30, epochs=3)
    with pytest.raises(TrainingError, match=r"non-finite loss .* at epoch \d+, batch \d+"):
        fit_model(model, demo_dataset)


def test_nan_guard_names_the_first_bad_batch_inside_a_check_window(demo_dataset, monkeypatch):
    """The loss is checked every FINITE_CHECK_EVERY steps; the error still names the first bad batch."""
    from visrec.training import trainer as trainer_module

    real = trainer_module.Trainer._loss
    calls = []

    def poisoned(self, pos, neg):
        calls.append(1)
        loss = real(self, pos, neg)
        return loss * float("nan") if len(calls) == 5 else loss

    monkeypatch.setattr(trainer_module.Trainer, "_loss", poisoned)
    with pytest.raises(TrainingError, match=r"non-finite loss \(nan\) at epoch 1, batch 5$"):
        fit_model(_bpr(epochs=1), demo_dataset)


def test_fused_adam_matches_the_per_tensor_kernel_within_rounding(demo_dataset):
    """fused_adam changes only float rounding: after 3 epochs the scores agree to 1e-4 (the tolerance
    stated in docs/training.md); each kernel is deterministic (same seed, same numbers)."""
    users = np.arange(20)
    runs = [
        fit_model(_bpr(epochs=3, patience=0, fused_adam=f), demo_dataset).score(users)
        for f in (True, False, True, False)
    ]
    fused, plain, fused_again, plain_again = runs
    assert torch.equal(plain, plain_again) and torch.equal(fused, fused_again)
    assert torch.allclose(fused, plain, atol=1e-4, rtol=0)


def test_early_stopping_reads_validation_never_test(demo_dataset, monkeypatch):
    """Selection must not change when the test targets change, and must read the validation split."""
    import visrec.evaluation as ev

    seen = []
    real = ev.engine.evaluate if hasattr(ev, "engine") else ev.evaluate

    def spy(scorer, dataset, *, split, **kw):
        seen.append(split)
        return real(scorer, dataset, split=split, **kw)

    monkeypatch.setattr(ev.engine, "evaluate", spy)
    a = fit_model(_bpr(epochs=5, patience=1), demo_dataset)
    assert seen and set(seen) == {"validation"}
    # a dataset whose test targets differ (test := validation) selects the same epoch
    from dataclasses import replace

    other = replace(demo_dataset, test=demo_dataset.validation)
    b = fit_model(_bpr(epochs=5, patience=1), other)
    assert a.info["training"]["best_epoch"] == b.info["training"]["best_epoch"]
    assert torch.equal(a.score([0, 1]), b.score([0, 1]))


def test_early_stopping_stops_and_restores_best(demo_dataset):
    model = fit_model(_bpr(epochs=40, patience=2, lr=0.2), demo_dataset)
    info = model.info["training"]
    assert info["stopped_early"] and info["epochs_run"] < 40
    assert info["epochs_run"] - info["best_epoch"] == 2
    best = max(row["val_AUC"] for row in model.history)
    assert info["best_val_AUC"] == pytest.approx(best)


def test_fit_adds_the_per_triplet_penalty_of_regularised_models(demo_dataset):
    """The per-triplet lambdas reach training (every epoch's steps, not only ``Trainer.step``): a
    strong reg_factors shrinks the learned factors and raises the logged loss."""
    free = fit_model(_bpr(epochs=2, patience=0, reg_factors=0.0, reg_bias=0.0), demo_dataset)
    shrunk = fit_model(_bpr(epochs=2, patience=0, reg_factors=5.0, reg_bias=0.0), demo_dataset)
    norm = lambda m: float(m.module.user.weight.detach().norm())  # noqa: E731
    assert norm(shrunk) < 0.5 * norm(free)
    assert shrunk.history[0]["loss"] > free.history[0]["loss"]


def _interrupted_run(demo_dataset, run, **overrides):
    """A BPR run stopped in epoch 3 (its checkpoint holds epoch 2)."""

    class Crash(Exception):
        pass

    def crash(epoch, batch):
        if epoch == 3:
            raise Crash

    with pytest.raises(Crash):
        fit_model(
            _bpr(**overrides), demo_dataset, options=TrainOptions(run_dir=run, on_batch=crash)
        )


def test_resume_accepts_a_checkpoint_older_than_new_options(demo_dataset, tmp_path, caplog):
    """A checkpoint written before ``fused_adam`` and ``optimizer`` existed (its config JSON lacks
    them) resumes with their defaults and says so in one log line."""
    full = fit_model(_bpr(), demo_dataset, options=TrainOptions(run_dir=tmp_path / "full"))
    run = tmp_path / "old"
    _interrupted_run(demo_dataset, run)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    config = json.loads(state["config"])
    for newer in ("fused_adam", "optimizer"):
        del config[newer]
    state["config"] = json.dumps(config, sort_keys=True)  # the old-style config JSON
    torch.save(state, run / "checkpoint.pt")
    with caplog.at_level("INFO", logger="visrec.training.resume"):
        resumed = fit_model(_bpr(), demo_dataset, options=TrainOptions(run_dir=run, resume=True))
    notes = [r.getMessage() for r in caplog.records if "predates" in r.getMessage()]
    assert len(notes) == 1 and "fused_adam=True" in notes[0] and "optimizer='adam'" in notes[0]
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]
    users = np.arange(10)
    assert torch.allclose(full.score(users), resumed.score(users), atol=1e-6)


def test_resume_refuses_a_changed_option_with_one_line_naming_it(demo_dataset, tmp_path):
    run = tmp_path / "run"
    _interrupted_run(demo_dataset, run)
    with pytest.raises(ConfigError) as caught:
        fit_model(_bpr(lr=0.05), demo_dataset, options=TrainOptions(run_dir=run, resume=True))
    message = str(caught.value)
    assert "\n" not in message and "another config (lr 0.02 -> 0.05)" in message
    assert "--force" in message
    # an old checkpoint whose missing option is now set to a non-default value is a real difference
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    config = json.loads(state["config"])
    del config["optimizer"]
    state["config"] = json.dumps(config, sort_keys=True)
    torch.save(state, run / "checkpoint.pt")
    with pytest.raises(ConfigError, match="optimizer 'adam' -> 'sparse_adam'"):
        fit_model(
            _bpr(optimizer="sparse_adam"),
            demo_dataset,
            options=TrainOptions(run_dir=run, resume=True),
        )

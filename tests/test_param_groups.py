"""Per-part learning rates: a model declares its optimiser groups (TrainsByGradient.param_groups) and the
one Trainer uses them (DVBPR's CNN vs its factors, ACF's attention vs its embeddings)."""

from __future__ import annotations

import numpy as np
import pytest

from visrec.features.pixel_cache import open_pixels
from visrec.models import create
from visrec.training import Trainer, fit_model

DVBPR = {"image_size": 16, "factors": 4, "latent_dim": 3, "fc_dim": 16, "width": 0.125}
ACF = {"dim": 8}
COMMON = {"epochs": 1, "batch_size": 256, "device": "cpu", "lr": 1e-4}


@pytest.fixture(scope="module")
def pixels(demo_dir, demo_dataset, tmp_path_factory):
    return open_pixels(demo_dir / "images", demo_dataset.items, 16, tmp_path_factory.mktemp("px"))


def _maps(n_items: int) -> np.ndarray:
    return np.random.default_rng(0).random((n_items, 2, 2, 8), dtype=np.float32)


def _fitted(name, options, dataset, pixels):
    features = pixels if name == "dvbpr" else _maps(dataset.n_items)
    return fit_model(create(name, COMMON | options), dataset, features)


@pytest.mark.parametrize(
    ("name", "options", "part"),
    [
        ("dvbpr", DVBPR | {"factor_lr": 3e-2}, ("theta", "gamma_user", "gamma_item")),
        ("acf", ACF | {"embedding_lr": 3e-2}, ("user", "item", "context")),
    ],
)
def test_groups_split_the_parameters_and_reach_the_optimiser(
    name, options, part, demo_dataset, pixels
):
    model = _fitted(name, options, demo_dataset, pixels)
    trainer = Trainer(model, demo_dataset)
    trainer.setup()
    groups = trainer.optimizer.param_groups
    assert [g["lr"] for g in groups] == [1e-4, 3e-2]
    fast = {id(p) for p in groups[1]["params"]}
    named = dict(model.module.named_parameters())
    assert fast == {id(p) for n, p in named.items() if n.split(".")[0] in part}
    every = [id(p) for g in groups for p in g["params"]]
    assert sorted(every) == sorted(id(p) for p in named.values() if p.requires_grad)


@pytest.mark.parametrize(
    ("name", "options"),
    [("dvbpr", DVBPR | {"factor_lr": None}), ("acf", ACF | {"embedding_lr": None})],
)
def test_without_a_part_lr_there_is_one_group(name, options, demo_dataset, pixels):
    model = _fitted(name, options, demo_dataset, pixels)
    trainer = Trainer(model, demo_dataset)
    trainer.setup()
    assert [g["lr"] for g in trainer.optimizer.param_groups] == [1e-4]


def test_part_lr_must_be_positive():
    with pytest.raises(Exception, match="factor_lr must be > 0"):
        create("dvbpr", {"factor_lr": 0})
    with pytest.raises(Exception, match="embedding_lr must be > 0"):
        create("acf", {"embedding_lr": -1})

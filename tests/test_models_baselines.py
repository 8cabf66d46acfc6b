"""Random, MostPopular and BPR-MF pass the conformance checks and behave as defined."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from visrec.errors import ConfigError
from visrec.evaluation import evaluate
from visrec.models import create, get, names
from visrec.models.registry import register
from visrec.testing import check_recommender
from visrec.training import fit_model


@pytest.mark.parametrize("name", ["random", "pop"])
def test_baselines_conform(name, demo_dataset):
    check_recommender(lambda: create(name), demo_dataset)


def test_bpr_conforms(demo_dataset):
    check_recommender(lambda: create("bpr", {"epochs": 2, "factors": 8}), demo_dataset)


def test_random_is_auc_half_and_pop_ranks_by_count(demo_dataset):
    rand = evaluate(create("random").fit(demo_dataset).score, demo_dataset, split="validation")
    assert abs(rand.means["AUC"] - 0.5) < 0.06
    pop = create("pop").fit(demo_dataset)
    scores = pop.score([0, 1])
    counts = torch.from_numpy(demo_dataset.item_popularity()).float()
    assert torch.equal(scores[0], counts) and torch.equal(scores[1], counts)


def test_bpr_learns(demo_dataset):
    model = create(
        "bpr", {"epochs": 30, "factors": 16, "lr": 0.02, "batch_size": 256, "patience": 30}
    )
    fit_model(model, demo_dataset)
    val = evaluate(model.score, demo_dataset, split="validation").means["AUC"]
    assert val > 0.62
    assert model.info["training"]["best_epoch"] >= 1


def test_registry_rejects_duplicates_and_unknown_names():
    assert {"random", "pop", "bpr"} <= set(names())
    with pytest.raises(ConfigError, match="already registered"):
        register("bpr")(type("Other", (get("random"),), {}))
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        get("nope")


def test_config_validation_and_parsing():
    cls = get("bpr").config_class
    cfg = cls.from_dict({"factors": "12", "lr": "0.1", "loss": "warp"})
    assert (cfg.factors, cfg.lr, cfg.loss) == (12, 0.1, "warp")
    with pytest.raises(ConfigError, match="factors must be >= 1"):
        cls(factors=0)
    with pytest.raises(ConfigError, match="unknown option"):
        cls.from_dict({"factor": 3})
    with pytest.raises(ConfigError, match="cannot read 'abc' as int"):
        cls.from_dict({"epochs": "abc"})
    docs = {name: doc for name, _, _, doc in cls.describe()}
    assert "Latent dimension" in docs["factors"] and "Adam learning rate" in docs["lr"]


def test_score_rejects_bad_users(demo_dataset):
    model = create("pop").fit(demo_dataset)
    with pytest.raises(IndexError):
        model.score(np.array([demo_dataset.n_users]))

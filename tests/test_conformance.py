"""The conformance suite over the model registry: every registered model is checked by registering it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from visrec.data import SplitSpec, open_dataset
from visrec.models import Recommender, names, register
from visrec.models import registry as registry_module
from visrec.models.capabilities import FeatureInput, ScoresProfiles
from visrec.models.config import Config
from visrec.testing.conformance import check_registered


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread avoids thread-pool spin on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cold_demo(demo_dir, demo_dataset):
    """The demo under a cold-item split, with the same item vocabulary as ``demo_dataset``."""
    cold = open_dataset(demo_dir).build(SplitSpec("cold-items", cold_fraction=0.1, seed=1))
    assert np.array_equal(cold.items.ids, demo_dataset.items.ids)
    return cold


@pytest.mark.parametrize("name", names())
def test_registered_model_conforms(name, demo_dir, demo_dataset, cold_demo, tmp_path):
    check_registered(
        name, demo_dataset, demo_dir / "images", tmp_path / "pixels", cold_dataset=cold_demo
    )


class ToyVisual(ScoresProfiles, Recommender):
    """A toy profile model: an item scores its mean cosine similarity to the profile's items."""

    inputs = (FeatureInput("image", "pooled"),)
    config_class = Config

    def _fit(self, dataset, features) -> None:
        unit = torch.tensor(np.asarray(features, dtype=np.float32))
        self.unit = unit / unit.norm(dim=1, keepdim=True)
        self.users_mean = self._means([dataset.profile(u) for u in range(dataset.n_users)])

    def _means(self, profiles) -> torch.Tensor:
        zero = torch.zeros(self.unit.shape[1])
        rows = [
            self.unit[torch.as_tensor(np.array(p))].mean(0) if len(p) else zero for p in profiles
        ]
        return torch.stack(rows)

    def _score(self, users: torch.Tensor) -> torch.Tensor:
        return self.users_mean[users] @ self.unit.T

    def _score_profiles(self, profiles) -> torch.Tensor:
        return self._means(profiles) @ self.unit.T

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"unit": self.unit, "users_mean": self.users_mean}

    def load_state_dict(self, state) -> None:
        self.unit, self.users_mean = state["unit"], state["users_mean"]


@pytest.fixture
def toy_registered(monkeypatch):
    monkeypatch.setitem(registry_module._REGISTRY, "toy-visual", ToyVisual)
    register("toy-visual")(ToyVisual)
    yield "toy-visual"


def test_a_registered_toy_model_is_covered(toy_registered, demo_dir, demo_dataset, tmp_path):
    assert toy_registered in names()  # what the parametrised test above iterates over
    model = check_registered(toy_registered, demo_dataset, demo_dir / "images", tmp_path)
    assert isinstance(model, ToyVisual) and model.score([0]).shape == (1, demo_dataset.n_items)


def test_a_broken_registered_model_fails_the_suite(monkeypatch, demo_dir, demo_dataset, tmp_path):
    class Broken(ToyVisual):
        def _score(self, users):  # batch scoring disagrees with per-user scoring
            return super()._score(users) + torch.arange(len(users))[:, None]

    monkeypatch.setitem(registry_module._REGISTRY, "toy-broken", Broken)
    Broken.name = "toy-broken"
    with pytest.raises(AssertionError, match="toy-broken: batched scores != per-user scores"):
        check_registered("toy-broken", demo_dataset, demo_dir / "images", tmp_path)

"""Explanations: VisRank's and CuratorNet's profile contributions, VBPR's score parts, and the viewer's
per-item summary of them (``visrec.viewer.explain``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from visrec.models import create
from visrec.models.capabilities import ExplainsByParts, ExplainsByProfile
from visrec.training import fit_model
from visrec.viewer.explain import DRIVERS, explain_items
from visual_support import truth_features


@pytest.fixture(scope="module")
def features(demo_dir, demo_dataset):
    return truth_features(demo_dir, demo_dataset)


def _users(dataset, n=5):
    return [u for u in range(dataset.n_users) if len(dataset.profile(u)) >= 2][:n]


def _before_test(dataset, u: int) -> np.ndarray:
    """The profile a profile-based model scores a known user from: everything before the test basket."""
    return dataset.history("test").of(u)


@pytest.mark.parametrize("aggregation", ["maximum", "average"])
def test_visrank_contributions_are_the_cosines_it_aggregates(demo_dataset, features, aggregation):
    model = create("visrank", {"aggregation": aggregation, "max_profile": 4, "device": "cpu"})
    model.fit(demo_dataset, features)
    items = np.arange(0, demo_dataset.n_items, 7)
    for u in _users(demo_dataset):
        c = model.profile_contributions(u, items)
        np.testing.assert_array_equal(c.profile, _before_test(demo_dataset, u)[-4:])
        centred = torch.as_tensor(features) - torch.as_tensor(features).mean(dim=0)  # center = true
        unit = torch.nn.functional.normalize(centred, dim=1).numpy()
        expected = unit[items] @ unit[c.profile].T
        np.testing.assert_allclose(c.values, expected, atol=1e-5)
        reduce = c.values.max(axis=1) if aggregation == "maximum" else c.values.mean(axis=1)
        np.testing.assert_allclose(reduce, model.score([u])[0, items].numpy(), atol=1e-5)


def test_curatornet_contributions_are_leave_one_out_score_drops(demo_dataset, features):
    model = create(
        "curatornet",
        {
            "epochs": 1,
            "item_dim": 8,
            "user_hidden": 8,
            "n_clusters": 6,
            "device": "cpu",
            "triplets_per_epoch": 512,
            "batch_size": 128,
            "max_profile": 5,
        },
    )
    fit_model(model, demo_dataset, features)
    items = np.array([0, 3, 11, 40])
    for u in _users(demo_dataset, 3):
        c = model.profile_contributions(u, items)
        np.testing.assert_array_equal(c.profile, _before_test(demo_dataset, u)[-5:])
        full = model.score([u])[0, items].numpy()
        for j in range(len(c.profile)):
            rest = np.delete(c.profile, j)
            without = model.score_profiles([rest])[0, items].numpy()
            np.testing.assert_allclose(c.values[:, j], full - without, atol=1e-4)


def test_vbpr_parts_sum_to_the_score(demo_dataset, features):
    model = create("vbpr", {"epochs": 1, "factors": 3, "visual_factors": 2, "device": "cpu"})
    fit_model(model, demo_dataset, features)
    items = np.array([5, 1, 60, 2])
    for u in (0, 7):
        parts = model.score_parts(u, items)
        assert list(parts) == ["collaborative", "visual"]
        m = model.module
        visual = (m.theta_user.weight[u] @ (m.features[items] @ m.E.T).T) + m.features[
            items
        ] @ m.beta_visual
        np.testing.assert_allclose(parts["visual"], visual.detach().numpy(), atol=1e-5)
        total = parts["collaborative"] + parts["visual"]
        np.testing.assert_allclose(total, model.score([u])[0, items].numpy(), atol=1e-5)


def test_capabilities_and_viewer_summary(demo_dataset, features):
    visrank = create("visrank", {"device": "cpu"}).fit(demo_dataset, features)
    pop = create("pop").fit(demo_dataset)
    assert isinstance(visrank, ExplainsByProfile) and not isinstance(visrank, ExplainsByParts)
    assert not isinstance(pop, ExplainsByProfile | ExplainsByParts)
    assert isinstance(create("vbpr"), ExplainsByParts)
    assert isinstance(create("curatornet"), ExplainsByProfile)
    u = _users(demo_dataset)[0]
    items = np.array([4, 9])
    rows = explain_items(visrank, u, items)
    c = visrank.profile_contributions(u, items)
    for row, values in zip(rows, c.values, strict=True):
        got = [v for _, v in row["drivers"]]
        assert got == sorted(got, reverse=True) and len(got) == min(DRIVERS, len(c.profile))
        assert got[0] == pytest.approx(values.max())
        profile_ids = set(demo_dataset.items.ids_of(c.profile))
        assert {d for d, _ in row["drivers"]} <= profile_ids
    assert explain_items(pop, u, items) == [None, None]
    assert explain_items(visrank, u, np.array([], dtype=np.int64)) == []

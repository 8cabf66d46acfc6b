"""`visrec recommend` / `visrec similar` and the top-k helpers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from visrec.cli import main
from visrec.models import create
from visrec.serving import recommend_profile, recommend_users, similar_items


@pytest.fixture(scope="module")
def pop_run(demo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "pop"
    assert main(["train", "pop", "--data", str(demo_dir), "-o", str(out)]) == 0
    return out


def test_recommend_users_excludes_consumed_and_orders(demo_dataset):
    model = create("pop").fit(demo_dataset)
    users = np.arange(5)
    recs = recommend_users(model, demo_dataset, users, k=10)
    pop = demo_dataset.item_popularity()
    for u, rec in zip(users, recs, strict=True):
        consumed = set(demo_dataset.consumed[u].indices.tolist())  # train + validation + test
        assert not consumed & set(rec.items.tolist())
        assert np.all(np.diff(rec.scores) <= 0)
        best_unseen = max(pop[i] for i in range(demo_dataset.n_items) if i not in consumed)
        assert rec.scores[0] == best_unseen
    with_consumed = recommend_users(model, demo_dataset, users[:1], k=3, exclude_consumed=False)[0]
    assert pop[with_consumed.items[0]] == pop.max()  # (ties: any most popular item)
    flags = np.isin(with_consumed.items, demo_dataset.consumed[0].indices)
    assert with_consumed.consumed.tolist() == flags.tolist()


def test_recommend_profile_and_similar():
    vectors = torch.eye(4)[[0, 0, 1, 2, 3]] + 0.01 * torch.arange(5)[:, None]
    rec = similar_items(vectors, 0, k=2)
    assert rec.items[0] == 1 and 0 not in rec.items.tolist()

    class Dummy:
        profile_based = True

        def score_profiles(self, profiles):
            return torch.tensor([[5.0, 4.0, 3.0, 2.0]])

    out = recommend_profile(Dummy(), np.array([0]), k=2)
    assert out.items.tolist() == [1, 2]


def test_recommend_cli_json(pop_run, demo_dataset, capsys):
    user = demo_dataset.users.id(0)
    assert main(["recommend", str(pop_run), "--user", user, "-k", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert all(r["image"].endswith(".jpg") for r in rows)
    items = ",".join(demo_dataset.items.ids[:2])
    assert main(["recommend", str(pop_run), "--items", items, "-k", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert not {r["item_id"] for r in rows} & set(items.split(","))


def test_recommend_cli_errors(pop_run, capsys):
    assert main(["recommend", str(pop_run), "--user", "nobody"]) == 2
    assert "unknown user 'nobody'" in capsys.readouterr().err
    assert main(["recommend", str(pop_run), "--items", "zzz"]) == 2
    assert "unknown item" in capsys.readouterr().err
    assert main(["recommend", str(pop_run)]) == 2

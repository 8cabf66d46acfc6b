"""EvalResult: JSON and CSV round trips, atomic writes, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from eval_support import random_dataset
from visrec.errors import DataError
from visrec.evaluation import EvalResult, evaluate


@pytest.fixture(scope="module")
def result():
    ds = random_dataset(n_users=20, n_items=30, seed=5)
    table = torch.from_numpy(np.random.default_rng(0).standard_normal((ds.n_users, ds.n_items)))
    return evaluate(lambda u: table[u], ds, split="test", mode="sampled", n_negatives=7, ks=(5, 10))


def test_json_round_trip_keeps_everything(result, tmp_path):
    path = result.to_json(tmp_path / "res.json")
    back = EvalResult.from_json(path)
    assert (back.mode, back.split, back.ks, back.skipped) == (
        "sampled@7",
        "test",
        (5, 10),
        result.skipped,
    )
    assert back.means == result.means and back.meta == result.meta
    pd.testing.assert_frame_equal(back.per_user, result.per_user, check_exact=True)
    assert [p.name for p in tmp_path.iterdir()] == ["res.json"]  # no temporary file left
    data = json.loads(path.read_text())
    assert data["means"]["AUC[sampled@7]"] == result.means["AUC[sampled@7]"]


def test_csv_holds_the_per_user_table(result, tmp_path):
    result.to_json(tmp_path / "res.json", per_user=False)
    csv = result.to_csv(tmp_path / "users.csv")
    header = csv.read_text().splitlines()[0].split(",")
    assert header[:6] == [
        "user_id",
        "user_idx",
        "profile_size",
        "n_targets",
        "n_candidates",
        "first_hit_rank",
    ]
    assert "nDCG@10[sampled@7]" in header
    back = EvalResult.from_json(tmp_path / "res.json", per_user_csv=csv)
    pd.testing.assert_frame_equal(back.per_user, result.per_user, check_exact=True)
    assert EvalResult.from_json(tmp_path / "res.json").per_user.empty


def test_reading_something_else_is_a_data_error(tmp_path):
    bad = tmp_path / "other.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(DataError, match="other.json"):
        EvalResult.from_json(bad)


def test_summary_names_mode_and_split(result):
    assert result.summary().startswith("[sampled@7 / test] ")
    assert result["RR[sampled@7]"] == result.means["RR[sampled@7]"]

"""Cold-item splits: disjoint cold sets, no cold interaction in train, seeds, the temporal cut-off."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from visrec.cli import main
from visrec.data import Dataset, Interactions, SplitSpec
from visrec.errors import ConfigError, DataError


def _frame(n_users=30, n_items=40, seed=1):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for i in rng.choice(n_items, size=12, replace=False):
            rows.append((f"u{u}", f"i{i:02d}", int(rng.integers(0, 1000))))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def _build(frame, spec):
    return Dataset.build(Interactions.from_frame(frame), spec)


def _item_set(ds, mat):
    return set(ds.items.ids_of(np.unique(mat.tocoo().col)).tolist())


def test_cold_items_split_keeps_cold_items_out_of_train():
    frame = _frame()
    ds = _build(frame, SplitSpec("cold-items", cold_fraction=0.1, seed=3))
    test_cold, val_cold = ds.cold_items("test"), ds.cold_items("validation")
    assert len(test_cold) == len(val_cold) == 4  # 10% of 40 items each
    assert not set(test_cold) & set(val_cold)
    train_items = set(np.unique(ds.train.tocoo().col).tolist())
    assert not train_items & (set(test_cold.tolist()) | set(val_cold.tolist()))
    assert not set(ds.profile_items.tolist()) & set(test_cold.tolist())
    # every target is a cold item of its split, and every interaction with one (of a warm user) is a target
    assert set(np.unique(ds.test.tocoo().col).tolist()) <= set(test_cold.tolist())
    assert set(np.unique(ds.validation.tocoo().col).tolist()) <= set(val_cold.tolist())
    cold_ids = set(ds.items.ids_of(test_cold).tolist())
    expected = {(u, i) for u, i in zip(frame.user_id, frame.item_id, strict=True) if i in cold_ids}
    coo = ds.test.tocoo()
    got = {(ds.users.id(u), ds.items.id(i)) for u, i in zip(coo.row, coo.col, strict=True)}
    assert got == expected
    # users keep their warm history
    warm = frame[~frame.item_id.isin(set(ds.items.ids_of(np.concatenate([test_cold, val_cold]))))]
    assert ds.n_train == len(warm.drop_duplicates(["user_id", "item_id"]))


def test_cold_items_seed_determinism():
    frame = _frame()
    a = _build(frame, SplitSpec("cold-items", seed=5))
    b = _build(frame, SplitSpec("cold-items", seed=5))
    c = _build(frame, SplitSpec("cold-items", seed=6))
    assert a.cold_items("test").tolist() == b.cold_items("test").tolist()
    assert a.cold_items("validation").tolist() == b.cold_items("validation").tolist()
    assert (a.test != b.test).nnz == 0
    assert a.cold_items("test").tolist() != c.cold_items("test").tolist()


def test_cold_items_without_validation():
    ds = _build(_frame(), SplitSpec("cold-items", validation=False, cold_fraction=0.25))
    assert len(ds.cold_items("test")) == 10
    assert len(ds.cold_items("validation")) == 0
    assert ds.validation.nnz == 0


def test_cold_items_temporal_cutoff():
    rows = [
        ("u", "a", 1),
        ("u", "b", 2),
        ("u", "c", 5),
        ("v", "a", 3),
        ("v", "d", 4),
        ("v", "e", 8),
        ("w", "b", 1),
        ("w", "e", 9),
        ("w", "c", 7),
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    ds = _build(frame, SplitSpec("cold-items-temporal", cutoff=6))
    # first seen: a 1, b 1, c 5, d 4, e 8 -> e is new at the cut-off; c (5) is the latest before it
    assert ds.items.ids_of(ds.cold_items("test")).tolist() == ["e"]
    assert ds.items.ids_of(ds.cold_items("validation")).tolist() == ["c"]
    assert _item_set(ds, ds.test) == {"e"}
    assert _item_set(ds, ds.validation) == {"c"}
    # w's interaction with c at t=7 (after the cut-off) is still a validation target, not train
    assert _item_set(ds, ds.train) == {"a", "b", "d"}


def test_cold_split_errors_and_warm_splits_have_no_cold_items():
    with pytest.raises(ConfigError, match="cutoff"):
        SplitSpec("cold-items-temporal")
    with pytest.raises(ConfigError, match="cold_fraction"):
        SplitSpec("cold-items", cold_fraction=0.6)
    frame = _frame()
    with pytest.raises(DataError, match="cold items"):
        _build(frame, SplitSpec("cold-items-temporal", cutoff=-1))
    ds = _build(frame, SplitSpec())
    assert len(ds.cold_items("test")) == 0
    assert "cold_fraction" not in SplitSpec().to_dict()
    spec = SplitSpec("cold-items", cold_fraction=0.2, seed=4)
    assert SplitSpec(**spec.to_dict()) == spec


def test_stats_reports_cold_items(tmp_path, capsys):
    path = tmp_path / "events.csv"
    _frame().to_csv(path, index=False)
    args = ["data", "stats", str(path), "--split", "cold-items", "--cold-fraction", "0.1"]
    assert main([*args, "--json"]) == 0
    split = json.loads(capsys.readouterr().out)["split"]
    ds = _build(_frame(), SplitSpec("cold-items", cold_fraction=0.1))
    assert split["cold_test_items"] == 4 and split["cold_validation_items"] == 4
    assert split["users_with_cold_test_targets"] == int((np.diff(ds.test.indptr) > 0).sum())
    assert split["test_rows"] == ds.test.nnz
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "cold test" in text and "users with cold targets" in text

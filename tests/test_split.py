"""Splits: leave-last-out baskets, the train-only rule, given and temporal splits, no leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visrec.data import Dataset, Interactions, SplitSpec
from visrec.errors import ConfigError, DataError


def _inter(rows, evaluation=None):
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    if evaluation is not None:
        frame["evaluation"] = evaluation
    return Interactions.from_frame(frame)


def _pairs(ds: Dataset, mat):
    coo = mat.tocoo()
    return {(ds.users.id(u), ds.items.id(i)) for u, i in zip(coo.row, coo.col, strict=True)}


def test_leave_last_out_basket_and_train_only_rule():
    rows = [
        ("u", "a", 1),
        ("u", "b", 2),
        ("u", "c", 3),
        ("u", "d", 3),  # basket {c, d} at t=3
        ("v", "a", 5),
        ("v", "b", 5),
    ]  # one distinct timestamp -> train only
    ds = Dataset.build(_inter(rows), SplitSpec(validation=False))
    assert _pairs(ds, ds.test) == {("u", "c"), ("u", "d")}
    assert _pairs(ds, ds.train) == {("u", "a"), ("u", "b"), ("v", "a"), ("v", "b")}
    assert ds.validation.nnz == 0


def test_validation_carved_the_same_way():
    rows = [("u", "a", 1), ("u", "b", 2), ("u", "c", 3), ("u", "d", 4)]
    ds = Dataset.build(_inter(rows), SplitSpec())
    assert _pairs(ds, ds.test) == {("u", "d")}
    assert _pairs(ds, ds.validation) == {("u", "c")}
    assert ds.profile(ds.users.index("u")).tolist() == ds.items.indices(["a", "b"]).tolist()


def test_profiles_are_chronological():
    rows = [("u", "z", 1), ("u", "a", 3), ("u", "m", 2), ("u", "q", 9)]
    ds = Dataset.build(_inter(rows), SplitSpec(validation=False))
    assert ds.items.ids_of(ds.profile(0)).tolist() == ["z", "m", "a"]
    assert ds.profile_times_of(0).tolist() == [1, 2, 3]


def test_given_split_uses_evaluation_column_and_drops_cold_users():
    rows = [("u", "a", 1), ("u", "b", 2), ("u", "c", 3), ("w", "x", 1)]
    ds = Dataset.build(
        _inter(rows, [False, True, False, True]), SplitSpec("given", validation=False)
    )
    assert _pairs(ds, ds.test) == {("u", "b")}
    assert ds.n_cold_test_rows_dropped == 1
    with pytest.raises(DataError, match="evaluation"):
        Dataset.build(_inter(rows), SplitSpec("given"))


def test_temporal_split():
    rows = [("u", "a", 1), ("u", "b", 5), ("v", "a", 2), ("v", "c", 7), ("v", "d", 8)]
    ds = Dataset.build(_inter(rows), SplitSpec("temporal", cutoff=6, validation=False))
    assert _pairs(ds, ds.test) == {("v", "c"), ("v", "d")}
    with pytest.raises(ConfigError):
        SplitSpec("temporal")
    with pytest.raises(ConfigError, match="unknown split"):
        SplitSpec("random")


def test_dataset_is_immutable(demo_dataset):
    with pytest.raises(ValueError):
        demo_dataset.profile_items[0] = 1
    with pytest.raises(ValueError):
        demo_dataset.train.data[0] = 5
    with pytest.raises(AttributeError):
        demo_dataset.name = "x"


def test_extra_catalogue_items_and_groups():
    rows = [("u", "a", 1), ("u", "b", 2)]
    ds = Dataset.build(_inter(rows), extra_item_ids=["zz"], item_groups={"a": "g1", "zz": "g2"})
    assert ds.n_items == 3 and "zz" in ds.items
    groups = dict(zip(ds.items.ids, ds.item_groups, strict=True))
    assert groups == {"a": 0, "b": -1, "zz": 1}


events = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 12), st.integers(0, 5)), min_size=1, max_size=80
)


@settings(max_examples=60, deadline=None)
@given(events, st.booleans())
def test_no_heldout_pair_in_train(rows, validation):
    inter = _inter([(f"u{u}", f"i{i}", t) for u, i, t in rows])
    try:
        ds = Dataset.build(inter, SplitSpec(validation=validation))
    except DataError:
        return  # nothing left to train on
    train = _pairs(ds, ds.train)
    test, val = _pairs(ds, ds.test), _pairs(ds, ds.validation)
    assert not train & test and not train & val and not test & val
    assert len(train) + len(test) + len(val) == len(inter)
    # every test basket sits strictly after the user's train events
    frame = inter.frame.set_index(["user_id", "item_id"])["timestamp"]
    for user, item in test | val:
        t_held = frame[(user, item)]
        t_train = [frame[(user, i)] for (u, i) in train if u == user]
        assert all(t < t_held for t in t_train)
    assert np.all(np.diff(ds.profile_indptr) >= 1)

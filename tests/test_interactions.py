"""Loading and validating interaction files: every error names the file, the line and the problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import write
from visrec.data import Interactions, load_interactions
from visrec.errors import DataError


def test_loads_ids_as_strings_and_sorts(tmp_path):
    path = write(tmp_path / "a.csv", "user_id,item_id,timestamp\n007,10,5\n007,9,3\n1,10,4\n")
    inter = load_interactions(path)
    frame = inter.frame
    assert frame["user_id"].tolist() == ["007", "007", "1"]
    assert frame["item_id"].tolist() == ["9", "10", "10"]
    assert frame["timestamp"].dtype == np.int64


def test_repeated_pair_keeps_latest_event(tmp_path):
    text = "user_id,item_id,timestamp,rating\nu,a,10,1\nu,a,30,5\nu,a,20,3\nu,b,1,2\n"
    inter = load_interactions(write(tmp_path / "a.csv", text))
    assert len(inter) == 2
    assert inter.n_duplicates_dropped == 2
    row = inter.frame[inter.frame.item_id == "a"].iloc[0]
    assert (row.timestamp, row.rating) == (30, 5.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("user,item\n1,2\n", "missing column(s) user_id, item_id, timestamp"),
        ("user_id,item_id,timestamp\n", "header but no rows"),
        ("user_id,item_id,timestamp\nu,a,1\nu,b,1.5\n", "line 3"),
        ("user_id,item_id,timestamp\nu,a,1\nu,b,yesterday\n", "timestamp must be an integer"),
        ("user_id,item_id,timestamp\nu,a,-4\n", "negative timestamp on line 2"),
        ("user_id,item_id,timestamp\nu,a,1\n,b,2\n", "empty user_id on line 3"),
        ("user_id,item_id,timestamp\nu, ,1\n", "empty item_id on line 2"),
        ("user_id,item_id,timestamp,evaluation\nu,a,1,maybe\n", "evaluation must be true/false"),
        ("user_id,item_id,timestamp,rating\nu,a,1,five\n", "rating is not a number on line 2"),
        ('user_id,item_id,timestamp\n"u,a,1\nx,y,2,3,4\n', "not a valid CSV"),
    ],
)
def test_validation_errors_name_file_line_and_problem(tmp_path, text, expected):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError) as err:
        load_interactions(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_empty_file(tmp_path):
    with pytest.raises(DataError, match="file is empty"):
        load_interactions(write(tmp_path / "e.csv", ""))


def test_binary_file_is_not_csv(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(DataError, match="not a CSV file"):
        load_interactions(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_interactions(tmp_path / "nope.csv")


def test_bad_line_numbers_are_listed(tmp_path):
    rows = "".join(f"u,i{k},{'x' if k % 2 else k}\n" for k in range(20))
    with pytest.raises(DataError) as err:
        load_interactions(write(tmp_path / "b.csv", "user_id,item_id,timestamp\n" + rows))
    assert "lines 3, 5, 7, 9, 11 (and 5 more)" in str(err.value)
    assert err.value.line == 3


def test_evaluation_values_parse(tmp_path):
    text = "user_id,item_id,timestamp,evaluation\nu,a,1,True\nu,b,2,0\nu,c,3,yes\nu,d,4,F\n"
    frame = load_interactions(write(tmp_path / "e.csv", text)).frame
    assert frame["evaluation"].tolist() == [True, False, True, False]


def test_parquet_round_trip(tmp_path):
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame(
        {"user_id": ["1", "1", "2"], "item_id": ["a", "b", "a"], "timestamp": [1, 2, 3]}
    )
    frame.to_parquet(tmp_path / "x.parquet")
    assert len(load_interactions(tmp_path / "x.parquet")) == 3


def test_k_core_and_rating_filter():
    rows = [
        ("u1", "a", 1, 5),
        ("u1", "b", 2, 4),
        ("u2", "a", 1, 5),
        ("u2", "b", 2, 1),
        ("u3", "a", 1, 5),
        ("u3", "c", 3, 5),
    ]
    inter = Interactions.from_frame(
        pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    )
    core = inter.filter(min_user=2, min_item=2)
    # c has 1 interaction -> dropped -> u3 has 1 -> dropped
    assert sorted(core.frame.user_id.unique()) == ["u1", "u2"]
    liked = inter.filter(min_rating=4)
    assert len(liked) == 5
    with pytest.raises(ValueError):
        inter.filter(min_user=0)

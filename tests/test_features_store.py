"""FeatureStore: atomic write, memory-mapped safe load, alignment to an item vocabulary."""

from __future__ import annotations

import numpy as np
import pytest

from visrec.data import Vocabulary
from visrec.errors import DataError
from visrec.features import FeatureStore

META = {"backbone": "test", "layer": "pooled", "weights": "none", "input_size": 32}


@pytest.fixture
def store(tmp_path):
    array = np.arange(12, dtype=np.float32).reshape(4, 3)
    failed = [{"item_id": "bad", "path": "/x/bad.jpg", "reason": "truncated image"}]
    return FeatureStore.write(tmp_path / "s", ["a", "b", "c", "d"], array, META, failed=failed)


def test_roundtrip_is_memory_mapped_with_metadata(store):
    assert isinstance(store.array, np.memmap)
    assert list(store.ids) == ["a", "b", "c", "d"]
    assert store.vocab.name == "item" and store.vocab.index("c") == 2
    assert len(store) == 4 and store.dim == 3 and not store.is_spatial
    assert store.meta["dtype"] == "float32" and store.meta["shape"] == [4, 3]
    assert store.meta["backbone"] == "test" and store.meta["created_with"].startswith("visrec")
    assert store.failed == [{"item_id": "bad", "path": "/x/bad.jpg", "reason": "truncated image"}]
    assert "bad,/x/bad.jpg,truncated image" in (store.path / "failed.csv").read_text()
    np.testing.assert_array_equal(store.array[1], [3, 4, 5])


def test_write_refuses_to_clobber(store):
    with pytest.raises(DataError, match="exists"):
        FeatureStore.write(store.path, ["z"], np.zeros((1, 3), np.float32), META)
    again = FeatureStore.write(store.path, ["z"], np.ones((1, 2), np.float32), META, overwrite=True)
    assert list(again.ids) == ["z"] and again.dim == 2


def test_spatial_float16(tmp_path):
    maps = np.random.default_rng(0).normal(size=(3, 2, 2, 5)).astype(np.float16)
    store = FeatureStore.write(tmp_path / "m", ["x", "y", "z"], maps, META)
    assert store.is_spatial and store.dim == 5 and store.array.dtype == np.float16
    rows, absent = store.aligned(Vocabulary(["z", "x"]))
    assert rows.dtype == np.float32 and rows.shape == (2, 2, 2, 5) and len(absent) == 0
    np.testing.assert_array_equal(rows[0], maps[2].astype(np.float32))


def test_aligned_orders_rows_and_handles_missing_items(store):
    items = Vocabulary(["d", "zz", "a"], name="item")
    with pytest.raises(DataError, match=r"1 items have no features: \['zz'\]"):
        store.aligned(items)
    rows, absent = store.aligned(items, missing="zero")
    np.testing.assert_array_equal(rows, [[9, 10, 11], [0, 0, 0], [0, 1, 2]])
    assert absent.tolist() == [1]
    rows, absent = store.aligned(items, missing="mean")
    np.testing.assert_allclose(rows[1], [4.5, 5.5, 6.5])
    assert absent.tolist() == [1]
    with pytest.raises(ValueError, match="missing must be"):
        store.aligned(items, missing="drop")


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda p: (p / "meta.json").unlink(), "missing meta.json"),
        (lambda p: (p / "ids.txt").write_text("a\nb\n"), "2 ids but 4 feature rows"),
        (lambda p: (p / "ids.txt").write_text("a\na\nb\nc\n"), "duplicate"),
        (lambda p: (p / "meta.json").write_text("{not json"), "invalid JSON"),
        (lambda p: np.save(p / "features.npy", np.zeros((4, 3), np.int64)), "float32 or float16"),
        (lambda p: np.save(p / "features.npy", np.zeros(4, np.float32)), r"\(n, d\)"),
        (lambda p: (p / "features.npy").write_bytes(b"garbage"), "cannot read|not a plain"),
    ],
)
def test_damaged_stores_raise_data_error(store, damage, message):
    damage(store.path)
    with pytest.raises(DataError, match=message):
        FeatureStore.open(store.path)


def test_object_array_is_refused_without_unpickling(store):
    rows = np.empty((4, 2), dtype=object)
    np.save(store.path / "features.npy", rows, allow_pickle=True)
    with pytest.raises(DataError, match="pickled/object arrays are refused"):
        FeatureStore.open(store.path)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="feature store not found"):
        FeatureStore.open(tmp_path / "nothing")


def test_ids_must_be_single_line(tmp_path):
    with pytest.raises(DataError, match="single-line"):
        FeatureStore.write(tmp_path / "s", ["a\nb"], np.zeros((1, 2), np.float32), META)
    assert not (tmp_path / "s").exists()

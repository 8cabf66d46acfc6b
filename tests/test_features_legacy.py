"""The tutorial's pickled embedding-*.npy: refused by default, never executes code, round-trips."""

from __future__ import annotations

import os

import numpy as np
import pytest

from visrec.cli import main as visrec
from visrec.errors import DataError
from visrec.features import FeatureStore
from visrec.features.legacy import export_legacy, import_legacy, read_legacy


class _Payload:
    """Unpickling this runs ``os.mkdir(marker)``: the attack a pickled feature file can carry."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _tutorial_file(path, rows):
    array = np.empty((len(rows), 2), dtype=object)
    for i, (item_id, vector) in enumerate(rows):
        array[i, 0], array[i, 1] = item_id, vector
    np.save(path, array, allow_pickle=True)
    return path


def test_import_refuses_pickle_without_flag(tmp_path):
    path = _tutorial_file(tmp_path / "embedding-resnet50.npy", [(1, np.ones(4, np.float32))])
    with pytest.raises(DataError, match="--allow-pickle"):
        import_legacy(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert visrec(["features", "import-legacy", str(path), "-o", str(tmp_path / "out")]) == 2


def test_import_with_flag_and_export_roundtrip(tmp_path):
    rows = [(5, np.arange(4, dtype=np.float32)), ("x", np.ones(4, np.float64))]
    path = _tutorial_file(tmp_path / "embedding.npy", rows)
    code = visrec(
        [
            "features",
            "import-legacy",
            str(path),
            "-o",
            str(tmp_path / "store"),
            "--allow-pickle",
            "--backbone",
            "resnet50",
        ]
    )
    assert code == 0
    store = FeatureStore.open(tmp_path / "store")
    assert list(store.ids) == ["5", "x"] and store.meta["backbone"] == "resnet50"
    np.testing.assert_array_equal(store.array, [[0, 1, 2, 3], [1, 1, 1, 1]])
    export_legacy(store, tmp_path / "back.npy")
    ids, matrix = read_legacy(tmp_path / "back.npy", allow_pickle=True)
    assert ids == ["5", "x"]
    np.testing.assert_array_equal(matrix, store.array)


def test_malicious_pickle_never_runs_even_with_the_flag(tmp_path):
    marker = tmp_path / "pwned"
    path = _tutorial_file(tmp_path / "evil.npy", [("a", _Payload(marker))])
    with pytest.raises(DataError, match="refusing to load posix.mkdir|refusing to load os.mkdir"):
        import_legacy(path, tmp_path / "out", allow_pickle=True)
    assert not marker.exists()


def test_store_open_never_unpickles(tmp_path):
    store = FeatureStore.write(tmp_path / "s", ["a"], np.zeros((1, 2), np.float32), {})
    marker = tmp_path / "pwned"
    _tutorial_file(store.path / "features.npy", [("a", _Payload(marker))])
    with pytest.raises(DataError):
        FeatureStore.open(store.path)
    assert not marker.exists()


def test_plain_numeric_npy_is_not_a_tutorial_file(tmp_path):
    np.save(tmp_path / "plain.npy", np.zeros((2, 3), np.float32))
    with pytest.raises(DataError, match="no ids"):
        read_legacy(tmp_path / "plain.npy", allow_pickle=True)


def test_export_refuses_spatial(tmp_path):
    store = FeatureStore.write(tmp_path / "s", ["a"], np.zeros((1, 2, 2, 3), np.float32), {})
    with pytest.raises(DataError, match="pooled vectors only"):
        export_legacy(store, tmp_path / "x.npy")

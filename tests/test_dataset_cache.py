"""The dataset cache (visrec.data.cache): a cached build equals a fresh one, field by field; changed
inputs, a damaged entry or the off switch never give stale or wrong data."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil

import numpy as np
import pytest
import scipy.sparse as sp

from visrec.data import Dataset, SplitSpec, open_dataset
from visrec.data import cache as dscache
from visrec.data.cache import build_dataset
from visrec.evaluation import evaluate_modes
from visrec.runs import DataSpec, evaluate_run, load_run, train_run

SPLITS = [
    SplitSpec(),
    SplitSpec(validation=False),
    SplitSpec(method="cold-items", cold_fraction=0.2, seed=4),
]


@pytest.fixture
def data(demo_dir, tmp_path):
    """A private copy of the demo folder (tests here edit it); its images stay where they are."""
    out = tmp_path / "data"
    out.mkdir()
    for name in ("interactions.csv", "items.csv"):
        shutil.copy(demo_dir / name, out / name)
    manifest = json.loads((demo_dir / "dataset.json").read_text())
    (out / "dataset.json").write_text(json.dumps(manifest | {"images": str(demo_dir / "images")}))
    return out


def assert_same(a: Dataset, b: Dataset) -> None:
    """Every field of two datasets equal: values, dtypes, None-ness."""
    for field in dataclasses.fields(Dataset):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, sp.csr_matrix):
            assert x.shape == y.shape, field.name
            for part in ("data", "indices", "indptr"):
                px, py = getattr(x, part), getattr(y, part)
                assert px.dtype == py.dtype and np.array_equal(px, py), (field.name, part)
        elif isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert x is not None and y is not None, field.name
            assert x.dtype == y.dtype and np.array_equal(x, y), field.name
        else:
            assert x == y, field.name


def entries(cache_dir):
    return sorted(p for p in cache_dir.iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize("split", SPLITS, ids=lambda s: f"{s.method}-{s.validation}")
def test_a_cached_build_equals_a_fresh_one(data, tmp_path, split, monkeypatch):
    cache_dir = tmp_path / "cache"
    fresh = open_dataset(data).build(split)
    first = build_dataset(data, split, cache_dir=cache_dir)
    assert len(entries(cache_dir)) == 1
    # the second build reads no interaction file at all
    monkeypatch.setattr(dscache, "open_dataset", lambda path: pytest.fail("rebuilt"))
    cached = build_dataset(data, split, cache_dir=cache_dir)
    assert_same(fresh, first)
    assert_same(fresh, cached)
    assert cached.item_groups is not None and cached.group_names == fresh.group_names
    assert not cached.train.indices.flags.writeable and not cached.profile_items.flags.writeable
    assert cached.summary() == fresh.summary()


def test_filters_and_splits_have_their_own_entries(data, tmp_path):
    cache_dir = tmp_path / "cache"
    filtered = build_dataset(data, filters={"min_user": 3, "min_item": 3}, cache_dir=cache_dir)
    plain = build_dataset(data, cache_dir=cache_dir)
    build_dataset(data, SplitSpec(validation=False), cache_dir=cache_dir)
    assert len(entries(cache_dir)) == 3
    assert_same(filtered, open_dataset(data).build(min_user=3, min_item=3))
    assert_same(plain, build_dataset(data, cache_dir=cache_dir))


def test_changed_interactions_are_read_again_and_replace_the_old_entry(data, tmp_path):
    cache_dir = tmp_path / "cache"
    before = build_dataset(data, cache_dir=cache_dir)
    csv = data / "interactions.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines[:-40]) + "\n")  # drop the last 40 rows
    after = build_dataset(data, cache_dir=cache_dir)
    assert after.n_train + after.test.nnz + after.validation.nnz < (
        before.n_train + before.test.nnz + before.validation.nnz
    )
    assert_same(after, open_dataset(data).build())
    assert len(entries(cache_dir)) == 1  # the entry of the old file is gone


def test_a_new_image_adds_its_item(data, demo_dir, tmp_path):
    cache_dir = tmp_path / "cache"
    images = tmp_path / "images"
    shutil.copytree(demo_dir / "images", images)
    manifest = json.loads((data / "dataset.json").read_text())
    (data / "dataset.json").write_text(json.dumps(manifest | {"images": str(images)}))
    before = build_dataset(data, cache_dir=cache_dir)
    shutil.copy(next(images.iterdir()), images / "brand-new.png")
    after = build_dataset(data, cache_dir=cache_dir)
    assert "brand-new" in after.items and "brand-new" not in before.items
    assert_same(after, open_dataset(data).build())


def damage_array(entry):
    """A flipped bit no invariant can see (a timestamp): only the checksum catches it."""
    target = entry / "profile_times.npy"
    raw = bytearray(target.read_bytes())
    raw[-1] ^= 0xFF
    target.write_bytes(bytes(raw))


def forge_array(entry):
    """Out-of-range indices with a matching checksum: the invariants catch what the manifest cannot."""
    target = entry / "train.indices.npy"
    array = np.load(target)
    array[0] = 10**6
    np.save(target, array)
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest["arrays"]["train.indices"]["sha256"] = dscache._file_sha256(target)
    (entry / "manifest.json").write_text(json.dumps(manifest))


def truncate_manifest(entry):
    (entry / "manifest.json").write_text('{"format": 1, "arr')


def drop_array(entry):
    (entry / "profile_items.npy").unlink()


def odd_manifest(entry):
    manifest = json.loads((entry / "manifest.json").read_text())
    (entry / "manifest.json").write_text(json.dumps(manifest | {"arrays": [], "shape": "x"}))


@pytest.mark.parametrize(
    "damage", [damage_array, forge_array, truncate_manifest, drop_array, odd_manifest]
)
def test_a_damaged_entry_is_rebuilt_with_a_log_line(data, tmp_path, caplog, damage):
    cache_dir = tmp_path / "cache"
    build_dataset(data, cache_dir=cache_dir)
    (entry,) = entries(cache_dir)
    damage(entry)
    with caplog.at_level(logging.WARNING, logger="visrec.data.cache"):
        rebuilt = build_dataset(data, cache_dir=cache_dir)
    assert "damaged" in caplog.text and entry.name in caplog.text
    assert_same(rebuilt, open_dataset(data).build())
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="visrec.data.cache"):
        assert_same(build_dataset(data, cache_dir=cache_dir), rebuilt)  # repaired
    assert "damaged" not in caplog.text


def test_the_switch_turns_the_cache_off(data, tmp_path, monkeypatch):
    monkeypatch.setenv("VISREC_CACHE_DIR", str(tmp_path / "root"))
    monkeypatch.setenv("VISREC_DATASET_CACHE", "off")
    build_dataset(data)
    assert not (tmp_path / "root").exists()
    monkeypatch.setenv("VISREC_DATASET_CACHE", "1")
    build_dataset(data)
    assert len(entries(tmp_path / "root" / "datasets")) == 1
    build_dataset(data, SplitSpec(validation=False), cache=False)
    assert len(entries(tmp_path / "root" / "datasets")) == 1


def test_no_dataset_is_still_the_loaders_error(tmp_path):
    from visrec.errors import DataError

    with pytest.raises(DataError, match="not a dataset folder"):
        build_dataset(tmp_path, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_train_and_evaluate_from_the_cache_equal_without_it(data, tmp_path, monkeypatch):
    """The same seed gives the same model and the same metrics from a cached and an uncached dataset."""
    monkeypatch.setenv("VISREC_CACHE_DIR", str(tmp_path / "root"))
    runs, results = {}, {}
    for switch in ("0", "1", "1"):  # uncached; cached (first build, stored); cached (loaded)
        monkeypatch.setenv("VISREC_DATASET_CACHE", switch)
        out = tmp_path / f"run{len(runs)}"
        train_run("bpr", DataSpec(str(data)), out, config={"epochs": 2, "factors": 8, "seed": 1})
        run = load_run(out)
        runs[out] = run.model.score(np.arange(run.dataset.n_users)).numpy()
        results[out] = evaluate_run(out, mode="tutorial", run=run)
    assert len(entries(tmp_path / "root" / "datasets")) == 1
    (a, b, c) = runs
    np.testing.assert_array_equal(runs[a], runs[b])
    np.testing.assert_array_equal(runs[a], runs[c])
    for other in (b, c):
        assert results[other].means == results[a].means
        np.testing.assert_array_equal(results[other].per_user["AUC"], results[a].per_user["AUC"])


def test_evaluation_engine_gives_identical_arrays(data, tmp_path):
    fresh = open_dataset(data).build()
    build_dataset(data, cache_dir=tmp_path / "cache")
    cached = build_dataset(data, cache_dir=tmp_path / "cache")
    scores = np.random.default_rng(0).random((fresh.n_users, fresh.n_items)).astype(np.float32)

    def scorer(users):
        import torch

        return torch.from_numpy(scores[np.asarray(users)])

    modes = ("full", "tutorial")
    a = evaluate_modes(scorer, fresh, split="test", modes=modes)
    b = evaluate_modes(scorer, cached, split="test", modes=modes)
    for mode in modes:
        assert a[mode].means == b[mode].means
        for name, values in a[mode].per_user.items():
            np.testing.assert_array_equal(values, b[mode].per_user[name])


def test_every_layout_is_cached_exactly(tmp_path, demo_dir):
    from test_loaders import _layouts

    cache_dir = tmp_path / "cache"
    for path in _layouts(tmp_path, demo_dir)[1:]:
        wiki = path.is_dir() and path.name == "wiki"
        split = SplitSpec("given", validation=False) if wiki else SplitSpec()
        fresh = open_dataset(path).build(split)
        build_dataset(path, split, cache_dir=cache_dir)
        assert_same(build_dataset(path, split, cache_dir=cache_dir), fresh)
    assert len(entries(cache_dir)) == 3

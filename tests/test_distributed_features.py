"""Sharded extraction on 2 gloo processes merges into the single-process store (marked `distributed`)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image

from visrec.distributed import DistContext
from visrec.features.extract import extract_features
from visrec.features.sharded import extract_sharded, shard_folder
from visrec.features.store import FeatureStore

pytestmark = pytest.mark.distributed

SETTINGS = {"backbone": "resnet18", "weights": "none", "input_size": 32, "batch_size": 4}


def _images(folder, n=11):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        pixels = rng.integers(0, 256, size=(40 + i, 36, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"item{i:02d}.png")
    (folder / "item99.png").write_bytes(b"not an image")  # unreadable: listed, not fatal
    return folder


def _worker(rank, world, init_file, images, out, resume):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world
    )
    ctx = DistContext(rank, world)
    items = [f"item{i:02d}" for i in range(11)] + ["no_image"]
    extract_sharded(
        images, out, ctx, items=items, resume=resume, workers=0, progress=False, **SETTINGS
    )
    torch.distributed.destroy_process_group()


def _run(tmp_path, images, out, resume=False, tag="a"):
    init = tmp_path / f"init-{tag}"
    mp.spawn(_worker, args=(2, str(init), str(images), str(out), resume), nprocs=2)


def test_sharded_extraction_equals_single_process(tmp_path):
    images = _images(tmp_path / "images")
    items = [f"item{i:02d}" for i in range(11)] + ["no_image"]
    single = extract_features(
        images, tmp_path / "single", items=items, workers=0, progress=False, **SETTINGS
    )
    out = tmp_path / "merged"
    _run(tmp_path, images, out)
    merged = FeatureStore.open(out)
    assert list(merged.ids) == list(single.ids) and len(merged) == 11
    np.testing.assert_allclose(merged.array, single.array, rtol=1e-5, atol=1e-6)
    assert merged.meta == single.meta
    assert merged.failed == single.failed and [f["item_id"] for f in merged.failed] == ["item99"]
    assert merged.missing_images == single.missing_images == ["no_image"]
    assert merged.report["n_images"] == single.report["n_images"] == 12
    assert not shard_folder(out, DistContext(0, 2)).parent.exists()  # shards cleaned up


def test_sharded_extraction_resumes_a_finished_shard(tmp_path):
    images = _images(tmp_path / "images")
    out = tmp_path / "merged"
    # rank 1's shard finished in an earlier, interrupted job: it must be kept, not recomputed
    done = shard_folder(out, DistContext(1, 2))
    ids = sorted(p.stem for p in images.iterdir())
    extract_features(
        {i: images / f"{i}.png" for i in ids[6:]}, done, workers=0, progress=False, **SETTINGS
    )
    marker = np.load(done / "features.npy", mmap_mode="r+")
    marker[0] = 7.0  # recomputing would overwrite this value
    marker.flush()
    del marker
    _run(tmp_path, images, out, resume=True, tag="b")
    merged = FeatureStore.open(out)
    assert list(merged.ids) == ids[:6] + [i for i in ids[6:] if i != "item99"]
    assert np.all(merged.array[6] == 7.0)  # rank 1's finished shard was kept as it was
    assert not np.all(merged.array[0] == 7.0)  # rank 0's shard was computed

"""Feature extraction under ``torchrun``: one disjoint shard of the images per rank, merged by rank 0.

Each rank runs the ordinary :func:`~visrec.features.extract.extract_features` on its contiguous share
(:func:`visrec.distributed.shard`) of the sorted item ids, into ``.<out>.shards/rank<r>-of-<w>/``; it
therefore inherits that function's per-shard resume (``resume=True`` continues an interrupted shard and
keeps a finished one). After a barrier, rank 0 concatenates the shard stores in rank order (chunked
copies: memory stays bounded) into ``out`` and deletes the shards folder. The shards are contiguous
slices of the same sorted id list a single process uses, so the merged store has the same ids, row
order, metadata and failure lists as a one-process run. All ranks must see the same file system
(one machine, or a shared/network folder across machines).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np

from visrec._io import atomic_dir
from visrec.distributed import DistContext, barrier, shard
from visrec.errors import ConfigError, DataError
from visrec.features.extract import _image_paths, extract_features
from visrec.features.store import FEATURES, FeatureStore, check_writable, write_sidecars

log = logging.getLogger(__name__)

_CHUNK = 1024
_SUMMED = ("images_processed", "n_images", "n_extracted", "n_failed")


def shard_folder(out: str | os.PathLike, ctx: DistContext) -> Path:
    """Where rank ``ctx.rank`` of ``ctx.world_size`` keeps its shard store of ``out``."""
    out = Path(out)
    name = f"rank{ctx.rank:05d}-of-{ctx.world_size:05d}"
    return out.with_name(f".{out.name}.shards") / name


def extract_sharded(
    images: str | os.PathLike | dict[str, Path],
    out: str | os.PathLike,
    ctx: DistContext,
    *,
    items: list[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    **kwargs,
) -> FeatureStore:
    """:func:`extract_features` split across the ranks of ``ctx``; every rank returns the merged store.

    With a 1-process context this is exactly :func:`extract_features`. ``kwargs`` (backbone, weights,
    batch_size, device, ...) go to it unchanged and must be the same on every rank.
    """
    if not ctx.active:
        return extract_features(
            images,
            out,
            items=items,
            resume=resume,
            overwrite=overwrite,
            progress=progress,
            **kwargs,
        )
    out = Path(out)
    if out.exists() and resume and not overwrite:
        log.info("%s is already complete", out)
        return FeatureStore.open(out)
    check_writable(out, overwrite)
    paths, refused = _image_paths(images)
    mine = [str(i) for i in shard(sorted(paths), ctx)]
    folder = shard_folder(out, ctx)
    if mine:
        extract_features(
            {i: paths[i] for i in mine},
            folder,
            resume=resume,
            overwrite=overwrite,
            progress=progress if ctx.is_main else False,
            **kwargs,
        )
    barrier(ctx)
    if ctx.is_main:
        missing = sorted(set(map(str, items or [])) - set(paths))
        parts = [shard_folder(out, DistContext(r, ctx.world_size)) for r in range(ctx.world_size)]
        merge_shards(
            [p for p in parts if p.exists()],
            out,
            missing=missing,
            overwrite=overwrite,
            refused=refused,
        )
        shutil.rmtree(folder.parent, ignore_errors=True)
    barrier(ctx)
    return FeatureStore.open(out)


def merge_shards(
    shards: list[Path],
    out: Path,
    *,
    missing: list[str] | None = None,
    overwrite: bool = False,
    refused: list[dict] | None = None,
) -> FeatureStore:
    """Concatenate finished shard stores (in the given order) into one store at ``out``."""
    stores = [FeatureStore.open(p) for p in shards]
    if not stores:
        raise ConfigError("merge_shards needs at least one shard store")
    first = stores[0]
    for store in stores[1:]:
        if store.array.shape[1:] != first.array.shape[1:] or _core(store.meta) != _core(first.meta):
            raise DataError(f"extracted with other settings than {first.path}", path=store.path)
    total = sum(len(s) for s in stores)
    check_writable(out, overwrite)
    with atomic_dir(out) as tmp:
        target = np.lib.format.open_memmap(
            tmp / FEATURES,
            mode="w+",
            dtype=first.array.dtype,
            shape=(total, *first.array.shape[1:]),
        )
        row = 0
        for store in stores:
            for start in range(0, len(store), _CHUNK):
                block = store.array[start : start + _CHUNK]
                target[row : row + len(block)] = block
                row += len(block)
        target.flush()
        ids = [str(i) for s in stores for i in s.ids]
        write_sidecars(
            tmp, ids, target, _core(first.meta), report=_merged_report(stores, missing, refused)
        )
        del target
    log.info("merged %d shards into %s: %d items", len(stores), out, total)
    return FeatureStore.open(out)


def _core(meta: dict) -> dict:
    """The extraction settings of a store's meta (without what write_sidecars adds)."""
    return {k: v for k, v in meta.items() if k not in ("dtype", "shape", "created_with")}


def _merged_report(
    stores: list[FeatureStore], missing: list[str] | None, refused: list[dict] | None = None
) -> dict:
    reports = [s.report for s in stores]
    report: dict = {k: sum(int(r.get(k) or 0) for r in reports) for k in _SUMMED}
    seconds = max(float(r.get("seconds") or 0.0) for r in reports)  # ranks run side by side
    report["seconds"] = round(seconds, 3)
    report["images_per_s"] = round(report["images_processed"] / seconds, 2) if seconds else None
    report["shards"] = len(stores)
    report["n_missing_images"] = len(missing or [])
    report["failed"] = sorted((f for r in reports for f in r.get("failed", [])), key=_by_id)
    report["missing_images"] = list(missing or [])
    report["n_refused_files"] = len(refused or [])
    report["refused_files"] = list(refused or [])
    return report


def _by_id(record: dict) -> str:
    return record["item_id"]

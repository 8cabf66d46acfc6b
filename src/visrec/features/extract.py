"""Images -> FeatureStore: batched decoding in DataLoader workers, inference, chunks streamed to disk.

The run writes into ``.<out>.partial/`` next to the output: a preallocated ``features.npy`` (opened with
``np.lib.format.open_memmap``, so memory stays bounded by the batch size whatever the catalogue size), a
``done.npy`` status per row (0 pending, 1 done, 2 unreadable) flushed after the features of each batch, and
``failed.jsonl``. ``resume=True`` continues such a folder without recomputing finished rows; at the end the
folder becomes the store by an atomic rename (unreadable rows are dropped and listed in the report).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from visrec._io import atomic_dir
from visrec.data.images import ImageReadError, id_problem, load_rgb, scan_image_folder
from visrec.devices import progress_disabled, resolve_device
from visrec.errors import ConfigError, DataError
from visrec.features import runtime
from visrec.features.backbones import create_backbone
from visrec.features.extract_state import DONE, FAILED_LOG, open_partial, read_failed
from visrec.features.images import center_crop_resize
from visrec.features.onnx_backend import BACKENDS, onnx_model
from visrec.features.store import FEATURES, FeatureStore, check_writable, write_sidecars

log = logging.getLogger(__name__)

_COPY_CHUNK = 1024


@dataclass(frozen=True)
class ExtractConfig:
    """What to compute; a resumed run must use the same values."""

    backbone: str = "resnet50"
    """Backbone name (see :func:`visrec.features.backbones.create_backbone`)."""
    layer: str = "pooled"
    """``pooled`` (penultimate vector) or a spatial layer name (``layer4`` for ResNets)."""
    weights: str = "imagenet"
    """``imagenet``, ``none`` (seeded random init) or a local state-dict file."""
    precision: str = "auto"
    """Compute precision: auto, fp32, bf16, fp16."""
    dtype: str = "float32"
    """Storage dtype: float32 or float16 (halves the size of spatial maps)."""
    input_size: int | None = None
    """Override the backbone's crop size (the resize scales with it); None keeps the backbone's."""
    backend: str = "torch"
    """``torch`` (PyTorch, any device) or ``onnx`` (ONNX Runtime on CPU, fp32; extra ``visrec[onnx]``;
    features agree with PyTorch's at cosine >= 0.999 per item, see :mod:`visrec.features.onnx_backend`)."""


def extract_features(
    images: str | os.PathLike | dict[str, Path],
    out: str | os.PathLike,
    *,
    config: ExtractConfig | None = None,
    items: list[str] | None = None,
    batch_size: int = 32,
    workers: int | None = None,
    device: str | None = None,
    compile: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    **overrides,
) -> FeatureStore:
    """Extract features of every image in ``images`` (a folder or ``{item_id: path}``) into ``out``.

    ``config`` fields may also be given as keyword arguments (``backbone="resnet18"``). ``items``: item
    ids expected to have an image (e.g. from the interactions); those without one are listed in the
    report. Unreadable images, links leaving the folder and file names that are not usable ids are
    skipped and reported (checked before any work starts), never fatal. Returns the opened store.
    """
    config = ExtractConfig(**{**asdict(config or ExtractConfig()), **overrides})
    if config.dtype not in ("float32", "float16"):
        raise ConfigError(f"dtype must be float32 or float16, got {config.dtype!r}")
    out = Path(out)
    paths, refused = _image_paths(images)
    missing = sorted(set(map(str, items or [])) - set(paths))
    if out.exists() and resume and not overwrite:
        log.info("%s is already complete", out)
        return FeatureStore.open(out)
    check_writable(out, overwrite)
    dev = resolve_device(device)
    model, prep, precision = _model(config, dev, compile)
    ids = sorted(paths)
    shape = _output_shape(model, prep["input_size"], dev)
    meta = {
        "backbone": config.backbone,
        "layer": config.layer,
        "weights": prep["weights"],
        "input_size": prep["input_size"],
        "resize": prep["resize"],
        "mean": prep["mean"],
        "std": prep["std"],
        "precision": precision,
        "channels_last": True,
        "backend": config.backend,
    }
    partial = out.with_name(f".{out.name}.partial")
    plan = {"config": asdict(config), "meta": meta, "shape": list(shape), "n": len(ids)}
    open_partial(partial, plan, ids, resume=resume, overwrite=overwrite)
    stats = _run(
        model,
        partial,
        ids,
        paths,
        prep,
        dev,
        batch_size,
        runtime.default_workers(dev) if workers is None else workers,
        progress,
    )
    stats |= {"n_refused_files": len(refused), "refused_files": refused}
    return _finalise(partial, out, ids, meta, missing, stats, overwrite)


def _image_paths(
    images: str | os.PathLike | dict[str, Path],
) -> tuple[dict[str, Path], list[dict[str, str]]]:
    """Item id -> image path, plus the files refused (with the reason) before any work starts."""
    if isinstance(images, dict):
        paths, refused = {}, []
        for item_id, path in images.items():
            problem = id_problem(str(item_id))
            if problem is None:
                paths[str(item_id)] = Path(path)
            else:
                refused.append({"path": str(path), "reason": f"{problem}: {str(item_id)!r}"})
    else:
        scan = scan_image_folder(images)
        paths, refused = scan.images, scan.rejected
        for item_id, files in scan.clashes.items():
            log.warning(
                "item %s has several images %s; using %s",
                item_id,
                [f.name for f in files],
                paths[item_id].name,
            )
    for record in refused:
        log.warning("skipped %s: %s", record["path"], record["reason"])
    if not paths:
        raise DataError(
            "no usable image files (jpg, jpeg, png, gif, webp, bmp, tif) found", path=images
        )
    return paths, refused


def _model(config: ExtractConfig, dev: torch.device, compile: bool) -> tuple[object, dict, str]:
    """``(model, preprocessing, precision)`` for the chosen backend."""
    if config.backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {config.backend!r}")
    if config.backend == "torch":
        precision = runtime.resolve_precision(config.precision, dev)
        return (*_torch_model(config, dev, precision, compile), precision)
    if dev.type != "cpu":
        raise ConfigError(f"the onnx backend runs on the CPU, not {dev}: use --backend torch there")
    if config.precision not in ("auto", "fp32") or compile:
        raise ConfigError(
            "the onnx backend computes in fp32 (no --precision bf16/fp16, no --compile)"
        )
    model, prep = onnx_model(
        config.backbone,
        config.weights,
        config.layer,
        config.input_size,
        functools.partial(_torch_model, config, dev, "fp32", False),
    )
    return model, prep, "fp32"


def _torch_model(
    config: ExtractConfig, dev: torch.device, precision: str, compile: bool
) -> tuple[torch.nn.Module, dict]:
    body, prep = create_backbone(config.backbone, config.weights, config.layer)
    prep = _resize_input(prep, config.input_size)
    return runtime.prepare_model(body, prep, dev, precision, compile=compile), prep


def _resize_input(prep: dict, input_size: int | None) -> dict:
    if input_size is None or input_size == prep["input_size"]:
        return prep
    if input_size < 8:
        raise ConfigError(f"input_size must be at least 8, got {input_size}")
    resize = int(round(prep["resize"] * input_size / prep["input_size"]))
    return {**prep, "input_size": int(input_size), "resize": resize}


@torch.inference_mode()
def _output_shape(model: torch.nn.Module, size: int, device: torch.device) -> tuple[int, ...]:
    out = model(torch.zeros(1, size, size, 3, dtype=torch.uint8, device=device))
    if out.ndim == 4:  # NCHW -> stored as (h, w, d)
        return (out.shape[2], out.shape[3], out.shape[1])
    if out.ndim != 2:
        raise ConfigError(
            f"backbone output has shape {tuple(out.shape)}; expected (B, d) or (B, d, h, w)"
        )
    return (out.shape[1],)


# --- the main loop ------------------------------------------------------------------------------


class _Images(Dataset):
    """Decode + resize + centre-crop one image per index; failures come back as reasons."""

    def __init__(self, rows: np.ndarray, paths: list[Path], resize: int, crop: int):
        self.rows, self.paths, self.resize, self.crop = rows, paths, resize, crop

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, str | None]:
        row = int(self.rows[i])
        try:
            image = load_rgb(self.paths[row], min_side=self.resize)
            return row, center_crop_resize(image, self.resize, self.crop), None
        except ImageReadError as exc:
            return row, None, str(exc)


def _collate(samples: list) -> tuple[torch.Tensor, torch.Tensor | None, list[tuple[int, str]]]:
    ok = [(row, pixels) for row, pixels, _ in samples if pixels is not None]
    failures = [(row, reason) for row, _, reason in samples if reason is not None]
    rows = torch.tensor([row for row, _ in ok], dtype=torch.int64)
    pixels = torch.from_numpy(np.stack([p for _, p in ok])) if ok else None
    return rows, pixels, failures


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def _run(
    model,
    partial: Path,
    ids: list[str],
    paths: dict[str, Path],
    prep: dict,
    device: torch.device,
    batch_size: int,
    workers: int,
    progress: bool | None,
) -> dict:
    features = np.load(partial / FEATURES, mmap_mode="r+")
    done = np.load(partial / DONE, mmap_mode="r+")
    pending = np.flatnonzero(done == 0)
    dataset = _Images(pending, [paths[i] for i in ids], prep["resize"], prep["input_size"])
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_collate,
        worker_init_fn=_worker_init if workers else None,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None,
    )
    start, count = time.perf_counter(), 0
    bar = tqdm(
        total=len(pending),
        unit="img",
        disable=progress_disabled(progress),
        desc="extract",
    )
    with torch.inference_mode(), open(partial / FAILED_LOG, "a", encoding="utf-8") as failed_log:
        for rows, pixels, failures in loader:
            if pixels is not None:
                out = model(pixels.to(device, non_blocking=True))
                _write_batch(features, rows.numpy(), _to_storage(out, features.dtype))
            _mark(done, features, failed_log, rows.numpy(), failures, paths, ids)
            count += len(rows)
            bar.update(len(rows) + len(failures))
    bar.close()
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 3),
        "images_processed": count,
        "images_per_s": round(count / seconds, 2) if seconds > 0 else None,
    }


def _to_storage(out: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    if out.ndim == 4:
        out = out.permute(0, 2, 3, 1)
    return out.to("cpu", torch.float16 if dtype == np.float16 else torch.float32).numpy()


def _write_batch(features: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    features[rows] = values
    features.flush()


def _mark(done, features, failed_log, rows, failures, paths, ids) -> None:
    """Record a batch as finished: features are flushed first, then failures, then the status."""
    for row, reason in failures:
        record = {"item_id": ids[row], "path": str(paths[ids[row]]), "reason": reason}
        failed_log.write(json.dumps(record) + "\n")
    failed_log.flush()
    os.fsync(failed_log.fileno())
    done[rows] = 1
    done[[row for row, _ in failures]] = 2
    done.flush()


# --- finishing ----------------------------------------------------------------------------------


def _finalise(
    partial: Path,
    out: Path,
    ids: list[str],
    meta: dict,
    missing: list[str],
    stats: dict,
    overwrite: bool,
) -> FeatureStore:
    done = np.load(partial / DONE)
    if (done == 0).any():
        raise DataError(f"{int((done == 0).sum())} items were not processed", path=partial)
    failed = read_failed(partial / FAILED_LOG, ids, done)
    keep = np.flatnonzero(done == 1)
    report = {
        **stats,
        "n_images": len(ids),
        "n_extracted": len(keep),
        "n_failed": len(failed),
        "n_missing_images": len(missing),
        "failed": failed,
        "missing_images": missing,
    }
    check_writable(out, overwrite)
    with atomic_dir(out) as tmp:
        if len(keep) == len(ids):
            os.replace(partial / FEATURES, tmp / FEATURES)
        else:
            _copy_rows(partial / FEATURES, tmp / FEATURES, keep)
        array = np.load(tmp / FEATURES, mmap_mode="r")
        write_sidecars(tmp, [ids[i] for i in keep], array, meta, report=report)
        del array
    shutil.rmtree(partial, ignore_errors=True)
    log.info(
        "wrote %s: %d items, %d unreadable, %d without image",
        out,
        len(keep),
        len(failed),
        len(missing),
    )
    return FeatureStore.open(out)


def _copy_rows(src: Path, dst: Path, keep: np.ndarray) -> None:
    source = np.load(src, mmap_mode="r")
    target = np.lib.format.open_memmap(
        dst, mode="w+", dtype=source.dtype, shape=(len(keep), *source.shape[1:])
    )
    for start in range(0, len(keep), _COPY_CHUNK):
        target[start : start + _COPY_CHUNK] = source[keep[start : start + _COPY_CHUNK]]
    target.flush()
    del target

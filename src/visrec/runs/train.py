"""Training into a run directory (layout in :mod:`visrec.runs.directory`).

A finished run is never replaced by a failed one: with ``force`` the new run trains in a sibling folder
``.NAME.next`` and takes the place of the old one only when it finishes.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from visrec import __version__
from visrec._io import read_json, write_json
from visrec.data.dataset import Dataset
from visrec.distributed import DistContext, local_device
from visrec.errors import ConfigError, VisrecError
from visrec.features import FeatureStore
from visrec.features.pixel_cache import open_pixels
from visrec.models import Recommender, create, get
from visrec.models.capabilities import FeatureInput, TrainOptions, TrainsByGradient
from visrec.runs.directory import RUN_FILE, DataSpec
from visrec.training import fit_model
from visrec.training.trainer import CHECKPOINT

log = logging.getLogger(__name__)


def is_finished(run_dir: Path) -> bool:
    path = Path(run_dir) / RUN_FILE
    try:  # a damaged run.json is an unfinished run: --force starts again, --resume continues
        return path.is_file() and read_json(path).get("status") == "finished"
    except (OSError, ValueError, AttributeError):
        return False


def resume_config(out: Path, model_name: str, config: dict | None) -> dict:
    """The options a resumed run continues with: those saved in its ``run.json`` (so a default that
    changed since, e.g. ``epochs``, does not make the run another one), overridden by the ones given
    now. Options this version does not know are left to the checkpoint's config check, which names
    them; options added since take their defaults there, with a log line."""
    try:
        meta = read_json(out / RUN_FILE)
    except (OSError, ValueError):
        return dict(config or {})
    if not isinstance(meta, dict) or meta.get("model") != model_name:
        return dict(config or {})
    saved = meta.get("config")
    if not isinstance(saved, dict):
        return dict(config or {})
    known = {name for name, *_ in get(model_name).config_class.describe()}
    return {k: v for k, v in saved.items() if k in known} | dict(config or {})


def load_features(
    model_cls: type[Recommender],
    features: str | Mapping[str, str] | None,
    data: DataSpec,
    dataset: Dataset,
    image_size: int | None = None,
):
    """Open what the model reads besides interactions (its declared ``inputs``).

    ``features``: a path, or a mapping input name -> path for a model with several inputs. Returns
    None, the one input's source (a FeatureStore or a pixel cache), or a mapping name -> source.
    """
    inputs = model_cls.inputs
    if not inputs:
        return None
    if isinstance(features, Mapping):
        paths = dict(features)
    elif len(inputs) == 1:
        paths = {inputs[0].name: features}
    else:
        names = ", ".join(i.name for i in inputs)
        raise ConfigError(f"{model_cls.name} reads several feature sources: give paths for {names}")
    opened = {
        i.name: _open_input(model_cls, i, paths.get(i.name), data, dataset, image_size)
        for i in inputs
    }
    return opened[inputs[0].name] if len(inputs) == 1 else opened


def _open_input(
    model_cls: type[Recommender],
    spec: FeatureInput,
    path: str | None,
    data: DataSpec,
    dataset: Dataset,
    image_size: int | None,
):
    kind = spec.kind
    if kind == "pixels":
        images = Path(path) if path else data.images_dir()
        if images is None:
            raise ConfigError(f"{model_cls.name} trains from pixels: pass --images DIR")
        return open_pixels(images, dataset.items, image_size or model_cls.config_class().image_size)
    if not path:
        raise ConfigError(
            f"{model_cls.name} needs {kind} item features: pass --features STORE "
            f"(made by `visrec extract`)"
        )
    store = FeatureStore.open(path)
    if (kind == "spatial") != store.is_spatial:
        want = "spatial maps (--layer layer4 or similar)" if kind == "spatial" else "pooled vectors"
        raise ConfigError(f"{model_cls.name} needs {want}; {path} holds shape {store.array.shape}")
    store.check_coverage(dataset.items)  # before the run folder exists: another dataset's store
    return store


def train_run(
    model_name: str,
    data: DataSpec,
    out: str | Path,
    *,
    config: dict | None = None,
    features: str | Mapping[str, str] | None = None,
    resume: bool = False,
    force: bool = False,
    dist: DistContext | None = None,
    on_epoch: Callable[[dict, int], None] | None = None,
) -> Recommender:
    """Train ``model_name`` on ``data`` into the run directory ``out`` (see module docstring).

    ``features``: the feature store (or image folder) path, or a mapping input name -> path.
    ``dist`` (from :func:`visrec.distributed.torchrun`): every rank trains its DDP replica on its own
    share of triplets; rank 0 alone writes files. ``on_epoch`` (gradient models, rank 0) receives each
    epoch's log row (as written to train_log.jsonl) and the maximum epochs.
    """
    out = Path(out)
    cls = get(model_name)
    model = create(model_name, resume_config(out, model_name, config) if resume else config or {})
    work = out
    if is_finished(out):
        if resume:
            raise VisrecError(f"{out} holds a finished run: nothing to resume")
        if not force:
            raise VisrecError(
                f"{out} holds a finished run; choose another -o or pass --force "
                "(the old run is replaced only when the new one finishes)"
            )
        work = out.parent / f".{out.name}.next"
    elif out.exists() and not out.is_dir():
        raise VisrecError(f"{out} is a file, not a run directory; choose another -o")
    elif out.exists() and any(out.iterdir()) and not (out / RUN_FILE).is_file():
        raise VisrecError(f"{out} exists and is not a visrec run directory; choose another -o")
    elif (out / RUN_FILE).is_file() and not resume and not force:
        raise VisrecError(
            f"{out} holds an unfinished run; pass --resume to continue it or --force to start again"
        )
    if work != out and not resume and work.exists():
        shutil.rmtree(work)
    dataset = data.build()
    pixels = any(i.kind == "pixels" for i in cls.inputs)  # pixel models' configs have image_size
    feats = load_features(cls, features, data, dataset, model.config.image_size if pixels else None)
    meta = {
        "model": model_name,
        "config": model.config.to_dict(),
        "data": data.__dict__,
        "features": _resolved(features),
        "status": "running",
        "visrec_version": __version__,
        "started": time.time(),
        "dataset": dataset.summary(),
    }
    main = dist is None or dist.is_main
    created = not work.exists()
    if main:
        work.mkdir(parents=True, exist_ok=True)
        write_json(work / RUN_FILE, meta)
    began = time.perf_counter()
    options = None
    if isinstance(model, TrainsByGradient):
        options = TrainOptions(run_dir=work, resume=resume, on_epoch=on_epoch)
        if dist is not None and dist.active:
            if model.config.device == "auto":
                model.to(local_device())
            options = replace(options, dist=dist)
            meta["world_size"] = dist.world_size
    try:
        fit_model(model, dataset, feats, options)
    except BaseException:
        if main and not resume:
            _discard_unstarted(work, created)
        raise
    if main:
        model.save(work / "model")
        meta |= {
            "status": "finished",
            "train_seconds": round(time.perf_counter() - began, 2),
            "info": model.info,
        }
        write_json(work / RUN_FILE, meta)
        if work != out:
            _swap(work, out)
    return model


def _discard_unstarted(work: Path, created: bool) -> None:
    """A run that failed before its first checkpoint (e.g. a bad device) must not block the retry."""
    if (work / CHECKPOINT).is_file():
        return  # something to --resume from
    if created:
        shutil.rmtree(work, ignore_errors=True)
    else:
        (work / RUN_FILE).unlink(missing_ok=True)


def _resolved(features: str | Mapping[str, str] | None) -> str | dict | None:
    if not features:
        return None
    if isinstance(features, Mapping):
        return {name: str(Path(path).resolve()) for name, path in features.items()}
    return str(Path(features).resolve())


def _swap(new: Path, old: Path) -> None:
    backup = old.parent / f".{old.name}.old"
    if backup.exists():
        shutil.rmtree(backup)
    os.replace(old, backup)
    os.replace(new, old)
    shutil.rmtree(backup, ignore_errors=True)

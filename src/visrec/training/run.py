"""Run directories: everything one training run produced, enough to evaluate, recommend and serve.

```
RUN_DIR/
  run.json          model name, config, data/feature paths, split and filters, status, timings
  model/            the fitted Recommender (model.json + weights.pt, no pickle)
  checkpoint.pt     last finished epoch (gradient models; what --resume continues from)
  train_log.jsonl   one line per epoch: loss, validation metric, lr, seconds, triplets/s
```

A finished run is never replaced by a failed one: with ``force`` the new run trains in a sibling folder
``.NAME.next`` and takes the place of the old one only when it finishes.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from visrec import __version__
from visrec._io import read_json, read_json_object, write_json
from visrec.data.dataset import Dataset
from visrec.data.loaders import open_dataset
from visrec.data.split import SplitSpec
from visrec.errors import ConfigError, DataError, VisrecError
from visrec.models import Recommender, create, get
from visrec.training.trainer import CHECKPOINT

log = logging.getLogger(__name__)
RUN_FILE = "run.json"
_RERUN = "train it again (visrec train ... --force)"


@dataclass
class DataSpec:
    """Where the data comes from and how it is split: recorded so a run rebuilds the same Dataset."""

    path: str
    split: dict = field(default_factory=lambda: SplitSpec().to_dict())
    filters: dict = field(default_factory=dict)

    def build(self) -> Dataset:
        source = open_dataset(self.path)
        return source.build(SplitSpec(**self.split), **self.filters)

    def images_dir(self) -> Path | None:
        return open_dataset(self.path).images_dir


def is_finished(run_dir: Path) -> bool:
    path = Path(run_dir) / RUN_FILE
    try:  # a damaged run.json is an unfinished run: --force starts again, --resume continues
        return path.is_file() and read_json(path).get("status") == "finished"
    except (OSError, ValueError, AttributeError):
        return False


def load_features(
    model_cls: type[Recommender],
    features: str | None,
    data: DataSpec,
    dataset: Dataset,
    image_size: int | None = None,
):
    """Open what the model reads besides interactions (a FeatureStore, or a pixel cache)."""
    kind = model_cls.features
    if kind is None:
        return None
    if kind == "pixels":
        from visrec.features.pixel_cache import open_pixels

        images = Path(features) if features else data.images_dir()
        if images is None:
            raise ConfigError(f"{model_cls.name} trains from pixels: pass --images DIR")
        return open_pixels(images, dataset.items, image_size or model_cls.config_class().image_size)
    if not features:
        raise ConfigError(
            f"{model_cls.name} needs {kind} item features: pass --features STORE "
            f"(made by `visrec extract`)"
        )
    from visrec.features import FeatureStore

    store = FeatureStore.open(features)
    if (kind == "spatial") != store.is_spatial:
        want = "spatial maps (--layer layer4 or similar)" if kind == "spatial" else "pooled vectors"
        raise ConfigError(
            f"{model_cls.name} needs {want}; {features} holds shape {store.array.shape}"
        )
    store.check_coverage(dataset.items)  # before the run folder exists: another dataset's store
    return store


def train_run(
    model_name: str,
    data: DataSpec,
    out: str | Path,
    *,
    config: dict | None = None,
    features: str | None = None,
    resume: bool = False,
    force: bool = False,
    dist=None,
    on_epoch: Callable[[dict, int], None] | None = None,
) -> Recommender:
    """Train ``model_name`` on ``data`` into the run directory ``out`` (see module docstring).

    ``dist`` (a DistContext, from :func:`visrec.distributed.init_from_env` under torchrun): every rank
    trains its DDP replica on its own share of triplets; rank 0 alone writes files. ``on_epoch``
    (gradient models, rank 0) receives each epoch's log row (as written to train_log.jsonl) and the maximum epochs.
    """
    out = Path(out)
    cls = get(model_name)
    model = create(model_name, config or {})
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
    feats = load_features(cls, features, data, dataset, getattr(model.config, "image_size", None))
    meta = {
        "model": model_name,
        "config": model.config.to_dict(),
        "data": data.__dict__,
        "features": str(Path(features).resolve()) if features else None,
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
    options = {"run_dir": work, "resume": resume} if hasattr(model, "module") else {}
    if dist is not None and dist.active and hasattr(model, "module"):
        from visrec.distributed import local_device

        if model.config.device == "auto":
            model.to(local_device())
        options["dist"] = dist
        meta["world_size"] = dist.world_size
    if on_epoch is not None and hasattr(model, "module"):
        options["on_epoch"] = on_epoch
    try:
        model.fit(dataset, feats, **options)
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


def _swap(new: Path, old: Path) -> None:
    backup = old.parent / f".{old.name}.old"
    if backup.exists():
        shutil.rmtree(backup)
    os.replace(old, backup)
    os.replace(new, old)
    shutil.rmtree(backup, ignore_errors=True)


@dataclass
class Run:
    """A finished run, loaded: its model, its dataset rebuilt from the recorded spec, and its metadata."""

    path: Path
    meta: dict
    model: Recommender
    data: DataSpec

    _dataset: Dataset | None = None

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            self._dataset = self.data.build()
            if list(self._dataset.items.ids) != list(self.model.items.ids):
                raise DataError(
                    "the data changed since this run was trained (item vocabulary differs)",
                    path=self.data.path,
                )
        return self._dataset


def load_run(run_dir: str | Path) -> Run:
    """Open a finished run directory; clear errors for a missing or unfinished one."""
    run_dir = Path(run_dir)
    if not (run_dir / RUN_FILE).is_file():
        raise DataError("not a visrec run directory (no run.json)", path=run_dir)
    meta = read_json_object(run_dir / RUN_FILE, what="run metadata", fix=_RERUN)
    if meta.get("status") != "finished":
        raise VisrecError(
            f"{run_dir}: the run has not finished (status {meta.get('status')!r}); "
            "continue it with `visrec train ... --resume`"
        )
    model = Recommender.load(run_dir / "model")
    try:
        data = DataSpec(**meta["data"])
    except (KeyError, TypeError) as exc:
        raise DataError(
            f"damaged run metadata (data: {exc}); {_RERUN}", path=run_dir / RUN_FILE
        ) from None
    return Run(run_dir, meta, model, data)

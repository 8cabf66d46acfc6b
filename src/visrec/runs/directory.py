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

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from visrec._io import read_json_object
from visrec.data.cache import build_dataset
from visrec.data.dataset import Dataset
from visrec.data.loaders import open_images
from visrec.data.split import SplitSpec
from visrec.errors import DataError, VisrecError

if TYPE_CHECKING:
    from visrec.models import Recommender

RUN_FILE = "run.json"
_RERUN = "train it again (visrec train ... --force)"


@dataclass
class DataSpec:
    """Where the data comes from and how it is split: recorded so a run rebuilds the same Dataset."""

    path: str
    split: dict = field(default_factory=lambda: SplitSpec().to_dict())
    filters: dict = field(default_factory=dict)

    def build(self, *, cache: bool | None = None) -> Dataset:
        """The Dataset, through the dataset cache (:func:`visrec.data.cache.build_dataset`; ``cache``
        defaults to ``$VISREC_DATASET_CACHE``)."""
        return build_dataset(self.path, SplitSpec(**self.split), filters=self.filters, cache=cache)

    def images_dir(self) -> Path | None:
        return open_images(self.path)[0]


def data_spec(
    path: str | Path,
    *,
    split: str = "leave-last-out",
    validation: bool = True,
    cutoff: int | None = None,
    cold_fraction: float = 0.1,
    split_seed: int = 0,
    min_user: int = 1,
    min_item: int = 1,
    min_rating: float | None = None,
) -> DataSpec:
    """The one way a :class:`DataSpec` is made from options (``visrec train`` flags, benchmark TOML).

    The split is validated here (method, cut-off; ``cold_fraction`` and ``split_seed`` are recorded for
    the cold-items split only); k-core and rating filters are recorded only when
    they filter something, so equal settings give equal ``run.json`` records.
    """
    filters: dict = {}
    if min_user > 1 or min_item > 1:
        filters |= {"min_user": min_user, "min_item": min_item}
    if min_rating is not None:
        filters["min_rating"] = float(min_rating)
    spec = {"method": split, "validation": validation, "cutoff": cutoff}
    if split == "cold-items":
        spec |= {"cold_fraction": cold_fraction, "seed": split_seed}
    SplitSpec(**spec)  # validates method and cutoff
    return DataSpec(str(Path(path).resolve()), spec, filters)


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
            self._dataset = built_for(self.data, self.model.items.ids)
        return self._dataset


def built_for(data: DataSpec, item_ids) -> Dataset:
    """The run's Dataset, checked against the item vocabulary the model was trained with."""
    dataset = data.build()
    if list(dataset.items.ids) != list(item_ids):
        raise DataError(
            "the data changed since this run was trained (item vocabulary differs)",
            path=data.path,
        )
    return dataset


def read_run(run_dir: str | Path) -> tuple[dict, DataSpec]:
    """``run.json`` of a finished run and its data spec; clear errors for a missing or unfinished one
    (what :func:`load_run` checks before it loads the model)."""
    run_dir = Path(run_dir)
    if not (run_dir / RUN_FILE).is_file():
        raise DataError("not a visrec run directory (no run.json)", path=run_dir)
    meta = read_json_object(run_dir / RUN_FILE, what="run metadata", fix=_RERUN)
    if meta.get("status") != "finished":
        raise VisrecError(
            f"{run_dir}: the run has not finished (status {meta.get('status')!r}); "
            "continue it with `visrec train ... --resume`"
        )
    try:
        data = DataSpec(**meta["data"])
    except (KeyError, TypeError) as exc:
        raise DataError(
            f"damaged run metadata (data: {exc}); {_RERUN}", path=run_dir / RUN_FILE
        ) from None
    return meta, data


def load_run(run_dir: str | Path) -> Run:
    """Open a finished run directory; clear errors for a missing or unfinished one."""
    from visrec.models import Recommender  # torch: only where a model is loaded (see read_run)

    meta, data = read_run(run_dir)
    model = Recommender.load(Path(run_dir) / "model")
    return Run(Path(run_dir), meta, model, data)

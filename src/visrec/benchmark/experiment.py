"""``Experiment``: a benchmark from Python. The TOML file (``visrec benchmark CONFIG.toml``) is one way to
build it; keyword arguments are the other, checked by the same typed tables.

```python
exp = Experiment(
    data="demo/data",
    models=["pop", {"model": "vbpr", "features": "backbones", "config": {"epochs": 5}}],
    backbones=["efficientnet_lite0", "resnet18"],
)
results = exp.run("bench-out")
results.table          # one row per model: test means
results.backbones      # one row per backbone: ImageNet top-1 beside each visual model's quality
```
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from visrec.benchmark.backbones import (
    BackbonesTable,
    backbone_markdown,
    backbone_rows,
    ensure_stores,
    with_stores,
)
from visrec.benchmark.config import BenchmarkConfig, load_config, parse_config
from visrec.benchmark.plots import write_plots
from visrec.benchmark.report import summarise, table_markdown, write_reports
from visrec.benchmark.runner import Echo, run_benchmark
from visrec.errors import ConfigError, VisrecError

log = logging.getLogger(__name__)


@dataclass
class Results:
    """What :meth:`Experiment.run` returns: the results.json content and where it was written."""

    summary: dict
    out: Path

    @property
    def table(self) -> pd.DataFrame:
        """Test means, one row per model (failed models: NaN), metrics as columns."""
        rows = {
            m["name"]: m.get("means") or {k: float("nan") for k in self.summary["metrics"]}
            for m in self.summary["models"]
        }
        return pd.DataFrame.from_dict(rows, orient="index")[self.summary["metrics"]]

    @property
    def backbones(self) -> pd.DataFrame | None:
        """With a backbone axis: one row per backbone, its ImageNet top-1 (%) and each visual
        model's test AUC and nDCG@20; None without an axis."""
        rows = self.summary.get("backbones")
        if not rows:
            return None
        flat = []
        for r in rows:
            entry = {"backbone": r["backbone"], "imagenet_top1": r["imagenet_top1"]}
            for model, means in r["models"].items():
                for key in ("AUC", "nDCG@20"):
                    entry[f"{model} {key}"] = (means or {}).get(key, float("nan"))
            flat.append(entry)
        return pd.DataFrame(flat).set_index("backbone")

    def _repr_markdown_(self) -> str:
        return table_markdown(self.summary)

    def __repr__(self) -> str:
        return f"Results({self.out / 'results.md'})\n{table_markdown(self.summary)}"


class Experiment:
    """A suite of models on one dataset: train or reuse, select on validation, test with CIs.

    ``data``: the interactions folder or file. ``models``: registry names or dicts with the keys of a
    ``[[models]]`` entry (model, name, features, config, grid). ``features``: name -> store path.
    ``backbones``: the backbone axis (models with ``features="backbones"`` run once per backbone;
    missing stores are extracted), with ``extract`` holding further ``[backbones]`` keys
    (weights, input_size, batch_size, images). ``dataset`` and ``benchmark``: further keys of the TOML's
    ``[dataset]`` (split, cutoff, min_user, ...) and ``[benchmark]`` (seed, n_boot, alpha,
    select_metric, block_size) tables. Relative paths are relative to the working directory.
    """

    def __init__(
        self,
        data: str | Path,
        models: list[str | dict[str, Any]],
        *,
        features: dict[str, str | Path] | None = None,
        backbones: list[str] | None = None,
        extract: dict[str, Any] | None = None,
        dataset: dict[str, Any] | None = None,
        benchmark: dict[str, Any] | None = None,
    ):
        raw = {
            "dataset": {"path": str(data), **(dataset or {})},
            "models": [{"model": m} if isinstance(m, str) else dict(m) for m in models],
            "features": {k: str(v) for k, v in (features or {}).items()},
            "benchmark": dict(benchmark or {}),
        }
        if backbones:
            raw["backbones"] = {"names": list(backbones), **(extract or {})}
        elif extract:
            raise ConfigError("extract options need backbones=[...]")
        self.config = parse_config(raw, Path.cwd() / "<python>")

    @classmethod
    def from_config(cls, config: BenchmarkConfig) -> Experiment:
        exp = cls.__new__(cls)
        exp.config = config
        return exp

    @classmethod
    def from_toml(cls, path: str | Path) -> Experiment:
        """The experiment a benchmark TOML describes (docs/benchmark.md)."""
        return cls.from_config(load_config(path))

    def __repr__(self) -> str:
        names = ", ".join(m.name for m in self.config.models)
        return f"Experiment({self.config.data.path}: {names})"

    def run(
        self,
        out: str | Path,
        *,
        force: bool = False,
        plots: bool = True,
        echo: Echo | None = None,
    ) -> Results:
        """Run into ``out`` (results.md/csv/json, plots/, runs/, features/ for the backbone axis).

        Raises :class:`VisrecError` only if every model failed."""
        out = Path(out)
        echo = echo or log.info
        config = self.config
        dataset = config.data.build()
        axis = config.backbones
        if axis is not None:
            config = with_stores(config, self._stores(axis, out, dataset, echo))
        outcomes = run_benchmark(config, out, force=force, echo=echo)
        summary = summarise(outcomes, config, dataset.summary())
        for entry, outcome in zip(summary["models"], outcomes, strict=True):
            entry["backbone"] = outcome.spec.backbone
        extra = ""
        if axis is not None:
            summary["backbones"] = backbone_rows(summary, axis)
            extra = backbone_markdown(summary["backbones"], summary["metrics"])
        pngs = write_plots(outcomes, out / "plots", tuple(summary["metrics"])) if plots else []
        write_reports(summary, out, pngs, backbones=extra)
        summary["plots"] = [str(p) for p in pngs]
        if not any(o.ok for o in outcomes):
            raise VisrecError(f"every model of {config.path} failed; see {out / 'results.md'}")
        return Results(summary, out)

    def _stores(self, axis: BackbonesTable, out: Path, dataset, echo) -> dict[str, str]:
        images = Path(axis.images) if axis.images else self.config.data.images_dir()
        items = [str(i) for i in dataset.items.ids]
        echo(f"backbones: {', '.join(axis.names)}")
        return ensure_stores(axis, out.resolve(), images, items, echo)

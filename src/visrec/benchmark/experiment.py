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
    backbone_rows,
    ensure_stores,
    with_stores,
)
from visrec.benchmark.config import BenchmarkConfig, load_config, parse_config
from visrec.benchmark.plots import write_plots
from visrec.benchmark.report import report_metrics, summarise
from visrec.benchmark.runner import Echo, run_benchmark
from visrec.benchmark.sections import combine, sections_of, tables_text, title, write_all
from visrec.errors import ConfigError, VisrecError

log = logging.getLogger(__name__)


@dataclass
class Results:
    """What :meth:`Experiment.run` returns: the results.json content and where it was written."""

    summary: dict
    out: Path

    @property
    def table(self) -> pd.DataFrame:
        """Test means, one row per model (failed models: NaN), metrics as columns; with several
        tables (splits, test modes), indexed by (table title, model)."""
        sections = sections_of(self.summary)
        frames = [_means(s) for s in sections]
        if len(frames) == 1:
            return frames[0]
        return pd.concat(frames, keys=[title(s) for s in sections])

    @property
    def backbones(self) -> pd.DataFrame | None:
        """With a backbone axis: one row per backbone, its ImageNet top-1 (%) and each visual
        model's test AUC and nDCG@20 (indexed by (table title, backbone) with several tables); None
        without an axis."""
        sections = [s for s in sections_of(self.summary) if s.get("backbones")]
        if not sections:
            return None
        frames = [_backbone_frame(s["backbones"]) for s in sections]
        if len(sections_of(self.summary)) == 1:
            return frames[0]
        return pd.concat(frames, keys=[title(s) for s in sections])

    def _repr_markdown_(self) -> str:
        return tables_text(self.summary)

    def __repr__(self) -> str:
        return f"Results({self.out / 'results.md'})\n{tables_text(self.summary)}"


def _means(section: dict) -> pd.DataFrame:
    metrics = section["metrics"]
    rows = {
        m["name"]: m.get("means") or {k: float("nan") for k in metrics} for m in section["models"]
    }
    return pd.DataFrame.from_dict(rows, orient="index")[metrics]


def _backbone_frame(rows: list[dict]) -> pd.DataFrame:
    flat = []
    for r in rows:
        entry = {"backbone": r["backbone"], "imagenet_top1": r["imagenet_top1"]}
        for model, means in r["models"].items():
            for key in ("AUC", "nDCG@20"):
                entry[f"{model} {key}"] = (means or {}).get(key, float("nan"))
        flat.append(entry)
    return pd.DataFrame(flat).set_index("backbone")


class Experiment:
    """A suite of models on one dataset: train or reuse, select on validation, test with CIs.

    ``data``: the interactions folder or file. ``models``: registry names or dicts with the keys of a
    ``[[models]]`` entry (model, name, features, config, grid). ``features``: name -> store path.
    ``backbones``: the backbone axis (models with ``features="backbones"`` run once per backbone;
    missing stores are extracted), with ``extract`` holding further ``[backbones]`` keys
    (weights, input_size, batch_size, images). ``dataset`` and ``benchmark``: further keys of the TOML's
    ``[dataset]`` (split, cutoff, min_user, ...), ``splits`` the ``[[splits]]`` tables (several splits
    side by side, each with a name) and ``[benchmark]`` (seed, n_boot, alpha,
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
        splits: list[dict[str, Any]] | None = None,
        benchmark: dict[str, Any] | None = None,
    ):
        raw = {
            "dataset": {"path": str(data), **(dataset or {})},
            "models": [{"model": m} if isinstance(m, str) else dict(m) for m in models],
            "features": {k: str(v) for k, v in (features or {}).items()},
            "benchmark": dict(benchmark or {}),
        }
        if splits:
            raw["splits"] = [dict(s) for s in splits]
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
        axis = config.backbones
        if axis is not None:
            config = with_stores(config, self._stores(axis, out, echo))
        sections, pngs, any_ok = [], [], False
        for split in config.splits:
            outcomes = run_benchmark(config, out, force=force, echo=echo, split=split)
            any_ok = any_ok or any(o.ok for o in outcomes)
            stats = split.data.build().summary()
            for mode in split.modes:
                section = summarise(
                    outcomes, config, stats, mode=mode, split_name=split.name or None
                )
                for entry, outcome in zip(section["models"], outcomes, strict=True):
                    entry["backbone"] = outcome.spec.backbone
                if axis is not None:
                    section["backbones"] = backbone_rows(section, axis)
                sections.append(section)
            if plots:
                folder = split.folder(out) / "plots"
                pngs += write_plots(outcomes, folder, report_metrics(split.modes[0]))
        summary = combine(sections, str(config.path))
        write_all(summary, out, pngs)
        summary["plots"] = [str(p) for p in pngs]
        if not any_ok:
            raise VisrecError(f"every model of {config.path} failed; see {out / 'results.md'}")
        return Results(summary, out)

    def _stores(self, axis: BackbonesTable, out: Path, echo) -> dict[str, str]:
        """The backbone stores, extracted once (before the splits) for the items of every split."""
        images = Path(axis.images) if axis.images else self.config.data.images_dir()
        ids = (str(i) for split in self.config.splits for i in split.data.build().items.ids)
        items = list(dict.fromkeys(ids))
        echo(f"backbones: {', '.join(axis.names)}")
        return ensure_stores(axis, out.resolve(), images, items, echo)

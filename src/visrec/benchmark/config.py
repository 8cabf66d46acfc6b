"""The benchmark TOML: one dataset, one or several splits, named feature stores, a list of models
(docs/benchmark.md).

Each table is a typed config (:class:`FileTables`, :class:`DatasetTable`, :class:`SplitTable`,
:class:`BenchmarkTable`, and :class:`visrec.benchmark.entries.ModelEntry`: a docstring per key)
checked by :func:`visrec._config.build`, the mechanism that also reads model options;
:func:`parse_config` turns them into a :class:`BenchmarkConfig`. The split is either given in
``[dataset]`` (one split, the original layout) or as ``[[splits]]`` tables, each with a name (several
splits side by side, e.g. warm and cold).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from visrec._config import Typed
from visrec.benchmark.backbones import BackbonesTable
from visrec.benchmark.entries import NAME, ModelSpec, model_spec, on_axis, read_table
from visrec.data.split import COLD_METHODS
from visrec.errors import ConfigError
from visrec.evaluation import registry
from visrec.evaluation.metrics import DEFAULT_KS
from visrec.runs import DataSpec, data_spec


@dataclass(frozen=True)
class FileTables(Typed):
    """The top-level tables of a benchmark file."""

    dataset: dict
    """One dataset and its split (:class:`DatasetTable`)."""
    models: list = field(default_factory=list)
    """The ``[[models]]`` entries (:class:`ModelEntry`), at least one."""
    features: dict[str, str] = field(default_factory=dict)
    """Name -> feature store folder (or image folder for pixel models), relative to the file."""
    benchmark: dict = field(default_factory=dict)
    """Statistics and model selection (:class:`BenchmarkTable`)."""
    splits: list = field(default_factory=list)
    """``[[splits]]`` tables (:class:`SplitTable`): several splits benchmarked side by side; without
    them the one split is given in ``[dataset]``."""
    backbones: dict = field(default_factory=dict)
    """The backbone axis (:class:`visrec.benchmark.backbones.BackbonesTable`)."""


@dataclass(frozen=True)
class DatasetTable(Typed):
    """``[dataset]``: the interactions, their filters and the split."""

    path: str
    """Interaction folder or file; a relative path is relative to the benchmark file."""
    split: str = "leave-last-out"
    """leave-last-out, temporal (with cutoff), given, cold-items or cold-items-temporal (with cutoff)."""
    validation: bool = True
    """Hold out validation targets; must stay true (models are selected on validation only)."""
    cutoff: int | None = None
    """temporal and cold-items-temporal splits: the timestamp where test starts."""
    cold_fraction: float = 0.1
    """cold-items split: share of the items held out as cold (test and validation)."""
    split_seed: int = 0
    """cold-items split: seed that draws the cold items."""
    min_user: int = 1
    """Keep users with at least this many interactions."""
    min_item: int = 1
    """Keep items with at least this many interactions."""
    min_rating: float | None = None
    """Keep interactions rated at least this (explicit feedback only)."""

    def __post_init__(self):
        if not self.validation:
            raise ConfigError(
                "[dataset] validation = false: the benchmark selects models on validation only"
            )


SPLIT_KEYS = ("split", "cutoff", "cold_fraction", "split_seed")
"""Keys of ``[dataset]`` that describe the split (given per split in ``[[splits]]`` instead)."""


@dataclass(frozen=True)
class SplitTable(Typed):
    """One ``[[splits]]`` entry: a named split of the ``[dataset]`` interactions."""

    name: str
    """Label of the split in the tables and its output folder (``OUT/<name>/``)."""
    split: str = "leave-last-out"
    """leave-last-out, temporal (with cutoff), given, cold-items or cold-items-temporal (with cutoff)."""
    cutoff: int | None = None
    """temporal and cold-items-temporal splits: the timestamp where test starts."""
    cold_fraction: float = 0.1
    """cold-items split: share of the items held out as cold (test and validation)."""
    split_seed: int = 0
    """cold-items split: seed that draws the cold items."""

    def __post_init__(self):
        if not NAME.fullmatch(self.name):
            raise ConfigError(f"split name {self.name!r} must be letters, digits, '_', '-', '.'")


@dataclass(frozen=True)
class BenchmarkSplit:
    """One split of the benchmark: its label (empty for the one split of ``[dataset]``) and data."""

    name: str
    data: DataSpec

    @property
    def cold(self) -> bool:
        """A cold-item split: test (and validation) targets are items absent from training."""
        return self.data.split.get("method") in COLD_METHODS

    @property
    def modes(self) -> tuple[str, ...]:
        """Test modes: ``full`` on a warm split; ``cold`` and ``mixed`` on a cold-item split."""
        return ("cold", "mixed") if self.cold else ("full",)

    def folder(self, out: Path) -> Path:
        """Where this split's runs and plots go: ``OUT`` itself for the one split of ``[dataset]``."""
        return out / self.name if self.name else out


@dataclass(frozen=True)
class BenchmarkTable(Typed):
    """``[benchmark]``: bootstrap, significance and model selection."""

    seed: int = 0
    """Bootstrap seed."""
    n_boot: int = 1000
    """Bootstrap replicates."""
    alpha: float = 0.05
    """Significance level of the Holm-corrected Wilcoxon tests against the best model."""
    select_metric: str = "AUC"
    """Validation metric that picks a grid point: AUC, RR, R@k, P@k or nDCG@k."""
    block_size: int | None = None
    """Users scored at once in evaluation; None: the engine's default (about 16.8M scores)."""
    refit: bool = False
    """Retrain each model's chosen configuration on train + validation before testing (labelled
    ``[refit]`` in the tables; gradient models train for the chosen run's best epoch count)."""

    def __post_init__(self):
        if self.seed < 0 or self.n_boot < 1 or not 0 < self.alpha < 1:
            raise ConfigError("[benchmark] needs seed >= 0, n_boot >= 1, 0 < alpha < 1")
        if self.block_size is not None and self.block_size < 1:
            raise ConfigError(f"[benchmark] block_size must be >= 1, got {self.block_size}")
        try:
            registry.parse_key(self.select_metric)
        except ConfigError as exc:
            raise ConfigError(f"[benchmark] select_metric: {exc}") from None
        stored = registry.keys_for(registry.resolve(None), DEFAULT_KS, "full")
        if self.select_metric not in stored:  # validation runs store the default metrics only
            raise ConfigError(
                f"[benchmark] select_metric {self.select_metric!r}: the benchmark selects on "
                f"the stored validation metrics, one of {', '.join(stored)}"
            )


@dataclass(frozen=True)
class BenchmarkConfig:
    """A parsed, validated benchmark file."""

    path: Path
    splits: tuple[BenchmarkSplit, ...]
    models: tuple[ModelSpec, ...]
    features: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    n_boot: int = 1000
    alpha: float = 0.05
    select_metric: str = "AUC"
    block_size: int | None = None
    """Users scored at once in evaluation; None: the engine's default (about 16.8M scores)."""
    refit: bool = False
    """Retrain the chosen configuration on train + validation before testing."""
    backbones: BackbonesTable | None = None
    """The backbone axis, when the file has ``[backbones] names``."""

    @property
    def data(self) -> DataSpec:
        """The first split's data (the only one when the split is given in ``[dataset]``)."""
        return self.splits[0].data

    @property
    def named_splits(self) -> bool:
        """Whether the splits come from ``[[splits]]`` (outputs per split) or from ``[dataset]``."""
        return bool(self.splits[0].name)


def load_config(path: str | Path) -> BenchmarkConfig:
    """Read and validate a benchmark TOML; every error names the file and the offending entry."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a valid TOML file ({exc})") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    return parse_config(raw, path)


def parse_config(raw: dict, path: Path) -> BenchmarkConfig:
    where = str(path)
    base = path.resolve().parent
    tables = read_table(FileTables, raw, "top-level table", where)
    splits = _splits(tables, base, where)
    features = _features(tables.features, base, where)
    bench = read_table(BenchmarkTable, tables.benchmark, "[benchmark] key", where)
    if not tables.models:
        raise ConfigError(f"{where}: expected at least one [[models]] entry")
    axis = _backbones(tables.backbones, base, where)
    specs = tuple(
        spec
        for i, entry in enumerate(tables.models)
        for spec in on_axis(model_spec(entry, i, features, where), axis, where)
    )
    names = [m.name for m in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{where}: model names must be unique; repeated: {', '.join(dupes)}")
    return BenchmarkConfig(
        path=path,
        splits=splits,
        models=specs,
        features=features,
        seed=bench.seed,
        n_boot=bench.n_boot,
        alpha=float(bench.alpha),
        select_metric=bench.select_metric,
        block_size=bench.block_size,
        refit=bench.refit,
        backbones=axis,
    )


def _splits(tables: FileTables, base: Path, where: str) -> tuple[BenchmarkSplit, ...]:
    dataset = read_table(DatasetTable, tables.dataset, "[dataset] key", where)
    if not tables.splits:
        return (BenchmarkSplit("", _dataset(dataset, base, where)),)
    given = [k for k in SPLIT_KEYS if k in tables.dataset]
    if given:
        raise ConfigError(
            f"{where}: [dataset] {given[0]} and [[splits]] both describe the split: give the "
            "split keys in each [[splits]] table only"
        )
    out = []
    for i, raw in enumerate(tables.splits):
        label = f"[[splits]] entry {i + 1}"
        table = read_table(SplitTable, raw, f"{label} key", where, label=label)
        keys = {k: getattr(table, k) for k in SPLIT_KEYS}
        data = _dataset(dataclasses.replace(dataset, **keys), base, where, label)
        out.append(BenchmarkSplit(table.name, data))
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{where}: split names must be unique; repeated: {', '.join(dupes)}")
    return tuple(out)


def _backbones(raw: dict, base: Path, where: str) -> BackbonesTable | None:
    table = read_table(BackbonesTable, raw, "[backbones] key", where)
    if not table.names:
        return None
    if table.images:
        images = _path(table.images, base, where, "[backbones] images")
        table = BackbonesTable(**(table.to_dict() | {"images": str(images)}))
    return table


def _dataset(table: DatasetTable, base: Path, where: str, what: str = "[dataset]") -> DataSpec:
    data_path = _path(table.path, base, where, "[dataset] path")
    try:
        return data_spec(
            data_path,
            split=table.split,
            validation=True,
            cutoff=table.cutoff,
            cold_fraction=float(table.cold_fraction),
            split_seed=table.split_seed,
            min_user=table.min_user,
            min_item=table.min_item,
            min_rating=table.min_rating,
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}: {what} {exc}") from None


def _features(table: dict[str, str], base: Path, where: str) -> dict[str, str]:
    # not required to exist yet: a missing store fails only the models that read it
    return {
        name: str(_path(value, base, where, f"[features] {name}", must_exist=False))
        for name, value in table.items()
    }


def _path(value: str, base: Path, where: str, what: str, must_exist: bool = True) -> Path:
    if not value:
        raise ConfigError(f"{where}: {what} must be a path string, got {value!r}")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if must_exist and not path.exists():
        raise ConfigError(f"{where}: {what} {value!r}: {path} does not exist")
    return path.resolve()

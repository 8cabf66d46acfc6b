"""The benchmark TOML: one dataset and split, named feature stores, a list of models (docs/benchmark.md).

```toml
[dataset]
path = "data"                    # relative paths are relative to this file
split = "leave-last-out"         # or "temporal" (with cutoff) or "given"
validation = true                # model selection needs it
min_user = 1
min_item = 1
# min_rating = 4.0
# cutoff = 890000000

[features]
effnet = "features/effnet-pooled"   # name = feature store folder (or image folder for pixel models)

[benchmark]
seed = 0              # bootstrap seed
n_boot = 1000         # bootstrap replicates
alpha = 0.05          # significance level (Holm-corrected Wilcoxon against the best model)
select_metric = "AUC" # validation metric that picks a grid point

[[models]]
name = "vbpr"                    # label in the table and run folder (default: model)
model = "vbpr"                   # registry name
features = "effnet"              # a name from [features]
config = {epochs = 10}
grid = {lr = [1e-3, 1e-2]}       # optional: every combination is trained, chosen on validation
```
"""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from visrec.errors import ConfigError
from visrec.evaluation import registry
from visrec.evaluation.metrics import DEFAULT_KS
from visrec.training.run import DataSpec

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_DATASET_KEYS = {
    "path",
    "split",
    "validation",
    "cutoff",
    "cold_fraction",
    "split_seed",
    "min_user",
    "min_item",
    "min_rating",
}
_BENCH_KEYS = {"seed", "n_boot", "alpha", "select_metric", "block_size"}
_MODEL_KEYS = {"name", "model", "features", "config", "grid"}


@dataclass(frozen=True)
class ModelSpec:
    """One row of the table: a registered model, its options and an optional validation grid."""

    name: str
    model: str
    features: str | None = None
    """Resolved path of the feature store (or image folder) the model reads."""
    config: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)

    def candidates(self) -> list[tuple[str, dict]]:
        """(run folder name, full option dict) of every grid point; one entry without a grid."""
        if not self.grid:
            return [(self.name, dict(self.config))]
        keys = sorted(self.grid)
        out = []
        for values in itertools.product(*(self.grid[k] for k in keys)):
            point = dict(zip(keys, values, strict=True))
            slug = ",".join(f"{k}={v}" for k, v in point.items())
            out.append((f"{self.name}/{slug}", self.config | point))
        return out


@dataclass(frozen=True)
class BenchmarkConfig:
    """A parsed, validated benchmark file."""

    path: Path
    data: DataSpec
    models: tuple[ModelSpec, ...]
    features: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    n_boot: int = 1000
    alpha: float = 0.05
    select_metric: str = "AUC"
    block_size: int | None = None
    """Users scored at once in evaluation; None: the engine's default (about 16.8M scores)."""


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
    _only(raw, {"dataset", "features", "benchmark", "models"}, where, "top-level table")
    base = path.resolve().parent
    data = _dataset(_table(raw, "dataset", where, required=True), base, where)
    features = _features(_table(raw, "features", where), base, where)
    bench = _table(raw, "benchmark", where)
    _only(bench, _BENCH_KEYS, where, "[benchmark] key")
    models = raw.get("models")
    if not isinstance(models, list) or not models:
        raise ConfigError(f"{where}: expected at least one [[models]] entry")
    specs = tuple(_model(entry, i, features, where) for i, entry in enumerate(models))
    names = [m.name for m in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{where}: model names must be unique; repeated: {', '.join(dupes)}")
    config = BenchmarkConfig(
        path=path,
        data=data,
        models=specs,
        features=features,
        seed=_typed(bench, "seed", int, 0, where),
        n_boot=_typed(bench, "n_boot", int, 1000, where),
        alpha=float(_typed(bench, "alpha", (int, float), 0.05, where)),
        select_metric=_typed(bench, "select_metric", str, "AUC", where),
        block_size=_typed(bench, "block_size", int, None, where),
    )
    if config.seed < 0 or config.n_boot < 1 or not 0 < config.alpha < 1:
        raise ConfigError(f"{where}: [benchmark] needs seed >= 0, n_boot >= 1, 0 < alpha < 1")
    if config.block_size is not None and config.block_size < 1:
        raise ConfigError(f"{where}: [benchmark] block_size must be >= 1, got {config.block_size}")
    try:
        registry.parse_key(config.select_metric)
    except ConfigError as exc:
        raise ConfigError(f"{where}: [benchmark] select_metric: {exc}") from None
    stored = registry.keys_for(registry.resolve(None), DEFAULT_KS, "full")
    if config.select_metric not in stored:  # validation runs store the default metrics only
        raise ConfigError(
            f"{where}: [benchmark] select_metric {config.select_metric!r}: the benchmark selects on "
            f"the stored validation metrics, one of {', '.join(stored)}"
        )
    return config


def _dataset(table: dict, base: Path, where: str) -> DataSpec:
    _only(table, _DATASET_KEYS, where, "[dataset] key")
    if "path" not in table:
        raise ConfigError(f'{where}: [dataset] needs path = "folder or interaction file"')
    data_path = _path(table["path"], base, where, "[dataset] path")
    validation = _typed(table, "validation", bool, True, where)
    if not validation:
        raise ConfigError(
            f"{where}: [dataset] validation = false: the benchmark selects models on validation only"
        )
    split = {
        "method": _typed(table, "split", str, "leave-last-out", where),
        "validation": True,
        "cutoff": _typed(table, "cutoff", int, None, where),
    }
    if split["method"] == "cold-items":
        split["cold_fraction"] = float(_typed(table, "cold_fraction", (int, float), 0.1, where))
        split["seed"] = _typed(table, "split_seed", int, 0, where)
    filters = {}
    min_user = _typed(table, "min_user", int, 1, where)
    min_item = _typed(table, "min_item", int, 1, where)
    if min_user > 1 or min_item > 1:
        filters |= {"min_user": min_user, "min_item": min_item}
    if "min_rating" in table:
        filters["min_rating"] = float(_typed(table, "min_rating", (int, float), None, where))
    from visrec.data.split import SplitSpec

    SplitSpec(**split)  # validates method and cutoff
    return DataSpec(str(data_path), split, filters)


def _features(table: dict, base: Path, where: str) -> dict[str, str]:
    out = {}
    for name, value in table.items():
        if not isinstance(value, str):
            raise ConfigError(f"{where}: [features] {name} must be a path string, got {value!r}")
        # not required to exist yet: a missing store fails only the models that read it
        out[name] = str(_path(value, base, where, f"[features] {name}", must_exist=False))
    return out


def _model(entry, i: int, features: dict[str, str], where: str) -> ModelSpec:
    label = f"[[models]] entry {i + 1}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: {label} must be a table")
    _only(entry, _MODEL_KEYS, where, f"{label} key")
    model = _typed(entry, "model", str, None, where)
    if model is None:
        raise ConfigError(f'{where}: {label} needs model = "<registry name>" (see `visrec models`)')
    from visrec.models import registry

    try:
        registry.get(model)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {label}: {exc}") from None
    name = _typed(entry, "name", str, model, where)
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: {label}: name {name!r} must be letters, digits, '_', '-', '.'")
    feat = _typed(entry, "features", str, None, where)
    if feat is not None and feat not in features:
        known = ", ".join(sorted(features)) or "none defined"
        raise ConfigError(
            f"{where}: {label} ({name}): unknown features {feat!r}; [features]: {known}"
        )
    config = _typed(entry, "config", dict, {}, where)
    grid = _typed(entry, "grid", dict, {}, where)
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"{where}: {label} ({name}): grid.{key} must be a non-empty list, got {values!r}"
            )
    _check_options(model, config, grid, f"{where}: {label} ({name})")
    return ModelSpec(name, model, features[feat] if feat else None, config, grid)


def _check_options(model: str, config: dict, grid: dict, where: str) -> None:
    from visrec.models import registry

    spec = ModelSpec("check", model, None, config, grid)
    for _, options in spec.candidates():
        try:
            registry.get(model).config_class.from_dict(options)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None


def _table(raw: dict, key: str, where: str, required: bool = False) -> dict:
    if key not in raw:
        if required:
            raise ConfigError(f"{where}: missing [{key}] table")
        return {}
    if not isinstance(raw[key], dict):
        raise ConfigError(f"{where}: [{key}] must be a table")
    return raw[key]


def _only(table: dict, allowed: set[str], where: str, what: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown {what} {', '.join(map(repr, unknown))}; "
            f"expected one of {', '.join(sorted(allowed))}"
        )


def _typed(table: dict, key: str, kind, default, where: str):
    if key not in table:
        return default
    value = table[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
        names = " or ".join(k.__name__ for k in kinds)
        raise ConfigError(f"{where}: {key} must be {names}, got {value!r}")
    return value


def _path(value, base: Path, where: str, what: str, must_exist: bool = True) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {what} must be a path string, got {value!r}")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if must_exist and not path.exists():
        raise ConfigError(f"{where}: {what} {value!r}: {path} does not exist")
    return path.resolve()

"""The ``[[models]]`` entries of a benchmark TOML (docs/benchmark.md): :class:`ModelEntry` and its
``search`` table (:class:`SearchTable`) checked into :class:`ModelSpec` rows, one per backbone for an
entry on the backbone axis. :func:`read_table` is the checked-table reader the whole file shares.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass, field

from visrec._config import Typed, build
from visrec.benchmark.backbones import AXIS, BackbonesTable
from visrec.choices import TUNE_SAMPLERS as SAMPLERS
from visrec.errors import ConfigError
from visrec.models import registry as model_registry
from visrec.models.search import check_space, parse_param

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
"""What a model or split label may be: letters, digits, '_', '-', '.'."""


@dataclass(frozen=True)
class ModelEntry(Typed):
    """One ``[[models]]`` entry."""

    model: str
    """Registry name (see `visrec models`)."""
    name: str | None = None
    """Label in the table and run folder (default: model)."""
    features: str | None = None
    """A name from ``[features]``."""
    config: dict = field(default_factory=dict)
    """Model options (as ``--set``)."""
    grid: dict = field(default_factory=dict)
    """Option -> list of values; every combination is trained and chosen on validation."""
    search: dict = field(default_factory=dict)
    """Optuna search instead of a grid (:class:`SearchTable`): trials, sampler, seed, prune, space."""

    def __post_init__(self):
        label = self.name or self.model
        if not NAME.fullmatch(label):
            raise ConfigError(f"name {label!r} must be letters, digits, '_', '-', '.'")
        for key, values in self.grid.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"grid.{key} must be a non-empty list, got {values!r}")


@dataclass(frozen=True)
class SearchTable(Typed):
    """A ``search = {...}`` of a ``[[models]]`` entry: ``visrec tune`` run by the benchmark."""

    trials: int = 20
    """Trials in all (a rerun adds only the missing ones)."""
    sampler: str = "tpe"
    """tpe (Optuna's TPE), random, or grid (every combination of list-valued ``space`` entries)."""
    seed: int = 0
    """Sampler seed."""
    prune: bool = True
    """Stop hopeless trials early (median of earlier trials' validation curves)."""
    prune_after: int = 5
    """Epochs every trial trains before pruning may stop it (``visrec tune --prune-after``)."""
    space: dict = field(default_factory=dict)
    """Option -> list of values, "low..high" or "log:low..high"; default: the model's declared space."""

    def __post_init__(self):
        if self.trials < 1:
            raise ConfigError(f"search trials must be >= 1, got {self.trials}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(
                f"search sampler must be one of {', '.join(SAMPLERS)}, not {self.sampler!r}"
            )


@dataclass(frozen=True)
class ModelSpec:
    """One row of the table: a registered model, its options and an optional validation grid."""

    name: str
    model: str
    features: str | None = None
    """Resolved path of the feature store (or image folder) the model reads."""
    config: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    search: dict = field(default_factory=dict)
    """A validated :class:`SearchTable` as a dict; empty: no search (the grid, or one run)."""
    backbone: str | None = None
    """On the backbone axis: the backbone whose pooled features it reads (filled in at run time)."""

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


def read_table(cls, raw, what: str, where: str, label: str = ""):
    """One table checked by its typed config; errors get the file (and the entry) prefixed."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {label or what.removesuffix(' key')} must be a table")
    try:
        return build(cls, raw, what=what, parse=False)
    except ConfigError as exc:
        message = str(exc) if label in str(exc) else f"{label}: {exc}"
        raise ConfigError(f"{where}: {message}") from None


def model_spec(entry, i: int, features: dict[str, str], where: str) -> ModelSpec:
    label = f"[[models]] entry {i + 1}"
    spec = read_table(ModelEntry, entry, f"{label} key", where, label=label)
    try:
        model_registry.get(spec.model)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {label}: {exc}") from None
    name = spec.name or spec.model
    if spec.features == AXIS and AXIS not in features:
        feat = AXIS  # resolved per backbone by on_axis
    elif spec.features is not None and spec.features not in features:
        known = ", ".join(sorted(features)) or "none defined"
        raise ConfigError(
            f"{where}: {label} ({name}): unknown features {spec.features!r}; [features]: {known}"
        )
    else:
        feat = features[spec.features] if spec.features else None
    search = _search(spec, label, name, where)
    model = ModelSpec(name, spec.model, feat, spec.config, spec.grid, search)
    for _, options in model.candidates():
        try:
            model_registry.get(spec.model).config_class.from_dict(options)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {label} ({name}): {exc}") from None
    return model


def _search(spec: ModelEntry, label: str, name: str, where: str) -> dict:
    if not spec.search:
        return {}
    if spec.grid:
        raise ConfigError(f"{where}: {label} ({name}): give a grid or a search, not both")
    table = read_table(SearchTable, spec.search, f"{label} search key", where, label=label)
    try:
        space = {key: parse_param(key, value) for key, value in table.space.items()}
        check_space(model_registry.get(spec.model).config_class, space)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {label} ({name}): {exc}") from None
    return dataclasses.asdict(table)


def on_axis(spec: ModelSpec, axis: BackbonesTable | None, where: str) -> list[ModelSpec]:
    """One spec per backbone for a model entry with ``features = "backbones"``."""
    if spec.features != AXIS:
        return [spec]
    if axis is None:
        raise ConfigError(f"{where}: {spec.name} reads features = {AXIS!r}: set [backbones] names")
    kinds = {i.kind for i in model_registry.get(spec.model).inputs}
    if kinds != {"pooled"}:
        raise ConfigError(
            f"{where}: {spec.name} ({spec.model}) does not read pooled features: it cannot take "
            f"features = {AXIS!r}"
        )
    return [
        ModelSpec(
            f"{spec.name}@{name}", spec.model, None, spec.config, spec.grid, spec.search, name
        )
        for name in axis.names
    ]

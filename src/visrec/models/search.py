"""Search spaces of model options, declared as data beside each model's typed config.

A config class lists what a hyper-parameter search may vary in its ``search_space`` class attribute:
option name -> :class:`FloatRange`, :class:`IntRange` or :class:`Choice`. The models layer only declares
them; :mod:`visrec.tuning` turns them into Optuna suggestions. The same kinds are written on the command
line (``visrec tune --space lr=log:1e-4..1e-1``) and in the benchmark TOML's ``search`` block by
:func:`parse_param`:

- ``a,b,c`` (or a TOML list): a choice among those values (the grid sampler's only kind);
- ``low..high``: a uniform range (integers when both ends are integers);
- ``log:low..high``: a log-uniform range (learning rates, weight decay).
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass

from visrec.errors import ConfigError


@dataclass(frozen=True)
class FloatRange:
    """A float in [low, high], uniform or (``log``) log-uniform."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self):
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ConfigError(f"range {self.low}..{self.high}: low must be below high")
        if self.log and self.low <= 0:
            raise ConfigError(f"log range {self.low}..{self.high}: low must be > 0")

    def describe(self) -> str:
        return f"{'log:' if self.log else ''}{self.low:g}..{self.high:g}"


@dataclass(frozen=True)
class IntRange:
    """An integer in [low, high], uniform or (``log``) log-uniform."""

    low: int
    high: int
    log: bool = False

    def __post_init__(self):
        if self.low >= self.high:
            raise ConfigError(f"range {self.low}..{self.high}: low must be below high")
        if self.log and self.low <= 0:
            raise ConfigError(f"log range {self.low}..{self.high}: low must be > 0")

    def describe(self) -> str:
        return f"{'log:' if self.log else ''}{self.low}..{self.high}"


@dataclass(frozen=True)
class Choice:
    """One of a few values (numbers, strings or booleans)."""

    values: tuple

    def __post_init__(self):
        if not self.values:
            raise ConfigError("a choice needs at least one value")
        for value in self.values:
            if not isinstance(value, int | float | str | bool):
                raise ConfigError(f"choice value {value!r}: expected a number, string or boolean")

    def describe(self) -> str:
        return ",".join(str(v) for v in self.values)


Param = FloatRange | IntRange | Choice


def parse_param(key: str, spec) -> Param:
    """A search parameter from ``a,b,c`` / ``low..high`` / ``log:low..high`` or a list of values."""
    if isinstance(spec, list | tuple):
        return Choice(tuple(spec))
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(
            f"search space {key}: expected a list of values or 'low..high' / 'log:low..high', "
            f"got {spec!r}"
        )
    text = spec.strip()
    log = text.startswith("log:")
    text = text.removeprefix("log:")
    if ".." in text:
        low, _, high = (_literal(key, part) for part in text.partition(".."))
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
            raise ConfigError(f"search space {key}: range ends must be numbers, got {spec!r}")
        try:
            if isinstance(low, int) and isinstance(high, int):
                return IntRange(low, high, log)
            return FloatRange(float(low), float(high), log)
        except ConfigError as exc:
            raise ConfigError(f"search space {key}: {exc}") from None
    if log:
        raise ConfigError(f"search space {key}: 'log:' needs a range 'log:low..high'")
    return Choice(tuple(_literal(key, part) for part in text.split(",")))


def _literal(key: str, text: str):
    text = text.strip()
    if not text:
        raise ConfigError(f"search space {key}: empty value")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare string such as bpr
    return value


def check_space(config_class, space: dict[str, Param]) -> None:
    """Every searched name must be an option of ``config_class``."""
    fields = {name for name, *_ in config_class.describe()}
    unknown = sorted(set(space) - fields)
    if unknown:
        raise ConfigError(
            f"search space: unknown option {unknown[0]!r} of {config_class.__name__}; "
            f"expected one of {', '.join(sorted(fields))}"
        )

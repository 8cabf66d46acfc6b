"""One typed-config mechanism: frozen dataclasses with a docstring per field, checked by pydantic.

Model configs (:mod:`visrec.models.config`) and the benchmark TOML tables (:mod:`visrec.benchmark.config`)
are frozen dataclasses inheriting :class:`Typed`. :func:`build` turns a dict into one through a cached
``pydantic.TypeAdapter`` (``extra="forbid"``, attribute docstrings as field descriptions):

- ``--set key=value`` strings are parsed to the field's type (pydantic's lax mode: ``"3"`` -> 3,
  ``"yes"`` -> True; ``none``/``null`` -> None for optional fields; tuples and lists as Python literals);
- unknown keys are rejected with the list of valid ones, a value of the wrong type with a one-line
  :class:`~visrec.errors.ConfigError` naming the field and the expected type;
- ``__post_init__`` checks (impossible values) raise their own :class:`ConfigError` unchanged.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import ConfigDict, TypeAdapter, ValidationError

from visrec.errors import ConfigError, VisrecError

T = TypeVar("T")
_NONE = ("none", "null")


class Typed:
    """Mixin of every typed config dataclass: pydantic settings, dict round trip, field reference."""

    __pydantic_config__ = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def describe(cls) -> list[tuple[str, str, object, str]]:
        """(name, type, default, docstring) of every field, for `visrec models` and the docs."""
        docs = field_docs(cls)
        hints = typing.get_type_hints(cls)
        return [
            (f.name, type_name(hints[f.name]), _default(f), docs.get(f.name, ""))
            for f in dataclasses.fields(cls)
        ]


def build(
    cls: type[T], values: Mapping[str, Any], *, what: str = "option", parse: bool = True
) -> T:
    """``cls`` from ``values``; ``parse``: ``--set`` strings may spell None, tuples and lists too.

    ``what`` names a key in messages: ``option`` for model configs, ``[benchmark] key`` for a TOML table.
    """
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"expected a table of {what}s, got {type(values).__name__} {values!r:.80}"
        )
    hints = typing.get_type_hints(cls)
    if parse:
        values = {k: _from_string(v, hints[k]) if k in hints else v for k, v in values.items()}
    try:
        return _adapter(cls).validate_python(dict(values))
    except ValidationError as exc:
        raise _one_line(cls, exc, hints, what) from None


def field_docs(cls: type) -> dict[str, str]:
    """Field docstrings of ``cls`` and its bases (pydantic reads them per class; subclasses win)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass) and issubclass(klass, Typed):
            props = _adapter(klass).json_schema(mode="serialization").get("properties", {})
            docs |= {
                k: " ".join(p["description"].split())
                for k, p in props.items()
                if "description" in p
            }
    return docs


def type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


@functools.cache
def _adapter(cls: type) -> TypeAdapter:
    return TypeAdapter(cls)


def _default(f: dataclasses.Field) -> object:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def _from_string(value: Any, tp: Any) -> Any:
    """Prepare a ``--set`` string for pydantic: None and literal containers; scalars pydantic parses."""
    if not isinstance(value, str) or tp is str:
        return value
    args = typing.get_args(tp)
    if type(None) in args and value.lower() in _NONE:
        return None
    target = next((a for a in args if a is not type(None)), tp) if args else tp
    target = typing.get_origin(target) or target
    if target in (int, float, bool, str, Any):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value  # pydantic names the field and the type


def _one_line(cls: type, exc: ValidationError, hints: dict, what: str) -> VisrecError:
    errors = exc.errors()
    unknown = [str(e["loc"][0]) for e in errors if e["type"] in _UNKNOWN and e["loc"]]
    if unknown:
        known = ", ".join(f.name for f in dataclasses.fields(cls))
        return ConfigError(
            f"unknown {what} {', '.join(map(repr, unknown))}; expected one of {known}"
        )
    first = errors[0]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, VisrecError):
        return cause
    name = ".".join(map(str, first["loc"])) or "?"
    if first["type"] == "missing":
        return ConfigError(f"{what} {name} is required")
    if name in hints:
        return ConfigError(
            f"{what} {name}: cannot read {first['input']!r} as {type_name(hints[name])}"
        )
    return ConfigError(f"{what} {name}: {first['msg'].lower()}, got {first['input']!r}")


_UNKNOWN = ("unexpected_keyword_argument", "extra_forbidden")

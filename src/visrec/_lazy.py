"""Lazy package exports (PEP 562): ``from visrec.data import Dataset`` works as before, but importing
``visrec.data.cli`` no longer imports pandas or torch, so ``visrec --help`` answers at once."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_exports(
    package: str, exports: dict[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps a name to its module.

    A name is imported from its module on first access and cached in the package namespace.
    """

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__


class LazyModule:
    """A module imported on first attribute access: ``pd = LazyModule("pandas")`` at the top of a module
    whose common path does not need pandas (reading a cached dataset, evaluating from exported factors)
    keeps ``import pandas`` (~0.5 s) out of those processes; annotations stay strings
    (``from __future__ import annotations``)."""

    __slots__ = ("_name",)

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> object:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        state = "imported" if self._name in sys.modules else "not imported yet"
        return f"<lazy module {self._name!r} ({state})>"


def loaded(name: str):
    """The module ``name`` when something already imported it, else None (never imports): a value can be
    a ``torch.Tensor`` only if torch is imported, so a type check need not import it."""
    return sys.modules.get(name)

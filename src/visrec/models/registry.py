"""An explicit model registry: ``@register("vbpr")`` fills a dict; duplicate names raise.

The CLI and experiment files create models only through :func:`create` (no importlib name guessing).
"""

from __future__ import annotations

import importlib
from typing import Any

from visrec.errors import ConfigError

# Values are Recommender subclasses; not imported here, because models.base looks models up in this
# registry (Recommender.load) and the two modules must not import each other.
_REGISTRY: dict[str, type[Any]] = {}

# The built-in models and the module that registers each: get("vbpr") imports only visrec.models.vbpr
# (loading a run imports its own model, not every other); names() imports them all.
BUILTINS = {
    "random": "visrec.models.baselines",
    "pop": "visrec.models.baselines",
    "bpr": "visrec.models.bpr",
    "visrank": "visrec.models.visrank",
    "vbpr": "visrec.models.vbpr",
    "curatornet": "visrec.models.curatornet",
    "dvbpr": "visrec.models.dvbpr",
    "acf": "visrec.models.acf",
}
BUILTIN_MODULES = tuple(dict.fromkeys(BUILTINS.values()))
_loaded = False


def register(name: str):
    """Class decorator adding a :class:`Recommender` subclass under ``name``."""

    def wrap(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ConfigError(
                f"model name {name!r} is already registered by {_REGISTRY[name].__name__}"
            )
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def _import(module: str) -> None:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:  # a real import error inside an existing module
            raise


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    for module in BUILTIN_MODULES:
        _import(module)
    _loaded = True


def get(name: str) -> type[Any]:
    """The model class registered under ``name``; unknown names list the known ones."""
    if name not in _REGISTRY and name in BUILTINS:
        _import(BUILTINS[name])
    if name not in _REGISTRY:
        _load_builtins()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def create(name: str, config: dict | None = None) -> Any:
    """Instantiate a registered model from a (partial) config dict."""
    cls = get(name)
    return cls(cls.config_class.from_dict(config or {}))

"""Typed model configs: frozen dataclasses with a docstring per field, validated on creation.

Every gradient model's config inherits :class:`TrainConfig` (the common training settings) and overrides
its defaults with the paper's or the tutorial's. ``from_dict`` parses ``--set key=value`` strings too.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import typing
from dataclasses import dataclass, fields

from visrec.errors import ConfigError

LOSSES = ("bpr", "warp", "bce")


@dataclass(frozen=True)
class Config:
    """Base of every model config."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` on impossible values (subclasses extend)."""

    def __post_init__(self):
        self.validate()

    @classmethod
    def from_dict(cls, values: dict) -> Config:
        """Build from a dict; unknown keys raise, strings are parsed to the field's type."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown option(s) {', '.join(unknown)} for {cls.__name__}; "
                f"known: {', '.join(sorted(known))}"
            )
        hints = typing.get_type_hints(cls)
        parsed = {k: _coerce(k, v, hints[k]) for k, v in values.items()}
        return cls(**parsed)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)

    @classmethod
    def describe(cls) -> list[tuple[str, str, object, str]]:
        """(name, type, default, docstring) of every field, for `visrec models` and the docs."""
        docs = _field_docs(cls)
        hints = typing.get_type_hints(cls)
        out = []
        for f in fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else None
            out.append((f.name, _type_name(hints[f.name]), default, docs.get(f.name, "")))
        return out


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(name: str, value, tp):
    if not isinstance(value, str) or tp is str:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if value.lower() in ("none", "null") and type(None) in args:
        return None
    target = next((a for a in args if a is not type(None)), tp) if origin else tp
    try:
        if target is bool:
            if value.lower() in ("true", "1", "yes"):
                return True
            if value.lower() in ("false", "0", "no"):
                return False
            raise ValueError(value)
        if target in (int, float):
            return target(value)
        if target is str:
            return value
        return ast.literal_eval(value)
    except (ValueError, SyntaxError) as exc:
        raise ConfigError(f"option {name}: cannot read {value!r} as {_type_name(target)}") from exc


def _field_docs(cls) -> dict[str, str]:
    """Docstrings written under each field (attribute docstrings), collected from the class sources."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        tree = ast.parse(inspect.cleandoc("\n" + source) if source.startswith(" ") else source)
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for prev, node in zip(body, body[1:], strict=False):
            if (
                isinstance(prev, ast.AnnAssign)
                and isinstance(prev.target, ast.Name)
                and isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                docs[prev.target.id] = " ".join(node.value.value.split())
    return docs


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class TrainConfig(Config):
    """Training settings shared by every gradient model (one Trainer serves them all)."""

    epochs: int = 20
    """Maximum number of epochs."""
    batch_size: int = 1024
    """Triplets per optimisation step (per process under torchrun: global batch = batch_size x world size)."""
    triplets_per_epoch: int = 0
    """Triplets sampled afresh each epoch; 0 = one per train interaction."""
    lr: float = 1e-3
    """Adam learning rate."""
    weight_decay: float = 1e-4
    """Adam weight decay (L2)."""
    loss: str = "bpr"
    """Pairwise loss: bpr (-log sigmoid(x_ui - x_uj), Rendle et al. 2009), warp (sampled WARP, Weston et al. 2011) or bce."""
    n_negatives: int = 1
    """Negatives per (user, positive): WARP uses several to estimate the rank; bpr/bce average over them."""
    patience: int = 3
    """Early stopping: epochs without validation improvement before stopping (0 = never stop early)."""
    val_metric: str = "AUC"
    """Validation metric for early stopping and best-epoch restore (validation targets only, never test)."""
    lr_patience: int = 1
    """ReduceLROnPlateau: epochs without improvement before the learning rate is reduced."""
    lr_factor: float = 0.5
    """ReduceLROnPlateau: multiplicative factor applied to the learning rate."""
    seed: int = 0
    """One seed for sampling, initialisation and dropout."""
    device: str = "auto"
    """auto (CUDA when available), cpu, cuda or cuda:N."""

    def validate(self) -> None:
        check(self.epochs >= 1, "epochs must be >= 1")
        check(self.batch_size >= 1, "batch_size must be >= 1")
        check(self.triplets_per_epoch >= 0, "triplets_per_epoch must be >= 0")
        check(self.lr > 0, "lr must be > 0")
        check(self.weight_decay >= 0, "weight_decay must be >= 0")
        check(self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        check(self.n_negatives >= 1, "n_negatives must be >= 1")
        check(self.patience >= 0 and self.lr_patience >= 0, "patience values must be >= 0")
        check(0 < self.lr_factor < 1, "lr_factor must be in (0, 1)")

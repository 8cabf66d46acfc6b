"""The one typed-config mechanism: `--set` strings, one-line errors, dict/JSON round trip, field docs."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from visrec._config import Typed, build
from visrec.errors import ConfigError
from visrec.models.registry import get, names


@dataclass(frozen=True)
class Toy(Typed):
    """A toy table."""

    size: int = 2
    """How many."""
    scale: float = 1.0
    ratio: float | None = None
    """Optional ratio."""
    shares: tuple = (1.0, 2.0)
    on: bool = False


def test_strings_are_parsed_to_the_field_type():
    toy = build(
        Toy, {"size": "7", "scale": "1e-3", "ratio": "none", "shares": "(3, 4)", "on": "yes"}
    )
    assert toy == Toy(size=7, scale=0.001, ratio=None, shares=(3, 4), on=True)
    assert build(Toy, {"ratio": "0.5", "on": "false"}) == Toy(ratio=0.5)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"size": "many"}, "option size: cannot read 'many' as int"),
        ({"size": 2.5}, "option size: cannot read 2.5 as int"),
        ({"on": "maybe"}, "option on: cannot read 'maybe' as bool"),
        ({"ratio": "half"}, "option ratio: cannot read 'half' as float | None"),
        ({"sise": 3, "colour": 1}, "unknown option 'sise', 'colour'; expected one of size, scale"),
    ],
)
def test_errors_are_one_line_and_name_the_field(values, message):
    with pytest.raises(ConfigError) as info:
        build(Toy, values)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_non_table_is_refused():
    with pytest.raises(ConfigError, match="expected a table of options, got list"):
        build(Toy, [("size", 3)])


def test_table_wording_and_no_string_parsing():
    with pytest.raises(ConfigError, match=r"unknown \[t\] key 'x'"):
        build(Toy, {"x": 1}, what="[t] key", parse=False)
    with pytest.raises(ConfigError, match=r"\[t\] key ratio: cannot read 'none'"):
        build(Toy, {"ratio": "none"}, what="[t] key", parse=False)


def test_docstrings_of_own_and_inherited_fields():
    docs = {name: (kind, default, doc) for name, kind, default, doc in Toy.describe()}
    assert docs["size"] == ("int", 2, "How many.") and docs["scale"] == ("float", 1.0, "")
    vbpr = {n: d for n, _, _, d in get("vbpr").config_class.describe()}
    assert vbpr["device"].startswith("auto (CUDA")  # declared on TrainConfig, inherited
    assert vbpr["lr"] == "Adam learning rate (the tutorial: 1e-3)."  # redeclared: VBPR's own


@pytest.mark.parametrize("name", names())
def test_every_model_config_round_trips_through_json(name):
    cls = get(name).config_class
    config = cls()
    as_json = json.loads(json.dumps(config.to_dict()))
    assert cls.from_dict(as_json) == config
    assert as_json == config.to_dict() | {  # tuples are JSON lists, the keys and values stay
        k: list(v) for k, v in config.to_dict().items() if isinstance(v, tuple)
    }

"""The generated config reference in docs/training.md matches the code."""

from __future__ import annotations

from pathlib import Path

from visrec.models.reference import config_reference, splice

DOC = Path(__file__).resolve().parents[1] / "docs" / "training.md"


def test_config_reference_is_up_to_date():
    text = DOC.read_text(encoding="utf-8")
    assert config_reference() in text, (
        "regenerate: python -m visrec.models.reference (see docs/training.md)"
    )
    assert splice(text) == text

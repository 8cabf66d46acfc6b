"""The model/config reference of docs/training.md, generated from the typed configs.

``python -m visrec.models.reference`` prints it; a test keeps the docs in sync with the code.
"""

from __future__ import annotations

import inspect

from visrec.models import registry
from visrec.models.capabilities import ScoresProfiles

BEGIN = "<!-- BEGIN GENERATED CONFIG REFERENCE (python -m visrec.models.reference) -->"
END = "<!-- END GENERATED CONFIG REFERENCE -->"


def config_reference() -> str:
    parts = [BEGIN]
    for name in registry.names():
        cls = registry.get(name)
        summary = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
        reads = ", ".join(i.kind for i in cls.inputs) or "interactions only"
        parts += [
            "",
            f"### `{name}`",
            "",
            summary,
            "",
            f"Reads: {reads}."
            + (
                " Profile-based: serves new users from item ids."
                if issubclass(cls, ScoresProfiles)
                else ""
            ),
            "",
            "| option | type | default | meaning |",
            "|---|---|---|---|",
        ]
        for field_name, type_name, default, doc in cls.config_class.describe():
            doc = doc.replace("|", "\\|")
            parts.append(f"| `{field_name}` | {type_name} | `{default}` | {doc} |")
    parts.append(END)
    return "\n".join(parts) + "\n"


def splice(text: str) -> str:
    """Replace the generated block inside ``text``."""
    start, stop = text.index(BEGIN), text.index(END) + len(END) + 1
    return text[:start] + config_reference() + text[stop:]


if __name__ == "__main__":
    print(config_reference(), end="")

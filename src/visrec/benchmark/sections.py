"""The report of a benchmark with several tables: one per (split, test mode).

A warm split gives one table (``full``); a cold-item split two (``cold``: new items ranked among new
items; ``mixed``: among every unconsumed item). When a benchmark has one table, its results.json,
results.csv and results.md are exactly those of :mod:`visrec.benchmark.report`; with several, results.json
is ``{"format": "visrec-benchmark-splits/1", "config", "sections": [<one table's summary>, ...]}``,
results.csv gains a leading ``split`` column, and results.md has one section per table.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from visrec._io import write_json, write_text
from visrec.benchmark.backbones import backbone_markdown
from visrec.benchmark.report import (
    FORMAT_SPLITS,
    MODE_TEXT,
    _rel,
    section_markdown,
    table_markdown,
    to_csv,
    to_markdown,
)

BACKBONES_TITLE = "Backbones: ImageNet top-1 and recommendation quality (test)"


def combine(sections: list[dict], config_path: str) -> dict:
    """results.json content: the one table's summary, or every table's under ``sections``."""
    if len(sections) == 1:
        return sections[0]
    return {"format": FORMAT_SPLITS, "config": str(config_path), "sections": sections}


def sections_of(summary: dict) -> list[dict]:
    """The tables of a results.json content (one for a single-table benchmark)."""
    return summary.get("sections", [summary])


def title(section: dict) -> str:
    """``split warm: full`` / ``split cold: cold``, or the mode alone for the one split of [dataset]."""
    mode = section.get("mode", "full")
    name = section.get("split_name")
    return f"split {name}: {mode}" if name else mode


def write_all(summary: dict, out: Path, plots: list[Path]) -> list[Path]:
    """Write results.json, results.csv and results.md for one or several tables."""
    out = Path(out)
    paths = [out / "results.json", out / "results.csv", out / "results.md"]
    sections = sections_of(summary)
    write_json(paths[0], summary)
    if len(sections) == 1:
        write_text(paths[1], to_csv(summary))
        text = to_markdown(summary, plots, out)
        if summary.get("backbones"):
            text += f"\n## {BACKBONES_TITLE}\n\n{_backbones(summary)}\n"
        write_text(paths[2], text)
        return paths
    write_text(paths[1], _csv(sections))
    write_text(paths[2], _markdown(sections, plots, out))
    return paths


def _csv(sections: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for n, section in enumerate(sections):
        rows = list(csv.reader(io.StringIO(to_csv(section))))
        label = section.get("split_name") or ""
        if n == 0:
            writer.writerow(["split", *rows[0]])
        writer.writerows([label, *row] for row in rows[1:])
    return buffer.getvalue()


def _markdown(sections: list[dict], plots: list[Path], out: Path) -> str:
    parts = ["# Benchmark results", ""]
    for section in sections:
        parts += [f"## {title(section)}", "", MODE_TEXT.get(section["mode"], section["mode"]), ""]
        parts += section_markdown(section, out, level="###")
        parts.append("")
        if section.get("backbones"):
            parts += [f"### {BACKBONES_TITLE}", "", _backbones(section), ""]
    if plots:
        parts += ["## Plots", ""]
        parts += [f"![{p.parent.parent.name}/{p.stem}]({_rel(p, out)})" for p in plots]
    return "\n".join(parts) + "\n"


def _backbones(section: dict) -> str:
    return backbone_markdown(section["backbones"], section["metrics"])


def tables_text(summary: dict) -> str:
    """Every table as markdown, each under its title when there are several (for the CLI)."""
    sections = sections_of(summary)
    if len(sections) == 1:
        return table_markdown(sections[0])
    return "\n\n".join(f"{title(s)}\n\n{table_markdown(s)}" for s in sections)

"""Run labels: the model and the options chosen for it, so two runs of one model look different."""

from __future__ import annotations

import json
from pathlib import Path

from visrec.models import registry
from visrec.runs import Run

TECHNICAL = ("device", "block_elements", "score_block", "eval_batch_size")
"""Options that change speed or memory, not recommendations: never part of a label."""


def chosen_options(run: Run) -> dict:
    """The run's model options that differ from the model's defaults."""
    config = run.meta.get("config") or {}
    try:
        defaults = registry.get(str(run.meta.get("model"))).config_class().to_dict()
        defaults = json.loads(json.dumps(defaults))  # tuples as the JSON record has them: lists
    except (KeyError, ValueError):
        defaults = {}
    return {
        k: v for k, v in config.items() if k not in TECHNICAL and k in defaults and defaults[k] != v
    }


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ",".join(_format(v) for v in value)
    return str(value)


def run_labels(runs: list[Run]) -> list[str]:
    """``model (option=value, ...)`` per run; runs still alike get their feature store, then their folder."""
    labels = []
    for run in runs:
        options = ", ".join(f"{k}={_format(v)}" for k, v in chosen_options(run).items())
        labels.append(f"{run.meta.get('model')}" + (f" ({options})" if options else ""))
    for extra in (_features, _folder):
        if len(set(labels)) == len(labels):
            break
        labels = [
            f"{label} [{extra(run)}]" if labels.count(label) > 1 else label
            for label, run in zip(labels, runs, strict=True)
        ]
    return labels


def _features(run: Run) -> str:
    path = run.meta.get("features")
    return Path(path).name if isinstance(path, str) else "no features"


def _folder(run: Run) -> str:
    return Path(run.path).name

"""Run directories: create / resume / load a training run, train into one, evaluate one.

``train_run`` (training into RUN_DIR), ``load_run`` -> :class:`Run`, ``evaluate_run`` /
``evaluate_run_modes`` (stored under RUN_DIR/eval/), and :func:`data_spec`, the one builder of the
:class:`DataSpec` a run records (used by ``visrec train`` and the benchmark's TOML).
"""

from visrec.runs.directory import RUN_FILE, DataSpec, Run, data_spec, load_run
from visrec.runs.evaluate import (
    eval_name,
    eval_paths,
    evaluate_run,
    evaluate_run_modes,
    load_evaluation,
)
from visrec.runs.train import is_finished, load_features, train_run

__all__ = [
    "RUN_FILE",
    "DataSpec",
    "Run",
    "data_spec",
    "eval_name",
    "eval_paths",
    "evaluate_run",
    "evaluate_run_modes",
    "is_finished",
    "load_evaluation",
    "load_features",
    "load_run",
    "train_run",
]

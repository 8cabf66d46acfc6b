"""Run directories: create / resume / load a training run, train into one, evaluate one.

``train_run`` (training into RUN_DIR), ``load_run`` -> :class:`Run`, ``evaluate_run`` /
``evaluate_run_modes`` (stored under RUN_DIR/eval/), and :func:`data_spec`, the one builder of the
:class:`DataSpec` a run records (used by ``visrec train`` and the benchmark's TOML).

Names are exported lazily, so ``visrec train --help`` (``visrec.runs.cli``) loads no torch or pandas.
"""

from visrec._lazy import lazy_exports

_EXPORTS = {
    "RUN_FILE": "visrec.runs.directory",
    "DataSpec": "visrec.runs.directory",
    "Run": "visrec.runs.directory",
    "data_spec": "visrec.runs.directory",
    "load_run": "visrec.runs.directory",
    "eval_name": "visrec.runs.evaluate",
    "eval_paths": "visrec.runs.evaluate",
    "evaluate_run": "visrec.runs.evaluate",
    "evaluate_run_modes": "visrec.runs.evaluate",
    "load_evaluation": "visrec.runs.evaluate",
    "is_finished": "visrec.runs.train",
    "load_features": "visrec.runs.train",
    "train_run": "visrec.runs.train",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

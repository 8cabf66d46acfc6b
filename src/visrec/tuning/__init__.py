"""Hyper-parameter search (Optuna) on validation only: ``visrec tune`` and the benchmark's ``search``
block. See :mod:`visrec.tuning.study` for the tune folder and the resume rules."""

from visrec.tuning.report import write_report
from visrec.tuning.study import SAMPLERS, TuneResult, TuneSettings, trial_rows, tune

__all__ = ["SAMPLERS", "TuneResult", "TuneSettings", "trial_rows", "tune", "write_report"]

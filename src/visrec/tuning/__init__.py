"""Hyper-parameter search (Optuna) on validation only: ``visrec tune`` and the benchmark's ``search``
block. See :mod:`visrec.tuning.study` for the tune folder and the resume rules.

Names are exported lazily, so ``visrec tune --help`` (``visrec.tuning.cli``) loads no torch or pandas.
"""

from visrec._lazy import lazy_exports

_EXPORTS = {
    "SAMPLERS": "visrec.tuning.study",
    "TuneResult": "visrec.tuning.study",
    "TuneSettings": "visrec.tuning.study",
    "trial_rows": "visrec.tuning.study",
    "tune": "visrec.tuning.study",
    "write_report": "visrec.tuning.report",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""Evaluation: exact, batched full-ranking metrics for any scorer (plus sampled and tutorial modes).

``evaluate(scorer, dataset, split=...)`` for reports; ``validation_score`` is the only entry point training
code uses (it cannot read test targets). See docs/evaluation.md.
"""

from visrec._lazy import lazy_exports

_EXPORTS = {
    "MODES": "visrec.evaluation.engine",
    "evaluate": "visrec.evaluation.engine",
    "evaluate_modes": "visrec.evaluation.engine",
    "matrix_scorer": "visrec.evaluation.engine",
    "validation_score": "visrec.evaluation.engine",
    "DEFAULT_KS": "visrec.evaluation.metrics",
    "METRIC_KEYS": "visrec.evaluation.metrics",
    "metric_names": "visrec.evaluation.metrics",
    "EvalResult": "visrec.evaluation.results",
    "metric_key": "visrec.evaluation.results",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

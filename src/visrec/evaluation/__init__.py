"""Evaluation: exact, batched full-ranking metrics for any scorer (plus sampled, tutorial, and the cold and
mixed modes of cold-item splits).

``evaluate_modes(scorer, dataset, split=..., modes=..., settings=EvalSettings(...))`` (``evaluate`` for one
mode) for reports; ``validation_score`` is the only entry point training code uses (it cannot read test
targets). Metrics are data: :mod:`visrec.evaluation.registry`. See docs/evaluation.md.
"""

from visrec._lazy import lazy_exports

_EXPORTS = {
    "MODES": "visrec.evaluation.engine",
    "EvalSettings": "visrec.evaluation.engine",
    "evaluate": "visrec.evaluation.engine",
    "evaluate_modes": "visrec.evaluation.engine",
    "matrix_scorer": "visrec.evaluation.engine",
    "validation_score": "visrec.evaluation.engine",
    "DEFAULT_KS": "visrec.evaluation.metrics",
    "METRIC_KEYS": "visrec.evaluation.metrics",
    "metric_names": "visrec.evaluation.metrics",
    "REGISTRY": "visrec.evaluation.registry",
    "Metric": "visrec.evaluation.registry",
    "register": "visrec.evaluation.registry",
    "EvalResult": "visrec.evaluation.results",
    "metric_key": "visrec.evaluation.results",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

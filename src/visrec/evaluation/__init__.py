"""Evaluation: exact, batched full-ranking metrics for any scorer (plus sampled, tutorial, and the cold and
mixed modes of cold-item splits).

``evaluate_modes(scorer, dataset, split=..., modes=..., settings=EvalSettings(...))`` (``evaluate`` for one
mode) for reports; ``validation_score`` is the only entry point training code uses (it cannot read test
targets). Metrics are data: :mod:`visrec.evaluation.registry`. See docs/evaluation.md.
"""

from visrec.evaluation.engine import (
    MODES,
    EvalSettings,
    evaluate,
    evaluate_modes,
    matrix_scorer,
    validation_score,
)
from visrec.evaluation.metrics import DEFAULT_KS, METRIC_KEYS, metric_names
from visrec.evaluation.registry import REGISTRY, Metric, register
from visrec.evaluation.results import EvalResult, metric_key

__all__ = [
    "DEFAULT_KS",
    "METRIC_KEYS",
    "MODES",
    "REGISTRY",
    "EvalResult",
    "EvalSettings",
    "Metric",
    "evaluate",
    "evaluate_modes",
    "matrix_scorer",
    "metric_key",
    "metric_names",
    "register",
    "validation_score",
]

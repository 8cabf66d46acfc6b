"""Evaluation: exact, batched full-ranking metrics for any scorer (plus sampled and tutorial modes).

``evaluate(scorer, dataset, split=...)`` for reports; ``validation_score`` is the only entry point training
code uses (it cannot read test targets). See docs/evaluation.md.
"""

from visrec.evaluation.engine import (
    MODES,
    evaluate,
    evaluate_modes,
    matrix_scorer,
    validation_score,
)
from visrec.evaluation.metrics import DEFAULT_KS, METRIC_KEYS, metric_names
from visrec.evaluation.results import EvalResult, metric_key

__all__ = [
    "DEFAULT_KS",
    "METRIC_KEYS",
    "MODES",
    "EvalResult",
    "evaluate",
    "evaluate_modes",
    "matrix_scorer",
    "metric_key",
    "metric_names",
    "validation_score",
]

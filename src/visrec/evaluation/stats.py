"""How sure is a mean metric, and is one model really below another? Bootstrap CIs and paired tests.

- :func:`bootstrap_ci`: percentile bootstrap (Efron & Tibshirani, "An Introduction to the Bootstrap",
  1993, ch. 13) of the mean over users through ``scipy.stats.bootstrap``, seeded; users are resampled
  with replacement, the same resamples for every metric column, in batches of replicates so memory
  stays bounded.
- :func:`paired_tests`: two models' per-user values of one metric, paired by user: the Wilcoxon
  signed-rank test (Wilcoxon 1945; zero differences dropped, as ``scipy.stats.wilcoxon`` does by default)
  and the paired t-test (``scipy.stats.ttest_rel``), both two-sided.
- :func:`holm`: Holm's step-down correction of a family of p-values (Holm, "A simple sequentially
  rejective multiple test procedure", Scand. J. Statist. 1979).
- :func:`compare_to_best`: for one metric, the model with the best mean against every other model, Holm
  over those comparisons; ``below`` marks a model significantly worse than the best.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from visrec.errors import ConfigError

_BLOCK_CELLS = 4_000_000  # resampled values held at once (replicates x users x metrics)


def bootstrap_ci(
    values: np.ndarray, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> np.ndarray:
    """Percentile bootstrap CI of the mean of each column of ``values`` (``scipy.stats.bootstrap``).

    ``values``: shape ``(n_users,)`` or ``(n_users, n_metrics)``. Returns ``(2,)`` or ``(n_metrics, 2)``
    (low, high). Deterministic for a given ``seed``; NaN bounds for an empty input, a zero-width
    interval for a single user.
    """
    if n_boot < 1:
        raise ConfigError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1), got {level}")
    x = np.asarray(values, dtype=np.float64)
    squeeze = x.ndim == 1
    x = x[:, None] if squeeze else x
    n, m = x.shape
    if n < 2:  # scipy needs two observations; one user gives the same mean in every replicate
        out = np.repeat(x.mean(axis=0)[:, None] if n else np.full((m, 1), np.nan), 2, axis=1)
        return out[0] if squeeze else out
    res = stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=n_boot,
        batch=max(1, _BLOCK_CELLS // (n * m)),
        axis=0,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    out = np.stack([res.confidence_interval.low, res.confidence_interval.high], axis=-1)
    return out.reshape(m, 2)[0] if squeeze else out.reshape(m, 2)


@dataclass(frozen=True)
class PairedTest:
    """Two-sided paired tests of ``a`` vs ``b`` (per-user values of one metric)."""

    mean_diff: float
    """mean(a - b)."""
    p_wilcoxon: float
    """Wilcoxon signed-rank p-value (1.0 when every difference is zero)."""
    p_ttest: float
    """Paired t-test p-value (1.0 when every difference is zero)."""
    n: int


def paired_tests(a: np.ndarray, b: np.ndarray) -> PairedTest:
    """Wilcoxon signed-rank and paired t-test of two aligned per-user arrays."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ConfigError(
            f"paired tests need two 1-d arrays of equal length, got {a.shape}, {b.shape}"
        )
    diff = a - b
    if len(diff) == 0:
        return PairedTest(math.nan, math.nan, math.nan, 0)
    if not np.any(diff != 0):
        return PairedTest(0.0, 1.0, 1.0, len(diff))
    p_w = float(stats.wilcoxon(a, b).pvalue)
    p_t = float(stats.ttest_rel(a, b).pvalue) if len(diff) > 1 else math.nan
    return PairedTest(float(diff.mean()), p_w, p_t, len(diff))


def holm(pvalues) -> np.ndarray:
    """Holm-adjusted p-values (same order as given; NaN stays NaN and is not counted)."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return out


@dataclass(frozen=True)
class Comparison:
    """One model against the best model of a metric."""

    model: str
    best: str
    test: PairedTest
    p_wilcoxon_holm: float
    p_ttest_holm: float
    below: bool
    """Mean below the best and Holm-corrected Wilcoxon p < alpha."""


def compare_to_best(
    per_user: dict[str, np.ndarray], *, alpha: float = 0.05
) -> dict[str, Comparison]:
    """Compare the model with the highest mean to each other one (values aligned by user).

    Returns one :class:`Comparison` per non-best model; the Holm family is those comparisons.
    """
    names = [n for n, v in per_user.items() if len(v)]
    if len(names) < 2:
        return {}
    best = max(names, key=lambda n: float(np.mean(per_user[n])))
    others = [n for n in names if n != best]
    tests = [paired_tests(per_user[n], per_user[best]) for n in others]
    p_w = holm([t.p_wilcoxon for t in tests])
    p_t = holm([t.p_ttest for t in tests])
    return {
        n: Comparison(n, best, t, float(pw), float(pt), bool(t.mean_diff < 0 and pw < alpha))
        for n, t, pw, pt in zip(others, tests, p_w, p_t, strict=True)
    }

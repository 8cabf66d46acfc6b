"""Bootstrap CIs, paired tests and Holm's correction against scipy and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from visrec.errors import ConfigError
from visrec.evaluation.stats import bootstrap_ci, compare_to_best, holm, paired_tests


def test_bootstrap_is_seeded_and_brackets_the_mean():
    rng = np.random.default_rng(1)
    x = rng.random((300, 3))
    a = bootstrap_ci(x, n_boot=500, seed=4)
    b = bootstrap_ci(x, n_boot=500, seed=4)
    c = bootstrap_ci(x, n_boot=500, seed=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (3, 2)
    means = x.mean(axis=0)
    assert np.all(a[:, 0] < means) and np.all(means < a[:, 1])


def test_bootstrap_is_scipys_percentile_interval_with_shared_resamples():
    rng = np.random.default_rng(2)
    x = rng.exponential(size=(200, 2))
    both = bootstrap_ci(x, n_boot=2000, seed=0)
    sp = stats.bootstrap(
        (x[:, 1],), np.mean, n_resamples=2000, method="percentile", rng=np.random.default_rng(0)
    )
    np.testing.assert_allclose(both[1], [sp.confidence_interval.low, sp.confidence_interval.high])
    # every metric column sees the same resampled users: a column alone gives the same interval
    np.testing.assert_allclose(both[0], bootstrap_ci(x[:, 0], n_boot=2000, seed=0), rtol=1e-12)
    narrow = bootstrap_ci(x[:, 0], n_boot=2000, level=0.5, seed=0)
    assert both[0, 0] < narrow[0] < narrow[1] < both[0, 1]


def test_bootstrap_draws_are_those_of_earlier_releases():
    # the resamples are default_rng(seed).integers(0, n, (n_boot, n)), as visrec drew them before
    # scipy did the work, so published benchmark intervals stay the same
    x = np.random.default_rng(2).exponential(size=200)
    draws = np.random.default_rng(0).integers(0, len(x), size=(2000, len(x)))
    ref = np.quantile(x[draws].mean(axis=1), [0.025, 0.975])
    np.testing.assert_allclose(bootstrap_ci(x, n_boot=2000, seed=0), ref, rtol=1e-12)


def test_bootstrap_covers_a_known_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    trials = 300
    samples = rng.normal(loc=2.0, scale=1.0, size=(trials, 100))
    hits = 0
    for t, sample in enumerate(samples):
        low, high = bootstrap_ci(sample, n_boot=400, seed=t)
        hits += low <= 2.0 <= high
    assert 0.89 <= hits / trials <= 0.99


def test_bootstrap_of_one_user_is_a_point():
    np.testing.assert_array_equal(bootstrap_ci(np.array([[0.5, 1.0]])), [[0.5, 0.5], [1.0, 1.0]])


def test_bootstrap_width_shrinks_with_more_users():
    rng = np.random.default_rng(3)
    small = bootstrap_ci(rng.random(50), seed=0)
    large = bootstrap_ci(rng.random(5000), seed=0)
    assert large[1] - large[0] < (small[1] - small[0]) / 4


def test_bootstrap_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="n_boot"):
        bootstrap_ci(np.ones(3), n_boot=0)
    with pytest.raises(ConfigError, match="level"):
        bootstrap_ci(np.ones(3), level=1.5)
    assert np.isnan(bootstrap_ci(np.zeros(0))).all()


def test_paired_tests_equal_scipy():
    rng = np.random.default_rng(4)
    a = rng.random(60)
    b = a - 0.05 + rng.normal(0, 0.1, 60)
    t = paired_tests(a, b)
    assert t.p_wilcoxon == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert t.p_ttest == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert t.mean_diff == pytest.approx(np.mean(a - b))
    same = paired_tests(a, a)
    assert (same.p_wilcoxon, same.p_ttest, same.mean_diff) == (1.0, 1.0, 0.0)


def test_holm_by_hand():
    # sorted p: .01 (x4 = .04), .02 (x3 = .06), .03 (x2 = .06 by monotonicity), .5 (x1 = .5)
    np.testing.assert_allclose(holm([0.03, 0.01, 0.5, 0.02]), [0.06, 0.04, 0.5, 0.06])
    np.testing.assert_allclose(holm([0.6, 0.4]), [0.8, 0.8])
    out = holm([np.nan, 0.2])
    assert np.isnan(out[0]) and out[1] == pytest.approx(0.2)


def test_compare_to_best_marks_agree_with_scipy_and_holm():
    rng = np.random.default_rng(5)
    n = 80
    best = rng.random(n) * 0.5 + 0.4

    def noise():
        e = rng.normal(0.0, 0.05, n)
        return e - e.mean()

    close = best - 0.002 + noise()  # indistinguishable from the best
    worse = best - 0.1 + noise()  # clearly below
    marginal = best - 0.012 + noise()
    per_user = {"best": best, "close": close, "worse": worse, "marginal": marginal}
    got = compare_to_best(per_user, alpha=0.05)
    assert set(got) == {"close", "worse", "marginal"}
    assert all(c.best == "best" for c in got.values())
    others = ["close", "worse", "marginal"]
    raw = [stats.wilcoxon(per_user[m], best).pvalue for m in others]
    order = np.argsort(raw)
    adjusted = np.empty(3)
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (3 - i) * raw[j]))
        adjusted[j] = running
    for m, p in zip(others, adjusted, strict=True):
        assert got[m].p_wilcoxon_holm == pytest.approx(p)
        assert got[m].below == bool(p < 0.05 and per_user[m].mean() < best.mean())
    assert got["worse"].below and not got["close"].below

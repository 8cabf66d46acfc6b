"""Benchmark plots with many models: one row or panel per model, sized by the number of models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402

from visrec.benchmark.plots import (  # noqa: E402
    PLOT_FILES,
    bucket_means,
    mean_and_ci,
    plot_tables,
    profile_buckets,
)

METRICS = ("AUC", "nDCG@20", "R@20")


def fake_tables(n_models: int, n_users: int = 120, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 60, n_users)
    tables = {}
    for k in range(n_models):
        ranks = np.floor(rng.exponential(50 / (k + 1), n_users))
        ranks[:3] = np.nan  # users without a hit
        table = {"profile_size": sizes, "first_hit_rank": ranks}
        table |= {m: rng.beta(1 + k, 5, n_users) for m in METRICS}
        tables[f"model-{k}"] = pd.DataFrame(table)
    return tables


def test_ten_models_give_every_plot_and_the_plots_grow_with_the_models(tmp_path):
    paths = plot_tables(fake_tables(10), tmp_path / "ten", METRICS)
    assert [p.name for p in paths] == list(PLOT_FILES)
    few = plot_tables(fake_tables(3), tmp_path / "three", METRICS)
    for many_path, few_path in zip(paths, few, strict=True):
        assert many_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(many_path) as many, Image.open(few_path) as small:
            assert many.height > small.height  # rows/panels per model, not overlaid
            assert np.asarray(many.convert("L")).std() > 10  # something is drawn


def test_bucket_means_and_ci():
    table = pd.DataFrame({"profile_size": [1, 1, 5, 9, 9], "m": [0.0, 1.0, 0.5, np.nan, 1.0]})
    edges = np.array([1, 5, 9, 10])
    assert bucket_means(table, "m", edges).tolist() == [0.5, 0.5, 1.0]
    assert profile_buckets(np.array([3, 3, 3])).tolist() == [3, 4]
    mean, low, high = mean_and_ci(np.array([0.0, 1.0, 1.0, 0.0, np.nan, 1.0]))
    assert mean == pytest.approx(0.6) and 0.0 <= low < mean < high <= 1.0
    assert np.isnan(mean_and_ci(np.array([np.nan]))[0])

"""Cold and mixed modes: known answers with ties, labels, file names, and errors on warm splits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from visrec.data import Dataset, Interactions, SplitSpec
from visrec.errors import ConfigError
from visrec.evaluation import (
    EvalSettings,
    evaluate,
    evaluate_modes,
    matrix_scorer,
    validation_score,
)
from visrec.evaluation.engine import selection_mode
from visrec.runs import eval_name

ROWS = [
    ("u", "a", 1),
    ("u", "b", 2),
    ("u", "e", 10),
    ("u", "f", 11),
    ("v", "a", 1),
    ("v", "c", 3),
    ("v", "g", 12),
    ("w", "b", 2),
    ("w", "d", 4),
    ("w", "e", 10),
]
# scores by item a..g (items index in sorted id order, users u, v, w)
SCORES = {
    "u": [5, 0, 3, 1, 2, 2, 4],
    "v": [0, 0, 0, 0, 1, 1, 1],
    "w": [1, 1, 1, 1, 1, 0, 0],
}


@pytest.fixture(scope="module")
def cold_ds() -> Dataset:
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "timestamp"])
    spec = SplitSpec("cold-items-temporal", cutoff=10, validation=False)
    return Dataset.build(Interactions.from_frame(frame), spec)


def _scorer(ds):
    matrix = np.array([SCORES[u] for u in ds.users.ids], dtype=np.float64)
    return matrix_scorer(matrix)


def test_cold_mode_known_answer(cold_ds):
    assert cold_ds.items.ids_of(cold_ds.cold_items("test")).tolist() == ["e", "f", "g"]
    res = evaluate(_scorer(cold_ds), cold_ds, split="test", mode="cold", ks=(1, 2))
    table = res.per_user.set_index("user_id")
    # u: candidates e 2, f 2, g 4; truth {e, f} tie behind g: ranks 1 + (2-1)/2 = 1.5 each; g above both
    assert table.loc["u", "first_hit_rank"] == 1.5
    assert table.loc["u", "AUC[cold]"] == 0.0
    assert table.loc["u", "RR[cold]"] == pytest.approx(1 / 2.5)
    assert table.loc["u", "R@2[cold]"] == 1.0 and table.loc["u", "R@1[cold]"] == 0.0
    # v: e, f, g all tied at 1; truth g ranks (3-1)/2 = 1; half of its 2 negatives above it
    assert table.loc["v", "first_hit_rank"] == 1.0
    assert table.loc["v", "AUC[cold]"] == 0.5
    # w: truth e (1) above f, g (0)
    assert table.loc["w", "AUC[cold]"] == 1.0 and table.loc["w", "RR[cold]"] == 1.0
    assert table["n_candidates"].tolist() == [3, 3, 3]
    assert res.means["AUC[cold]"] == pytest.approx(0.5)
    assert res.mode == "cold" and res.meta["n_cold_items"] == 3


def test_mixed_mode_known_answer(cold_ds):
    res = evaluate(_scorer(cold_ds), cold_ds, split="test", mode="mixed", ks=(1, 2))
    table = res.per_user.set_index("user_id")
    # u: candidates c 3, d 1, e 2, f 2, g 4 (a, b consumed): e, f rank 2 + 1/2; 2 of 3 negatives above
    assert table.loc["u", "first_hit_rank"] == 2.5
    assert table.loc["u", "AUC[mixed]"] == pytest.approx(1 / 3)
    # v: candidates b, d (0) and e, f, g (1): g ties with e, f -> rank 1; AUC (4 - 1) / 4
    assert table.loc["v", "AUC[mixed]"] == 0.75
    # w: candidates a, c, e tied at 1 and f, g at 0: e ranks 1; AUC (4 - 1) / 4
    assert table.loc["w", "AUC[mixed]"] == 0.75 and table.loc["w", "RR[mixed]"] == 0.5
    assert table["n_candidates"].tolist() == [5, 5, 5]
    assert res.means["AUC[mixed]"] == pytest.approx((1 / 3 + 0.75 + 0.75) / 3)


def test_modes_share_one_pass_and_block_sizes(cold_ds):
    scorer = _scorer(cold_ds)
    together = evaluate_modes(
        scorer, cold_ds, split="test", modes=("cold", "mixed", "full"), block_size=1
    )
    for mode in ("cold", "mixed"):
        alone = evaluate(scorer, cold_ds, split="test", mode=mode, block_size=3)
        pd.testing.assert_frame_equal(alone.per_user, together[mode].per_user)
        assert alone.means == together[mode].means
    # full ranks against the same candidates as mixed: same values, unlabelled keys
    for key, value in together["full"].means.items():
        assert together["mixed"].means[f"{key}[mixed]"] == value


def test_cold_modes_need_a_cold_split():
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "timestamp"])
    warm = Dataset.build(Interactions.from_frame(frame), SplitSpec(validation=False))
    scorer = matrix_scorer(np.zeros((warm.n_users, warm.n_items)))
    for mode in ("cold", "mixed"):
        with pytest.raises(ConfigError, match="cold-item split"):
            evaluate(scorer, warm, split="test", mode=mode)


def test_cold_labels_and_file_names(cold_ds):
    assert eval_name("test", "cold") == "test-cold"
    assert eval_name("validation", "mixed") == "validation-mixed"
    res = evaluate(_scorer(cold_ds), cold_ds, split="test", mode="cold", ks=(2,))
    assert list(res.means) == ["AUC[cold]", "RR[cold]", "R@2[cold]", "P@2[cold]", "nDCG@2[cold]"]
    assert "[cold / test]" in res.summary()


def _random_frame(rng: np.random.Generator) -> pd.DataFrame:
    """20 users x 10 distinct items of 30, random timestamps."""
    rows = [
        (f"u{u}", f"i{i:02d}", int(t))
        for u in range(20)
        for i, t in zip(rng.choice(30, 10, replace=False), rng.integers(0, 100, 10), strict=True)
    ]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def test_cold_validation_targets_rank_among_validation_cold_items():
    rng = np.random.default_rng(0)
    frame = _random_frame(rng)
    ds = Dataset.build(Interactions.from_frame(frame), SplitSpec("cold-items", cold_fraction=0.2))
    scores = rng.normal(size=(ds.n_users, ds.n_items))
    settings = EvalSettings(ks=(5,))
    val = evaluate(matrix_scorer(scores), ds, split="validation", mode="cold", settings=settings)
    cold = ds.cold_items("validation")
    assert (val.per_user["n_candidates"] == len(cold)).all()
    # brute force: per user, AUC over (truth, other validation cold item) pairs
    table = val.per_user
    for user, value in zip(table["user_idx"], table["AUC[cold]"], strict=True):
        truth = ds.validation.indices[ds.validation.indptr[user] : ds.validation.indptr[user + 1]]
        negatives = np.setdiff1d(cold, truth)
        s = scores[user]
        pairs = [(s[t] > s[n]) + 0.5 * (s[t] == s[n]) for t in truth for n in negatives]
        assert math.isclose(value, float(np.mean(pairs)))


def test_selection_reads_the_cold_mode_on_a_cold_split():
    """Early stopping, tuning and the benchmark select on one mode: cold on a cold-items split."""
    rng = np.random.default_rng(1)
    frame = _random_frame(rng)
    cold = Dataset.build(Interactions.from_frame(frame), SplitSpec("cold-items", cold_fraction=0.2))
    warm = Dataset.build(Interactions.from_frame(frame), SplitSpec("leave-last-out"))
    assert (selection_mode(cold), selection_mode(warm)) == ("cold", "full")
    for ds, mode in ((cold, "cold"), (warm, "full")):
        scorer = matrix_scorer(rng.normal(size=(ds.n_users, ds.n_items)))
        want = evaluate(scorer, ds, split="validation", mode=mode).means
        key = "AUC[cold]" if mode == "cold" else "AUC"
        assert validation_score(scorer, ds) == pytest.approx(want[key])
    full = evaluate(scorer, cold, split="validation", mode="full").means["AUC"]
    assert validation_score(scorer, cold, mode="full") == pytest.approx(full)


@pytest.mark.gpu
def test_cold_modes_on_cuda_match_cpu():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(7)
    rows = [
        (f"u{u}", f"i{i:02d}", int(t))
        for u in range(40)
        for i, t in zip(rng.choice(50, 12, replace=False), rng.integers(0, 99, 12), strict=True)
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    ds = Dataset.build(Interactions.from_frame(frame), SplitSpec("cold-items", cold_fraction=0.2))
    scores = np.round(rng.normal(size=(ds.n_users, ds.n_items)), 1)
    settings = EvalSettings(metrics=("AUC", "nDCG", "MAP", "coverage", "novelty"), block_size=7)
    modes = ("cold", "mixed")
    cpu = evaluate_modes(matrix_scorer(scores), ds, split="test", modes=modes, settings=settings)
    gpu = evaluate_modes(
        matrix_scorer(scores), ds, split="test", modes=modes, settings=settings, device="cuda"
    )
    for mode in modes:
        pd.testing.assert_frame_equal(cpu[mode].per_user, gpu[mode].per_user, check_exact=True)
        assert cpu[mode].means == gpu[mode].means

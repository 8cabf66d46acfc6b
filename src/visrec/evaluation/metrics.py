"""Ranking metrics as small pure functions on ranks (numpy, float64, one row per user).

Every function takes ``ranks``: an array of shape ``(n_users, t)`` holding, for each user, the 0-based,
tie-aware ranks of that user's truth items among the candidates (NaN pads rows with fewer than ``t`` truth
items). A rank is "number of candidates scored strictly higher + half the other candidates tied with it",
so ranks are multiples of 0.5. Definitions (visrec's DESIGN.md, "Evaluation protocol"):

- AUC = fraction of (truth, negative) pairs ordered correctly, ties counting half;
- RR = 1 / (min rank + 1);
- P@k = #{rank < k} / k;  R@k = #{rank < k} / |T|;
- nDCG@k = sum over rank < k of 1 / log2(rank + 2), divided by the ideal DCG of min(|T|, k) hits
  (Järvelin & Kekäläinen, "Cumulated gain-based evaluation of IR techniques", TOIS 2002).

The ``tutorial_*`` functions reproduce the IUI 2021 VisRec tutorial notebooks, whose AUC is normalised by
the whole inventory and whose nDCG is normalised by the number of hits (see docs/evaluation.md).

Sums over a user's truth items are sequential (``np.cumsum``) in ascending rank order, so a user's value
never depends on the order of its truth items or on how much NaN padding its row carries (i.e. on which
other users share its evaluation block): results are bit-identical for any block size.

With tied scores the tie-averaged ranks are fractional, and truth items tied across the cut-off can all
fall below k: #{r < k} may then exceed k, so P@k and nDCG@k can exceed 1 for scorers that tie truth items
near the top (the formulas are applied as written; continuous scores never tie).
"""

from __future__ import annotations

import numpy as np

from visrec.choices import DEFAULT_METRICS

METRIC_KEYS: tuple[str, ...] = DEFAULT_METRICS
"""The default metric families. AUC and RR are single numbers; R, P and nDCG exist once per cut-off k
(``R@20``). Every metric visrec knows is in :mod:`visrec.evaluation.registry`."""

DEFAULT_KS: tuple[int, ...] = (20, 100, 200)


def n_truth(ranks: np.ndarray) -> np.ndarray:
    """Number of truth items per user (non-NaN entries per row)."""
    return (~np.isnan(ranks)).sum(axis=1)


def _row_sum(values: np.ndarray) -> np.ndarray:
    """Sequential row sums (independent of trailing zero padding)."""
    if values.shape[1] == 0:
        return np.zeros(values.shape[0])
    return np.cumsum(values, axis=1)[:, -1]


def hits_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """#{truth items with rank < k} per user (NaN pads never count)."""
    with np.errstate(invalid="ignore"):
        return (ranks < k).sum(axis=1)


def auc(negatives_above: np.ndarray, n_negatives: np.ndarray) -> np.ndarray:
    """AUC per user: mean over truth items of the fraction of negatives ranked below it.

    ``negatives_above[u, j]`` is the tie-aware count of negatives ranked above truth item j (strictly higher
    + half the tied ones); ``n_negatives[u]`` (> 0) the number of negative candidates.
    """
    n = n_truth(negatives_above)
    correct = np.where(np.isnan(negatives_above), 0.0, n_negatives[:, None] - negatives_above)
    return _row_sum(correct) / (n * n_negatives)


def reciprocal_rank(ranks: np.ndarray) -> np.ndarray:
    """RR = 1 / (best rank + 1)."""
    if ranks.shape[1] == 0:
        return np.full(ranks.shape[0], np.nan)
    return 1.0 / (np.nanmin(ranks, axis=1) + 1.0)


def precision_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """P@k = hits in the top k / k (k may exceed the number of candidates; the divisor stays k)."""
    return hits_at(ranks, k) / float(k)


def recall_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """R@k = hits in the top k / number of truth items."""
    return hits_at(ranks, k) / n_truth(ranks)


def dcg_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """Sum over truth items with rank < k of 1 / log2(rank + 2).

    Gains are added in ascending rank order, so the value depends only on the set of ranks, not on the
    order of the truth items (item indices) or on the row's padding.
    """
    ranks = np.sort(ranks, axis=1)  # NaN pads go last
    with np.errstate(invalid="ignore"):
        gains = np.where(ranks < k, 1.0 / np.log2(np.nan_to_num(ranks) + 2.0), 0.0)
    return _row_sum(gains)


def ideal_dcg(m: np.ndarray) -> np.ndarray:
    """IDCG(m) = sum over j = 1..m of 1 / log2(j + 1) (0 for m = 0), elementwise."""
    m = np.asarray(m, dtype=np.int64)
    top = int(m.max()) if m.size else 0
    table = np.zeros(top + 1)
    if top:
        table[1:] = np.cumsum(1.0 / np.log2(np.arange(2, top + 2, dtype=np.float64)))
    return table[m]


def ndcg_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """nDCG@k, normalised by the ideal DCG of min(|T|, k) hits."""
    return dcg_at(ranks, k) / ideal_dcg(np.minimum(n_truth(ranks), k))


def tutorial_auc(ranks: np.ndarray, n_items: int) -> np.ndarray:
    """The tutorial's AUC: sum over i = 1..n of [(N - (p_i + 1)) - (n - i)] / (N - n) / n.

    ``ranks`` are the tutorial's corrected positions p (profile items placed before removed); N counts the
    whole inventory, profile included. The sum does not depend on the order of the p_i, so it equals
    [n (N - 1) - sum(p) - n (n - 1) / 2] / (N - n) / n, which is what we compute (sum(p) is exact: the p
    are multiples of 0.5).
    """
    n = n_truth(ranks).astype(np.float64)
    total = _row_sum(np.nan_to_num(ranks))
    return (n * (n_items - 1) - total - n * (n - 1) / 2.0) / (n_items - n) / n


def tutorial_ndcg_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """The tutorial's nDCG@k: DCG of the hits divided by IDCG(m), m = number of hits (0 if none)."""
    hits = hits_at(ranks, k)
    ideal = ideal_dcg(hits)
    dcg = dcg_at(ranks, k)
    return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=hits > 0)


def hit_rate_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """HR@k = 1 if any truth item has rank < k, else 0."""
    return (hits_at(ranks, k) > 0).astype(np.float64)


def average_precision_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """AP@k = sum over the hits (rank r_j < k, j-th smallest rank, j = 1, 2, ...) of j / (r_j + 1),
    divided by min(|T|, k); its mean over users is MAP@k (Manning, Raghavan & Schütze, "Introduction to
    Information Retrieval", 2008, ch. 8.4, truncated at k as in most recommender toolkits)."""
    ranks = np.sort(ranks, axis=1)  # NaN pads go last
    position = np.arange(1, ranks.shape[1] + 1, dtype=np.float64)[None, :]
    with np.errstate(invalid="ignore"):
        precision = np.where(ranks < k, position / (np.nan_to_num(ranks) + 1.0), 0.0)
    return _row_sum(precision) / np.minimum(n_truth(ranks), k)


def metric_names(ks: tuple[int, ...]) -> list[str]:
    """The default metric keys in table order: AUC, RR, then R@k, P@k, nDCG@k for each k."""
    names = ["AUC", "RR"]
    for k in ks:
        names += [f"R@{k}", f"P@{k}", f"nDCG@{k}"]
    return names


def standard_metrics(
    ranks: np.ndarray, negatives_above: np.ndarray, n_negatives: np.ndarray, ks: tuple[int, ...]
) -> dict[str, np.ndarray]:
    """All metrics of the full and sampled modes, per user."""
    out = {"AUC": auc(negatives_above, n_negatives), "RR": reciprocal_rank(ranks)}
    for k in ks:
        out[f"R@{k}"] = recall_at(ranks, k)
        out[f"P@{k}"] = precision_at(ranks, k)
        out[f"nDCG@{k}"] = ndcg_at(ranks, k)
    return out


def tutorial_metrics(ranks: np.ndarray, n_items: int, ks: tuple[int, ...]) -> dict[str, np.ndarray]:
    """All metrics of the tutorial mode, per user (``ranks`` = corrected positions p)."""
    out = {"AUC": tutorial_auc(ranks, n_items), "RR": reciprocal_rank(ranks)}
    for k in ks:
        out[f"R@{k}"] = recall_at(ranks, k)
        out[f"P@{k}"] = precision_at(ranks, k)
        out[f"nDCG@{k}"] = tutorial_ndcg_at(ranks, k)
    return out

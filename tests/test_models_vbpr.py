"""VBPR: conformance, the paper's score formula term by term, the per-batch distinct-item projection,
and known answers (beats Random/MostPopular on the taste demo, with truth and image features)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from visrec.data import open_dataset
from visrec.errors import ConfigError
from visrec.evaluation import evaluate
from visrec.models import create
from visrec.models.pair_differences import pair_differences
from visrec.models.vbpr import VBPRConfig, VBPRModule
from visrec.testing import check_recommender
from visrec.training import fit_model
from visual_support import image_features, taste_demo, truth_features

SMALL = {"factors": 6, "visual_factors": 4, "epochs": 2, "batch_size": 128, "device": "cpu"}


@pytest.fixture(scope="module")
def taste(tmp_path_factory):
    folder = taste_demo(tmp_path_factory.mktemp("taste") / "data")
    return folder, open_dataset(folder).build()


def random_module(n_users=5, n_items=9, n_features=7, factors=3, visual=2) -> VBPRModule:
    torch.manual_seed(0)
    module = VBPRModule(n_users, n_items, n_features, factors, visual, init_std=0.5)
    module.features.copy_(torch.rand(n_items, n_features))
    with torch.no_grad():
        module.beta_item.normal_()
        module.beta_visual.normal_()
    return module


def paper_score_t(m: VBPRModule, u: int, i: int) -> torch.Tensor:
    """x_ui = beta_i + gamma_u . gamma_i + theta_u . (E f_i) + beta' . f_i, one pair at a time."""
    f = m.features[i]
    return (
        m.beta_item[i]
        + m.gamma_user.weight[u] @ m.gamma_item.weight[i]
        + m.theta_user.weight[u] @ (m.E @ f)
        + m.beta_visual @ f
    )


def paper_score(m: VBPRModule, u: int, i: int) -> float:
    with torch.no_grad():
        return float(paper_score_t(m, u, i))


def test_defaults_are_the_tutorials():
    # the tutorial's sizes and learning rate; its weight decay became the per-triplet lambdas
    # (docs/training.md "Regularisation"), so Adam's weight decay is off by default
    cfg = VBPRConfig()
    assert (cfg.factors, cfg.visual_factors, cfg.lr, cfg.weight_decay, cfg.loss) == (
        200,
        100,
        1e-3,
        0.0,
        "bpr",
    )


def test_conformance(demo_dir, demo_dataset):
    model = check_recommender(
        lambda: create("vbpr", SMALL), demo_dataset, truth_features(demo_dir, demo_dataset)
    )
    assert "features" in model.state_dict()  # a saved model scores without the feature store


def test_forward_and_score_users_follow_the_paper():
    m = random_module()
    users = torch.tensor([0, 3, 3, 4])
    pos = torch.tensor([1, 1, 8, 0])
    neg = torch.tensor([[2, 1], [5, 5], [0, 7], [8, 8]])
    with torch.no_grad():
        x_pos, x_neg = m({"users": users, "pos": pos, "neg": neg})
        scores = m.score_users(torch.arange(5))
    for b, u in enumerate(users.tolist()):
        assert x_pos[b].item() == pytest.approx(paper_score(m, u, int(pos[b])), abs=1e-5)
        for k in range(2):
            assert x_neg[b, k].item() == pytest.approx(paper_score(m, u, int(neg[b, k])), abs=1e-5)
    want = torch.tensor([[paper_score(m, u, i) for i in range(9)] for u in range(5)])
    torch.testing.assert_close(scores, want, atol=1e-5, rtol=1e-5)


def test_batch_projects_each_distinct_item_once():
    m = random_module()
    seen = []
    original = m.visual
    m.visual = lambda items=None: seen.append(items) or original(items)
    batch = {
        "users": torch.tensor([0, 1, 2, 3]),
        "pos": torch.tensor([4, 4, 4, 6]),
        "neg": torch.tensor([[6], [1], [1], [4]]),
    }
    m(batch)  # 8 item slots <= slots_up_to: each slot projected as it is, in order
    assert len(seen) == 1 and seen[0].tolist() == [4, 6, 4, 1, 4, 1, 6, 4]
    m.slots_up_to = 7  # more slots than that: each distinct item once
    m(batch)
    assert len(seen) == 2 and seen[1].tolist() == [1, 4, 6]


def triplets(n: int, negatives: int = 1, seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    return {
        "users": torch.from_numpy(rng.integers(0, 5, n)),
        "pos": torch.from_numpy(rng.integers(0, 9, n)),
        "neg": torch.from_numpy(rng.integers(0, 9, (n, negatives))),
    }


# the five ways a batch is scored: item slots as they are, distinct items with a per-triplet gather,
# with pair_dots or with a dense product of the distinct users x items, every item (16 slots >= 9 items)
INF = float("inf")
PATH = ("slots_up_to", "dense_ratio", "sparse")
PATHS = [
    (3, 256, 0.0, False),
    (3, 0, 0.0, False),
    (3, 0, 0.0, True),
    (3, 0, INF, True),
    (8, 256, INF, True),
]


def set_path(m, slots_up_to, dense_ratio, sparse_pairs):
    m.slots_up_to, m.sparse_pairs = slots_up_to, sparse_pairs
    m.dense_ratio = m.dense_ratio_sparse = dense_ratio


@pytest.mark.parametrize(("n_triplets", *PATH), PATHS)
def test_forward_penalty_equals_the_per_triplet_formula(
    n_triplets, slots_up_to, dense_ratio, sparse
):
    # forward(with_penalty=True) computes the penalty from the rows its scores gathered: the same value
    # and gradients as scores + penalty(batch) (one lookup per triplet and term), up to rounding
    m = random_module()
    m.lambdas = (0.1, 0.2, 0.3)
    set_path(m, slots_up_to, dense_ratio, sparse)
    # two negatives per triplet, the number of item slots of PATHS: 6 < 9 items, 21 >= 9
    batch = triplets(n_triplets - 1, negatives=2, seed=n_triplets)
    pos, neg, penalty = m(batch, with_penalty=True)
    torch.testing.assert_close(penalty, m.penalty(batch))
    alone = m(batch)
    assert torch.equal(alone[0], pos) and torch.equal(alone[1], neg)
    (pos.sum() - 2 * neg.sum() + penalty).backward()
    fused = {name: p.grad.clone() for name, p in m.named_parameters()}
    m.zero_grad()
    pos, neg = m(batch)
    (pos.sum() - 2 * neg.sum() + m.penalty(batch)).backward()
    for name, p in m.named_parameters():
        torch.testing.assert_close(fused[name], p.grad, msg=name)


@pytest.mark.parametrize(("n_triplets", *PATH), PATHS)
def test_gradients_match_per_triplet_projection(n_triplets, slots_up_to, dense_ratio, sparse):
    # projecting item slots, distinct (or all) items once must give the gradients of projecting per
    # triplet
    m = random_module()
    set_path(m, slots_up_to, dense_ratio, sparse)
    rng = np.random.default_rng(n_triplets)
    u, i, j = (
        rng.integers(0, 5, n_triplets),
        rng.integers(0, 9, n_triplets),
        rng.integers(0, 9, n_triplets),
    )
    batch = {
        "users": torch.from_numpy(u),
        "pos": torch.from_numpy(i),
        "neg": torch.from_numpy(j)[:, None],
    }
    pos, neg = m(batch)
    (pos - neg[:, 0]).sum().backward()
    fast = {name: p.grad.clone() for name, p in m.named_parameters()}
    m.zero_grad()
    slow = sum(
        paper_score_t(m, a, b) - paper_score_t(m, a, c)
        for a, b, c in zip(u.tolist(), i.tolist(), j.tolist(), strict=True)
    )
    slow.backward()
    for name, p in m.named_parameters():
        torch.testing.assert_close(fast[name], p.grad, msg=name)


def spy_differences(monkeypatch) -> list[str]:
    """Record which of VBPR's two pair-difference paths each forward takes."""
    import visrec.models.vbpr as vbpr

    calls: list[str] = []
    autograd, hand = VBPRModule._differences, vbpr.pair_differences
    monkeypatch.setattr(
        VBPRModule, "_differences", lambda self, *a: calls.append("autograd") or autograd(self, *a)
    )
    monkeypatch.setattr(vbpr, "pair_differences", lambda *a: calls.append("hand") or hand(*a))
    return calls


@pytest.mark.parametrize("negatives", [1, 2])
@pytest.mark.parametrize("hand", [True, False], ids=["hand-backward", "autograd"])
@pytest.mark.parametrize("up_to", [INF, 0.0], ids=["differences", "scores-then-subtract"])
def test_differences_equal_the_scores_difference_with_their_gradients(
    negatives, hand, up_to, monkeypatch
):
    # BPR's x_ui - x_uj from one projection E (f_i - f_j) per pair: the same value, penalty and gradients
    # as both scores (float64: equal to rounding), through autograd or the hand-written backward; past
    # differences_up_to the scores are subtracted
    m = random_module().double()
    m.lambdas = (0.1, 0.2, 0.3)
    m.differences_up_to = up_to
    m.hand_backward = hand
    batch = triplets(7, negatives=negatives, seed=negatives)
    calls = spy_differences(monkeypatch)
    x, penalty = m(batch, with_penalty=True, differences=True)
    want_path = ["hand" if hand else "autograd"] if up_to == INF else []
    assert calls == want_path and x.shape == (7, negatives)
    (-torch.nn.functional.logsigmoid(x).sum() + penalty).backward()
    fast = {name: p.grad.clone() for name, p in m.named_parameters()}
    m.zero_grad()
    pos, neg, penalty_2 = m(batch, with_penalty=True)
    want = pos[:, None] - neg
    torch.testing.assert_close(x, want, rtol=0, atol=1e-12)
    torch.testing.assert_close(penalty, penalty_2, rtol=0, atol=1e-12)
    (-torch.nn.functional.logsigmoid(want).sum() + penalty_2).backward()
    for name, p in m.named_parameters():
        torch.testing.assert_close(fast[name], p.grad, rtol=0, atol=1e-12, msg=name)
    with pytest.raises(ValueError, match="with_penalty"):
        m(batch, differences=True)


@pytest.mark.parametrize("loss", ["bpr", "bce"])
def test_the_trainer_scores_differences_for_bpr_only(demo_dir, demo_dataset, loss, monkeypatch):
    from visrec.features import FeatureStore

    ids = demo_dataset.items.ids
    feats = np.random.default_rng(0).normal(size=(len(ids), 8)).astype(np.float32)
    calls = spy_differences(monkeypatch)
    path = demo_dir.parent / f"feats-{loss}"
    FeatureStore.write(path, ids, feats, {"layer": "pooled"})
    model = create("vbpr", {**SMALL, "epochs": 1, "loss": loss, "batch_size": 16})  # 16 <= 90 / 2
    fit_model(model, demo_dataset, FeatureStore.open(path))
    assert set(calls) == ({"hand"} if loss == "bpr" else set())  # dense Adam on the CPU: by hand


@pytest.mark.parametrize("negatives", [1, 3])
@pytest.mark.parametrize("lambdas", [(0.1, 0.2, 0.3), (0.0, 0.0, 0.0)])
def test_the_hand_written_backward_is_autograds(negatives, lambdas):
    # same operators forward (bit for bit the autograd graph's values), gradients equal to rounding for
    # any upstream gradients, with repeated users and items in the batch
    results = []
    for hand in (False, True):
        m = random_module().double()
        m.lambdas = lambdas
        batch = triplets(40, negatives=negatives, seed=3)  # 5 users, 9 items: many repeats
        items = torch.cat([batch["pos"][:, None], batch["neg"]], dim=1)
        if hand:
            x, penalty = pair_differences(m, batch["users"], items)
        else:
            x, penalty = m._differences(batch["users"], items)
        weights = torch.linspace(-1.0, 2.0, x.numel(), dtype=x.dtype).view_as(x)
        ((x * weights).sum() + 1.7 * penalty).backward()
        results.append((x.detach(), penalty.detach(), {n: p.grad for n, p in m.named_parameters()}))
    (x0, p0, g0), (x1, p1, g1) = results
    assert torch.equal(x0, x1) and torch.equal(p0, p1)
    assert g0.keys() == g1.keys()
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], rtol=0, atol=1e-13, msg=name)


def test_the_hand_written_backward_leaves_frozen_and_sparse_tables_alone(monkeypatch):
    m = random_module()
    m.differences_up_to = INF
    m.E.requires_grad_(False)
    batch = triplets(6)
    calls = spy_differences(monkeypatch)
    x, penalty = m(batch, with_penalty=True, differences=True)
    (x.sum() + penalty).backward()
    assert calls == ["hand"] and m.E.grad is None and m.gamma_item.weight.grad is not None
    # optimizer=sparse_adam: the sparse gradients come from autograd's backward
    m.gamma_item.sparse = True
    m.zero_grad()
    m(batch, with_penalty=True, differences=True)[0].sum().backward()
    assert calls == ["hand", "autograd"] and m.gamma_item.weight.grad.is_sparse


def test_invalid_config():
    with pytest.raises(ConfigError, match="visual_factors"):
        create("vbpr", {"visual_factors": "0"})


def test_needs_features(demo_dataset):
    with pytest.raises(ConfigError, match="features"):
        fit_model(create("vbpr", SMALL), demo_dataset)


@pytest.mark.slow
@pytest.mark.parametrize("source", ["truth", "images"])
def test_beats_random_and_popular_on_taste_demo(taste, source):
    folder, dataset = taste
    features = (
        truth_features(folder, dataset) if source == "truth" else image_features(folder, dataset)
    )
    config = {
        "factors": 8,
        "visual_factors": 8,
        "lr": 1e-2,
        "batch_size": 256,
        "epochs": 12,
        "device": "cpu",
    }
    model = fit_model(create("vbpr", config), dataset, features)

    def auc(m):
        return evaluate(m.score, dataset, split="validation").means["AUC"]

    baseline = max(auc(create("random").fit(dataset)), auc(create("pop").fit(dataset)))
    assert auc(model) > baseline + 0.15

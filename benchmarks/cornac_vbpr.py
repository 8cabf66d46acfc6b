"""Peer comparison: Cornac's VBPR trained on visrec's exact split and features, scored by visrec's engine.

Run it with a Python that has Cornac (a separate venv; see docs/benchmarks.md for how it was made here):

    /tmp/cornac-venv/bin/python benchmarks/cornac_vbpr.py [--k 10 --k2 10 --epochs 50 ...]

1. builds the dataset of ``benchmarks/movielens_posters.toml`` (same split, same validation basket);
2. gives Cornac the train interactions only and the same EfficientNet-Lite0 pooled features (aligned to the
   item vocabulary, missing posters mean-filled exactly as visrec's VBPR sees them);
3. trains ``cornac.models.VBPR`` (its own BPR loop, Adam, L2 terms) and times it;
4. scores every (user, item) from Cornac's learned parameters with Cornac's own formula
   x_ui = beta_i + beta'.f_i + gamma_u.gamma_i + theta_u.(E^T f_i); Cornac knows only items seen in
   training, so an item absent from train gets beta_i = 0 and gamma_i = 0 (its visual terms still apply);
   scores of known items are checked against ``model.score`` (Cornac's API);
5. evaluates with visrec's engine (full ranking, validation and test), bootstrap CIs, and a paired
   Wilcoxon test against visrec's VBPR run from the benchmark (if present).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # the Cornac venv does not have visrec installed

from visrec._io import write_json  # noqa: E402
from visrec.benchmark import load_config  # noqa: E402
from visrec.benchmark.report import METRICS  # noqa: E402
from visrec.evaluation import evaluate  # noqa: E402
from visrec.evaluation.stats import bootstrap_ci, paired_tests  # noqa: E402
from visrec.features import FeatureStore  # noqa: E402


def cornac_train_set(dataset, features: np.ndarray):
    import cornac
    from cornac.data import ImageModality

    coo = dataset.train.tocoo()
    users = dataset.users.ids_of(coo.row)
    items = dataset.items.ids_of(coo.col)
    triples = list(zip(users.tolist(), items.tolist(), [1.0] * len(users), strict=True))
    train = cornac.data.Dataset.from_uir(triples, seed=0)
    image = ImageModality(features=features, ids=dataset.items.ids.tolist(), normalized=False)
    image.build(id_map=train.iid_map)
    train.add_modalities(item_image=image)
    return train


def make_scorer(model, train, dataset, features: np.ndarray):
    """visrec scorer (user idx -> (B, n_items)) from Cornac's learned VBPR parameters."""
    item_map = np.array([train.iid_map.get(i, -1) for i in dataset.items.ids.tolist()])
    user_map = np.array([train.uid_map.get(u, -1) for u in dataset.users.ids.tolist()])
    known = item_map >= 0
    beta = np.zeros(dataset.n_items)
    beta[known] = model.beta_item[item_map[known]]
    gamma_i = np.zeros((dataset.n_items, model.k), dtype=np.float32)
    gamma_i[known] = model.gamma_item[item_map[known]]
    theta_i = features @ model.emb_matrix  # (n_items, k2): E^T f_i for every item
    static = beta + (features @ model.beta_prime).ravel()

    def score(users: torch.Tensor) -> torch.Tensor:
        u = user_map[users.numpy()]
        if (u < 0).any():
            raise ValueError("a user without train interactions reached the scorer")
        out = static[None, :] + model.gamma_user[u] @ gamma_i.T + model.theta_user[u] @ theta_i.T
        return torch.from_numpy(out.astype(np.float64))

    # Cornac's own API agrees on the items it knows
    probe = np.flatnonzero(user_map >= 0)[:5]
    mine = score(torch.from_numpy(probe)).numpy()[:, known]
    theirs = np.stack([model.score(int(user_map[p])) for p in probe])[:, item_map[known]]
    np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-4)
    return score


def summary_of(result) -> dict:
    values = result.per_user[list(METRICS)].to_numpy(dtype=np.float64)
    ci = bootstrap_ci(values, n_boot=1000, seed=0)
    return {
        "means": {m: result.means[m] for m in METRICS},
        "ci95": {m: [float(ci[j, 0]), float(ci[j, 1])] for j, m in enumerate(METRICS)},
        "n_users": result.n_users,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", type=Path, default=ROOT / "benchmarks" / "movielens_posters.toml"
    )
    parser.add_argument("--features", default="effnet", help="name in the TOML's [features]")
    parser.add_argument("--ours", type=Path, default=ROOT / ".bench" / "movielens" / "out")
    parser.add_argument("--out", type=Path, default=ROOT / ".bench" / "movielens" / "cornac")
    # Cornac's VBPR example (examples/vbpr_tradesy.py) settings
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--k2", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--lambda-w", type=float, default=1.0)
    parser.add_argument("--lambda-b", type=float, default=0.01)
    parser.add_argument("--lambda-e", type=float, default=0.0)
    parser.add_argument(
        "--compare-only",
        action="store_true",
        help="reuse the stored Cornac result; redo the comparison",
    )
    args = parser.parse_args()
    if args.compare_only:
        compare_stored(args)
        return

    import cornac
    from cornac.models import VBPR

    config = load_config(args.config)
    dataset = config.data.build()
    store = FeatureStore.open(config.features[args.features])
    features, missing = store.aligned(dataset.items, missing="mean")
    features = np.ascontiguousarray(features, dtype=np.float32)
    train = cornac_train_set(dataset, features)
    print(f"{dataset.summary()}; Cornac knows {train.num_items} items, {train.num_users} users")
    model = VBPR(
        k=args.k, k2=args.k2, n_epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.lr, lambda_w=args.lambda_w, lambda_b=args.lambda_b,
        lambda_e=args.lambda_e, use_gpu=False, seed=0, verbose=False,
    )  # fmt: skip
    began = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - began
    scorer = make_scorer(model, train, dataset, features)
    val = evaluate(scorer, dataset, split="validation")
    test = evaluate(scorer, dataset, split="test")
    out = {
        "cornac_version": cornac.__version__,
        "settings": vars(args) | {"config": str(args.config), "ours": str(args.ours)},
        "train_seconds": round(seconds, 1),
        "validation_AUC": val.means["AUC"],
        "test": summary_of(test),
        "missing_features": int(len(missing)),
    }
    out |= compare_with_ours(args.ours, test)
    args.out.mkdir(parents=True, exist_ok=True)
    test.to_csv(args.out / "test-full.csv")
    write_json(args.out / "cornac_vbpr.json", out)
    print(json.dumps({k: v for k, v in out.items() if k != "settings"}, indent=1))


def compare_stored(args) -> None:
    """Refresh the comparison with visrec's VBPR (e.g. after the benchmark finished) without retraining."""

    path = args.out / "cornac_vbpr.json"
    out = json.loads(path.read_text())
    import pandas as pd

    per_user = pd.read_csv(args.out / "test-full.csv", dtype={"user_id": str})
    test = type("Stored", (), {"per_user": per_user})()
    out |= compare_with_ours(args.ours, test)
    write_json(path, out)
    print(json.dumps({k: v for k, v in out.items() if k != "settings"}, indent=1))


def compare_with_ours(ours_dir: Path, test) -> dict:
    """Every VBPR row of our benchmark output, and paired tests (ours vs Cornac) on per-user values."""
    results = ours_dir / "results.json"
    if not results.is_file():
        return {}
    import pandas as pd

    summary = json.loads(results.read_text())
    out = {}
    for ours in summary["models"]:
        if ours["model"] != "vbpr" or ours["status"] != "ok":
            continue
        table = pd.read_csv(
            Path(ours["run_dir"]) / "eval" / "test-full.csv", dtype={"user_id": str}
        )
        joined = table.merge(test.per_user, on="user_idx", suffixes=("_ours", "_cornac"))
        tests = {
            m: paired_tests(
                joined[f"{m}_ours"].to_numpy(), joined[f"{m}_cornac"].to_numpy()
            ).__dict__
            for m in METRICS
        }
        keep = ("means", "ci95", "train_seconds", "options", "validation")
        out[ours["name"]] = {k: ours[k] for k in keep} | {"vs_cornac": tests}
    return {"visrec_vbpr": out}


if __name__ == "__main__":
    main()

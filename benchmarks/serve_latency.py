"""Latency of the viewer's ``/api/users/{id}/recommendations`` endpoint, exact scoring vs the faiss index.

The real app (``visrec.viewer.app.create_app``) runs under uvicorn on 127.0.0.1 in a background thread;
an ``httpx`` client with keep-alive sends sequential requests for random users (after a warm-up) and
the wall time of each request is recorded (network stack, routing, JSON included).

(a) the demo run: a BPR model trained on the demo data (500 users x 600 items by default);
(b) a synthetic catalogue of ``--items`` (default 1,000,000) items: a BPR-MF model whose 64-d factors are
    random but structured like trained ones (items around 1,000 taste centres, norms and biases spread
    as popularity), each user with 20 consumed items; served exactly (torch matmul + top-k over every
    item, consumed masked) and through the index. Recall@20 of the index vs exact scoring is measured
    on ``--recall-users`` users, consumed items excluded.

    .venv/bin/python benchmarks/serve_latency.py [--requests 1000] [--items 1000000] [--only demo|big]
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import scipy.sparse as sp
import torch
import uvicorn

from visrec.cli import main as visrec_main
from visrec.data import Vocabulary
from visrec.data.demo import DemoSpec, generate_demo
from visrec.models import create
from visrec.models.bpr import BPRModule
from visrec.serving.index import IndexedModel, IndexParams
from visrec.viewer.app import create_app
from visrec.viewer.state import ViewerState


def serve(state: ViewerState) -> tuple[uvicorn.Server, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def latency(state: ViewerState, users: list[str], n: int, k: int = 20, run: int = 0) -> dict:
    server, url = serve(state)
    rng = np.random.default_rng(0)
    times = []
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            for i in range(n + 20):
                user = users[rng.integers(len(users))]
                began = time.perf_counter()
                r = client.get(f"/api/users/{user}/recommendations", params={"k": k, "run": run})
                elapsed = time.perf_counter() - began
                r.raise_for_status()
                assert len(r.json()["items"]) == k
                if i >= 20:  # warm-up excluded
                    times.append(elapsed * 1000)
    finally:
        server.should_exit = True
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99))}


def report(label: str, stats: dict) -> None:
    print(f"{label:<58} p50 {stats['p50']:8.2f} ms   p99 {stats['p99']:8.2f} ms", flush=True)


def demo_section(n_requests: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="visrec-serve-"))
    generate_demo(root / "demo", DemoSpec(n_users=500, n_items=600, image_size=32, seed=0))
    opts = ["--set", "epochs=3", "--set", "device=cpu"]
    assert (
        visrec_main(["train", "bpr", "--data", str(root / "demo"), "-o", str(root / "bpr"), *opts])
        == 0
    )
    for kind in ("exact", "faiss"):
        state = ViewerState.open(
            [root / "bpr"], root / "demo" / "images", root / "thumbs", index=kind
        )
        users = state.dataset.users.ids.tolist()
        report(
            f"(a) demo BPR, {state.dataset.n_items} items, {kind}",
            latency(state, users, n_requests),
        )


def synthetic_model(n_users: int, n_items: int, dim: int, seed: int = 0):
    """A fitted BPR object with structured random factors, and its train matrix (20 items per user)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(1000, dim, generator=g)
    items = centres[torch.randint(0, 1000, (n_items,), generator=g)]
    items = (items + 0.7 * torch.randn(n_items, dim, generator=g)) * 0.1
    items *= torch.empty(n_items, 1).log_normal_(0, 0.3, generator=g)  # unequal norms: true MIPS
    users = 0.1 * (
        centres[torch.randint(0, 1000, (n_users,), generator=g)]
        + torch.randn(n_users, dim, generator=g)
    )
    model = create("bpr", {"factors": dim, "device": "cpu"})
    model.module = BPRModule(n_users, n_items, dim)
    with torch.no_grad():
        model.module.user.weight.copy_(users)
        model.module.item.weight.copy_(items)
        model.module.item_bias.weight.copy_(0.05 * torch.randn(n_items, 1, generator=g))
    model.module.eval()
    model.users = Vocabulary([f"u{i}" for i in range(n_users)], name="user")
    model.items = Vocabulary([f"i{i}" for i in range(n_items)], name="item")
    rng = np.random.default_rng(seed)
    cols = rng.integers(0, n_items, size=(n_users, 20))
    train = sp.csr_matrix(
        (np.ones(cols.size, np.float32), cols.ravel(), np.arange(0, cols.size + 1, 20)),
        shape=(n_users, n_items),
    )
    train.sum_duplicates()
    return model, train


def recall(model, indexed: IndexedModel, train, users: np.ndarray, k: int = 20) -> float:
    from visrec.serving import recommend_users

    dataset = SimpleNamespace(train=train)
    exact = []
    for start in range(0, len(users), 50):  # 50 x 1M scores at a time
        exact += recommend_users(model, dataset, users[start : start + 50], k)
    fast = indexed.recommend_users(dataset, users, k)
    return float(
        np.mean([len(set(e.items) & set(f.items)) / k for e, f in zip(exact, fast, strict=True)])
    )


def big_section(n_requests: int, n_items: int, n_recall: int, params: IndexParams) -> None:
    n_users = 10_000
    began = time.perf_counter()
    model, train = synthetic_model(n_users, n_items, 64)
    print(
        f"(b) synthetic BPR: {n_users} users x {n_items} items, 64-d ({time.perf_counter() - began:.1f} s)"
    )
    dataset = SimpleNamespace(
        train=train,
        test=sp.csr_matrix((n_users, n_items), dtype=np.float32),
        users=model.users,
        items=model.items,
        n_users=n_users,
        n_items=n_items,
    )
    run = SimpleNamespace(model=model, dataset=dataset, meta={"model": "bpr (synthetic)"})
    began = time.perf_counter()
    indexed = IndexedModel(model, params)
    print(
        f"    index {indexed.index.kind} built in {time.perf_counter() - began:.1f} s", flush=True
    )
    users = model.users.ids[:n_users].tolist()
    with tempfile.TemporaryDirectory() as tmp:
        exact_state = ViewerState([run], Path(tmp), Path(tmp))
        report(f"(b) {n_items:,} items, exact torch", latency(exact_state, users, n_requests))
        faiss_state = ViewerState([run], Path(tmp), Path(tmp), indexed={0: indexed})
        report(
            f"(b) {n_items:,} items, faiss {indexed.index.kind}",
            latency(faiss_state, users, n_requests),
        )
    sample = np.random.default_rng(1).choice(n_users, n_recall, replace=False)
    print(
        f"    recall@20 of the index vs exact ({n_recall} users): {recall(model, indexed, train, sample):.4f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--recall-users", type=int, default=500)
    ap.add_argument("--nprobe", type=int, default=None, help="IVF cells scanned [nlist / 8].")
    ap.add_argument("--only", choices=["demo", "big"])
    args = ap.parse_args()
    print(f"torch threads {torch.get_num_threads()}, {args.requests} requests per setting")
    if args.only != "big":
        demo_section(args.requests)
    if args.only != "demo":
        big_section(args.requests, args.items, args.recall_users, IndexParams(nprobe=args.nprobe))


if __name__ == "__main__":
    main()

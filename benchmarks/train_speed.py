"""Training speed: the tutorial's way vs visrec, on synthetic data shaped like the tutorial's Wikimedia
set (1,079 users, 9,636 items, 96,991 interactions, 2048-d features).

Sections (run all, or some with ``--only a,b``):
  sampling  (a) 5,000,000 (user, positive, negative) triplets: a Python loop per triplet with a duplicate
            hash, then the CSV the tutorial writes, vs ``visrec.sampling.uniform_triplets``;
  vbpr      (b) VBPR training triplets/s at the tutorial's settings (batch 42,000, latent 200, visual 100,
            Adam lr 1e-3, weight decay 1e-4): triplets read back from CSV through a torch
            Dataset/DataLoader into a module that projects features once per triplet, vs visrec's Trainer;
  steps     (f) VBPR's per-step cost at batches 100-1,024, optimizer=adam vs sparse_adam, alternating
            (benchmarks/train_speed_steps.py; ``--profile`` adds torch.profiler tables); ``compile`` (g),
            ``differences`` (h) and ``backward`` (i): A/B of one step choice each, same module;
  dvbpr     (e) DVBPR: images/s of the image input (JPEG decoded at each use vs the pixel cache) and
            through CNN-F, forward + backward, at 224 px and at the demo's 64 px (CUDA fp32 and bf16
            autocast too when a GPU is present);
  (c) CuratorNet / DVBPR / ACF sections: add a ``section_<name>(bench) -> None`` function below and one
      entry in ``SECTIONS`` (``bench`` gives the shared data, the args and ``report``).

Usage: ``python benchmarks/train_speed.py [--only sampling,vbpr] [--quick]`` (numbers are printed).
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from train_speed_dvbpr import section_dvbpr  # benchmarks/ is on sys.path
from train_speed_steps import (
    section_backward,
    section_compile,
    section_differences,
    section_steps,
)

from visrec.data import Dataset, SplitSpec
from visrec.data.interactions import Interactions
from visrec.sampling import uniform_triplets

N_USERS, N_ITEMS, N_INTERACTIONS, N_FEATURES = 1_079, 9_636, 96_991, 2_048
TUTORIAL_BATCH = 42_000


# --- shared data -------------------------------------------------------------------------------------
def wikimedia_like(seed: int = 0) -> pd.DataFrame:
    """Interactions with the Wikimedia set's counts: log-normal user activity, Pareto item popularity."""
    rng = np.random.default_rng(seed)
    activity = np.exp(rng.normal(np.log(40.0), 1.0, N_USERS))
    sizes = np.maximum(1, np.floor(activity / activity.sum() * N_INTERACTIONS)).astype(np.int64)
    sizes = np.minimum(sizes, N_ITEMS // 2)
    sizes[np.argmax(sizes)] += N_INTERACTIONS - sizes.sum()  # exact total
    popularity = rng.pareto(1.2, N_ITEMS) + 1.0
    p = popularity / popularity.sum()
    users, items, times = [], [], []
    for u, size in enumerate(sizes):
        chosen = rng.choice(N_ITEMS, size=size, replace=False, p=p)
        users.append(np.full(size, u))
        items.append(chosen)
        times.append(np.sort(rng.integers(1_500_000_000, 1_600_000_000, size)))
    return pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in np.concatenate(users)],
            "item_id": [f"i{i}" for i in np.concatenate(items)],
            "timestamp": np.concatenate(times),
        }
    )


class Bench:
    """Arguments, lazily built data shared by the sections, and the printed report."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="visrec-train-speed-"))

    @cached_property
    def dataset(self) -> Dataset:
        frame = wikimedia_like(self.args.seed)
        extra = [f"i{i}" for i in range(N_ITEMS)]
        return Dataset.build(Interactions.from_frame(frame), SplitSpec(), extra_item_ids=extra)

    @cached_property
    def features(self) -> np.ndarray:
        """Non-negative, ResNet-pooled-like features (n_items, 2048), aligned to the item vocabulary."""
        rng = np.random.default_rng(self.args.seed + 1)
        return rng.gamma(0.5, 1.0, (self.dataset.n_items, N_FEATURES)).astype(np.float32)

    @staticmethod
    def report(
        what: str, reference: float, visrec: float, unit: str, higher_is_better: bool
    ) -> None:
        ratio = visrec / reference if higher_is_better else reference / visrec
        print(
            f"{what:<42} reference {reference:>12,.1f} {unit:<11} visrec {visrec:>12,.1f} "
            f"{unit:<11} ratio {ratio:,.1f}x",
            flush=True,
        )


# --- (a) sampling -------------------------------------------------------------------------------------
def reference_sampling(
    train_pairs: list[tuple[int, int]], user_items: list[set[int]], n_items: int, n: int, seed: int
) -> list[tuple[int, int, int]]:
    """The tutorial's way: one Python iteration per triplet, a hand-made hash to skip duplicates."""
    rnd = random.Random(seed)
    seen: set[int] = set()
    triplets = []
    while len(triplets) < n:
        u, i = train_pairs[rnd.randrange(len(train_pairs))]
        j = rnd.randrange(n_items)
        while j in user_items[u]:
            j = rnd.randrange(n_items)
        key = (u * n_items + i) * n_items + j
        if key in seen:
            continue
        seen.add(key)
        triplets.append((u, i, j))
    return triplets


def write_triplets_csv(triplets, path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user", "pos", "neg"])
        writer.writerows(triplets)


def section_sampling(bench: Bench) -> None:
    ds, n = bench.dataset, bench.args.triplets
    users = np.repeat(np.arange(ds.n_users), np.diff(ds.train.indptr))
    pairs = list(zip(users.tolist(), ds.train.indices.tolist(), strict=True))
    user_items = [
        set(ds.train.indices[ds.train.indptr[u] : ds.train.indptr[u + 1]].tolist())
        for u in range(ds.n_users)
    ]
    began, cpu = time.perf_counter(), time.process_time()
    triplets = reference_sampling(pairs, user_items, ds.n_items, n, bench.args.seed)
    loop_s, loop_cpu = time.perf_counter() - began, time.process_time() - cpu
    write_triplets_csv(triplets, bench.tmp / "triplets.csv")
    total_s, total_cpu = time.perf_counter() - began, time.process_time() - cpu
    del triplets
    began, cpu = time.perf_counter(), time.process_time()
    uniform_triplets(ds, n, np.random.default_rng(bench.args.seed))
    visrec_s, visrec_cpu = time.perf_counter() - began, time.process_time() - cpu
    print(
        f"(a) sampling {n:,} triplets: reference loop {loop_s:.1f} s + CSV {total_s - loop_s:.1f} s; "
        f"visrec uniform_triplets {visrec_s:.2f} s"
    )
    bench.report("(a) sampling, loop only", loop_s, visrec_s, "s", higher_is_better=False)
    bench.report("(a) sampling, loop + CSV", total_s, visrec_s, "s", higher_is_better=False)
    bench.report("(a) sampling, loop only (CPU s)", loop_cpu, visrec_cpu, "s", False)
    bench.report("(a) sampling, loop + CSV (CPU s)", total_cpu, visrec_cpu, "s", False)


# --- (b) VBPR training --------------------------------------------------------------------------------
class CsvTriplets(torch.utils.data.Dataset):
    """The tutorial's dataset class: triplets read back from CSV, one (u, i, j) per __getitem__."""

    def __init__(self, path: Path):
        frame = pd.read_csv(path)
        self.users, self.pos, self.neg = (frame[c].to_numpy() for c in ("user", "pos", "neg"))

    def __len__(self) -> int:
        return len(self.users)

    def __getitem__(self, idx):
        return self.users[idx], self.pos[idx], self.neg[idx]


class TutorialVBPR(nn.Module):
    """VBPR as the tutorial writes it: features indexed and projected once per triplet and item."""

    def __init__(self, n_users, n_items, features: torch.Tensor, factors=200, visual=100):
        super().__init__()
        self.features = features
        self.gamma_user, self.gamma_item = (
            nn.Embedding(n_users, factors),
            nn.Embedding(n_items, factors),
        )
        self.theta_user = nn.Embedding(n_users, visual)
        self.beta_item = nn.Embedding(n_items, 1)
        self.E = nn.Linear(features.shape[1], visual, bias=False)
        self.beta_prime = nn.Linear(features.shape[1], 1, bias=False)

    def score(self, u, i):
        f = self.features[i]
        return (
            self.beta_item(i).squeeze(-1)
            + (self.gamma_user(u) * self.gamma_item(i)).sum(-1)
            + (self.theta_user(u) * self.E(f)).sum(-1)
            + self.beta_prime(f).squeeze(-1)
        )

    def forward(self, u, i, j):
        return self.score(u, i) - self.score(u, j)


def reference_vbpr(bench: Bench, csv_path: Path) -> tuple[float, float, float]:
    """(seconds to read the CSV, triplets/s wall, triplets per CPU-second) of the training loop."""
    ds = bench.dataset
    began = time.perf_counter()
    triplets = CsvTriplets(csv_path)
    read_s = time.perf_counter() - began
    loader = torch.utils.data.DataLoader(triplets, batch_size=TUTORIAL_BATCH, shuffle=True)
    torch.manual_seed(bench.args.seed)
    model = TutorialVBPR(ds.n_users, ds.n_items, torch.from_numpy(bench.features))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    began, cpu, seen = time.perf_counter(), time.process_time(), 0
    for u, i, j in loader:
        loss = -nn.functional.logsigmoid(model(u, i, j)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += len(u)
    return read_s, seen / (time.perf_counter() - began), seen / (time.process_time() - cpu)


def visrec_vbpr(bench: Bench, n: int) -> tuple[float, float]:
    """(triplets/s wall of one Trainer epoch, sampling included; triplets per CPU-second from the
    start of fit to the last batch, setup and sampling included, validation excluded)."""
    from visrec.models import create
    from visrec.models.capabilities import TrainOptions
    from visrec.training import fit_model

    config = {
        "batch_size": TUTORIAL_BATCH,
        "triplets_per_epoch": n,
        "epochs": 1,
        "device": "cpu",
        "seed": bench.args.seed,
    }
    marks: list[float] = []
    cpu = time.process_time()
    model = fit_model(
        create("vbpr", config),
        bench.dataset,
        bench.features,
        TrainOptions(on_batch=lambda epoch, batch: marks.append(time.process_time())),
    )
    return float(model.history[0]["triplets_per_s"]), n / (marks[-1] - cpu)


def section_vbpr(bench: Bench) -> None:
    n = bench.args.train_triplets
    sample = uniform_triplets(bench.dataset, n, np.random.default_rng(bench.args.seed))
    csv_path = bench.tmp / "vbpr_triplets.csv"
    rows = zip(sample["users"], sample["pos"], sample["neg"][:, 0], strict=True)
    write_triplets_csv(rows, csv_path)
    read_s, reference, reference_cpu = reference_vbpr(bench, csv_path)
    visrec, visrec_cpu = visrec_vbpr(bench, n)
    print(
        f"(b) VBPR, {n:,} triplets in batches of {TUTORIAL_BATCH:,} (reference CSV read "
        f"{read_s:.1f} s, not counted), {torch.get_num_threads()} torch threads"
    )
    bench.report("(b) VBPR training (wall clock)", reference, visrec, "triplets/s", True)
    bench.report(
        "(b) VBPR training (per CPU-second)", reference_cpu, visrec_cpu, "triplets/s", True
    )


# --- (c) CuratorNet training --------------------------------------------------------------------------
CURATORNET_BATCH = 1_024


class CsvProfileTriplets(torch.utils.data.Dataset):
    """The tutorial's way for CuratorNet: (profile, positive, negative) rows read back from CSV, one
    variable-length profile tensor built per sample."""

    def __init__(self, path: Path):
        frame = pd.read_csv(path)
        self.profiles = frame["profile"].to_numpy()
        self.pos, self.neg = frame["pos"].to_numpy(), frame["neg"].to_numpy()

    def __len__(self) -> int:
        return len(self.pos)

    def __getitem__(self, idx):
        profile = torch.tensor([int(x) for x in self.profiles[idx].split(";")])
        return profile, self.pos[idx], self.neg[idx]


def collate_profiles(rows):
    profiles, pos, neg = zip(*rows, strict=True)
    sizes = torch.tensor([len(p) for p in profiles])
    padded = nn.utils.rnn.pad_sequence(profiles, batch_first=True)
    return padded, sizes, torch.tensor(np.array(pos)), torch.tensor(np.array(neg))


def reference_curatornet_loss(net, features: torch.Tensor, batch) -> torch.Tensor:
    """Every profile item, positive and negative goes through the item tower once per triplet."""
    padded, sizes, pos, neg = batch
    mask = (torch.arange(padded.shape[1])[None, :] < sizes[:, None]).unsqueeze(-1)
    emb = net.item_tower(features[padded])  # (B, L, 200): nothing shared between triplets
    pooled_max = emb.masked_fill(~mask, float("-inf")).amax(1)
    pooled_mean = (emb * mask).sum(1) / sizes[:, None]
    user = net.user_tower(torch.cat([pooled_max, pooled_mean], 1))
    x_ui = (user * net.item_tower(features[pos])).sum(-1)
    x_uj = (user * net.item_tower(features[neg])).sum(-1)
    return -nn.functional.logsigmoid(x_ui - x_uj).mean()


def reference_curatornet(bench: Bench, csv_path: Path) -> float:
    """Triplets/s of the tutorial-style loop (same architecture as visrec's module)."""
    from visrec.models.curatornet import CuratorNetModule

    ds = bench.dataset
    loader = torch.utils.data.DataLoader(
        CsvProfileTriplets(csv_path),
        batch_size=CURATORNET_BATCH,
        shuffle=True,
        collate_fn=collate_profiles,
    )
    torch.manual_seed(bench.args.seed)
    net = CuratorNetModule(ds.n_users, ds.n_items, N_FEATURES, 200, 300, 10)
    features = torch.from_numpy(bench.features)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    began, seen = time.perf_counter(), 0
    for batch in loader:
        loss = reference_curatornet_loss(net, features, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += len(batch[2])
    return seen / (time.perf_counter() - began)


def visrec_curatornet(bench: Bench, n: int, sampling: str) -> float:
    """Triplets/s of one Trainer epoch (sampling included; k-means and validation excluded)."""
    from visrec.models import create
    from visrec.training import fit_model

    config = {
        "batch_size": CURATORNET_BATCH,
        "triplets_per_epoch": n,
        "epochs": 1,
        "device": "cpu",
        "seed": bench.args.seed,
        "sampling": sampling,
    }
    model = fit_model(create("curatornet", config), bench.dataset, bench.features)
    return float(model.history[0]["triplets_per_s"])


def section_curatornet(bench: Bench) -> None:
    from visrec.sampling import profile_triplets

    n = max(CURATORNET_BATCH, bench.args.train_triplets // 10)
    sample = profile_triplets(bench.dataset, n, np.random.default_rng(bench.args.seed))
    csv_path = bench.tmp / "curatornet_triplets.csv"
    profiles = [";".join(str(i) for i in row[row >= 0]) for row in sample["profile"]]
    pd.DataFrame({"profile": profiles, "pos": sample["pos"], "neg": sample["neg"][:, 0]}).to_csv(
        csv_path, index=False
    )
    reference = reference_curatornet(bench, csv_path)
    print(
        f"(c) CuratorNet, {n:,} triplets in batches of {CURATORNET_BATCH:,}, profiles of up to 10 "
        f"items, {torch.get_num_threads()} torch threads"
    )
    for sampling in ("profile", "guided"):
        visrec = visrec_curatornet(bench, n, sampling)
        bench.report(
            f"(c) CuratorNet training, {sampling} sampling",
            reference,
            visrec,
            "triplets/s",
            higher_is_better=True,
        )


# --- (d) ACF training ---------------------------------------------------------------------------------
ACF_BATCH, ACF_GRID = 256, 7


def acf_maps(bench: Bench) -> np.ndarray:
    """ResNet-layer4-like spatial maps (n_items, 7, 7, channels), float16, generated in chunks."""
    rng = np.random.default_rng(bench.args.seed + 2)
    shape = (bench.dataset.n_items, ACF_GRID, ACF_GRID, bench.args.acf_channels)
    maps = np.empty(shape, dtype=np.float16)
    for lo in range(0, shape[0], 512):
        maps[lo : lo + 512] = rng.gamma(0.5, 1.0, (min(512, shape[0] - lo), *shape[1:]))
    return maps


def reference_acf(bench: Bench, maps: np.ndarray, sample: dict[str, np.ndarray]) -> float:
    """Triplets/s of the same ACF maths done the straightforward way: every profile slot of every
    triplet gathers its float32 (regions x channels) map and reduces it (no sharing in the batch)."""
    from visrec.models.acf import ACFModule, masked_softmax

    class NaiveACF(ACFModule):
        def attend(self, u, profile):
            valid = profile >= 0
            idx = profile.clamp_min(0)
            regions = self.reduce(self.features[idx])  # (B, L, R, dim)
            hidden = torch.relu(self.comp_region(regions) + self.comp_user(u)[:, None, None, :])
            beta = masked_softmax(self.comp_out(hidden).squeeze(-1), valid[..., None])
            x_bar = (beta[..., None] * regions).sum(-2)
            ctx = self.context(idx)
            parts = torch.cat([self.item(idx), ctx, x_bar], dim=-1)
            hidden = torch.relu(self.item_parts(parts) + self.item_user(u)[:, None, :])
            alpha = masked_softmax(self.item_out(hidden).squeeze(-1), valid)
            return u + (alpha[..., None] * ctx).sum(1), beta, alpha

    ds = bench.dataset
    n, h, w, d = maps.shape
    torch.manual_seed(bench.args.seed)
    net = NaiveACF(ds.n_users, n, h * w, d, 128, 10, torch.float32)
    net.features = torch.from_numpy(maps.reshape(n, h * w, d).astype(np.float32))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5)
    began = time.perf_counter()
    for lo in range(0, len(sample["pos"]), ACF_BATCH):
        batch = {k: torch.from_numpy(v[lo : lo + ACF_BATCH]) for k, v in sample.items()}
        loss = -nn.functional.logsigmoid(torch.sub(*net(batch))).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return len(sample["pos"]) / (time.perf_counter() - began)


def section_acf(bench: Bench) -> None:
    from visrec.models import create
    from visrec.sampling import profile_triplets
    from visrec.training import fit_model

    n = bench.args.acf_triplets
    maps = acf_maps(bench)
    sample = profile_triplets(bench.dataset, n, np.random.default_rng(bench.args.seed))
    reference = reference_acf(bench, maps, sample)
    config = {
        "batch_size": ACF_BATCH,
        "triplets_per_epoch": n,
        "epochs": 1,
        "device": "cpu",
        "seed": bench.args.seed,
    }
    model = fit_model(create("acf", config), bench.dataset, maps)
    visrec = float(model.history[0]["triplets_per_s"])
    print(
        f"(d) ACF, {n:,} triplets in batches of {ACF_BATCH}, profiles of up to 10 items, maps "
        f"{ACF_GRID}x{ACF_GRID}x{maps.shape[-1]} (float16 buffer), dim 128, "
        f"{torch.get_num_threads()} torch threads"
    )
    bench.report("(d) ACF training", reference, visrec, "triplets/s", higher_is_better=True)


# --- (c) other models: add section_<name>(bench) functions and register them here -----------------
SECTIONS: dict[str, Callable[[Bench], None]] = {
    "sampling": section_sampling,
    "vbpr": section_vbpr,
    "curatornet": section_curatornet,
    "acf": section_acf,
    "dvbpr": section_dvbpr,
    "steps": section_steps,
    "compile": section_compile,
    "differences": section_differences,
    "backward": section_backward,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run, from: {', '.join(SECTIONS)}",
    )
    parser.add_argument("--triplets", type=int, default=5_000_000, help="(a) triplets to sample")
    parser.add_argument(
        "--train-triplets",
        type=int,
        default=10 * TUTORIAL_BATCH,
        help="(b, c) triplets per timed training run",
    )
    parser.add_argument("--acf-triplets", type=int, default=4_096, help="(d) ACF triplets")
    parser.add_argument("--acf-channels", type=int, default=2_048, help="(d) channels of ACF maps")
    parser.add_argument(
        "--step-batches",
        type=lambda s: [int(b) for b in s.split(",")],
        default=[100, 256, 1024],
        help="(f) batch sizes of the step timings",
    )
    parser.add_argument("--step-repeats", type=int, default=4, help="(f) A/B rounds per batch")
    parser.add_argument("--profile", action="store_true", help="(f) print torch.profiler tables")
    parser.add_argument("--quick", action="store_true", help="10x fewer triplets (a smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only.split(",")) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    if args.quick:
        args.triplets //= 10
        args.train_triplets = max(TUTORIAL_BATCH, args.train_triplets // 10)
        args.acf_triplets = max(ACF_BATCH, args.acf_triplets // 8)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    ds = bench.dataset
    print(
        f"data: {ds.n_users:,} users, {ds.n_items:,} items, {ds.n_train:,} train interactions, "
        f"{N_FEATURES}-d features; torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    for name in args.only.split(","):
        SECTIONS[name](bench)
    return 0


if __name__ == "__main__":
    sys.exit(main())

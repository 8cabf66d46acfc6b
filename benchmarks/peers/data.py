"""Identical generated data for both sides of the peer benchmark (Wikimedia shape by default).

``prepare(work, scale)`` writes, once per (scale, seed), under ``work``:

```
visrec-data/interactions.csv            user_id,item_id,timestamp (every item appears at least once)
features/                               the pooled 2048-d features as a visrec FeatureStore
tutorial/data/Wikimedia/                the same data in the tutorial's files:
  embedding-resnet50.npy                pickled object array of [file name, vector] (its format)
  wikimedia.csv                         user_id,item_id,timestamp,evaluation (ids; test basket = evaluation)
  naive-user-{train,validation}.csv     profile,pi,ni,ui (VBPR, ACF)
  naive-profile-{train,validation}.csv  profile,pi,ni,ui (CuratorNet)
  naive-user-evaluation.csv             user_id,predict,profile (the sampling notebook's columns)
jpegs-1600x1200/                        JPEGs for the extraction stages (``jpeg_folder``)
```

Indices agree on both sides: the tutorial's item index is visrec's item vocabulary index (the embedding
rows are written in that order), and its user index is visrec's user index. Triplets for the tutorial's
training files are drawn from visrec's train matrix (uniform positive among a user's train items, uniform
negative outside them); visrec samples its own afresh, the same number per epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

FULL = {"users": 1_079, "items": 9_636, "interactions": 96_991, "dim": 2_048}
MAX_PROFILE = 10
NEGATIVE_ROUNDS = 200
"""Rejection rounds for a negative before giving up with a clear error (a round rejects a row with the
probability that its user consumed the drawn item: a user with 90% of the items consumed leaves a row
unresolved after 200 rounds with probability 0.9^200 ~ 7e-10; one with every item, always)."""


def shape(scale: float) -> dict[str, int]:
    """The Wikimedia counts times ``scale`` (the feature width is kept)."""
    n = {k: max(20, round(v * scale)) for k, v in FULL.items() if k != "dim"}
    return {**n, "dim": FULL["dim"]}


def interactions(n: dict[str, int], seed: int) -> pd.DataFrame:
    """Log-normal user activity, Pareto item popularity; every item and user appears at least once."""
    rng = np.random.default_rng(seed)
    activity = np.exp(rng.normal(np.log(40.0), 1.0, n["users"]))
    popularity = rng.pareto(1.2, n["items"]) + 1.0
    users = np.concatenate([np.arange(n["users"]), rng.integers(0, n["users"], n["items"])])
    items = np.concatenate([rng.integers(0, n["items"], n["users"]), np.arange(n["items"])])
    rest = n["interactions"] - len(users)
    users = np.concatenate([users, rng.choice(n["users"], rest, p=activity / activity.sum())])
    items = np.concatenate([items, rng.choice(n["items"], rest, p=popularity / popularity.sum())])
    frame = pd.DataFrame({"u": users, "i": items})
    frame = frame.drop_duplicates().reset_index(drop=True)
    # baskets: a few events per user share a timestamp, as on Wikimedia
    frame["timestamp"] = 1_500_000_000 + rng.integers(0, 400, len(frame)) * 86_400
    return pd.DataFrame(
        {
            "user_id": "u" + frame["u"].astype(str),
            "item_id": "i" + frame["i"].astype(str),
            "timestamp": frame["timestamp"],
        }
    )


def prepare(work: Path, scale: float = 1.0, seed: int = 0, spatial: bool = False) -> dict:
    """Write every input of every stage (skipped when ``work`` already holds this scale and seed);
    ``spatial`` adds 7x7x2048 maps for ACF (float32: 0.4 MB per item on each side)."""
    work = Path(work)
    stamp = work / "prepared.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("scale_seed") == [scale, seed]:
        info = json.loads(stamp.read_text())
        if spatial and not info.get("spatial"):
            spatial_files(work, np.asarray(open_ids(work)), seed)
            info["spatial"] = True
            stamp.write_text(json.dumps(info))
        return info
    from visrec.data import open_dataset
    from visrec.data.split import SplitSpec
    from visrec.features import FeatureStore

    n = shape(scale)
    (work / "visrec-data").mkdir(parents=True, exist_ok=True)
    frame = interactions(n, seed)
    frame.to_csv(work / "visrec-data/interactions.csv", index=False)
    dataset = open_dataset(work / "visrec-data").build(SplitSpec())
    rng = np.random.default_rng(seed + 1)
    features = rng.gamma(0.5, 1.0, (dataset.n_items, n["dim"])).astype(np.float32)
    ids = np.asarray(dataset.items.ids)
    FeatureStore.write(work / "features", ids, features, {"backbone": "synthetic"}, overwrite=True)
    tutorial_files(work / "tutorial", dataset, ids, features, rng)
    if spatial:
        spatial_files(work, ids, seed)
    info = {"scale_seed": [scale, seed], **n, "n_train": int(dataset.n_train), "spatial": spatial}
    info["users"], info["items"] = int(dataset.n_users), int(dataset.n_items)
    info["interactions"] = len(frame)  # after dropping repeated (user, item) pairs
    stamp.write_text(json.dumps(info))
    return info


def sampling_quota(work: Path, requested: int) -> tuple[int, str | None]:
    """How many triplets the tutorial's sampling notebook can draw here without looping forever.

    The notebook draws ``ceil(T / users)`` distinct (user, positive, negative) triplets per user for
    training and ``ceil(T / 10 / users)`` more for validation, retrying duplicates with no working
    bound (its ``limit_iteration`` cap decrements a variable it never tests). A user with ``k`` train
    items has ``k * (items - k)`` distinct triplets; at a small ``--scale`` the quota can exceed that,
    and the notebook never returns. Returns ``(T, note)``: ``requested`` when every user's quota is at
    most three quarters of its distinct triplets (then the duplicate retries stay below ~1.4x the draws:
    the coupon collector's N ln 4), else the largest such ``T`` (within 10%) and a note.
    """
    from visrec.data import open_dataset
    from visrec.data.split import SplitSpec

    dataset = open_dataset(work / "visrec-data").build(SplitSpec())
    k = np.diff((dataset.train + dataset.targets("validation")).tocsr().indptr)
    k = k[k > 0]  # the notebook's users: those with train interactions
    users, distinct = len(k), int((k * (dataset.n_items - k)).min())

    def quota(t: int) -> int:
        return int(np.ceil(t / users) + np.ceil(max(1, t // 10) / users))

    if quota(requested) <= 0.75 * distinct:
        return requested, None
    t = requested
    while t > 1 and quota(t) > 0.75 * distinct:
        t = max(1, int(t * 0.9))
    note = (
        f"sampling: {requested:,} triplets asked, {t:,} used: the tutorial's notebook draws "
        f"{quota(requested):,} distinct triplets per user and the smallest user has only "
        f"{distinct:,} (it would retry forever)"
    )
    return t, note


def open_ids(work: Path) -> list[str]:
    return (work / "features" / "ids.txt").read_text(encoding="utf-8").splitlines()


def spatial_files(work: Path, ids: np.ndarray, seed: int) -> None:
    """ACF's inputs: the same maps as a visrec store (7, 7, 2048) and as the tutorial's layer4 file
    ((2048, 7, 7) per item, which its ACF permutes to channels last)."""
    from visrec.features import FeatureStore

    rng = np.random.default_rng(seed + 2)
    maps = rng.gamma(0.5, 1.0, (len(ids), 7, 7, FULL["dim"])).astype(np.float32)
    FeatureStore.write(
        work / "features-spatial", ids, maps, {"backbone": "synthetic"}, overwrite=True
    )
    rows = np.empty((len(ids), 2), dtype=object)
    rows[:, 0] = [f"{i}.jpg" for i in ids]
    rows[:, 1] = list(
        maps.transpose(0, 3, 1, 2)
    )  # channels first, as torchvision's layer4 gives them
    folder = work / "tutorial" / "data" / "Wikimedia"
    np.save(folder / "embedding-resnet50-layer4.npy", rows, allow_pickle=True)


def tutorial_files(root: Path, dataset, ids: np.ndarray, features: np.ndarray, rng) -> None:
    folder = root / "data" / "Wikimedia"
    folder.mkdir(parents=True, exist_ok=True)
    (root / "checkpoints").mkdir(exist_ok=True)
    rows = np.empty((len(ids), 2), dtype=object)
    rows[:, 0] = [f"{i}.jpg" for i in ids]
    rows[:, 1] = list(features)
    np.save(folder / "embedding-resnet50.npy", rows, allow_pickle=True)
    _interactions_csv(folder / "wikimedia.csv", dataset)
    n = dataset.n_train
    for name, count in (("train", n), ("validation", max(1, n // 10))):
        frame = triplets(dataset, count, rng)
        frame.to_csv(folder / f"naive-user-{name}.csv", index=False)
        frame.to_csv(folder / f"naive-profile-{name}.csv", index=False)
    _evaluation_csv(folder / "naive-user-evaluation.csv", dataset)


def triplets(dataset, count: int, rng: np.random.Generator) -> pd.DataFrame:
    """(profile, pi, ni, ui) rows as the tutorial's sampling notebook writes them: a uniform train
    interaction (its user, its item), the user's up-to-10 items up to and including it, a negative the
    user never consumed in train."""
    indptr, chrono = dataset.profile_indptr, dataset.profile_items
    picks = rng.integers(0, len(chrono), count)
    users = np.searchsorted(indptr, picks, side="right") - 1
    pos = chrono[picks]
    consumed = np.sort(
        np.repeat(np.arange(dataset.n_users), np.diff(indptr)) * dataset.n_items + chrono
    )
    neg = rng.integers(0, dataset.n_items, count)
    for _ in range(NEGATIVE_ROUNDS):
        keys = users * dataset.n_items + neg
        at = np.minimum(np.searchsorted(consumed, keys), len(consumed) - 1)
        bad = consumed[at] == keys
        if not bad.any():
            break
        neg[bad] = rng.integers(0, dataset.n_items, int(bad.sum()))
    else:
        raise SystemExit(
            f"no negative found in {NEGATIVE_ROUNDS} rounds for {int(bad.sum())} triplet(s): a user "
            "consumed (nearly) every item; use a larger --scale"
        )
    first = np.maximum(indptr[users], picks - MAX_PROFILE + 1)
    profiles = [
        " ".join(map(str, chrono[a : b + 1].tolist())) for a, b in zip(first, picks, strict=True)
    ]
    return pd.DataFrame({"profile": profiles, "pi": pos, "ni": neg, "ui": users})


def _interactions_csv(path: Path, dataset) -> None:
    train = dataset.train.tocoo()
    test = dataset.targets("test").tocoo()
    val = dataset.targets("validation").tocoo()
    parts = []
    for m, flag in ((train, False), (val, False), (test, True)):
        users, items = np.asarray(dataset.users.ids)[m.row], np.asarray(dataset.items.ids)[m.col]
        parts.append(pd.DataFrame({"user_id": users, "item_id": items, "evaluation": flag}))
    frame = pd.concat(parts, ignore_index=True)
    frame["timestamp"] = np.arange(len(frame))  # test rows last: the evaluation basket
    frame[["user_id", "item_id", "timestamp", "evaluation"]].to_csv(path, index=False)


def _evaluation_csv(path: Path, dataset) -> None:
    test = dataset.targets("test").tocsr()
    rows = []
    for u in range(dataset.n_users):
        truth = test.indices[test.indptr[u] : test.indptr[u + 1]]
        if len(truth):
            profile = dataset.profile(u)[-MAX_PROFILE:]
            rows.append((u, " ".join(map(str, truth.tolist())), " ".join(map(str, profile))))
    pd.DataFrame(rows, columns=["user_id", "predict", "profile"]).to_csv(path, index=False)


JPEGS = "jpegs-1600x1200"


def jpeg_folder(work: Path, n: int) -> Path:
    """``n`` generated 1600x1200 JPEGs (smooth random content plus fine noise, quality 90, ~650 KB
    each; ``benchmarks/extract_speed.py``'s generator) in ``work/jpegs-1600x1200``, both sides' input."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from extract_speed import make_images

    folder = Path(work) / JPEGS
    if folder.is_dir() and len(list(folder.iterdir())) != n:
        for old in folder.iterdir():
            old.unlink()
    return make_images(folder, n, (1600, 1200), seed=9)

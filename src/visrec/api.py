"""The Python API, as short as the CLI: ids in, ids out.

```python
import visrec

run = visrec.load_run("runs/vbpr")
run.recommend("u0042", k=10)              # DataFrame: rank, item_id, score (consumed items left out)
run.recommend_profile(["i0003", "i0017"])  # a new user given by items (profile-based models)
run.similar("i0007")                      # visually nearest items
run.evaluate(split="test", mode="full")   # EvalResult: .means, .per_user

visrec.Experiment(data="data", models=["pop", "bpr"]).run("bench-out").table
```

``visrec.load_run``, ``visrec.Experiment`` and ``visrec.LoadedRun`` are loaded on first use (``import
visrec`` stays light, so ``visrec --help`` answers at once).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from visrec.benchmark import Experiment, Results
from visrec.data.dataset import Dataset
from visrec.errors import ConfigError, DataError
from visrec.evaluation import evaluate as _evaluate
from visrec.evaluation.results import EvalResult
from visrec.features import FeatureStore
from visrec.models import Recommender
from visrec.models.capabilities import DotProduct, ScoresProfiles
from visrec.runs import Run, data_spec, train_run
from visrec.runs import load_run as _load_run
from visrec.runs.evaluate import check_scores_new_items
from visrec.serving import Recommendation, recommend_profile, recommend_users, similar_items

__all__ = ["Experiment", "LoadedRun", "Results", "load_run", "train"]


def load_run(path: str | Path) -> LoadedRun:
    """Open a finished run directory (made by ``visrec train`` or a benchmark)."""
    return LoadedRun(_load_run(path))


def train(
    model: str,
    data: str | Path,
    out: str | Path,
    *,
    features: str | Path | dict[str, str] | None = None,
    config: dict | None = None,
    force: bool = False,
    **split,
) -> LoadedRun:
    """``visrec train MODEL --data DATA -o OUT``: train into the run folder ``out`` and open it.

    ``features``: the feature store (or image folder for pixel models); ``config``: model options
    (``--set``); ``split``: keywords of :func:`visrec.runs.data_spec` (split, cutoff, min_user, ...)."""
    if isinstance(features, Path):
        features = str(features)
    train_run(model, data_spec(data, **split), out, config=config, features=features, force=force)
    return load_run(out)


class LoadedRun:
    """A trained run: its model, its dataset, and top-k / similar / evaluate by external ids."""

    def __init__(self, run: Run):
        self.run = run

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def model(self) -> Recommender:
        return self.run.model

    @property
    def dataset(self) -> Dataset:
        return self.run.dataset

    @property
    def meta(self) -> dict:
        """run.json: model name, config, data and feature paths, timings."""
        return self.run.meta

    def __repr__(self) -> str:
        return f"LoadedRun({self.meta.get('model')!r}, {str(self.path)!r})"

    def recommend(self, user_id: str, k: int = 10, *, show_consumed: bool = False) -> pd.DataFrame:
        """Top-``k`` items for a known user, best first. Items the user consumed anywhere in the data
        (train, validation, test) are left out unless ``show_consumed`` (then flagged)."""
        user_idx = self.model.users.index(str(user_id))
        rec = recommend_users(
            self.model, self.dataset, [user_idx], _k(k), exclude_consumed=not show_consumed
        )[0]
        return self._frame(rec)

    def recommend_profile(
        self, item_ids: list[str], k: int = 10, *, show_consumed: bool = False
    ) -> pd.DataFrame:
        """Top-``k`` for a new user given by the items they consumed (profile-based models: VisRank,
        CuratorNet, ACF, Pop); the profile's items are left out unless ``show_consumed``."""
        if isinstance(item_ids, str):
            raise ConfigError("give the profile as a list of item ids, e.g. ['i1', 'i2']")
        if not isinstance(self.model, ScoresProfiles):
            raise ConfigError(
                f"{self.meta.get('model')} cannot serve a new profile: use a profile-based "
                "model (visrank, curatornet, acf, pop)"
            )
        profile = self.model.items.indices([str(i) for i in item_ids])
        rec = recommend_profile(self.model, profile, _k(k), exclude_consumed=not show_consumed)
        return self._frame(rec)

    def similar(self, item_id: str, k: int = 10) -> pd.DataFrame:
        """The ``k`` items most cosine-similar to ``item_id``: by the run's feature store when it has
        one (VisRank-style), else by the model's item factors (dot-product models)."""
        item_idx = self.model.items.index(str(item_id))
        rec = similar_items(self._item_vectors(), item_idx, _k(k))
        return self._frame(rec, flags=False)

    def evaluate(self, split: str = "test", mode: str = "full", **options) -> EvalResult:
        """Evaluate on ``split`` (test / validation) in ``mode`` (full, tutorial, sampled, cold, mixed),
        in memory (``visrec evaluate`` stores it in the run folder); ``options`` go to
        :func:`visrec.evaluation.evaluate` (``ks``, ``metrics``, ``n_negatives``, ...)."""
        check_scores_new_items(self.run, (mode,))  # cold modes: n/a for BPR, Pop, Random
        scorer = self.model.scorer(self.dataset, split)  # profiles: the history before split
        return _evaluate(scorer, self.dataset, split=split, mode=mode, **options)

    def _item_vectors(self) -> np.ndarray:
        path = self.meta.get("features")
        reads_store = any(i.kind in ("pooled", "spatial") for i in self.model.inputs)
        if isinstance(path, str) and reads_store:  # (pixel models record their image folder)
            array, _ = FeatureStore.open(path).aligned(self.dataset.items, missing="zero")
            return np.asarray(array, dtype=np.float32)
        if isinstance(self.model, DotProduct):
            return np.asarray(self.model.dot_factors()[1], dtype=np.float32)
        raise DataError(
            f"{self.meta.get('model')} has no item vectors: the run was trained without a feature "
            "store and is not a dot-product model"
        )

    def _frame(self, rec: Recommendation, *, flags: bool = True) -> pd.DataFrame:
        rows = rec.to_rows(self.model.items.ids, flags=flags)
        columns = ["rank", "item_id", "score"] + (["consumed"] if flags else [])
        return pd.DataFrame(rows, columns=columns).set_index("rank")


def _k(k: int) -> int:
    if not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    return int(k)

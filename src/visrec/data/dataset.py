"""Dataset: the indexed, immutable view every model and the evaluation engine read.

Built from :class:`~visrec.data.interactions.Interactions` and a :class:`~visrec.data.split.SplitSpec`:
user and item vocabularies, the train matrix (users x items, CSR, binary), each user's chronological train
profile (with timestamps, so baskets are known), and the held-out targets of the test and validation
splits (CSR, one row per user). No test or validation (user, item) pair is in the train matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from visrec._lazy import LazyModule
from visrec.data.history import History, merge_history
from visrec.data.interactions import Interactions
from visrec.data.split import SplitSpec, split_interactions
from visrec.data.vocab import Vocabulary
from visrec.errors import DataError

pd = LazyModule("pandas")  # the cached-dataset path never needs pandas


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


def _csr(users: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    data = np.ones(len(users), dtype=np.float32)
    mat = sp.csr_matrix((data, (users, items)), shape=shape, dtype=np.float32)
    mat.sum_duplicates()
    mat.data[:] = 1.0
    mat.sort_indices()
    for arr in (mat.data, mat.indices, mat.indptr):
        _readonly(arr)
    return mat


def _csr_union(parts: list[sp.csr_matrix], shape: tuple[int, int]) -> sp.csr_matrix:
    coo = [p.tocoo() for p in parts]
    rows = np.concatenate([c.row for c in coo]).astype(np.int64)
    cols = np.concatenate([c.col for c in coo]).astype(np.int64)
    return _csr(rows, cols, shape)


@dataclass(frozen=True, eq=False)
class Dataset:
    """Indexed train/validation/test data. Immutable: arrays are read-only.

    ``profile_indptr``/``profile_items``/``profile_times`` hold each user's train items in chronological
    order (ties by item id): user ``u``'s profile is ``profile_items[profile_indptr[u]:profile_indptr[u+1]]``.
    ``item_groups`` (optional) is an integer attribute per item (-1 = none), e.g. CuratorNet's artist.
    """

    users: Vocabulary
    items: Vocabulary
    train: sp.csr_matrix
    profile_indptr: np.ndarray
    profile_items: np.ndarray
    profile_times: np.ndarray
    test: sp.csr_matrix
    validation: sp.csr_matrix
    split: SplitSpec = field(default_factory=SplitSpec)
    item_groups: np.ndarray | None = None
    group_names: tuple[str, ...] = ()
    name: str = "dataset"
    n_cold_test_rows_dropped: int = 0
    cold_test_items: np.ndarray | None = None
    cold_validation_items: np.ndarray | None = None

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_train(self) -> int:
        return int(self.train.nnz)

    def profile(self, user_idx: int) -> np.ndarray:
        """Chronological train item indices of one user."""
        return self.profile_items[self.profile_indptr[user_idx] : self.profile_indptr[user_idx + 1]]

    def profile_times_of(self, user_idx: int) -> np.ndarray:
        return self.profile_times[self.profile_indptr[user_idx] : self.profile_indptr[user_idx + 1]]

    @property
    def profile_sizes(self) -> np.ndarray:
        return np.diff(self.profile_indptr)

    def targets(self, split: str) -> sp.csr_matrix:
        """Held-out items per user for ``split`` in {'test', 'validation'} (no default on purpose)."""
        if split == "test":
            return self.test
        if split == "validation":
            return self.validation
        raise ValueError(f"split must be 'test' or 'validation', not {split!r}")

    def cold_items(self, split: str) -> np.ndarray:
        """Sorted indices of the new (cold) items whose interactions are ``split``'s targets.

        Only cold-item splits (``SplitSpec.is_cold``) have them; empty for the other splits. No cold item
        has a train interaction."""
        self.targets(split)  # checks the name
        found = self.cold_test_items if split == "test" else self.cold_validation_items
        return np.zeros(0, dtype=np.int64) if found is None else found

    def history(self, split: str) -> History:
        """What each user had consumed before ``split``'s targets (``'test'`` or ``'validation'``).

        ``validation``: the train profile; ``test``: the train profile followed by the validation targets.
        The one definition used by the evaluation engine (excluded candidates) and by the profile-based
        models (their profile at evaluation time); see :mod:`visrec.data.history`."""
        self.targets(split)  # checks the name
        if split == "validation" or self.validation.nnz == 0:
            return History(np.asarray(self.profile_indptr), np.asarray(self.profile_items))
        return merge_history(self.profile_indptr, self.profile_items, self.validation)

    @cached_property
    def consumed(self) -> sp.csr_matrix:
        """Every item each user interacted with in the data: train + validation + test (CSR, binary).

        Serving's one definition of "consumed" (``recommend``, ``grid``, the viewer and the JSON API
        exclude these by default). Evaluation keeps its own candidates (train only for validation, train +
        validation for test; see docs/evaluation.md)."""
        parts = [self.train, self.validation, self.test]
        return _csr_union(parts, self.train.shape)

    def consumed_history(self, user_idx: int) -> np.ndarray:
        """Everything ``user_idx`` consumed, oldest first: the train profile (chronological), then the
        validation basket, then the test basket (the latest)."""
        held_out = [self.validation[user_idx].indices, self.test[user_idx].indices]
        return np.concatenate([self.profile(user_idx), *held_out]).astype(np.int64)

    def item_popularity(self) -> np.ndarray:
        """Train interaction count per item (float64)."""
        return np.asarray(self.train.sum(axis=0)).ravel().astype(np.float64)

    def summary(self) -> str:
        text = (
            f"{self.name}: {self.n_users} users, {self.n_items} items, {self.n_train} train, "
            f"{self.validation.nnz} validation, {self.test.nnz} test interactions "
            f"({int((np.diff(self.test.indptr) > 0).sum())} test users)"
        )
        if self.split.is_cold:
            text += (
                f"; {len(self.cold_items('test'))} test and "
                f"{len(self.cold_items('validation'))} validation cold items"
            )
        return text

    @classmethod
    def build(
        cls,
        interactions: Interactions,
        split: SplitSpec | None = None,
        *,
        extra_item_ids: list[str] | np.ndarray | None = None,
        item_groups: dict[str, str] | pd.Series | None = None,
        name: str = "dataset",
    ) -> Dataset:
        """Index and split interactions.

        ``extra_item_ids`` adds catalogue items without interactions (e.g. images nobody consumed yet);
        ``item_groups`` maps item id -> group label (CuratorNet's "artist"-like attribute).
        """
        split = split or SplitSpec()
        parts = split_interactions(interactions.frame, split)
        if len(parts.train) == 0:
            raise DataError("no train interactions left after splitting", path=interactions.source)
        users = Vocabulary.from_unique(parts.train["user_id"].unique(), name="user")
        all_items = set(interactions.frame["item_id"].unique())
        if extra_item_ids is not None:
            all_items.update(str(i) for i in extra_item_ids)
        items = Vocabulary.from_unique(all_items, name="item")
        shape = (len(users), len(items))

        train = parts.train.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
        tu = users.indices(train["user_id"].to_numpy())
        ti = items.indices(train["item_id"].to_numpy())
        order = np.argsort(tu, kind="stable")
        indptr = np.zeros(len(users) + 1, dtype=np.int64)
        np.cumsum(np.bincount(tu, minlength=len(users)), out=indptr[1:])

        def targets(frame: pd.DataFrame) -> sp.csr_matrix:
            return _csr(
                users.indices(frame["user_id"].to_numpy()),
                items.indices(frame["item_id"].to_numpy()),
                shape,
            )

        groups, group_names = None, ()
        if item_groups is not None:
            series = pd.Series(item_groups, dtype=object).astype(str)
            group_names = tuple(sorted(series.unique()))
            codes = {g: k for k, g in enumerate(group_names)}
            groups = np.full(len(items), -1, dtype=np.int64)
            pos = items.indices(series.index.to_numpy(), missing="-1")
            known = pos >= 0
            groups[pos[known]] = [codes[g] for g in series.to_numpy()[known]]
            _readonly(groups)

        cold = {
            name: _readonly(np.sort(items.indices(ids)).astype(np.int64))
            for name, ids in parts.cold_items.items()
        }
        return cls(
            users=users,
            items=items,
            train=_csr(tu, ti, shape),
            profile_indptr=_readonly(indptr),
            profile_items=_readonly(ti[order].astype(np.int64)),
            profile_times=_readonly(train["timestamp"].to_numpy(dtype=np.int64)[order]),
            test=targets(parts.test),
            validation=targets(parts.validation),
            split=split,
            item_groups=groups,
            group_names=group_names,
            name=name,
            n_cold_test_rows_dropped=parts.n_cold_test_rows_dropped,
            cold_test_items=cold.get("test"),
            cold_validation_items=cold.get("validation"),
        )

"""Vocabulary: external string ids <-> contiguous integer indices, one per entity (users, items).

IDs are not indices: code names ``item_id(s)`` for external ids and ``item_idx`` for positions. Looking up
an unknown id raises a :class:`KeyError` that names it (or returns -1 where the caller asks for that).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from visrec._lazy import LazyModule

pd = LazyModule("pandas")  # the hash index is built on the first lookup by id


class Vocabulary:
    """An immutable, ordered set of string ids with O(1) lookups in both directions."""

    __slots__ = ("_ids", "_lookup", "name")

    def __init__(self, ids: Iterable[object], name: str = "id"):
        if isinstance(ids, np.ndarray) and ids.dtype.kind == "U":  # e.g. a cached vocabulary
            arr = ids.astype(object)  # Python str objects, in one C loop
        else:
            arr = np.asarray([str(i) for i in ids], dtype=object)
        if len(set(arr)) != len(arr):
            seen: set[str] = set()
            dupes = list(dict.fromkeys(i for i in arr if i in seen or seen.add(i)))[:5]
            raise ValueError(f"duplicate {name}s in vocabulary: {dupes}")
        arr.setflags(write=False)
        self._ids = arr
        self._lookup = None
        self.name = name

    @property
    def _index(self):
        """The id -> index hash table (a pandas Index), built on first use: opening a cached dataset and
        evaluating it only reads ids by index."""
        if self._lookup is None:
            self._lookup = pd.Index(self._ids)
        return self._lookup

    @classmethod
    def from_unique(cls, ids: Iterable[object], name: str = "id") -> Vocabulary:
        """Vocabulary of the distinct ids, sorted (deterministic whatever the input order)."""
        return cls(sorted({str(i) for i in ids}), name=name)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return str(item_id) in self._index

    def __iter__(self):
        return iter(self._ids)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and np.array_equal(self._ids, other._ids)

    def __hash__(self) -> int:
        return hash(tuple(self._ids))

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} {self.name}s)"

    @property
    def ids(self) -> np.ndarray:
        """The ids in index order (read-only object array of str)."""
        return self._ids

    def index(self, item_id: object) -> int:
        """Index of one id; raises KeyError naming the id when unknown."""
        pos = self._index.get_indexer([str(item_id)])[0]
        if pos < 0:
            raise KeyError(f"unknown {self.name} {item_id!r}")
        return int(pos)

    def indices(self, ids: Sequence[object], *, missing: str = "raise") -> np.ndarray:
        """Indices of many ids (int64). ``missing='raise'`` names the unknown ids; ``'-1'`` maps them to -1."""
        pos = self._index.get_indexer(pd.Index([str(i) for i in ids], dtype=object))
        if missing == "raise" and (pos < 0).any():
            unknown = [str(i) for i, p in zip(ids, pos, strict=True) if p < 0]
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise KeyError(f"unknown {self.name}s: {unknown[:5]}{more}")
        if missing not in ("raise", "-1"):
            raise ValueError("missing must be 'raise' or '-1'")
        return pos.astype(np.int64)

    def id(self, idx: int) -> str:
        """External id of one index."""
        if not 0 <= int(idx) < len(self._ids):
            raise IndexError(f"{self.name} index {idx} out of range [0, {len(self._ids)})")
        return str(self._ids[int(idx)])

    def ids_of(self, idx: Sequence[int] | np.ndarray) -> np.ndarray:
        """External ids of many indices."""
        return self._ids[np.asarray(idx, dtype=np.int64)]

"""The dot-product form of a model, stored beside its weights, for evaluation without torch.

BPR-MF, VBPR and DVBPR score every item as ``users @ items.T`` from per-user parameters
(:class:`~visrec.models.capabilities.DotProduct`; the profile-based models are not included: their user
vectors depend on the history each split shows them). :meth:`Recommender.save` writes those factors as
``factors-users.npy`` and ``factors-items.npy`` (float32) and records their SHA-256 in ``model.json``;
:func:`load_factors` reads them back, checked, and :class:`DotScorer` scores from them with NumPy, so
``visrec evaluate`` on such a run never imports torch.

The model's own evaluation scorer on the CPU is the same :class:`DotScorer` over the same float32 factors
(``DotProduct.scorer``): a run evaluated from its files and from the loaded model gives identical numbers.
This module imports NumPy only.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from visrec._io import read_json_object
from visrec.errors import DataError

FILES = {"users": "factors-users.npy", "items": "factors-items.npy"}
_RETRAIN = "train the run again (visrec train ... --force)"


class DotScorer:
    """Scores ``users[u] @ items.T`` of a block of users, in NumPy (float32): an evaluation scorer that
    takes NumPy user indices (``numpy_users``)."""

    numpy_users = True

    def __init__(self, users: np.ndarray, items: np.ndarray):
        users, items = np.asarray(users), np.asarray(items)
        if users.ndim != 2 or items.ndim != 2 or users.shape[1] != items.shape[1]:
            raise ValueError(
                f"dot-product factors must be (n_users, d) and (n_items, d), got "
                f"{users.shape} and {items.shape}"
            )
        self.users = np.ascontiguousarray(users, dtype=np.float32)
        self.items = np.ascontiguousarray(items, dtype=np.float32)

    def __call__(self, user_idx) -> np.ndarray:
        return self.users[np.asarray(user_idx, dtype=np.int64)] @ self.items.T


def write_factors(directory: str | Path, users: np.ndarray, items: np.ndarray) -> dict:
    """Write the factors into ``directory`` (a model folder being saved); the manifest for
    ``model.json``: ``{"users": {"file", "sha256", "shape"}, "items": {...}}``."""
    manifest = {}
    for name, array in (("users", users), ("items", items)):
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
        data = buffer.getvalue()
        (Path(directory) / FILES[name]).write_bytes(data)
        manifest[name] = {
            "file": FILES[name],
            "sha256": hashlib.sha256(data).hexdigest(),
            "shape": list(np.shape(array)),
        }
    return manifest


def saved_meta(directory: str | Path) -> dict:
    """``model.json`` of a saved model (read with clear errors)."""
    path = Path(directory) / "model.json"
    if not path.is_file():
        raise DataError("not a saved model (no model.json)", path=directory)
    return read_json_object(path, what="saved model metadata", fix=_RETRAIN)


def load_factors(directory: str | Path, meta: dict | None = None) -> DotScorer | None:
    """The :class:`DotScorer` of a saved model, from its exported factors; ``None`` when the model has
    none (a profile-based model, or saved before the export existed). A file that does not match its
    recorded checksum or shape raises :class:`DataError` naming it."""
    directory = Path(directory)
    meta = saved_meta(directory) if meta is None else meta
    manifest = meta.get("factors")
    if manifest is None:
        return None
    arrays = {}
    try:
        for name in ("users", "items"):
            entry = manifest[name]
            path = directory / FILES[name]
            arrays[name] = _read_checked(path, str(entry["sha256"]), tuple(entry["shape"]))
        n_users, n_items = len(meta["users"]), len(meta["items"])
    except (KeyError, TypeError) as exc:
        raise DataError(
            f"damaged saved model (factors: {exc!r}); {_RETRAIN}", path=directory / "model.json"
        ) from None
    if len(arrays["users"]) != n_users or len(arrays["items"]) != n_items:
        raise DataError(
            f"the exported factors do not fit the model's {n_users} users and {n_items} items; "
            f"{_RETRAIN}",
            path=directory,
        )
    try:
        return DotScorer(arrays["users"], arrays["items"])
    except ValueError as exc:
        raise DataError(f"{exc}; {_RETRAIN}", path=directory) from None


def _read_checked(path: Path, sha256: str, shape: tuple) -> np.ndarray:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"missing exported factors; {_RETRAIN}", path=path) from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise DataError(
            f"the file changed since the model was saved (SHA-256 differs); {_RETRAIN}", path=path
        )
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"unreadable exported factors ({exc}); {_RETRAIN}", path=path) from None
    if array.dtype != np.float32 or array.shape != shape or array.ndim != 2:
        raise DataError(
            f"exported factors of shape {array.shape} ({array.dtype}), expected {shape} float32; "
            f"{_RETRAIN}",
            path=path,
        )
    return array

"""The IUI 2021 tutorial's feature files: import (explicit opt-in) and export (interoperability).

The tutorial's notebooks save ``embedding-<backbone>.npy`` as a NumPy *object* array of ``[id, vector]``
rows, which NumPy can only read by unpickling. Unpickling an untrusted file can run arbitrary code, so:

- :func:`import_legacy` refuses unless ``allow_pickle=True`` (CLI ``--allow-pickle``);
- even then, the pickle is read by a restricted unpickler that resolves only the few NumPy names an
  array of arrays needs (``ndarray``, ``dtype``, ``_reconstruct``, ``scalar``). A file that asks for
  anything else (``os.system``, ``builtins.eval`` ...) is rejected before any of it runs.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from visrec._io import atomic_path
from visrec.errors import DataError
from visrec.features.store import FeatureStore

_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "scalar"),
}
PICKLE_REFUSED = (
    "is a pickled object array (the tutorial's embedding-*.npy format); reading pickles can execute "
    "code, so it is refused by default. If you trust the file, import it once with --allow-pickle "
    "(allow_pickle=True) into a safe feature store"
)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a feature file")
        return super().find_class(module, name)


def read_legacy(
    path: str | os.PathLike, *, allow_pickle: bool = False
) -> tuple[list[str], np.ndarray]:
    """Read a tutorial ``embedding-*.npy``: returns ``(ids, float32 matrix)``."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path=path)
    with open(path, "rb") as handle:
        if handle.read(6) == b"\x93NUMPY":
            handle.seek(0)
            version = np.lib.format.read_magic(handle)
            reader = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            _, _, dtype = reader(handle)
            if dtype != np.dtype(object):
                raise DataError(
                    f"a plain {dtype} array, not the tutorial's [id, vector] object "
                    "array; it has no ids",
                    path=path,
                )
        else:
            handle.seek(0)
        if not allow_pickle:
            raise DataError(PICKLE_REFUSED, path=path)
        try:
            array = _NumpyOnlyUnpickler(io.BytesIO(handle.read())).load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
            raise DataError(f"not a tutorial feature file ({exc})", path=path) from None
    return _rows(array, path)


def _rows(array: object, path: Path) -> tuple[list[str], np.ndarray]:
    try:
        return _parse_rows(array, path)
    except (TypeError, ValueError, IndexError, OverflowError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(
            f"not a tutorial feature file ([id, vector] rows expected: {exc})", path=path
        ) from None


def _parse_rows(array: object, path: Path) -> tuple[list[str], np.ndarray]:
    rows = list(array) if isinstance(array, np.ndarray | list | tuple) else None
    if not rows:
        raise DataError("expected a non-empty array of [id, vector] rows", path=path)
    ids, vectors = [], []
    for number, row in enumerate(rows):
        if len(row) != 2:
            raise DataError(
                f"row {number}: expected [id, vector], got {len(row)} fields", path=path
            )
        vector = np.asarray(row[1], dtype=np.float32).reshape(-1)
        if vectors and vector.shape != vectors[0].shape:
            raise DataError(
                f"row {number}: vector of length {vector.size}, expected {vectors[0].size}",
                path=path,
            )
        ids.append(str(row[0]))
        vectors.append(vector)
    return ids, np.stack(vectors)


def import_legacy(
    path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    allow_pickle: bool = False,
    backbone: str = "unknown",
    overwrite: bool = False,
) -> FeatureStore:
    """Convert a tutorial ``embedding-*.npy`` into a :class:`FeatureStore` at ``out``."""
    ids, matrix = read_legacy(path, allow_pickle=allow_pickle)
    meta = {
        "backbone": backbone,
        "layer": "pooled",
        "weights": "unknown",
        "input_size": None,
        "mean": None,
        "std": None,
        "precision": "unknown",
        "imported_from": str(Path(path).resolve()),
    }
    return FeatureStore.write(
        out,
        ids,
        matrix,
        meta,
        overwrite=overwrite,
        report={"n_images": len(ids), "n_extracted": len(ids)},
    )


def export_legacy(store: FeatureStore, path: str | os.PathLike) -> Path:
    """Write ``store`` (pooled) in the tutorial's format: object array of ``[id, float32 vector]``."""
    if store.is_spatial:
        raise DataError(
            "the tutorial format holds pooled vectors only; this store is spatial", path=store.path
        )
    rows = np.empty((len(store), 2), dtype=object)
    for i, item_id in enumerate(store.ids):
        rows[i, 0] = str(item_id)
        rows[i, 1] = np.asarray(store.array[i], dtype=np.float32)
    path = Path(path)
    with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as handle:
        np.save(handle, rows, allow_pickle=True)
    return path


def import_tutorial_embeddings(npy: str | os.PathLike, out: str | os.PathLike) -> FeatureStore:
    """``visrec data fetch --embeddings``: the tutorial's ResNet50 ``.npy``, read with the opt-in."""
    return import_legacy(npy, out, allow_pickle=True, backbone="resnet50")

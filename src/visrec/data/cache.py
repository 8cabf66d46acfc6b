"""A cached binary form of built datasets, so that re-opening a dataset costs milliseconds.

:func:`build_dataset` opens a dataset and builds it with a split spec, as
``open_dataset(path).build(split, **filters)`` does; it is what :class:`visrec.runs.DataSpec` (``visrec
train``, ``evaluate``, ``recommend``, the benchmark, the Python API) calls. The first build stores every
array the :class:`~visrec.data.dataset.Dataset` holds (the CSR matrices of train, validation and test,
the chronological profiles, the id vocabularies, item groups, cold item sets) as ``.npy`` files in a cache
entry; later builds with the same inputs load them back memory-mapped, without reading the CSV.

Where: ``$VISREC_CACHE_DIR/datasets/`` (default ``~/.cache/visrec/datasets/``;
:func:`visrec._io.default_cache_dir`). ``VISREC_DATASET_CACHE=0`` (or ``off``, ``false``, ``no``) turns
the cache off, as does ``build_dataset(..., cache=False)``.

An entry's folder is named ``<spec>-<inputs>``. ``spec`` hashes the resolved dataset path, every field
of the split spec and the filters. ``inputs`` hashes:

- each file the loader reads (interactions, ``items.csv``, ``dataset.json``, MovieLens ``u.item`` and
  ``u.genre``, the Wikimedia CSVs): its resolved path, byte size and the SHA-256 of its bytes. The mtime
  is not used: a touched or copied file with the same bytes is the same input;
- each image folder's listing (:func:`visrec.data.images.folder_fingerprint`: names and link targets,
  not the image bytes; the catalogue is made of names);
- the source files of the ``visrec.data`` package and the format version, so a changed build logic
  never reads an entry the old one wrote.

Entries are written atomically (:func:`visrec._io.atomic_dir`), only when the inputs did not change while
building, with a manifest holding each array's SHA-256, dtype and shape; a new entry replaces the
entries of the same ``spec`` (older inputs). Loading checks the checksums and the dataset's invariants
(index ranges, monotone row pointers, unique ids); an entry that fails is rebuilt with a log line,
never read. The checksums catch corruption and edits of the arrays; someone who can write the cache
folder can also rewrite a manifest, so the invariants are what keeps even such an entry from crashing
the code that reads it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from visrec import __version__
from visrec._io import atomic_dir, default_cache_dir, read_json, write_json
from visrec.data.dataset import Dataset
from visrec.data.images import folder_fingerprint
from visrec.data.loaders import dataset_inputs, open_dataset
from visrec.data.split import SplitSpec
from visrec.data.vocab import Vocabulary

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
ENV_SWITCH = "VISREC_DATASET_CACHE"
_OFF = ("0", "off", "false", "no")
MANIFEST = "manifest.json"
_MATRICES = ("train", "validation", "test")
_PROFILE = ("profile_indptr", "profile_items", "profile_times")
_OPTIONAL = ("item_groups", "cold_test_items", "cold_validation_items")


class DamagedEntry(ValueError):
    """A cache entry fails its checksums or the dataset's invariants (it is rebuilt)."""


def cache_enabled(cache: bool | None = None) -> bool:
    """``cache`` when given, else whether ``$VISREC_DATASET_CACHE`` leaves the cache on."""
    if cache is not None:
        return bool(cache)
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in _OFF


def dataset_cache_dir() -> Path:
    """Folder of the dataset cache entries: ``default_cache_dir() / "datasets"``."""
    return default_cache_dir() / "datasets"


def build_dataset(
    path: str | os.PathLike,
    split: SplitSpec | None = None,
    *,
    filters: dict | None = None,
    cache: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Dataset:
    """``open_dataset(path).build(split, **filters)``, through the cache (see module docstring).

    The result is the same with and without the cache (same arrays, dtypes, ids and metadata); errors
    in the data are the loaders' own. ``cache`` (default: ``$VISREC_DATASET_CACHE``) turns the cache on
    or off, ``cache_dir`` overrides :func:`dataset_cache_dir`.
    """
    split = split or SplitSpec()
    filters = dict(filters or {})
    if not cache_enabled(cache):
        return _build(path, split, filters)
    key = entry_key(path, split, filters)
    if key is None:  # not a dataset or unreadable: the loaders say why
        return _build(path, split, filters)
    folder = Path(cache_dir) if cache_dir is not None else dataset_cache_dir()
    folder = folder / key
    if folder.is_dir():
        try:
            dataset = load_entry(folder, split)
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            log.warning("dataset cache entry %s is damaged (%s): rebuilding it", folder, exc)
        else:
            log.info("opened %s from the dataset cache (%s)", dataset.name, folder)
            return dataset
    dataset = _build(path, split, filters)
    if entry_key(path, split, filters) == key:  # the inputs did not change while building
        store_entry(folder, dataset, {"path": str(Path(path).resolve()), "filters": filters})
    return dataset


def _build(path, split: SplitSpec, filters: dict) -> Dataset:
    return open_dataset(path).build(split, **filters)


def entry_key(path: str | os.PathLike, split: SplitSpec, filters: dict) -> str | None:
    """The cache entry name of a build (``<spec>-<inputs>``); None when ``path`` is no dataset."""
    try:
        inputs = dataset_inputs(path)
        if inputs is None:
            return None
        files, folders = inputs
        spec = {"path": str(Path(path).resolve()), "split": asdict(split), "filters": filters}
        parts = {
            "format": FORMAT_VERSION,
            "code": _code_digest(),
            "files": [[str(f.resolve()), f.stat().st_size, _file_sha256(f)] for f in files],
            "images": [[str(d.resolve()), folder_fingerprint(d)] for d in folders],
        }
    except OSError:
        return None
    return f"{_digest(spec)[:16]}-{_digest(parts)[:16]}"


def _digest(obj) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@functools.cache
def _code_digest() -> str:
    """SHA-256 of the ``visrec.data`` package's sources (the build logic) and visrec's version."""
    digest = hashlib.sha256(__version__.encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


# --- writing --------------------------------------------------------------------------------------


def dataset_arrays(dataset: Dataset) -> dict[str, np.ndarray]:
    """Every array ``dataset`` holds, by file name (ids as fixed-width unicode arrays)."""
    arrays: dict[str, np.ndarray] = {}
    for name in _MATRICES:
        matrix = dataset.targets(name) if name != "train" else dataset.train
        for part in ("data", "indices", "indptr"):
            arrays[f"{name}.{part}"] = getattr(matrix, part)
    for name in (*_PROFILE, *_OPTIONAL):
        if getattr(dataset, name) is not None:
            arrays[name] = getattr(dataset, name)
    arrays["users"] = np.asarray(dataset.users.ids.tolist(), dtype=str)
    arrays["items"] = np.asarray(dataset.items.ids.tolist(), dtype=str)
    return arrays


def store_entry(folder: Path, dataset: Dataset, about: dict) -> bool:
    """Write ``dataset`` into the cache entry ``folder`` (atomically); False when it cannot be."""
    arrays = dataset_arrays(dataset)
    for name in ("users", "items"):  # fixed-width unicode drops trailing NULs: never store those
        if not np.array_equal(arrays[name].astype(object), getattr(dataset, name).ids):
            log.info("not caching %s: an id does not survive a numpy string array", dataset.name)
            return False
    manifest = {
        "format": FORMAT_VERSION,
        "created_with": f"visrec {__version__}",
        **about,
        "split": asdict(dataset.split),
        "name": dataset.name,
        "shape": [dataset.n_users, dataset.n_items],
        "group_names": list(dataset.group_names),
        "n_cold_test_rows_dropped": dataset.n_cold_test_rows_dropped,
        "arrays": {},
    }
    try:
        with atomic_dir(folder) as tmp:
            for name, array in arrays.items():
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
                manifest["arrays"][name] = {
                    "sha256": _file_sha256(tmp / f"{name}.npy"),
                    "dtype": array.dtype.str,
                    "shape": list(array.shape),
                }
            write_json(tmp / MANIFEST, manifest)
    except OSError as exc:
        log.info("could not write the dataset cache entry %s (%s)", folder, exc)
        return False
    spec = folder.name.split("-")[0]
    for old in folder.parent.glob(f"{spec}-*"):  # entries of older inputs of the same build
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)
    log.info("stored %s in the dataset cache (%s)", dataset.name, folder)
    return True


# --- reading --------------------------------------------------------------------------------------


def load_entry(folder: Path, split: SplitSpec) -> Dataset:
    """The dataset of a cache entry, its arrays memory-mapped (read-only); raises when the entry is
    incomplete or damaged (:class:`DamagedEntry`, OSError, ValueError, KeyError)."""
    manifest = read_json(folder / MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        raise DamagedEntry("unknown format")
    if manifest.get("split") != asdict(split):
        raise DamagedEntry("the entry holds another split")
    arrays = {name: _load_array(folder, name, info) for name, info in manifest["arrays"].items()}
    n_users, n_items = (int(n) for n in manifest["shape"])
    users = _vocabulary(arrays["users"], "user", n_users)
    items = _vocabulary(arrays["items"], "item", n_items)
    matrices = {name: _matrix(arrays, name, (n_users, n_items)) for name in _MATRICES}
    indptr, profile_items, times = (arrays[name] for name in _PROFILE)
    _check_rows(indptr, n_users, "profile_indptr")
    if not len(profile_items) == len(times) == indptr[-1]:
        raise DamagedEntry("profile arrays of different lengths")
    _check_range(profile_items, n_items, "profile_items")
    group_names = tuple(str(g) for g in manifest["group_names"])
    groups = arrays.get("item_groups")
    if groups is not None and (
        len(groups) != n_items or not _in_range(groups, -1, len(group_names))
    ):
        raise DamagedEntry("item_groups do not match the items and group names")
    cold = {name: arrays.get(name) for name in _OPTIONAL[1:]}
    for name, found in cold.items():
        if found is not None:
            _check_range(found, n_items, name)
    return Dataset(
        users=users,
        items=items,
        **matrices,
        profile_indptr=indptr,
        profile_items=profile_items,
        profile_times=times,
        split=split,
        item_groups=groups,
        group_names=group_names,
        name=str(manifest["name"]),
        n_cold_test_rows_dropped=int(manifest["n_cold_test_rows_dropped"]),
        **cold,
    )


def _load_array(folder: Path, name: str, info: dict) -> np.ndarray:
    path = folder / f"{name}.npy"
    if _file_sha256(path) != info["sha256"]:
        raise DamagedEntry(f"{path.name} does not match its checksum")
    shape = tuple(int(n) for n in info["shape"])
    # numpy cannot memory-map an empty array; an ndarray view drops np.memmap's subclass
    mode = "r" if np.prod(shape) > 0 else None
    array = np.asarray(np.load(path, mmap_mode=mode, allow_pickle=False))
    if array.dtype.str != info["dtype"] or array.shape != shape:
        raise DamagedEntry(f"{path.name} holds {array.dtype}{array.shape}, not {info}")
    array.setflags(write=False)
    return array


def _vocabulary(ids: np.ndarray, name: str, size: int) -> Vocabulary:
    if ids.ndim != 1 or ids.dtype.kind != "U" or len(ids) != size:
        raise DamagedEntry(f"the {name} ids are not {size} strings")
    return Vocabulary(ids, name=name)  # raises ValueError on a repeated id


def _matrix(arrays: dict, name: str, shape: tuple[int, int]) -> sp.csr_matrix:
    data, indices, indptr = (arrays[f"{name}.{part}"] for part in ("data", "indices", "indptr"))
    _check_rows(indptr, shape[0], f"{name}.indptr")
    if not len(data) == len(indices) == indptr[-1]:
        raise DamagedEntry(f"{name}: data, indices and indptr disagree")
    _check_range(indices, shape[1], f"{name}.indices")
    return sp.csr_matrix((data, indices, indptr), shape=shape, copy=False)


def _check_rows(indptr: np.ndarray, n_rows: int, what: str) -> None:
    if indptr.ndim != 1 or len(indptr) != n_rows + 1 or indptr[0] != 0:
        raise DamagedEntry(f"{what} is not a row pointer of {n_rows} rows")
    if n_rows and (np.diff(indptr) < 0).any():
        raise DamagedEntry(f"{what} decreases")


def _check_range(values: np.ndarray, n: int, what: str) -> None:
    if values.ndim != 1 or not _in_range(values, 0, n):
        raise DamagedEntry(f"{what} out of range [0, {n})")


def _in_range(values: np.ndarray, low: int, high: int) -> bool:
    return len(values) == 0 or (int(values.min()) >= low and int(values.max()) < high)

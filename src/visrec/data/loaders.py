"""Loaders for dataset folders and real formats.

A visrec dataset folder holds ``interactions.csv`` (or ``.parquet``), optionally ``items.csv``
(``item_id[,group][,...]``), an ``images/`` folder, and optionally ``dataset.json`` whose ``images`` key may
point elsewhere (so large image folders are referenced, never copied). Also read directly:

- MovieLens-100K (``u.data`` tab-separated without header, ``u.item`` pipe-separated latin-1, ``posters/``);
- the IUI 2021 tutorial's Wikimedia files (``user,image_id,timestamp`` train and test CSVs + images).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visrec._io import atomic_open, write_json
from visrec._lazy import LazyModule
from visrec.data.dataset import Dataset
from visrec.data.images import scan_images
from visrec.data.interactions import Interactions, load_interactions
from visrec.data.split import SplitSpec
from visrec.errors import DataError

pd = LazyModule("pandas")  # the cached-dataset path never needs pandas


@dataclass(frozen=True)
class DatasetSource:
    """Raw ingredients of a dataset before splitting: interactions, catalogue and images."""

    interactions: Interactions
    name: str
    images_dir: Path | None = None
    image_paths: dict[str, Path] | None = None
    items: pd.DataFrame | None = None
    """Item table indexed by item_id (e.g. title, group); optional."""

    def catalogue_ids(self) -> list[str]:
        """Items with images (they belong in the vocabulary even without interactions)."""
        return sorted(self.image_paths) if self.image_paths else []

    def item_groups(self) -> pd.Series | None:
        if self.items is None or "group" not in self.items.columns:
            return None
        groups = self.items["group"].astype(str)
        return groups[groups.str.strip() != ""]

    def build(self, split: SplitSpec | None = None, **filters) -> Dataset:
        """Filter (k-core / rating threshold) and split into a :class:`Dataset`."""
        interactions = self.interactions.filter(**filters) if filters else self.interactions
        return Dataset.build(
            interactions,
            split,
            extra_item_ids=self.catalogue_ids() if not filters else None,
            item_groups=self.item_groups(),
            name=self.name,
        )


@dataclass(frozen=True)
class FolderLayout:
    """Which of the layouts :func:`open_dataset` reads a folder has, and where its parts are."""

    kind: str
    """``visrec`` (interactions.csv / dataset.json), ``movielens`` (u.data) or ``wikimedia``."""
    interaction_files: tuple[Path, ...] = ()
    """MovieLens: u.data; Wikimedia: the train and test CSVs; visrec: see its dataset.json."""
    images_dir: Path | None = None
    """MovieLens and Wikimedia only (a visrec folder's images come from its dataset.json)."""


MOVIELENS_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]
NOT_A_DATASET = (
    "not a dataset folder: expected interactions.csv (visrec), u.data (MovieLens) or "
    "train/test CSVs with user,image_id,timestamp (Wikimedia)"
)


def detect_layout(folder: str | Path) -> FolderLayout | None:
    """The layout of ``folder`` (None when it is none of them): the one rule open_dataset and
    ``visrec data check`` both follow."""
    folder = Path(folder)
    if (folder / "u.data").is_file():
        return FolderLayout(
            "movielens", (folder / "u.data",), _first_dir(folder, ("posters", "images"))
        )
    if (folder / "dataset.json").is_file() or _find_interactions(folder) is not None:
        return FolderLayout("visrec")
    wikimedia = _find_wikimedia(folder)
    if wikimedia:
        return FolderLayout("wikimedia", wikimedia, _first_dir(folder, ("images", "img")))
    return None


def open_dataset(path: str | Path) -> DatasetSource:
    """Open a dataset from a folder (visrec, MovieLens-100K or Wikimedia layout) or an interaction file."""
    path = Path(path)
    if path.is_file():
        return DatasetSource(load_interactions(path), name=path.stem)
    if not path.is_dir():
        raise DataError("no such file or folder", path=path)
    layout = detect_layout(path)
    if layout is None:
        raise DataError(NOT_A_DATASET, path=path)
    if layout.kind == "movielens":
        return load_movielens(path)
    if layout.kind == "wikimedia":
        return load_wikimedia(*layout.interaction_files, images_dir=layout.images_dir)
    return load_folder(path)


def read_raw_interactions(layout: FolderLayout, path: Path) -> pd.DataFrame:
    """The raw (string) table of one of ``layout``'s interaction files, in visrec column names,
    with ``attrs["line_offset"]`` so that row problems name file lines."""
    if layout.kind == "movielens":
        return _read_table(path, "\t", MOVIELENS_COLUMNS, "utf-8")
    return _wikimedia_frame(path)


def _find_interactions(folder: Path) -> Path | None:
    for name in ("interactions.csv", "interactions.parquet"):
        if (folder / name).is_file():
            return folder / name
    return None


def _first_dir(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        if (folder / name).is_dir():
            return folder / name
    return None


@dataclass(frozen=True)
class FolderParts:
    """The files of a visrec dataset folder, as its ``dataset.json`` (or the defaults) names them."""

    manifest: dict
    interactions: Path
    images_dir: Path | None
    items: Path


def folder_parts(folder: str | Path) -> FolderParts:
    """Where a visrec dataset folder's parts are (see module docstring); a DataError when its
    ``dataset.json`` is not valid JSON or it has no interaction file."""
    folder = Path(folder)
    manifest: dict = {}
    if (folder / "dataset.json").is_file():
        try:
            manifest = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(f"not valid JSON ({exc})", path=folder / "dataset.json") from exc
    inter_path = (
        folder / manifest.get("interactions", "")
        if "interactions" in manifest
        else (_find_interactions(folder))
    )
    if inter_path is None or not inter_path.is_file():
        raise DataError("no interactions.csv or interactions.parquet", path=folder)
    images_dir = (
        (folder / manifest["images"]) if "images" in manifest else _first_dir(folder, ("images",))
    )
    return FolderParts(
        manifest, inter_path, images_dir, folder / manifest.get("items", "items.csv")
    )


def dataset_inputs(path: str | Path) -> tuple[list[Path], list[Path]] | None:
    """``(files, image folders)`` that :func:`open_dataset` reads for ``path`` (what a cached build
    of it depends on), or None when ``path`` is not a dataset (open_dataset then says why)."""
    path = Path(path)
    if path.is_file():
        return [path], []
    layout = detect_layout(path) if path.is_dir() else None
    if layout is None:
        return None
    if layout.kind == "visrec":
        try:
            parts = folder_parts(path)
        except DataError:
            return None
        files = [parts.interactions, path / "dataset.json", parts.items]
        folders = [parts.images_dir]
    else:
        extra = [path / "u.item", path / "u.genre"] if layout.kind == "movielens" else []
        files, folders = [*layout.interaction_files, *extra], [layout.images_dir]
    return [f for f in files if f.is_file()], [d for d in folders if d is not None and d.is_dir()]


def open_images(path: str | Path) -> tuple[Path | None, dict[str, Path] | None]:
    """``(images_dir, image_paths)`` of ``open_dataset(path)`` without reading the interactions (what
    ``recommend`` and ``grid`` show beside a run's items). DataError when ``path`` is no dataset."""
    path = Path(path)
    if path.is_file():
        return None, None
    layout = detect_layout(path) if path.is_dir() else None
    if layout is None:
        raise DataError(NOT_A_DATASET if path.is_dir() else "no such file or folder", path=path)
    images_dir = folder_parts(path).images_dir if layout.kind == "visrec" else layout.images_dir
    if images_dir is None or not images_dir.is_dir():
        return images_dir, None
    return images_dir, scan_images(images_dir)[0]


def load_folder(folder: str | Path) -> DatasetSource:
    """A visrec dataset folder (see module docstring)."""
    folder = Path(folder)
    parts = folder_parts(folder)
    images_dir = parts.images_dir
    image_paths = (
        scan_images(images_dir)[0] if images_dir is not None and images_dir.is_dir() else None
    )
    items = _read_items(parts.items) if parts.items.is_file() else None
    return DatasetSource(
        load_interactions(parts.interactions),
        parts.manifest.get("name", folder.name),
        images_dir,
        image_paths,
        items,
    )


def read_string_table(path: Path, **kwargs) -> pd.DataFrame:
    """A delimited text file read as strings (no NA guessing); any problem is a DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no such file", path=path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"not a valid table ({exc})", path=path) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _read_items(path: Path) -> pd.DataFrame:
    items = read_string_table(path)
    if "item_id" not in items.columns:
        raise DataError("item table needs an item_id column", path=path, line=1)
    if items["item_id"].duplicated().any():
        dup = items.loc[items["item_id"].duplicated(), "item_id"].iloc[0]
        raise DataError(f"repeated item_id {dup!r} in item table", path=path)
    return items.set_index("item_id")


def load_movielens(folder: str | Path, *, posters: str | Path | None = None) -> DatasetSource:
    """MovieLens-100K: every rating is an implicit positive; ``group`` = the movie's first genre."""
    folder = Path(folder)
    frame = _read_table(folder / "u.data", "\t", MOVIELENS_COLUMNS, "utf-8")
    interactions = Interactions.from_frame(frame, source=str(folder / "u.data"))
    items = None
    if (folder / "u.item").is_file():
        items = _movielens_items(folder)
    posters_dir = Path(posters) if posters else _first_dir(folder, ("posters", "images"))
    image_paths = scan_images(posters_dir)[0] if posters_dir else None
    return DatasetSource(interactions, "movielens-100k", posters_dir, image_paths, items)


def _read_table(path: Path, sep: str, names: list[str], encoding: str) -> pd.DataFrame:
    frame = read_string_table(path, sep=sep, header=None, encoding=encoding)
    if frame.shape[1] < len(names):
        raise DataError(
            f"expected {len(names)} columns ({', '.join(names)}), found {frame.shape[1]}",
            path=path,
            line=1,
        )
    frame = frame.iloc[:, : len(names)]
    frame.columns = names
    frame.attrs["line_offset"] = 1
    return frame


def _movielens_items(folder: Path) -> pd.DataFrame:
    genres = [
        "unknown",
        "Action",
        "Adventure",
        "Animation",
        "Children's",
        "Comedy",
        "Crime",
        "Documentary",
        "Drama",
        "Fantasy",
        "Film-Noir",
        "Horror",
        "Musical",
        "Mystery",
        "Romance",
        "Sci-Fi",
        "Thriller",
        "War",
        "Western",
    ]
    if (folder / "u.genre").is_file():
        lines = (folder / "u.genre").read_text(encoding="latin-1").splitlines()
        genres = [line.split("|")[0] for line in lines if "|" in line] or genres
    names = ["item_id", "title", "release_date", "video_release_date", "url", *genres]
    raw = _read_table(folder / "u.item", "|", names, "latin-1")
    flags = raw[genres].to_numpy() == "1"
    first = np.where(flags.any(axis=1), flags.argmax(axis=1), 0)
    return pd.DataFrame(
        {"title": raw["title"].to_numpy(), "group": np.asarray(genres, dtype=object)[first]},
        index=pd.Index(raw["item_id"].to_numpy(), name="item_id"),
    )


def _find_wikimedia(folder: Path) -> tuple[Path, Path] | None:
    train = test = None
    for csv_path in sorted(folder.glob("*.csv")):
        with open(csv_path, encoding="utf-8", errors="replace") as handle:
            header = handle.readline().strip().split(",")
        if {"user", "image_id", "timestamp"} <= set(header):
            if "test" in csv_path.stem or "eval" in csv_path.stem:
                test = csv_path
            else:
                train = csv_path
    return (train, test) if train is not None and test is not None else None


def load_wikimedia(
    train_csv: str | Path, test_csv: str | Path, *, images_dir: str | Path | None = None
) -> DatasetSource:
    """The tutorial's Wikimedia files: ``user,image_id,timestamp`` train and test CSVs.

    The test rows become ``evaluation=True``; use ``SplitSpec(method='given')`` to honour them.
    """
    frames = []
    for path, flag in ((Path(train_csv), False), (Path(test_csv), True)):
        frame = _wikimedia_frame(path)
        frame["evaluation"] = flag
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    interactions = Interactions.from_frame(frame, source=str(train_csv))
    images_dir = Path(images_dir) if images_dir else None
    image_paths = scan_images(images_dir)[0] if images_dir else None
    return DatasetSource(interactions, "wikimedia", images_dir, image_paths, None)


def _wikimedia_frame(path: Path) -> pd.DataFrame:
    frame = read_string_table(path)
    missing = {"user", "image_id", "timestamp"} - set(frame.columns)
    if missing:
        raise DataError(f"missing column(s) {', '.join(sorted(missing))}", path=path, line=1)
    frame = frame.rename(columns={"user": "user_id", "image_id": "item_id"})
    frame = frame[["user_id", "item_id", "timestamp"]].copy()
    frame.attrs["line_offset"] = 2
    return frame


def write_folder(source: DatasetSource, out: str | Path) -> Path:
    """Write ``source`` as a visrec dataset folder; images are referenced by path, not copied."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "interactions.csv", "w", encoding="utf-8", newline="") as handle:
        source.interactions.frame.to_csv(handle, index=False)
    manifest = {"name": source.name, "interactions": "interactions.csv"}
    if source.items is not None:
        with atomic_open(out / "items.csv", "w", encoding="utf-8", newline="") as handle:
            source.items.to_csv(handle, index=True)
        manifest["items"] = "items.csv"
    if source.images_dir is not None:
        manifest["images"] = str(Path(source.images_dir).resolve())
    write_json(out / "dataset.json", manifest)
    return out

"""What ``visrec data fetch`` knows of a dataset: its downloadable files (:class:`Part`), data card
(:class:`Card`) and builder (:class:`Recipe`), and what a builder is handed (:class:`FetchContext`).
The recipes themselves are in :mod:`visrec.data.fetch`, the builders in :mod:`visrec.data.converters`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from visrec.data.download import FileCache, Remote


@dataclass(frozen=True)
class Part:
    """One downloadable file of a dataset. ``key`` names it in ``--from-file KEY=PATH``."""

    key: str
    filename: str
    url: str
    optional: bool = False


@dataclass(frozen=True)
class Card:
    title: str
    homepage: str
    licence: str
    citation: str
    notes: str = ""


@dataclass(frozen=True)
class Recipe:
    name: str
    parts: tuple[Part, ...]
    card: Card
    build: Callable[[FetchContext, Path], dict]


@dataclass
class FetchContext:
    """What a builder needs: the parts (obtained lazily), options, and a scratch folder."""

    recipe: Recipe
    cache: FileCache
    scratch: Path
    base_url: str | None = None
    from_files: dict[str, Path] = field(default_factory=dict)
    embeddings: bool = False
    columns: dict[str, str] = field(default_factory=dict)
    files: dict[str, dict] = field(default_factory=dict)
    convert_embeddings: Callable[[Path, Path], object] | None = None
    """Tutorial ``.npy`` -> feature store (the features layer's legacy import; see import_embeddings)."""

    def remote(self, key: str) -> Remote:
        part = next((p for p in self.recipe.parts if p.key == key), None)
        if part is None:
            raise KeyError(key)
        url = f"{self.base_url.rstrip('/')}/{part.filename}" if self.base_url else part.url
        return Remote(part.filename, url, page=part.url)

    def obtain(self, key: str) -> Path:
        remote = self.remote(key)
        path = self.cache.obtain(remote, from_file=self.from_files.get(key))
        entry = self.cache.registry().get(remote.name, {})
        self.files[key] = {
            "file": remote.name,
            "url": remote.url,
            "size": entry.get("size"),
            "sha256": entry.get("sha256"),
        }
        return path

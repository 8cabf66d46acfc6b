"""New items in the viewer (``visrec serve RUN... --images DIR --new-items IMAGES_OR_STORE``).

Pages: ``/new-items/{id}?run=&k=`` (the new item's image and the users who would rank it highest, each
with their latest consumed items). API: ``/api/new-items?run=`` (the new items and what was skipped),
``/api/new-items/{id}/audience?run=&k=``. New items are loaded once per run, the run's way
(:func:`visrec.serving.new_content.load_new_items`: features extracted with the run's backbone settings,
or pixels); their images are served only from the new-items folder, by id.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from visrec._io import atomic_path
from visrec.data.images import inside, load_rgb, scan_image_folder
from visrec.errors import ConfigError
from visrec.serving.new_content import NewItems, load_new_items
from visrec.serving.new_items import new_item_audience

LATEST = 6
"""Latest consumed items shown per user on the audience page."""


class NewItemsView:
    """The new items of a viewer: loaded lazily per run, cached; images served by id."""

    def __init__(self, source: str | Path | None, thumbs_dir: Path):
        self.source = Path(source).resolve() if source else None
        self.thumbs_dir = thumbs_dir
        self.folder = self.source if self.source and self.source.is_dir() else None
        images = scan_image_folder(self.folder).images if self.folder else {}
        self.image_paths = {i: p.resolve() for i, p in images.items()}
        self._loaded: dict[int, NewItems] = {}

    def items(self, state, run_no: int) -> NewItems:
        if self.source is None:
            raise ConfigError("no new items: start the viewer with --new-items IMAGES_OR_STORE")
        if run_no not in self._loaded:
            self._loaded[run_no] = load_new_items(state.run(run_no), self.source)
        return self._loaded[run_no]

    def audience(self, state, run_no: int, item_id: str, k: int) -> list[dict]:
        items = self.items(state, run_no)
        if item_id not in items.ids:
            raise KeyError(f"unknown new item {item_id!r}")
        j = items.ids.index(item_id)
        one = NewItems([item_id], items.content[j : j + 1], items.kind)
        run = state.run(run_no)
        return new_item_audience(run, one, k)[0].to_rows(run.model.users.ids)

    def thumbnail(self, item_id: str, size: int) -> Path:
        source = self.image_paths.get(item_id)
        if source is None or self.folder is None or not inside(source, self.folder):
            raise KeyError(f"no image for new item {item_id!r}")
        digest = hashlib.sha1(f"{source}:{source.stat().st_mtime_ns}".encode()).hexdigest()[:16]
        out = self.thumbs_dir / "new" / str(size) / f"{digest}.jpg"
        if not out.is_file():
            img = load_rgb(source, max_side=size * 2)
            img.thumbnail((size, size))
            with atomic_path(out) as tmp:
                img.save(tmp, format="JPEG", quality=85)
        return out


def _skipped(items: NewItems) -> list[dict]:
    return [{"file": Path(p["path"]).name, "reason": p["reason"]} for p in items.problems]


def new_item_rows(state, run_no: int, item_id: str, k: int) -> list[dict]:
    """The audience page's rows: each user's rank and score, and their latest consumed items."""
    users = state.new_items.audience(state, run_no, item_id, k)
    ds = state.dataset
    for row in users:
        consumed = ds.consumed_history(ds.users.index(row["user_id"]))
        row["latest"] = ds.items.ids_of(consumed[-LATEST:][::-1]).tolist()
    return users


def _k():
    """A k parameter (a fresh Query each time: one Query object is never shared by two parameters)."""
    return Query(20, ge=1, le=500, description="How many users.")


def _run():
    return Query(0, ge=0, description="Run number (order on the command line).")


def api_router(state) -> APIRouter:
    """The new items' JSON API and images (``state.new_items``: a :class:`NewItemsView`)."""
    view: NewItemsView = state.new_items
    router = APIRouter()

    @router.get("/api/new-items")
    def api_new_items(run: int = _run()) -> dict:
        items = view.items(state, run)
        return {
            "model": state.run(run).meta["model"],
            "items": items.ids,
            "skipped": _skipped(items),
        }

    @router.get("/api/new-items/{item_id}/audience")
    def api_audience(item_id: str, k: int = _k(), run: int = _run()) -> dict:
        users = view.audience(state, run, item_id, k)
        return {"item_id": item_id, "model": state.run(run).meta["model"], "users": users}

    @router.get("/new-thumbs/{item_id}")
    def new_thumb(item_id: str, size: int = Query(160, ge=16, le=1024)) -> FileResponse:
        return FileResponse(view.thumbnail(item_id, size), media_type="image/jpeg")

    return router

"""The FastAPI app: HTML pages (server-rendered, no front-end build) and a JSON API with OpenAPI docs.

Pages: ``/`` (runs, jump to a user), ``/users/{id}`` (profile, top-k marked hit/consumed, held-out truth,
per-user metrics, ACF attention), ``/items/{id}`` (image, visual neighbours, consumers),
``/compare/{id}?a=0&b=1``. API: ``/api/health``, ``/api/users/{id}/recommendations?k=``,
``/api/items/{id}/similar?k=``, ``POST /api/recommend``. Images are served only from the given folder, by
item id (a path never reaches the file system): unknown ids and traversal attempts get a JSON 404, bad query
values a 422, any other failure a JSON 500 without a stack trace.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from visrec.errors import ConfigError, DataError
from visrec.models.capabilities import ScoresProfiles
from visrec.serving import recommend_profile
from visrec.viewer import new_items
from visrec.viewer.docs import add_offline_docs
from visrec.viewer.state import ViewerState

log = logging.getLogger(__name__)
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
PAGE = 40  # profile images per page
K = Query(20, ge=1, le=500, description="How many items.")


class ProfileRequest(BaseModel):
    items: list[str] = Field(
        ..., min_length=1, description="The new user's item ids, oldest first."
    )
    k: int = Field(20, ge=1, le=500)
    run: int = Field(0, ge=0)


def create_app(state: ViewerState) -> FastAPI:
    app = FastAPI(
        title="visrec viewer",
        description="Recommendations, similar items and attention.",
        docs_url=None,
        redoc_url=None,
    )
    add_offline_docs(app)
    app.state.viewer = state
    _errors(app)

    @app.get("/api/health")
    def health() -> dict:
        return {
            "status": "ok",
            "runs": [r.meta["model"] for r in state.runs],
            "users": state.dataset.n_users,
            "items": state.dataset.n_items,
        }

    @app.get("/api/users/{user_id}/recommendations")
    def api_recommendations(user_id: str, k: int = K, run: int = Query(0, ge=0)) -> dict:
        u = state.user_index(user_id)
        return {
            "user_id": user_id,
            "model": state.run(run).meta["model"],
            "items": state.recommendations(run, u, k),
        }

    @app.get("/api/items/{item_id}/similar")
    def api_similar(item_id: str, k: int = K) -> dict:
        rows = state.similar(state.item_index(item_id), k)
        if rows is None:
            raise ConfigError("no item features: the runs were trained without a feature store")
        return {"item_id": item_id, "items": rows}

    @app.post("/api/recommend")
    def api_recommend(body: ProfileRequest) -> dict:
        run = state.run(body.run)
        if not isinstance(run.model, ScoresProfiles):
            raise ConfigError(f"run {body.run} ({run.meta['model']}) cannot serve a new profile")
        profile = run.model.items.indices(body.items)
        rec = recommend_profile(run.model, profile, body.k)
        return {"model": run.meta["model"], "items": rec.to_rows(run.model.items.ids)}

    @app.get("/images/{item_id}")
    def image(item_id: str) -> FileResponse:
        return FileResponse(state.image_path(item_id))

    @app.get("/thumbs/{item_id}")
    def thumb(item_id: str, size: int = Query(160, ge=16, le=1024)) -> FileResponse:
        return FileResponse(state.thumbnail(item_id, size), media_type="image/jpeg")

    @app.get("/attention/{run}/{user_id}/{position}.png")
    def attention_png(
        run: int, user_id: str, position: int, size: int = Query(160, ge=16, le=1024)
    ):
        att = state.attention(run, state.user_index(user_id))
        if att is None or not 0 <= position < len(att["items"]):
            raise KeyError(f"no attention map {position} for user {user_id!r} in run {run}")
        item_id = state.dataset.items.id(att["items"][position])
        png = state.heatmap(item_id, att["components"][position], att["grid"], size)
        return Response(png, media_type="image/png")

    _pages(app, state)
    if state.new_items is not None:
        new_items.add_routes(app, state, TEMPLATES, K)
    return app


def _pages(app: FastAPI, state: ViewerState) -> None:
    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, user: str | None = None):
        if user:
            state.user_index(user)
            return RedirectResponse(f"/users/{user}", status_code=303)
        users = state.dataset.users.ids[:30].tolist()
        return TEMPLATES.TemplateResponse(request, "index.html", {"state": state, "users": users})

    @app.get("/users/{user_id}", response_class=HTMLResponse)
    def user_page(
        request: Request,
        user_id: str,
        k: int = K,
        run: int = Query(0, ge=0),
        page: int = Query(1, ge=1),
    ):
        u = state.user_index(user_id)
        ds = state.dataset
        profile = ds.items.ids_of(ds.profile(u)).tolist()
        pages = max(1, -(-len(profile) // PAGE))
        page = min(page, pages)
        att = state.attention(run, u)
        weights = None
        if att is not None:
            weights = [
                (ds.items.id(i), float(w), pos)
                for pos, (i, w) in enumerate(zip(att["items"], att["item_weights"], strict=True))
            ]
        context = {
            "state": state,
            "user_id": user_id,
            "run": run,
            "k": k,
            "page": page,
            "pages": pages,
            "n_profile": len(profile),
            "profile": profile[(page - 1) * PAGE : page * PAGE],
            "recs": state.recommendations(run, u, k),
            "metrics": state.user_metrics(run, u),
            "truth": ds.items.ids_of(ds.test[u].indices).tolist(),
            "attention": weights,
            "model": state.run(run).meta["model"],
        }
        return TEMPLATES.TemplateResponse(request, "user.html", context)

    @app.get("/items/{item_id}", response_class=HTMLResponse)
    def item_page(request: Request, item_id: str, k: int = K):
        i = state.item_index(item_id)
        context = {
            "state": state,
            "item_id": item_id,
            "similar": state.similar(i, k),
            "consumers": state.consumers(i),
            "has_image": item_id in state.image_paths,
        }
        return TEMPLATES.TemplateResponse(request, "item.html", context)

    @app.get("/compare/{user_id}", response_class=HTMLResponse)
    def compare(
        request: Request, user_id: str, a: int = Query(0, ge=0), b: int = Query(1, ge=0), k: int = K
    ):
        u = state.user_index(user_id)
        columns = [(state.run(r).meta["model"], state.recommendations(r, u, k)) for r in (a, b)]
        return TEMPLATES.TemplateResponse(
            request,
            "compare.html",
            {"state": state, "user_id": user_id, "columns": columns, "k": k},
        )


def _errors(app: FastAPI) -> None:
    @app.exception_handler(KeyError)
    async def not_found(request: Request, exc: KeyError):
        message = exc.args[0] if exc.args else "not found"
        return JSONResponse({"error": _strip_paths(str(message))}, status_code=404)

    @app.exception_handler(ConfigError)
    @app.exception_handler(DataError)
    async def bad_request(request: Request, exc: Exception):
        return JSONResponse({"error": public_message(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = [
            {"where": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()
        ]
        return JSONResponse({"error": "invalid request", "details": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception):
        log.exception("viewer error on %s", request.url.path)
        return JSONResponse({"error": f"internal error ({type(exc).__name__})"}, status_code=500)


_ABSOLUTE_PATH = re.compile(r"(?<![\w.])/[^\s'\",;:]+")
"""An absolute POSIX path in a message (up to a space, quote, comma, semicolon or colon)."""


def public_message(exc: Exception) -> str:
    """An error message fit for an HTTP client: server paths reduced to their file names."""
    message = str(exc)
    path = getattr(exc, "path", None)
    if path:
        message = message.replace(path, Path(path).name)
    return _strip_paths(message)


def _strip_paths(message: str) -> str:
    return _ABSOLUTE_PATH.sub(lambda match: Path(match.group(0)).name, message)


__all__ = ["create_app", "public_message"]

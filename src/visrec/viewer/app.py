"""The FastAPI app: HTML pages (server-rendered, no front-end build) and a JSON API with OpenAPI docs.

Pages (:mod:`visrec.viewer.pages`): ``/``, ``/search``, ``/users``, ``/users/{id}``, ``/items/{id}``,
``/compare/{id}?a=0&b=1``; with ``--new-items``, ``/new-items/{id}`` (:mod:`visrec.viewer.new_items`,
also its API). Recommendations leave out what the user consumed (train, validation and
test interactions) unless ``?consumed=show``, which keeps them, flagged (``consumed: true``, a red frame).
API: ``/api/health``, ``/api/users/{id}/recommendations?k=&consumed=``,
``/api/items/{id}/similar?k=``, ``POST /api/recommend``. Images are served only from the given folder, by
item id (a path never reaches the file system): unknown ids and traversal attempts get a 404, bad query
values a 422, any other failure a 500 without a stack trace; as JSON under the API, image and attention
paths, as an HTML page everywhere else (a browser never lands on a raw JSON error).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from fastapi import FastAPI, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from visrec.errors import ConfigError, DataError
from visrec.models.capabilities import ScoresProfiles
from visrec.serving import recommend_profile
from visrec.viewer import new_items
from visrec.viewer.docs import add_offline_docs
from visrec.viewer.pages import error_page, page_router
from visrec.viewer.state import ViewerState

log = logging.getLogger(__name__)
JSON_PATHS = (
    "/api/",
    "/images/",
    "/thumbs/",
    "/new-thumbs/",
    "/attention/",
    "/docs",
    "/redoc",
    "/openapi.json",
)
"""Paths whose errors are JSON; every other path is a page, whose errors are HTML pages."""
K = Query(20, ge=1, le=500, description="How many items.")
CONSUMED = Query(
    "hide",
    pattern="^(hide|show)$",
    description="hide: leave out items the user consumed (train, validation, test); show: keep "
    "them, flagged consumed: true.",
)


class ProfileRequest(BaseModel):
    items: list[str] = Field(
        ..., min_length=1, description="The new user's item ids, oldest first."
    )
    k: int = Field(20, ge=1, le=500)
    run: int = Field(0, ge=0)
    consumed: str = Field(
        "hide", pattern="^(hide|show)$", description="show: keep the profile's items, flagged."
    )


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
    def api_recommendations(
        user_id: str, k: int = K, run: int = Query(0, ge=0), consumed: str = CONSUMED
    ) -> dict:
        u = state.user_index(user_id)
        return {
            "user_id": user_id,
            "model": state.run(run).meta["model"],
            "consumed": consumed,
            "items": state.recommendations(run, u, k, show_consumed=consumed == "show"),
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
        show = body.consumed == "show"
        rec = recommend_profile(run.model, profile, body.k, exclude_consumed=not show)
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

    app.include_router(page_router(state))
    if state.new_items is not None:
        app.include_router(new_items.api_router(state))
    return app


def _errors(app: FastAPI) -> None:
    @app.exception_handler(KeyError)
    async def not_found(request: Request, exc: KeyError):
        message = _strip_paths(str(exc.args[0] if exc.args else "not found"))
        return _error(request, 404, message)

    @app.exception_handler(ConfigError)
    @app.exception_handler(DataError)
    async def bad_request(request: Request, exc: Exception):
        return _error(request, 422, public_message(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = [
            {"where": ".".join(str(p) for p in e["loc"]), "problem": _strip_paths(e["msg"])}
            for e in exc.errors()
        ]
        return _error(request, 422, "invalid request", errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if _wants_json(request):
            return await http_exception_handler(request, exc)
        return error_page(request, exc.status_code, _strip_paths(str(exc.detail)))

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception):
        log.exception("viewer error on %s", request.url.path)
        return _error(request, 500, f"internal error ({type(exc).__name__})")


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(JSON_PATHS)


def _error(request: Request, status: int, message: str, details: list | None = None):
    """A JSON error under the API and image paths, an HTML error page elsewhere."""
    if _wants_json(request):
        body = {"error": message} | ({"details": details} if details is not None else {})
        return JSONResponse(body, status_code=status)
    return error_page(request, status, message, details or [])


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

"""The viewer's HTML pages (server-rendered Jinja templates, no front-end build).

``/`` runs and search, ``/search?q=`` (user id, item id or title), ``/users`` (sortable, filterable,
paginated table with a run's stored per-user metric), ``/users/{id}`` (profile, top-k with rank, score and
explanation, truth, metrics, ACF attention), ``/items/{id}`` (title, metadata, neighbours, consumers),
``/compare/{id}?a=&b=`` (two runs' top-k, per-user metrics of both, overlap).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from visrec.viewer.catalog import search_users
from visrec.viewer.new_items import new_item_rows
from visrec.viewer.state import ViewerState
from visrec.viewer.users import (
    Hits,
    Order,
    Sort,
    UserQuery,
    base_table,
    metric_columns,
    select,
    with_metric,
)

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
PAGE = 40  # profile images per page
K = Query(20, ge=1, le=500, description="How many items.")
Consumed = Literal["hide", "show"]
"""hide: leave out what the user consumed (the default); show: keep it, framed red."""


def _run(default: int = 0):
    """A run-number parameter (a fresh Query each time: FastAPI binds one to its parameter's name)."""
    return Query(default, ge=0, description="Run number (order on the command line).")


def render(request: Request, name: str, context: dict, status_code: int = 200) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status_code)


REASONS = {404: "not found", 422: "invalid request", 500: "internal error"}


def error_page(
    request: Request, status: int, message: str, details: list | None = None
) -> HTMLResponse:
    """An HTML error page (what a browser gets instead of a JSON error body)."""
    context = {
        "status": status,
        "reason": REASONS.get(status, "error"),
        "message": message,
        "details": details or [],
    }
    return render(request, "error.html", context, status)


def _link(request: Request, **changes) -> str:
    """This page's URL with some query parameters changed (sort headers, pagination)."""
    params = dict(request.query_params) | {k: str(v) for k, v in changes.items()}
    return f"{request.url.path}?{urlencode(params)}"


def page_router(state: ViewerState) -> APIRouter:
    """The HTML pages over ``state``."""
    router = APIRouter(include_in_schema=False)
    _home_and_search(router, state)
    _users(router, state)
    _user(router, state)
    _item_and_compare(router, state)
    if state.new_items is not None:
        _new_item(router, state)
    return router


def _home_and_search(router: APIRouter, state: ViewerState) -> None:
    @router.get("/", response_class=HTMLResponse)
    def index(request: Request, user: str | None = Query(None, max_length=200)):
        if user:
            state.user_index(user)  # unknown: the HTML 404 page
            return RedirectResponse(f"/users/{user}", status_code=303)
        return render(request, "index.html", {"state": state})

    @router.get("/search", response_class=HTMLResponse)
    def search(request: Request, q: str = Query(..., min_length=1, max_length=200)):
        q = q.strip()
        if q in state.dataset.users:
            return RedirectResponse(f"/users/{q}", status_code=303)
        if q in state.dataset.items:
            return RedirectResponse(f"/items/{q}", status_code=303)
        users = search_users(state.dataset.users, q)
        items = state.catalog.search_items(q)
        context = {"state": state, "q": q, "search_q": q, "users": users, "items": items}
        return render(request, "search.html", context, 200 if users or items else 404)


def _users(router: APIRouter, state: ViewerState) -> None:
    @router.get("/users", response_class=HTMLResponse)
    def users(
        request: Request,
        run: int = _run(),
        evaluation: str | None = Query(None, alias="eval", max_length=100),
        metric: str | None = Query(None, max_length=100),
        sort: Sort = "user",
        order: Order = "asc",
        min_profile: int = Query(0, ge=0),
        max_profile: str = Query("", pattern=r"^\d{0,9}$", description="Empty: no upper bound."),
        hits: Hits = "any",
        k: int = K,
        page: int = Query(1, ge=1),
        per_page: int = Query(50, ge=1, le=500),
    ):
        names = state.evaluations(run)
        evaluation = evaluation or (
            "test-full" if "test-full" in names else next(iter(names), None)
        )
        per_user = state.per_user(run, evaluation) if evaluation else None
        metrics = metric_columns(per_user) if per_user is not None else []
        metric = metric or next((m for m in ("nDCG@20", "R@20", "AUC") if m in metrics), None)
        if metric is not None and metric not in metrics:
            raise KeyError(f"no metric {metric!r} in evaluation {evaluation!r}")
        most = int(max_profile) if max_profile else None  # the form sends an empty box as ""
        query = UserQuery(sort, order, min_profile, most, hits, k, page, per_page)
        table = with_metric(base_table(state.dataset), per_user, metric)
        context = {
            "state": state,
            "run": run,
            "q": query,
            "result": select(table, query),
            "evaluations": names,
            "evaluation": evaluation,
            "metrics": metrics,
            "metric": metric,
            "link": partial(_link, request),
        }
        return render(request, "users.html", context)


def _user(router: APIRouter, state: ViewerState) -> None:
    @router.get("/users/{user_id}", response_class=HTMLResponse)
    def user_page(
        request: Request,
        user_id: str,
        k: int = K,
        run: int = _run(),
        page: int = Query(1, ge=1),
        consumed: Consumed = "hide",
    ):
        u = state.user_index(user_id)
        ds = state.dataset
        profile = ds.items.ids_of(ds.profile(u)).tolist()
        pages = max(1, -(-len(profile) // PAGE))
        page = min(page, pages)
        recs = state.recommendations(run, u, k, show_consumed=consumed == "show")
        context = {
            "state": state,
            "user_id": user_id,
            "run": run,
            "k": k,
            "page": page,
            "pages": pages,
            "n_profile": len(profile),
            "profile": profile[(page - 1) * PAGE : page * PAGE],
            "recs": recs,
            "consumed": consumed,
            "why": state.explain(run, u, [r["item_id"] for r in recs]),
            "explanation_note": state.explanation_note(run),
            "metrics": state.user_metrics(run, u),
            "truth": ds.items.ids_of(ds.test[u].indices).tolist(),
            "attention": _attention(state, run, u),
        }
        return render(request, "user.html", context)


def _attention(state: ViewerState, run: int, u: int) -> list | None:
    att = state.attention(run, u)
    if att is None:
        return None
    ids = state.dataset.items.ids_of(att["items"])
    return [
        (str(i), float(w), pos)
        for pos, (i, w) in enumerate(zip(ids, att["item_weights"], strict=True))
    ]


def _item_and_compare(router: APIRouter, state: ViewerState) -> None:
    @router.get("/items/{item_id}", response_class=HTMLResponse)
    def item_page(request: Request, item_id: str, k: int = K):
        i = state.item_index(item_id)
        context = {
            "state": state,
            "item_id": item_id,
            "similar": state.similar(i, k),
            "consumers": state.consumers(i),
            "has_image": item_id in state.image_paths,
        }
        return render(request, "item.html", context)

    @router.get("/compare/{user_id}", response_class=HTMLResponse)
    def compare(
        request: Request,
        user_id: str,
        a: int = _run(0),
        b: int = _run(1),
        k: int = K,
        consumed: Consumed = "hide",
    ):
        u = state.user_index(user_id)
        show = consumed == "show"
        recs = {r: state.recommendations(r, u, k, show_consumed=show) for r in (a, b)}
        shared = {row["item_id"] for row in recs[a]} & {row["item_id"] for row in recs[b]}
        union = {row["item_id"] for rows in recs.values() for row in rows}
        metrics = {r: state.user_metrics(r, u) for r in (a, b)}
        context = {
            "state": state,
            "user_id": user_id,
            "a": a,
            "b": b,
            "k": k,
            "consumed": consumed,
            "columns": [(r, recs[r]) for r in (a, b)],
            "metrics": metrics,
            "metric_names": list(dict.fromkeys([*metrics[a], *metrics[b]])),
            "shared": shared,
            "jaccard": len(shared) / len(union) if union else float("nan"),
        }
        return render(request, "compare.html", context)


def _new_item(router: APIRouter, state: ViewerState) -> None:
    @router.get("/new-items/{item_id}", response_class=HTMLResponse)
    def new_item_page(request: Request, item_id: str, k: int = K, run: int = _run()):
        context = {
            "state": state,
            "item_id": item_id,
            "run": run,
            "k": k,
            "model": state.run(run).meta["model"],
            "users": new_item_rows(state, run, item_id, k),
            "has_image": item_id in state.new_items.image_paths,
        }
        return render(request, "new_item.html", context)


__all__ = ["TEMPLATES", "error_page", "page_router", "render"]

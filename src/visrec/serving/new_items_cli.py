"""``visrec recommend RUN --new-items IMAGES_OR_STORE``: who should see new items, or where they land."""

from __future__ import annotations

import json
from pathlib import Path

import click

from visrec.serving.new_content import NewItems, check_scores_new_items, load_new_items
from visrec.serving.new_items import n_candidates, new_item_audience, new_item_placement


def recommend_new_items(
    run, source: Path, *, user_id: str | None, k: int, as_json: bool, weights, device
) -> None:
    """Print per new item its top-k users, or (``user_id``) where each new item lands for that user."""
    check_scores_new_items(run.model)  # before any extraction work
    user_idx = run.model.users.index(user_id) if user_id is not None else None
    items = load_new_items(run, source, weights=weights, device=device)
    for problem in items.problems:
        click.echo(f"warning: skipped {problem['path']}: {problem['reason']}", err=True)
    model = run.meta["model"]
    if user_idx is None:
        out = _audiences(run, items, k)
        header = f"top {k} users for each of {len(items)} new items ({model})"
    else:
        out = {
            "user_id": user_id,
            "n_known_candidates": n_candidates(run, user_idx),
            "new_items": new_item_placement(run, items, user_idx),
        }
        for row in out["new_items"]:
            row["image"] = _image(items, row["item_id"])
        header = (
            f"where {len(items)} new items land for user {user_id} ({model}; "
            f"{out['n_known_candidates']} known items in the list)"
        )
    out = {"model": model, **out, "skipped": items.problems}
    if as_json:
        click.echo(json.dumps(out, indent=2))
    else:
        _print(out, header)


def _image(items: NewItems, item_id: str) -> str | None:
    path = items.images.get(item_id)
    return str(path) if path else None


def _audiences(run, items: NewItems, k: int) -> dict:
    audiences = new_item_audience(run, items, k)
    user_ids = run.model.users.ids
    return {
        "new_items": [
            {
                "item_id": a.item_id,
                "image": _image(items, a.item_id),
                "users": a.to_rows(user_ids),
            }
            for a in audiences
        ]
    }


def _print(out: dict, header: str) -> None:
    click.echo(header)
    if "user_id" in out:
        click.echo(f"{'pos':>6} {'among known':>11}  {'item':<16} {'score':>12}  image")
        for row in out["new_items"]:
            click.echo(
                f"{row['position']:>6} {row['position_among_known']:>11}  {row['item_id']:<16} "
                f"{row['score']:>12.5f}  {row['image'] or ''}"
            )
        return
    for item in out["new_items"]:
        click.echo(f"\nnew item {item['item_id']}  {item['image'] or ''}")
        for row in item["users"]:
            click.echo(f"{row['rank']:>4}  {row['user_id']:<16} {row['score']:>12.5f}")

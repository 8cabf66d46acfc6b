"""``visrec recommend`` and ``visrec similar``."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import click

from visrec.choices import INDEX_KINDS
from visrec.errors import ConfigError, DataError

# Heavy modules are imported inside the command bodies, so `--help` needs no torch (test_cli_startup).


def index_option(help: str):
    """The ``--index exact|faiss`` option of ``visrec recommend`` and ``visrec serve``."""
    return click.option(
        "--index", type=click.Choice(INDEX_KINDS), default="exact", show_default=True, help=help
    )


def _image_paths(run) -> dict:
    source_images = None
    try:
        from visrec.data.loaders import open_images

        source_images = open_images(run.data.path)[1]
    except (DataError, FileNotFoundError):
        pass
    return source_images or {}


def _print(rows: list[dict], as_json: bool, header: str) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(header)
    for row in rows:
        mark = "  [consumed]" if row.get("consumed") else ""
        click.echo(
            f"{row['rank']:>4}  {row['item_id']:<16} {row['score']:>12.5f}  "
            f"{row.get('image') or ''}{mark}".rstrip()
        )


@click.command("recommend")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--user", "user_id", default=None, help="A known user's id.")
@click.option(
    "--items", "item_ids", default=None, help="A new user's profile: item ids, comma-separated."
)
@click.option("-k", "k", type=click.IntRange(1), default=20, show_default=True)
@click.option(
    "--show-consumed",
    "--include-consumed",
    "show_consumed",
    is_flag=True,
    help="Keep items the user already consumed (anywhere in the data), marked 'consumed'.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@index_option("faiss: an inner-product index (dot-product models; extra visrec[faiss]).")
@click.option(
    "--new-items",
    "new_items",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Items never seen in training (an image folder or a feature store): print each one's top-k "
    "users, or with --user where they land in that user's list.",
)
@click.option(
    "--weights",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="--new-items: the weights file the run's features were extracted with (when not imagenet).",
)
@click.option(
    "--device", default=None, help="--new-items: where the backbone runs [default: auto]."
)
def recommend_cmd(
    run_dir, user_id, item_ids, k, show_consumed, as_json, index, new_items, weights, device
):
    """Top-k recommendations of a trained run for a user (--user) or a new profile (--items); or, with
    --new-items, who should see items the run never saw (no re-training).

    Items the user consumed (train, validation and test interactions; for --items, the profile) are
    left out unless --show-consumed."""
    from visrec.runs import load_run

    if new_items is not None:
        if item_ids is not None:
            raise click.UsageError("--new-items takes --user ID or nothing, not --items")
        from visrec.serving.new_items_cli import recommend_new_items

        run = load_run(run_dir)
        recommend_new_items(
            run, new_items, user_id=user_id, k=k, as_json=as_json, weights=weights, device=device
        )
        return
    if (user_id is None) == (item_ids is None):
        raise click.UsageError("give exactly one of --user ID or --items ID,ID,...")
    from visrec.models.capabilities import ScoresProfiles
    from visrec.serving.index import build_index
    from visrec.serving.topk import recommend_profile, recommend_users

    run = load_run(run_dir)
    model = run.model
    indexed = build_index(model, index)
    if user_id is not None:
        user_idx = model.users.index(user_id)
        serve = indexed.recommend_users if indexed else partial(recommend_users, model)
        rec = serve(run.dataset, [user_idx], k, exclude_consumed=not show_consumed)[0]
        header = f"top {k} for user {user_id} ({run.meta['model']})"
    else:
        ids = [i.strip() for i in item_ids.split(",") if i.strip()]
        if not isinstance(model, ScoresProfiles):
            raise ConfigError(
                f"{run.meta['model']} cannot serve a new profile: use a profile-based "
                "model (visrank, curatornet, acf, pop)"
            )
        serve = indexed.recommend_profile if indexed else partial(recommend_profile, model)
        rec = serve(model.items.indices(ids), k, exclude_consumed=not show_consumed)
        header = f"top {k} for a new user with {len(ids)} items ({run.meta['model']})"
    rows = rec.to_rows(model.items.ids)
    images = _image_paths(run)
    for row in rows:
        path = images.get(row["item_id"])
        row["image"] = str(path) if path else None
    _print(rows, as_json, header)


@click.command("similar")
@click.argument("store_path", metavar="STORE", type=click.Path(exists=True, path_type=Path))
@click.option("--item", "item_id", required=True, help="The item whose visual neighbours to list.")
@click.option("-k", "k", type=click.IntRange(1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def similar_cmd(store_path, item_id, k, as_json):
    """The k items whose features are most cosine-similar to --item (VisRank-style)."""
    from visrec.features import FeatureStore
    from visrec.serving.topk import similar_items

    store = FeatureStore.open(store_path)
    rec = similar_items(store.array, store.vocab.index(item_id), k)
    _print(rec.to_rows(store.ids, flags=False), as_json, f"top {k} visually similar to {item_id}")


@click.command("grid")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--user", "user_id", required=True, help="The user's id.")
@click.option("-k", "k", type=click.IntRange(1), default=20, show_default=True)
@click.option(
    "--last",
    type=click.IntRange(1),
    default=None,
    help="How many of the most recent profile items to show [default: k].",
)
@click.option("--columns", type=click.IntRange(1), default=10, show_default=True)
@click.option("--thumb", type=click.IntRange(16, 512), default=96, show_default=True)
@click.option(
    "--show-consumed/--exclude-consumed",
    default=False,
    show_default=True,
    help="Keep consumed items in the top-k, framed (green: held-out test item, red: other "
    "consumed); by default they are left out.",
)
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Item image folder [default: the run's dataset images].",
)
@click.option(
    "-o", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="PNG path."
)
def grid_cmd(run_dir, user_id, k, last, columns, thumb, show_consumed, images, out):
    """Write a PNG contact sheet for one user: whole profile, top-k, held-out truth.

    The top-k leaves out what the user consumed unless --show-consumed (then hits green, consumed red)."""
    from visrec.data.images import scan_images
    from visrec.runs import load_run
    from visrec.serving.grid import GridLayout, draw_grid, user_sections, write_grid

    run = load_run(run_dir)
    user_idx = run.model.users.index(user_id)
    sections = user_sections(
        run.model, run.dataset, user_idx, k, last=last, exclude_consumed=not show_consumed
    )
    paths = scan_images(images)[0] if images else _image_paths(run)
    if not paths:
        click.echo("warning: no item images found; drawing placeholders", err=True)
    layout = GridLayout(thumb=thumb, columns=columns)
    sheet = draw_grid(sections, paths, layout, title=f"user {user_id}, {run.meta['model']}")
    write_grid(sheet, out)
    if show_consumed:
        marks = sections[1].marks
        shown = (
            f"{marks.count('hit')} hit(s), {marks.count('consumed')} other consumed in the top {k}"
        )
    else:
        shown = f"top {k} without consumed items; --show-consumed frames them"
    click.echo(f"wrote {out} ({sheet.width}x{sheet.height}, {shown})")

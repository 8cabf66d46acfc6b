"""``visrec serve``."""

from __future__ import annotations

from pathlib import Path

import click

from visrec.serving.cli import index_option


@click.command("serve")
@click.argument(
    "run_dirs",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option(
    "--images",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The item image folder (images are served only from here).",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Bind address (local only by default)."
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--thumbs",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Thumbnail cache folder [default: beside the image folder].",
)
@index_option("faiss: serve dot-product runs through an inner-product index (extra visrec[faiss]).")
@click.option(
    "--new-items",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Items never seen in training (image folder or feature store): pages /new-items/ID.",
)
def serve_cmd(run_dirs, images, host, port, thumbs, index, new_items):
    """Serve a web viewer of one or more trained runs."""
    import uvicorn

    from visrec.viewer.app import create_app
    from visrec.viewer.state import ViewerState

    state = ViewerState.open(list(run_dirs), images, thumbs, index=index, new_items=new_items)
    click.echo(f"visrec viewer on http://{host}:{port}/ (API docs at /docs)")
    uvicorn.run(create_app(state), host=host, port=port, log_level="warning")

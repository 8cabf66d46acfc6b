"""``visrec data demo`` and ``visrec data stats``.

``data fetch`` and ``data check`` also write or check feature stores, so they live one layer up
(:mod:`visrec.features.dataset_cli`); ``visrec.cli`` attaches them to this group.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from visrec.choices import SPLIT_METHODS as METHODS
from visrec.data.demo_spec import DemoSpec


@click.group("data")
def data_group() -> None:
    """Create, inspect and check datasets."""


@data_group.command("demo")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--users", "n_users", default=DemoSpec.n_users, show_default=True, type=click.IntRange(2)
)
@click.option(
    "--items", "n_items", default=DemoSpec.n_items, show_default=True, type=click.IntRange(10)
)
@click.option(
    "--image-size", default=DemoSpec.image_size, show_default=True, type=click.IntRange(16, 1024)
)
@click.option("--seed", default=DemoSpec.seed, show_default=True, type=int)
@click.option("--force", is_flag=True, help="Replace OUT_DIR if it exists.")
def demo_cmd(
    out_dir: Path, n_users: int, n_items: int, image_size: int, seed: int, force: bool
) -> None:
    """Write the synthetic demo dataset (images + interactions + truth.json) to OUT_DIR."""
    from visrec.data.demo import generate_demo

    spec = DemoSpec(n_users=n_users, n_items=n_items, image_size=image_size, seed=seed)
    generate_demo(out_dir, spec, force=force)
    click.echo(f"demo dataset written to {out_dir} ({n_users} users, {n_items} items, seed {seed})")


@data_group.command("stats")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--split",
    "split_method",
    type=click.Choice(METHODS),
    default=None,
    help="Also count the parts of this split (cold items, users with cold targets for cold splits).",
)
@click.option("--cutoff", type=int, default=None, help="Cut-off of the temporal splits.")
@click.option("--cold-fraction", type=float, default=0.1, show_default=True)
@click.option("--split-seed", type=click.IntRange(0), default=0, show_default=True)
@click.option("--no-validation", is_flag=True, help="Split without validation targets.")
def stats_cmd(
    path: Path,
    as_json: bool,
    split_method: str | None,
    cutoff: int | None,
    cold_fraction: float,
    split_seed: int,
    no_validation: bool,
) -> None:
    """Users, items, interactions, density and activity quantiles of a dataset or CSV."""
    from visrec.data.loaders import open_dataset
    from visrec.data.split import SplitSpec
    from visrec.data.stats import format_split_stats, format_stats, interaction_stats, split_stats

    source = open_dataset(path)
    frame = source.interactions.frame
    n_catalogue = len(set(source.catalogue_ids()) | set(frame["item_id"]))
    stats = interaction_stats(frame, n_items=n_catalogue)
    stats["duplicates_dropped"] = source.interactions.n_duplicates_dropped
    if split_method is not None:
        spec = SplitSpec(
            split_method,
            validation=not no_validation,
            cutoff=cutoff,
            cold_fraction=cold_fraction,
            seed=split_seed,
        )
        stats["split"] = split_stats(frame, spec)
    if as_json:
        click.echo(json.dumps(stats, indent=2))
    else:
        click.echo(format_stats(stats, source.name))
        if "split" in stats:
            click.echo("\n" + format_split_stats(stats["split"]))

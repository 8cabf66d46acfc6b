"""``visrec data ...`` commands."""

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


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if option == "--from-file" and (not sep or "/" in key or "\\" in key):
            key, rest = Path(value).name, value  # matched to a part by its file name
        elif not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint=option)
        pairs[key.strip()] = rest
    return pairs


@data_group.command("fetch")
@click.argument("name", type=click.Choice(["wikimedia", "ugallery", "movielens-100k"]))
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Dataset folder to write (default: ./NAME).",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Download cache (default: $VISREC_CACHE or ~/.cache/visrec).",
)
@click.option(
    "--from-file",
    "from_files",
    multiple=True,
    metavar="[KEY=]PATH",
    help="Use a file downloaded by hand instead of downloading it (repeatable).",
)
@click.option(
    "--base-url",
    help="Fetch every file from BASE_URL/<file name> (mirror; also $VISREC_FETCH_URL).",
)
@click.option(
    "--embeddings",
    is_flag=True,
    help="Also fetch the precomputed ResNet50 embeddings and convert them to a feature "
    "store. They are pickled .npy files: this flag is your opt-in to reading them (through "
    "a restricted unpickler), so only use it for files from the source you trust.",
)
@click.option(
    "--column",
    "columns",
    multiple=True,
    metavar="KEY=NAME",
    help="UGallery column mapping, e.g. purchases.user=user_id_hash (repeatable).",
)
@click.option("--force", is_flag=True, help="Replace the output folder if it exists.")
def fetch_cmd(
    name: str,
    out_dir: Path | None,
    cache_dir: Path | None,
    from_files: tuple[str, ...],
    base_url: str | None,
    embeddings: bool,
    columns: tuple[str, ...],
    force: bool,
) -> None:
    """Download dataset NAME and write a ready-to-use dataset folder with a data card."""
    from visrec.data.fetch import fetch_dataset

    out = fetch_dataset(
        name,
        out_dir or Path(name),
        cache_dir=cache_dir,
        base_url=base_url,
        from_files=_pairs(from_files, "--from-file"),
        embeddings=embeddings,
        columns=_pairs(columns, "--column"),
        force=force,
    )
    click.echo(
        f"{name} written to {out} (see {out / 'CARD.md'}); check it with: visrec data check {out}"
    )


@data_group.command("check")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--quick", is_flag=True, help="Check image headers only, without decoding pixels.")
@click.option("--strict", is_flag=True, help="Warnings make the dataset unusable too.")
@click.option(
    "--max-ids",
    default=20,
    show_default=True,
    type=click.IntRange(0),
    help="Ids shown per problem (0: none).",
)
def check_cmd(folder: Path, quick: bool, strict: bool, max_ids: int) -> None:
    """Validate a dataset folder, printing every problem; exit code 0 only when it is usable."""
    from visrec.data.check import check_dataset

    report = check_dataset(folder, decode=not quick)
    click.echo(report.format(max_ids=max_ids))
    if not report.usable or (strict and report.problems):
        raise click.ClickException(
            f"{folder}: not usable" + (" (--strict)" if report.usable else "")
        )

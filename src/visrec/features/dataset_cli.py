"""``visrec data fetch`` and ``visrec data check``: dataset commands that also touch feature stores.

They sit above the data layer because a fetched dataset may come with converted embeddings and a checked
dataset may declare a feature store; ``visrec.cli`` attaches them to the ``visrec data`` group.
"""

from __future__ import annotations

from pathlib import Path

import click

# The fetch and check machinery is imported inside the command bodies: `visrec data --help` lists these
# commands without loading pandas, torch or PIL (tests/test_cli_startup.py).


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


@click.command("fetch")
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
    from visrec.features.legacy import import_tutorial_embeddings

    out = fetch_dataset(
        name,
        out_dir or Path(name),
        cache_dir=cache_dir,
        base_url=base_url,
        from_files=_pairs(from_files, "--from-file"),
        embeddings=embeddings,
        convert_embeddings=import_tutorial_embeddings,
        columns=_pairs(columns, "--column"),
        force=force,
    )
    click.echo(
        f"{name} written to {out} (see {out / 'CARD.md'}); check it with: visrec data check {out}"
    )


@click.command("check")
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
    from visrec.features.check import check_dataset

    report = check_dataset(folder, decode=not quick)
    click.echo(report.format(max_ids=max_ids))
    if not report.usable or (strict and report.problems):
        raise click.ClickException(
            f"{folder}: not usable" + (" (--strict)" if report.usable else "")
        )

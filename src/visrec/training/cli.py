"""``visrec train`` and ``visrec models``."""

from __future__ import annotations

import tomllib
from pathlib import Path

import click

from visrec.choices import SPLIT_METHODS as METHODS
from visrec.errors import ConfigError


def parse_sets(values: tuple[str, ...]) -> dict:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint="--set")
        out[key.strip()] = value.strip()
    return out


def read_config(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a valid TOML file ({exc})") from exc


def data_options(func):
    """The options that say which data and split a command uses (shared by train and benchmark)."""
    options = [
        click.option(
            "--data",
            "data_path",
            required=True,
            type=click.Path(exists=True, path_type=Path),
            help="Dataset folder or interaction file.",
        ),
        click.option(
            "--split",
            "split_method",
            type=click.Choice(METHODS),
            default="leave-last-out",
            show_default=True,
        ),
        click.option(
            "--cutoff",
            type=int,
            default=None,
            help="Timestamp cut-off of the temporal and cold-items-temporal splits.",
        ),
        click.option(
            "--cold-fraction",
            type=float,
            default=0.1,
            show_default=True,
            help="cold-items split: fraction of items new in test (and again in validation).",
        ),
        click.option(
            "--split-seed", type=click.IntRange(0), default=0, help="Seed of the cold-items split."
        ),
        click.option("--no-validation", is_flag=True, help="Do not carve a validation basket."),
        click.option(
            "--min-user", type=click.IntRange(1), default=1, help="k-core: min events per user."
        ),
        click.option(
            "--min-item", type=click.IntRange(1), default=1, help="k-core: min events per item."
        ),
        click.option(
            "--min-rating", type=float, default=None, help="Keep ratings >= this (explicit data)."
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def make_data_spec(
    data_path,
    split_method,
    cutoff,
    no_validation,
    min_user,
    min_item,
    min_rating,
    cold_fraction=0.1,
    split_seed=0,
):
    filters = {}
    if min_user > 1 or min_item > 1:
        filters |= {"min_user": min_user, "min_item": min_item}
    if min_rating is not None:
        filters["min_rating"] = min_rating
    from visrec.training.run import DataSpec

    split = {"method": split_method, "validation": not no_validation, "cutoff": cutoff}
    if split_method == "cold-items":
        split |= {"cold_fraction": cold_fraction, "seed": split_seed}
    return DataSpec(str(Path(data_path).resolve()), split, filters)


@click.command("train")
@click.argument("model_name", metavar="MODEL")
@data_options
@click.option(
    "--features",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Feature store (pooled or spatial) or, for pixel models, an image folder.",
)
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Image folder for pixel models (default: the dataset's images).",
)
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Run directory.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="TOML file of model options.",
)
@click.option(
    "--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override one model option."
)
@click.option(
    "--resume", is_flag=True, help="Continue an interrupted run from its last checkpoint."
)
@click.option(
    "--force", is_flag=True, help="Replace a finished run (only once the new one finishes)."
)
def train_cmd(model_name, features, images, out, config_file, sets, resume, force, **data_kw):
    """Train MODEL (see `visrec models`) and write the run directory OUT."""
    config = read_config(config_file) | parse_sets(sets)
    data = make_data_spec(**data_kw)
    source = images or features
    from visrec.distributed import barrier, init_from_env, shutdown
    from visrec.training.run import train_run
    from visrec.training.trainer import format_epoch

    ctx = init_from_env()
    model = train_run(
        model_name,
        data,
        out,
        config=config,
        features=str(source) if source else None,
        resume=resume,
        force=force,
        dist=ctx,
        on_epoch=lambda row, epochs: click.echo(format_epoch(row, epochs)),
    )
    barrier(ctx)
    shutdown(ctx)
    if not ctx.is_main:
        return
    info = model.info.get("training", {})
    click.echo(f"trained {model_name} -> {out}")
    if info:
        metric = next((k for k in info if k.startswith("best_val_")), None)
        if metric and info[metric] is not None:
            click.echo(
                f"  best epoch {info['best_epoch']} of {info['epochs_run']}: "
                f"validation {metric[9:]} {info[metric]:.5f}"
            )


@click.command("models")
@click.argument("name", required=False)
def models_cmd(name: str | None) -> None:
    """List the registered models, or show one model's options."""
    from visrec.models import registry

    names = [name] if name else registry.names()
    for model_name in names:
        cls = registry.get(model_name)
        extras = [f"features: {cls.features}"] if cls.features else []
        if cls.profile_based:
            extras.append("profile-based (serves new users)")
        click.echo(
            f"{model_name:<12} {cls.__name__}" + (f"  [{'; '.join(extras)}]" if extras else "")
        )
        if name:
            for field_name, type_name, default, doc in cls.config_class.describe():
                click.echo(f"  {field_name:<20} {type_name:<8} {default!s:<10} {doc}")

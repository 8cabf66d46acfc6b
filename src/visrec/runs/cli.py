"""``visrec train``, ``visrec models`` and ``visrec evaluate``."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import click

from visrec.choices import DEFAULT_METRICS, EVAL_MODES, EVAL_SPLITS, METRICS
from visrec.choices import SPLIT_METHODS as METHODS
from visrec.errors import ConfigError

if TYPE_CHECKING:
    from visrec.runs.directory import DataSpec

# Heavy modules (torch, pandas, the runs package) are imported inside the command bodies, so that
# `visrec train --help` and `visrec evaluate --help` answer without them (tests/test_cli_startup.py).


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
) -> DataSpec:
    """The :func:`~visrec.runs.data_spec` of the :func:`data_options` flags."""
    from visrec.runs.directory import data_spec

    return data_spec(
        data_path,
        split=split_method,
        validation=not no_validation,
        cutoff=cutoff,
        cold_fraction=cold_fraction,
        split_seed=split_seed,
        min_user=min_user,
        min_item=min_item,
        min_rating=min_rating,
    )


def input_options(command):
    """``--features`` and ``--images``: what a model reads besides interactions (train, tune)."""
    command = click.option(
        "--images",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        default=None,
        help="Image folder for pixel models (default: the dataset's images).",
    )(command)
    return click.option(
        "--features",
        type=click.Path(exists=True, path_type=Path),
        default=None,
        help="Feature store (pooled or spatial) or, for pixel models, an image folder.",
    )(command)


@click.command("train")
@click.argument("model_name", metavar="MODEL")
@data_options
@input_options
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
    from visrec.distributed import torchrun
    from visrec.runs.train import train_run
    from visrec.training.trainer import format_epoch

    with torchrun(barrier_at_end=True) as ctx:
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
        if info.get("stopped_by") == "patience":
            click.echo(f"  stopped early at epoch {info['epochs_run']} (patience)")
        elif info.get("stopped_by") == "budget":
            click.echo(f"  epoch budget reached ({info['epochs_run']} epochs)")


@click.command("models")
@click.argument("name", required=False)
def models_cmd(name: str | None) -> None:
    """List the registered models, or show one model's options."""
    from visrec.models import registry
    from visrec.models.capabilities import ScoresProfiles

    names = [name] if name else registry.names()
    for model_name in names:
        cls = registry.get(model_name)
        kinds = ", ".join(i.kind for i in cls.inputs)
        extras = [f"features: {kinds}"] if kinds else []
        if issubclass(cls, ScoresProfiles):
            extras.append("profile-based (serves new users)")
        click.echo(
            f"{model_name:<12} {cls.__name__}" + (f"  [{'; '.join(extras)}]" if extras else "")
        )
        if name:
            for field_name, type_name, default, doc in cls.config_class.describe():
                click.echo(f"  {field_name:<20} {type_name:<8} {default!s:<10} {doc}")


@click.command("evaluate")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(EVAL_SPLITS), default="test", show_default=True)
@click.option(
    "--mode",
    "modes",
    type=click.Choice(EVAL_MODES),
    multiple=True,
    default=("full",),
    show_default=True,
    help="full ranking, sampled negatives (labelled), the IUI 2021 tutorial's definitions, or on a "
    "cold-item split cold (new items among new items) and mixed (among all unconsumed items); "
    "repeat to compute several modes from one scoring pass.",
)
@click.option(
    "--metric",
    "metric_names",
    type=click.Choice(METRICS),
    multiple=True,
    help=f"Metrics to compute (repeat); default {', '.join(DEFAULT_METRICS)}.",
)
@click.option(
    "--ks",
    default=None,
    help="Comma-separated cut-offs of the metrics with k (default 20,100,200).",
)
@click.option(
    "--item-features",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Feature store whose item vectors the diversity metric compares.",
)
@click.option(
    "--negatives",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Random negatives per user in sampled mode.",
)
@click.option(
    "--block-size",
    type=click.IntRange(1),
    default=None,
    help="Users scored at once (bounds memory; never changes a result). Default: ~16.8M scores.",
)
@click.option("--seed", type=click.IntRange(0), default=0, help="Seed of the sampled negatives.")
@click.option("--force", is_flag=True, help="Replace an earlier evaluation of the same kind.")
def evaluate_cmd(
    run_dir, split, modes, metric_names, ks, item_features, negatives, block_size, seed, force
):
    """Evaluate the run in RUN_DIR; write RUN_DIR/eval/<split>-<mode>.json (means) and .csv (per user)."""
    from visrec.distributed import torchrun
    from visrec.runs.evaluate import eval_paths, evaluate_run_modes

    options = {}
    if metric_names:
        options["metrics"] = metric_names
    if ks is not None:
        try:
            options["ks"] = tuple(int(k) for k in ks.split(","))
        except ValueError:
            raise click.BadParameter(
                f"{ks!r}: expected integers like 20,100", param_hint="--ks"
            ) from None
    if item_features is not None:
        options["item_features"] = str(item_features)
    with torchrun() as ctx:  # under torchrun: users split across ranks, rank 0 writes
        results = evaluate_run_modes(
            run_dir,
            dist=ctx,
            split=split,
            modes=modes,
            n_negatives=negatives,
            existing="overwrite" if force else "refuse",
            block_size=block_size,
            seed=seed,
            **options,
        )
    if not ctx.is_main:
        return
    for mode, result in results.items():
        json_path, csv_path = eval_paths(run_dir, split, mode, negatives)
        click.echo(result.summary())
        if result.skipped:
            click.echo(f"  {len(result.skipped)} users skipped (no candidate negative left)")
        click.echo(f"wrote {json_path} and {csv_path}")

"""``visrec tune MODEL --data ... --trials N -o DIR``: Optuna search on validation, test once at the end."""

from __future__ import annotations

from pathlib import Path

import click

from visrec.choices import TUNE_SAMPLERS as SAMPLERS
from visrec.runs.cli import data_options, input_options, make_data_spec, parse_sets, read_config


@click.command("tune")
@click.argument("model_name", metavar="MODEL")
@data_options
@input_options
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Tune folder.")
@click.option(
    "--trials", type=click.IntRange(1), default=20, show_default=True, help="Trials in all."
)
@click.option("--sampler", type=click.Choice(SAMPLERS), default="tpe", show_default=True)
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Sampler seed.")
@click.option("--metric", default="AUC", show_default=True, help="Validation metric to maximise.")
@click.option(
    "--space",
    "spaces",
    multiple=True,
    metavar="KEY=SPEC",
    help="Searched option: a,b,c | low..high | log:low..high (repeat; replaces the model's "
    "declared space).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="TOML file of fixed model options.",
)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Fix one model option.")
@click.option("--no-prune", is_flag=True, help="Train every trial to its end (no median pruning).")
@click.option(
    "--prune-after",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Epochs every trial trains before median pruning may stop it.",
)
def tune_cmd(
    model_name,
    features,
    images,
    out,
    trials,
    sampler,
    seed,
    metric,
    spaces,
    config_file,
    sets,
    no_prune,
    prune_after,
    **data_kw,
):
    """Search MODEL's options on validation (Optuna); evaluate the best run on test once.

    Rerunning the command on the same -o resumes the search (up to --trials trials in all).
    """
    from visrec.tuning import TuneSettings, tune

    source = images or features
    settings = TuneSettings(
        model=model_name,
        data=make_data_spec(**data_kw),
        features=str(Path(source).resolve()) if source else None,
        fixed=read_config(config_file) | parse_sets(sets),
        space=_spaces(spaces),
        sampler=sampler,
        seed=seed,
        metric=metric,
        prune=not no_prune,
        prune_after=prune_after,
    )
    result = tune(settings, out, trials, echo=click.echo)
    click.echo(f"wrote {out / 'trials.md'}, trials.csv, history.png and best.json")
    click.echo(f"best run: {result.best_dir}")


def _spaces(values: tuple[str, ...]) -> dict:
    out = {}
    for item in values:
        key, sep, spec = item.partition("=")
        if not sep or not key.strip() or not spec.strip():
            raise click.BadParameter(f"expected KEY=SPEC, got {item!r}", param_hint="--space")
        out[key.strip()] = spec.strip()
    return out

"""``visrec evaluate RUN_DIR``: metrics of a finished run, stored beside it (see evaluation/runs.py)."""

from __future__ import annotations

from pathlib import Path

import click

from visrec.evaluation.engine import MODES, SPLITS
from visrec.evaluation.registry import DEFAULT_METRICS, REGISTRY
from visrec.evaluation.runs import eval_paths, evaluate_run_modes


@click.command("evaluate")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(SPLITS), default="test", show_default=True)
@click.option(
    "--mode",
    "modes",
    type=click.Choice(MODES),
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
    type=click.Choice(list(REGISTRY)),
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
    from visrec.distributed import init_from_env, shutdown
    from visrec.evaluation import kernels

    kernels.prefetch()  # numba's import and the kernel's load overlap loading the run and scoring
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
    ctx = init_from_env()  # under torchrun: users split across ranks, rank 0 writes
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
    shutdown(ctx)
    if not ctx.is_main:
        return
    for mode, result in results.items():
        json_path, csv_path = eval_paths(run_dir, split, mode, negatives)
        click.echo(result.summary())
        if result.skipped:
            click.echo(f"  {len(result.skipped)} users skipped (no candidate negative left)")
        click.echo(f"wrote {json_path} and {csv_path}")

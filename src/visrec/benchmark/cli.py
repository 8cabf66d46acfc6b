"""``visrec benchmark CONFIG.toml``: train or reuse every model of the file, then the tables and plots."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("benchmark")
@click.argument(
    "config_path",
    metavar="CONFIG.toml",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: CONFIG's name + '-out' beside it).",
)
@click.option("--force", is_flag=True, help="Retrain and re-evaluate every run instead of reusing.")
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots.")
def benchmark_cmd(config_path: Path, out: Path | None, force: bool, no_plots: bool) -> None:
    """Train what is missing, select on validation, evaluate on test; write results.md/csv/json + plots."""
    from visrec.benchmark.sections import sections_of, tables_text, title
    from visrec.benchmark.suite import run_suite

    out = out or config_path.with_name(f"{config_path.stem}-out")
    summary = run_suite(config_path, out, force=force, plots=not no_plots, echo=click.echo)
    click.echo("")
    click.echo(tables_text(summary))
    for section in sections_of(summary):
        if section.get("backbones"):
            from visrec.benchmark.backbones import backbone_markdown

            where = f" ({title(section)})" if len(sections_of(summary)) > 1 else ""
            click.echo(
                f"\nbackbones{where} (ImageNet top-1 beside each visual model's test quality):"
            )
            click.echo(backbone_markdown(section["backbones"], section["metrics"]))
    models = [m for section in sections_of(summary) for m in section["models"]]
    failed = sorted({m["name"] for m in models if m["status"] not in ("ok", "n/a")})
    if failed:
        click.echo(f"\nfailed: {', '.join(failed)} (errors in {out / 'results.md'})")
    click.echo(f"\nwrote {out / 'results.md'}, results.csv, results.json")
    if summary["plots"]:
        click.echo(
            f"plots: {Path(summary['plots'][0]).parent}/ ({len(summary['plots'])} PNG files)"
        )

"""The ``visrec`` command line. Each pipeline stage registers its own command group here."""

from __future__ import annotations

import importlib
import logging
import sys

import click

from visrec import __version__
from visrec._threads import set_cpu_threads
from visrec.errors import VisrecError

# (module, attribute, short help) of every command; imported lazily so `visrec --help` stays fast: the
# short help shown there is written here (tests/test_cli_startup.py checks it matches each command's own).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "data": ("visrec.data.cli", "data_group", "Create, inspect and check datasets."),
    "extract": ("visrec.features.cli", "extract_cmd", "Extract CNN features of every image in..."),
    "features": (
        "visrec.features.cli",
        "features_group",
        "Inspect, import and export feature stores.",
    ),
    "train": ("visrec.runs.cli", "train_cmd", "Train MODEL (see `visrec models`) and..."),
    "models": ("visrec.runs.cli", "models_cmd", "List the registered models, or show one..."),
    "recommend": (
        "visrec.serving.cli",
        "recommend_cmd",
        "Top-k recommendations of a trained run for...",
    ),
    "similar": ("visrec.serving.cli", "similar_cmd", "The k items whose features are most..."),
    "grid": ("visrec.serving.cli", "grid_cmd", "Write a PNG contact sheet for one user:..."),
    "serve": ("visrec.viewer.cli", "serve_cmd", "Serve a web viewer of one or more trained..."),
    "evaluate": ("visrec.runs.cli", "evaluate_cmd", "Evaluate the run in RUN_DIR; write..."),
    "tune": ("visrec.tuning.cli", "tune_cmd", "Search MODEL's options on validation..."),
    "benchmark": ("visrec.benchmark.cli", "benchmark_cmd", "Train what is missing, select on..."),
}
SHORT_HELP_LIMIT = 45
# Subcommands defined above their group's layer: (group, name) -> (module, attribute). Their modules
# import heavy code only inside the command bodies, so `visrec data --help` stays fast too.
SUBCOMMANDS: dict[tuple[str, str], tuple[str, str]] = {
    ("data", "fetch"): ("visrec.features.dataset_cli", "fetch_cmd"),
    ("data", "check"): ("visrec.features.dataset_cli", "check_cmd"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        command = getattr(importlib.import_module(module), attr)
        for (group, sub), (sub_module, sub_attr) in SUBCOMMANDS.items():
            if group == name and sub not in command.commands:
                command.add_command(getattr(importlib.import_module(sub_module), sub_attr))
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from COMMANDS' short help, without importing any command module."""
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="visrec")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=None,
    help="CPU threads for torch and the evaluation kernel (default: torch's choice, i.e. "
    "OMP_NUM_THREADS or the cores). On a machine shared with other jobs, fewer is often faster.",
)
def cli(verbose: int, threads: int | None) -> None:
    """visrec: visually-aware recommendation (features, models, evaluation, viewer)."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if threads is not None:
        set_cpu_threads(
            threads
        )  # torch's pool when torch is loaded or later, BLAS, the ranking kernel


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the CLI; a :class:`VisrecError` prints one clear line and exits 2."""
    try:
        cli.main(args=argv, prog_name="visrec", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (VisrecError, OSError, KeyError) as exc:  # OSError: unreadable/unwritable paths
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        click.echo(f"error: {message}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

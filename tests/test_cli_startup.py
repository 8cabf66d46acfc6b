"""`visrec --help` and every subcommand's `--help` import no numpy, torch, pandas, PIL, ..."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from visrec.cli import COMMANDS

SRC = str(Path(__file__).resolve().parents[1] / "src")
HEAVY = ("torch", "numpy", "pandas", "scipy", "PIL", "fastapi", "matplotlib")
PROBE = """
import json, runpy, sys
sys.argv = ["visrec", *json.loads(sys.argv[1])]
try:
    runpy.run_module("visrec", run_name="__main__")
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)), file=sys.stderr)
"""


def heavy_modules_after(args: list[str]) -> list[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    probe = PROBE.format(heavy=repr(HEAVY))
    done = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "Usage: visrec" in done.stdout, done.stderr
    return json.loads(done.stderr.strip().splitlines()[-1])


def test_top_level_help_imports_no_heavy_module():
    assert heavy_modules_after(["--help"]) == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_subcommand_help_imports_no_heavy_module(command):
    assert heavy_modules_after([command, "--help"]) == []


def test_data_subcommand_help_imports_no_heavy_module():
    for sub in ("demo", "stats", "fetch", "check"):
        assert heavy_modules_after(["data", sub, "--help"]) == []


def test_lazy_package_exports_still_resolve():
    import visrec.data
    import visrec.evaluation

    assert visrec.data.Dataset.__name__ == "Dataset"
    assert "open_dataset" in dir(visrec.data)
    from visrec.evaluation.engine import MODES

    assert visrec.evaluation.MODES is MODES
    with pytest.raises(AttributeError):
        _ = visrec.data.no_such_name


def test_static_short_help_matches_each_command():
    import click

    from visrec.cli import SHORT_HELP_LIMIT, cli

    ctx = click.Context(cli)
    for name, (_, _, short) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command.get_short_help_str(limit=SHORT_HELP_LIMIT) == short, name


def test_static_choice_lists_match_the_modules_that_implement_them():
    from visrec import choices
    from visrec.data.split import METHODS
    from visrec.evaluation.engine import MODES, SPLITS
    from visrec.evaluation.registry import DEFAULT_METRICS, REGISTRY
    from visrec.serving.index import INDEXES

    assert tuple(REGISTRY)[: len(choices.METRICS)] == choices.METRICS  # built-ins come first
    assert choices.DEFAULT_METRICS == DEFAULT_METRICS
    assert (choices.EVAL_MODES, choices.EVAL_SPLITS) == (MODES, SPLITS)
    assert choices.SPLIT_METHODS == METHODS
    assert choices.INDEX_KINDS == INDEXES


def test_data_group_lists_its_attached_subcommands():
    import click

    from visrec.cli import SUBCOMMANDS, cli

    group = cli.get_command(click.Context(cli), "data")
    assert {sub for (name, sub) in SUBCOMMANDS if name == "data"} <= set(group.commands)


def test_each_builtin_model_is_registered_by_its_listed_module():
    from visrec.models import registry

    names = registry.names()  # imports every built-in module
    builtin = {n for n in names if registry.get(n).__module__ in registry.BUILTIN_MODULES}
    assert builtin == set(registry.BUILTINS)
    for name, module in registry.BUILTINS.items():
        assert registry.get(name).__module__ == module


def test_getting_one_model_imports_only_its_module():
    """Loading a run (Recommender.load -> registry.get) imports its own model, not all of them."""
    probe = (
        "import sys; from visrec.models import registry; registry.get('bpr'); "
        "print(sorted(m for m in registry.BUILTIN_MODULES if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.stdout.split() == ["['visrec.models.bpr']"], done.stderr


REUSE = """
import resource
import visrec
import torch
faults = []
for _ in range(20):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(64 * 2**20 // 4)  # 64 MB, freed again at the next assignment
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    del x
print(*faults)
"""


def _page_faults(env_extra: dict[str, str]) -> list[int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "VISREC_MALLOC"))}
    env["PYTHONPATH"] = SRC + os.pathsep + os.environ.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-c", REUSE], capture_output=True, text=True, env={**env, **env_extra},
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return [int(n) for n in done.stdout.split()]


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc tuning")
def test_import_visrec_lets_large_tensors_reuse_freed_memory():
    # glibc serves a 64 MB block with a fresh mmap each time (16,384 page faults); after import visrec
    # a freed block is kept and handed back (the first few allocations still fault)
    assert max(_page_faults({})[-3:]) < 1_000
    assert min(_page_faults({"VISREC_MALLOC": "0"})[-3:]) > 10_000  # the switch turns it off

"""Run a benchmark: train what is missing, reuse finished runs, select on validation, evaluate on test.

Layout of the output folder ``OUT``::

    OUT/runs/<name>/                 one run directory per model (visrec.runs)
    OUT/runs/<name>/<k=v,...>/       one per grid point when the model has a grid
    OUT/runs/.../eval/               stored evaluations (validation-full, test-full; see evaluation/runs.py)
    OUT/results.md|csv|json, OUT/plots/*.png   written by report.py and plots.py

Every grid point is scored on the VALIDATION targets (full ranking); the best one by ``select_metric`` is
the only run evaluated on test. A model that fails (bad options, missing features, a crash in training) is
recorded with its error and the benchmark goes on with the others.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from visrec._io import read_json_object
from visrec.benchmark.config import BenchmarkConfig, ModelSpec
from visrec.data.dataset import Dataset
from visrec.errors import VisrecError
from visrec.evaluation.results import EvalResult
from visrec.models import create
from visrec.runs import RUN_FILE, Run, evaluate_run, is_finished, load_run, train_run

log = logging.getLogger(__name__)
Echo = Callable[[str], None]


@dataclass
class GridPoint:
    """One trained configuration of a model and its validation score."""

    run_dir: Path
    options: dict
    validation: float = math.nan
    train_seconds: float | None = None
    reused: bool = False


@dataclass
class ModelOutcome:
    """What the benchmark got for one model: the chosen run and its test evaluation, or an error."""

    spec: ModelSpec
    status: str = "ok"
    error: str | None = None
    points: list[GridPoint] = field(default_factory=list)
    chosen: GridPoint | None = None
    test: EvalResult | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.test is not None


def run_benchmark(
    config: BenchmarkConfig, out: str | Path, *, force: bool = False, echo: Echo | None = None
) -> list[ModelOutcome]:
    """Train, select and evaluate every model of ``config`` into ``out``; one outcome per model."""
    echo = echo or log.info
    out = Path(out).resolve()
    dataset = config.data.build()
    echo(f"dataset: {dataset.summary()}")
    outcomes = []
    for i, spec in enumerate(config.models, 1):
        echo(f"[{i}/{len(config.models)}] {spec.name} ({spec.model})")
        outcome = ModelOutcome(spec)
        began = time.perf_counter()
        try:
            _run_model(outcome, config, dataset, out, force, echo)
        except Exception as exc:  # one model's failure must not cost the others' results
            outcome.status, outcome.error = "failed", _one_line(exc)
            log.debug("%s failed", spec.name, exc_info=True)
            echo(f"  FAILED: {outcome.error}")
        else:
            test = outcome.test.means
            echo(
                f"  test AUC {test['AUC']:.5f}  nDCG@20 {test['nDCG@20']:.5f}  "
                f"({time.perf_counter() - began:.1f} s)"
            )
        outcomes.append(outcome)
    return outcomes


def _run_model(outcome, config, dataset, out, force, echo) -> None:
    spec = outcome.spec
    existing = "overwrite" if force else "reuse"
    for run_name, options in spec.candidates():
        point = GridPoint(out / "runs" / run_name, options)
        outcome.points.append(point)
        _ensure_trained(spec, point, config, force, echo)
        run = _open_run(point.run_dir, dataset)
        point.train_seconds = run.meta.get("train_seconds")
        val = evaluate_run(
            point.run_dir,
            split="validation",
            existing=existing,
            run=run,
            block_size=config.block_size,
        )
        point.validation = float(val.means.get(config.select_metric, math.nan))
        echo(
            f"  {_label(run_name, spec)}: validation {config.select_metric} {point.validation:.5f}"
        )
    outcome.chosen = max(outcome.points, key=lambda p: _finite(p.validation))
    if len(outcome.points) > 1:
        echo(f"  chosen on validation: {outcome.chosen.run_dir.name}")
    run = _open_run(outcome.chosen.run_dir, dataset)
    outcome.test = evaluate_run(
        outcome.chosen.run_dir,
        split="test",
        existing=existing,
        run=run,
        block_size=config.block_size,
    )


def _ensure_trained(spec: ModelSpec, point: GridPoint, config, force: bool, echo) -> None:
    run_dir = point.run_dir
    if is_finished(run_dir) and not force:
        _check_same_settings(spec, point, config)
        point.reused = True
        echo(f"  {_label(run_dir.name, spec)}: reusing finished run {run_dir}")
        return
    resume = (run_dir / "checkpoint.pt").is_file() and not is_finished(run_dir) and not force
    echo(f"  {_label(run_dir.name, spec)}: training{' (resuming)' if resume else ''} -> {run_dir}")
    train_run(
        spec.model,
        config.data,
        run_dir,
        config=point.options,
        features=spec.features,
        resume=resume,
        force=not resume,
    )


def _check_same_settings(spec: ModelSpec, point: GridPoint, config: BenchmarkConfig) -> None:
    """A finished run is reused only if it was trained with exactly the settings asked for."""
    meta = load_run_meta(point.run_dir)
    wanted = {
        "model": spec.model,
        "config": create(spec.model, point.options).config.to_dict(),
        "data": dataclasses.asdict(config.data),
        "features": spec.features,
    }
    wanted = json.loads(json.dumps(wanted))  # as run.json stores it (tuples become lists)
    for key, value in wanted.items():
        have = meta.get(key)
        if key == "config":
            diff = sorted(
                k for k in set(value) | set(have or {}) if (have or {}).get(k) != value.get(k)
            )
            if diff:
                k = diff[0]
                raise VisrecError(
                    f"{point.run_dir} was trained with {k}={(have or {}).get(k)!r}, the benchmark asks "
                    f"for {k}={value.get(k)!r}; pass --force to retrain or choose another -o"
                )
        elif have != value:
            raise VisrecError(
                f"{point.run_dir} was trained with {key} {have!r}, the benchmark asks for {value!r}; "
                "pass --force to retrain or choose another -o"
            )


def load_run_meta(run_dir: Path) -> dict:
    return read_json_object(
        run_dir / RUN_FILE, what="run metadata", fix="pass --force to retrain it"
    )


def _open_run(run_dir: Path, dataset: Dataset) -> Run:
    """Load a finished run and give it the benchmark's dataset (built once) after checking it matches."""
    run = load_run(run_dir)
    if list(run.model.items.ids) != list(dataset.items.ids):
        raise VisrecError(f"{run_dir}: its item vocabulary differs from the benchmark's dataset")
    return dataclasses.replace(run, _dataset=dataset)


def _label(run_name: str, spec: ModelSpec) -> str:
    return run_name.removeprefix(f"{spec.name}/") if run_name != spec.name else spec.name


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, VisrecError) else f"{type(exc).__name__}: {text}"

"""Run a benchmark: train what is missing, reuse finished runs, select on validation, evaluate on test.

Layout of the output folder ``OUT`` (with ``[[splits]]``, each split has this layout under
``OUT/<split name>/`` and the tables of every split are in ``OUT/results.*``)::

    OUT/runs/<name>/                 one run directory per model (visrec.runs)
    OUT/runs/<name>/<k=v,...>/       one per grid point when the model has a grid
    OUT/runs/.../eval/               stored evaluations (validation-full, test-full; see runs/evaluate.py)
    OUT/refit/<name>/                with ``refit = true``: the chosen options retrained on train + validation
    OUT/results.md|csv|json, OUT/plots/*.png   written by report.py and plots.py

Every grid point is scored on the VALIDATION targets (full ranking; ``cold`` mode on a cold-item split);
the best one by ``select_metric`` is the only run evaluated on test, in the modes that fit the split
(``full``; ``cold`` and ``mixed`` on a cold-item split). On a cold-item split a model that cannot score new
items (not :class:`~visrec.models.capabilities.ScoresNewItems`: BPR, Pop, Random) is not trained and is
reported as "n/a (cannot score new items)". A model that fails (bad options, missing features, a crash in
training) is recorded with its error and the benchmark goes on with the others. A model with a ``search``
block is tuned instead (:func:`visrec.tuning.tune`, trials in ``OUT/runs/<name>/trials/NNNN``, its report
beside them) and chosen on validation the same way.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from visrec._io import read_json_object
from visrec.benchmark.config import BenchmarkConfig, BenchmarkSplit
from visrec.benchmark.entries import ModelSpec
from visrec.data.dataset import Dataset
from visrec.errors import VisrecError
from visrec.evaluation.engine import selection_mode
from visrec.evaluation.results import EvalResult, metric_key
from visrec.models import create, get
from visrec.models.capabilities import scores_new_items
from visrec.runs import (
    RUN_FILE,
    DataSpec,
    Run,
    evaluate_run,
    evaluate_run_modes,
    is_finished,
    load_run,
    train_run,
)
from visrec.tuning import TuneSettings, tune

log = logging.getLogger(__name__)
Echo = Callable[[str], None]
NOT_APPLICABLE = "n/a"
"""Status of a model on a cold-item split when it cannot score new items."""
CANNOT_SCORE_NEW = "n/a (cannot score new items)"
"""What the tables show instead of a number for such a model."""


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
    """The test result of the split's first mode (``full``, or ``cold`` on a cold-item split)."""
    results: dict[str, EvalResult] = field(default_factory=dict)
    """Test result per mode (``cold`` and ``mixed`` on a cold-item split)."""
    refit_dir: Path | None = None
    """With ``refit``: the run retrained on train + validation that the test results come from."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.test is not None

    def result(self, mode: str) -> EvalResult | None:
        """The test result in ``mode`` (None when not evaluated in it)."""
        if mode in self.results:
            return self.results[mode]
        return self.test if self.test is not None and self.test.mode == mode else None


def run_benchmark(
    config: BenchmarkConfig,
    out: str | Path,
    *,
    force: bool = False,
    echo: Echo | None = None,
    split: BenchmarkSplit | None = None,
) -> list[ModelOutcome]:
    """Train, select and evaluate every model of ``config`` on ``split`` (default: the first) into
    ``out`` (the split's folder under it with ``[[splits]]``); one outcome per model."""
    echo = echo or log.info
    split = split or config.splits[0]
    root = split.folder(Path(out).resolve())
    dataset = split.data.build()
    echo(f"{'split ' + split.name + ': ' if split.name else ''}dataset: {dataset.summary()}")
    outcomes = []
    for i, spec in enumerate(config.models, 1):
        echo(f"[{i}/{len(config.models)}] {spec.name} ({spec.model})")
        outcome = ModelOutcome(spec)
        if split.cold and not scores_new_items(get(spec.model)):
            outcome.status, outcome.error = NOT_APPLICABLE, CANNOT_SCORE_NEW
            echo(f"  {CANNOT_SCORE_NEW}: not trained on this cold-item split")
            outcomes.append(outcome)
            continue
        began = time.perf_counter()
        try:
            _run_model(outcome, config, split, dataset, root, force, echo)
        except Exception as exc:  # one model's failure must not cost the others' results
            outcome.status, outcome.error = "failed", _one_line(exc)
            log.debug("%s failed", spec.name, exc_info=True)
            echo(f"  FAILED: {outcome.error}")
        else:
            mode = outcome.test.mode
            test = outcome.test.means
            auc, ndcg = metric_key("AUC", mode), metric_key("nDCG@20", mode)
            echo(
                f"  test {auc} {test[auc]:.5f}  {ndcg} {test[ndcg]:.5f}  "
                f"({time.perf_counter() - began:.1f} s)"
            )
        outcomes.append(outcome)
    return outcomes


def _run_model(outcome, config, split: BenchmarkSplit, dataset, root: Path, force, echo) -> None:
    spec = outcome.spec
    existing = "overwrite" if force else "reuse"
    if spec.search:
        _search_model(outcome, config, split, root, force, echo)
    else:
        _grid_model(outcome, config, split, dataset, root, existing, force, echo)
    test_dir, run = outcome.chosen.run_dir, _open_run(outcome.chosen.run_dir, dataset)
    if config.refit:
        test_dir, run = _refit(outcome, split, root, run, force, echo)
        outcome.refit_dir = test_dir
    outcome.results = evaluate_run_modes(
        test_dir,
        split="test",
        modes=split.modes,
        existing=existing,
        run=run,
        block_size=config.block_size,
    )
    outcome.test = outcome.results[split.modes[0]]


def _grid_model(outcome, config, split, dataset, root: Path, existing, force, echo) -> None:
    spec = outcome.spec
    mode = selection_mode(dataset)  # the mode training stopped on: one decision for both
    select = metric_key(config.select_metric, mode)
    for run_name, options in spec.candidates():
        point = GridPoint(root / "runs" / run_name, options)
        outcome.points.append(point)
        _ensure_trained(spec, point, split.data, force, echo)
        run = _open_run(point.run_dir, dataset)
        point.train_seconds = run.meta.get("train_seconds")
        val = evaluate_run(
            point.run_dir,
            split="validation",
            mode=mode,
            existing=existing,
            run=run,
            block_size=config.block_size,
        )
        point.validation = float(val.means.get(select, math.nan))
        echo(f"  {_label(run_name, spec)}: validation {select} {point.validation:.5f}")
    outcome.chosen = max(outcome.points, key=lambda p: _finite(p.validation))
    if len(outcome.points) > 1:
        echo(f"  chosen on validation: {outcome.chosen.run_dir.name}")


def _search_model(outcome, config, split: BenchmarkSplit, root: Path, force, echo) -> None:
    """The entry's ``search``: :func:`visrec.tuning.tune` into ``OUT/runs/<name>`` (resumed unless
    ``force``), validation only; its trials table and history plot are written there."""
    spec, search = outcome.spec, outcome.spec.search
    if split.cold:
        raise VisrecError("a search block needs a warm split (not a cold-item split)")
    folder = root / "runs" / spec.name
    if force and folder.exists():
        shutil.rmtree(folder)
    settings = TuneSettings(
        model=spec.model,
        data=split.data,
        features=spec.features,
        fixed=dict(spec.config),
        space=dict(search["space"]),
        sampler=search["sampler"],
        seed=search["seed"],
        metric=config.select_metric,
        prune=search["prune"],
        prune_after=search["prune_after"],
    )
    result = tune(
        settings, folder, search["trials"], evaluate_test=False, echo=lambda m: echo(f"  {m}")
    )
    metric = f"val_{config.select_metric}"
    for row in result.trials:
        if row["state"] == "complete":
            params = {k.removeprefix("param_"): v for k, v in row.items() if k.startswith("param_")}
            point = GridPoint(Path(row["run_dir"]), spec.config | params, row[metric])
            outcome.points.append(point)
            if point.run_dir == result.best_dir:
                outcome.chosen = point
    echo(f"  chosen on validation: {result.best_dir.name} (report: {folder / 'trials.md'})")


def refit_data(data: DataSpec) -> DataSpec:
    """The same data and split without validation targets: the validation basket (or cold set)
    joins train; the test targets are unchanged."""
    return dataclasses.replace(data, split=data.split | {"validation": False})


def _refit(
    outcome, split: BenchmarkSplit, root: Path, chosen: Run, force, echo
) -> tuple[Path, Run]:
    """Train the chosen options again on train + validation (``refit = true``)."""
    spec = outcome.spec
    options = dict(outcome.chosen.options)
    best = ((chosen.meta.get("info") or {}).get("training") or {}).get("best_epoch")
    if best and "epochs" in create(spec.model, options).config.to_dict():
        options["epochs"] = int(best)  # no validation to stop on: the chosen run's best epoch count
    point = GridPoint(root / "refit" / spec.name, options)
    data = refit_data(split.data)
    echo(f"  refit on train + validation ({', '.join(f'{k}={v}' for k, v in options.items())})")
    _ensure_trained(spec, point, data, force, echo)
    run = load_run(point.run_dir)
    dataset = data.build()
    if list(run.model.items.ids) != list(dataset.items.ids):
        raise VisrecError(f"{point.run_dir}: its item vocabulary differs from the benchmark's data")
    return point.run_dir, dataclasses.replace(run, _dataset=dataset)


def _ensure_trained(spec: ModelSpec, point: GridPoint, data: DataSpec, force: bool, echo) -> None:
    run_dir = point.run_dir
    if is_finished(run_dir) and not force:
        _check_same_settings(spec, point, data)
        point.reused = True
        echo(f"  {_label(run_dir.name, spec)}: reusing finished run {run_dir}")
        return
    resume = (run_dir / "checkpoint.pt").is_file() and not is_finished(run_dir) and not force
    echo(f"  {_label(run_dir.name, spec)}: training{' (resuming)' if resume else ''} -> {run_dir}")
    train_run(
        spec.model,
        data,
        run_dir,
        config=point.options,
        features=spec.features,
        resume=resume,
        force=not resume,
    )


def _check_same_settings(
    spec: ModelSpec, point: GridPoint, data: DataSpec | BenchmarkConfig
) -> None:
    """A finished run is reused only if it was trained with exactly the settings asked for."""
    if isinstance(data, BenchmarkConfig):
        data = data.data
    meta = load_run_meta(point.run_dir)
    wanted = {
        "model": spec.model,
        "config": create(spec.model, point.options).config.to_dict(),
        "data": dataclasses.asdict(data),
        "features": spec.features,
    }
    wanted = json.loads(json.dumps(wanted))  # as run.json stores it (tuples become lists)
    for key, value in wanted.items():
        have = meta.get(key)
        if key == "config":
            stored = have if isinstance(have, dict) else {}
            # an option the run predates (absent from its run.json) had its default
            have, _ = get(spec.model).config_class.saved_as_now(stored)
            diff = sorted(k for k in set(value) | set(have) if have.get(k) != value.get(k))
            if diff:
                k = diff[0]
                raise VisrecError(
                    f"{point.run_dir} was trained with {k}={stored.get(k)!r}, the benchmark asks "
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

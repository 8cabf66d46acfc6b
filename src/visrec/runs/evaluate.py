"""Evaluations stored in a run directory: ``RUN_DIR/eval/<split>-<mode>.json`` and ``.csv``.

The JSON holds the means and metadata (model, run, split, mode, cut-offs), the CSV the per-user table
(what the benchmark's confidence intervals, paired tests and plots read). An earlier evaluation is never
overwritten silently: :func:`evaluate_run` refuses, names the file and asks for ``force``, or (for the
benchmark) reuses what is there. The CSV is written first and the JSON last, each atomically, so a JSON
on disk always has its complete CSV beside it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from visrec.errors import ConfigError, VisrecError
from visrec.evaluation.engine import COLD_MODES, MODES, SPLITS, evaluate_modes, mode_tuple
from visrec.evaluation.results import EvalResult
from visrec.features.store import FeatureStore
from visrec.models.factors import FILES, load_factors, saved_meta
from visrec.runs.directory import Run, built_for, load_run, read_run

if TYPE_CHECKING:
    from visrec.distributed import DistContext

log = logging.getLogger(__name__)

EVAL_DIR = "eval"
EXISTING = ("refuse", "reuse", "overwrite")


def eval_name(split: str, mode: str, n_negatives: int = 100) -> str:
    """File stem of one evaluation: ``test-full``, ``validation-tutorial``, ``test-sampled100``,
    ``test-cold``, ``test-mixed``."""
    if split not in SPLITS:
        raise ConfigError(f"split must be 'test' or 'validation', not {split!r}")
    if mode not in MODES:
        raise ConfigError(f"unknown evaluation mode {mode!r}; choose from {', '.join(MODES)}")
    return f"{split}-sampled{n_negatives}" if mode == "sampled" else f"{split}-{mode}"


def eval_paths(
    run_dir: str | Path, split: str, mode: str, n_negatives: int = 100
) -> tuple[Path, Path]:
    """(JSON, CSV) paths of one evaluation of ``run_dir``."""
    stem = Path(run_dir) / EVAL_DIR / eval_name(split, mode, n_negatives)
    return stem.with_suffix(".json"), stem.with_suffix(".csv")


def load_evaluation(
    run_dir: str | Path, split: str, mode: str = "full", n_negatives: int = 100
) -> EvalResult:
    """Read a stored evaluation (means from the JSON, per-user values from the CSV)."""
    json_path, csv_path = eval_paths(run_dir, split, mode, n_negatives)
    if not json_path.is_file():
        raise VisrecError(f"{json_path}: no such evaluation; run `visrec evaluate {run_dir}`")
    return EvalResult.from_json(json_path, per_user_csv=csv_path)


def evaluate_run(
    run_dir: str | Path,
    *,
    split: str = "test",
    mode: str = "full",
    n_negatives: int = 100,
    existing: str = "refuse",
    run: Run | None = None,
    dist: DistContext | None = None,
    **kwargs,
) -> EvalResult:
    """Evaluate the finished run in ``run_dir`` and store the result under ``RUN_DIR/eval/``.

    ``existing`` says what to do when that evaluation is already stored: ``refuse`` (raise, naming the
    file), ``reuse`` (return it without recomputing) or ``overwrite``. ``run`` may pass an already
    loaded :class:`visrec.runs.Run`; ``dist`` (a DistContext under torchrun) splits the users
    across ranks (:func:`visrec.evaluation.distributed.evaluate_sharded`); other keyword arguments go
    to :func:`evaluate`.
    """
    return evaluate_run_modes(
        run_dir,
        split=split,
        modes=(mode,),
        n_negatives=n_negatives,
        existing=existing,
        run=run,
        dist=dist,
        **kwargs,
    )[mode]


def evaluate_run_modes(
    run_dir: str | Path,
    *,
    split: str = "test",
    modes=("full",),
    n_negatives: int = 100,
    existing: str = "refuse",
    run: Run | None = None,
    dist: DistContext | None = None,
    **kwargs,
) -> dict[str, EvalResult]:
    """:func:`evaluate_run` for several modes, scored in one pass (:func:`evaluate_modes`).

    With ``existing='refuse'`` nothing is computed when any of the evaluations is already stored; with
    ``reuse`` only the missing modes are computed.
    """
    if existing not in EXISTING:
        raise ConfigError(f"existing must be one of {', '.join(EXISTING)}, not {existing!r}")
    modes = mode_tuple(modes)
    paths = {mode: eval_paths(run_dir, split, mode, n_negatives) for mode in modes}
    results: dict[str, EvalResult] = {}
    for mode, (json_path, csv_path) in paths.items():
        if json_path.is_file() and existing == "reuse":
            log.info("reusing %s", json_path)
            results[mode] = EvalResult.from_json(json_path, per_user_csv=csv_path)
        elif existing == "refuse":
            for path in (json_path, csv_path):
                if path.exists():
                    raise VisrecError(
                        f"{path} already holds an evaluation; pass --force to replace it"
                    )
    todo = [mode for mode in modes if mode not in results]
    if todo:
        results |= _compute(run_dir, split, todo, n_negatives, run, dist, paths, kwargs)
    return {mode: results[mode] for mode in modes}


def item_feature_rows(path: str | Path, dataset) -> np.ndarray:
    """Pooled features of ``dataset``'s items from a feature store (spatial maps averaged; items without
    features get zeros, which diversity treats as unlike every item)."""
    rows, _ = FeatureStore.open(path).aligned(dataset.items, missing="zero")
    return rows.reshape(len(rows), rows.shape[1], -1).mean(axis=2) if rows.ndim > 2 else rows


def check_scores_new_items(run: Run, modes) -> None:
    """Refuse the cold-item modes for a model that cannot score new items (BPR, Pop, Random): its
    number there would be meaningless (constant scores give AUC 0.5 by the tie rule), so it is reported
    as unable, never with a number."""
    from visrec.models.capabilities import NewItemsUnsupported, scores_new_items  # with the model

    cold = [mode for mode in modes if mode in COLD_MODES]
    # on a warm split the engine's own error (cold modes need a cold-item split) comes first
    if cold and run.dataset.split.is_cold and not scores_new_items(run.model):
        raise NewItemsUnsupported(
            f"{run.model.name} cannot score new items (it has no content to score them from): "
            f"no {'/'.join(cold)} evaluation for it (report it as n/a)"
        )


def scoring_inputs(run_dir, split: str, modes, run: Run | None, device=None):
    """``(run metadata, dataset, scorer)`` for evaluating ``run_dir`` (or the loaded ``run``).

    A run whose model saved its dot-product factors (BPR-MF, VBPR, DVBPR; :mod:`visrec.models.factors`)
    is scored from them on the CPU without loading the model, so the process never imports torch; the
    scorer is the one the loaded model would use there, so the numbers are the same. The cold-item modes
    (which check that the model can score new items) and accelerators load the model.
    """
    accelerator = device is not None and not str(device).startswith("cpu")
    model_dir = Path(run_dir) / "model"
    exported = (model_dir / FILES["users"]).is_file()  # else model.json is read once, by load_run
    if run is None and exported and not accelerator and not set(modes) & set(COLD_MODES):
        meta, data = read_run(run_dir)
        model_meta = saved_meta(model_dir)
        scorer = load_factors(model_dir, model_meta)
        if scorer is not None:
            dataset = built_for(data, model_meta.get("items", []))
            return meta, dataset, scorer
    if run is None:
        run = load_run(run_dir)
    check_scores_new_items(run, modes)
    # profile-based models score each user from the split's history (Dataset.history)
    return run.meta, run.dataset, run.model.scorer(run.dataset, split)


def _compute(run_dir, split, modes, n_negatives, run, dist, paths, kwargs) -> dict[str, EvalResult]:
    meta, dataset, scorer = scoring_inputs(run_dir, split, modes, run, kwargs.get("device"))
    if isinstance(kwargs.get("item_features"), str | Path):  # a feature store, for diversity@k
        kwargs = kwargs | {"item_features": item_feature_rows(kwargs["item_features"], dataset)}
    if dist is not None and dist.active:  # under torchrun: user shards, merged on every rank
        from visrec.evaluation.distributed import evaluate_sharded_modes  # torch.distributed

        results = evaluate_sharded_modes(
            scorer,
            dataset,
            split,
            dist,
            modes=modes,
            n_negatives=n_negatives,
            **kwargs,
        )
    else:
        results = evaluate_modes(
            scorer,
            dataset,
            split=split,
            modes=modes,
            n_negatives=n_negatives,
            **kwargs,
        )
    for mode, result in results.items():
        result.meta |= {
            "model": meta.get("model"),
            "run": str(Path(run_dir).resolve()),
            "config": meta.get("config"),
        }
        if dist is None or dist.is_main:  # rank 0 writes
            json_path, csv_path = paths[mode]
            result.to_csv(csv_path)
            result.to_json(json_path, per_user=False)
    return results

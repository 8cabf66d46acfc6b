"""Run one stage of the IUI 2021 tutorial's own code (its notebooks and modules, from a checkout).

``python tutorial_side.py STAGE --checkout DIR --work DIR [--triplets N]``: executes the code cells of the
stage's notebook, in order, in one namespace, with the working directory ``WORK/tutorial`` (the files
``data.prepare`` wrote, in the tutorial's layout) and the checkout first on ``sys.path``. Only
compatibility patches are applied, at run time, each one listed in the result: a string replacement in a
cell (it must match, or the run stops), a stub for a module that the stage imports but never calls, or a
shim for an API the tutorial's pinned versions had. The last line printed is ``PEER_RESULT {json}``.
Nothing of the tutorial's code is copied into this repository.
"""

from __future__ import annotations

import argparse
import functools
import importlib.machinery
import json
import os
import shutil
import sys
import time
import types
from pathlib import Path

PATCHES: list[str] = []

# (notebook, cells to run, timed cell, patches (description, old, new)); cells are 0-based code-cell
# positions in the notebook's cell list.
COMMON = [
    (
        "DATASET = Wikimedia (the generated data is in its layout)",
        'DATASET = "UGallery"',
        'DATASET = "Wikimedia"',
    ),
    ("USE_GPU = False (CPU comparison)", "USE_GPU = True", "USE_GPU = False"),
]
STAGES = {
    "vbpr": (
        "3 - (VBPR) Training procedure.ipynb",
        [
            (
                "num_workers 0 (one thread on both sides)",
                '"dataloader:num_workers": os.cpu_count()',
                '"dataloader:num_workers": 0',
            ),
            (
                "max_epochs 1 (throughput of one epoch)",
                '"train:max_epochs": 150',
                '"train:max_epochs": 1',
            ),
            ("ReduceLROnPlateau(verbose=...) removed in torch 2.x", "verbose=True,", ""),
        ],
    ),
    "curatornet": (
        "3 - (CuratorNet) Training procedure.ipynb",
        [
            (
                "num_workers 0 (one thread on both sides)",
                '"dataloader:num_workers": os.cpu_count()',
                '"dataloader:num_workers": 0',
            ),
            (
                "max_epochs 1 (throughput of one epoch)",
                '"train:max_epochs": 10',
                '"train:max_epochs": 1',
            ),
            ("ReduceLROnPlateau(verbose=...) removed in torch 2.x", "verbose=True,", ""),
        ],
    ),
    "acf": (
        "3 - (ACF) Training procedure.ipynb",
        [
            (
                "max_epochs 1 (throughput of one epoch)",
                '"train:max_epochs": 10',
                '"train:max_epochs": 1',
            ),
            (
                "timing probe around the train loader (measures, changes nothing)",
                "trainer.fit(",
                "_probe_acf(trainer)\ntrainer.fit(",
            ),
        ],
    ),
    "evaluate": (
        "4 - Evaluation procedure.ipynb",
        [
            (
                "pandas >= 2: groupby agg(sum) of lists concatenated them in pandas 1.1 (written out)",
                '.agg({"predict": sum})',
                '.agg({"predict": _concat})',
            ),
        ],
    ),
    "sampling": (
        "2 - Triplet sampling (Random).ipynb",
        [],
    ),
    "extract": (
        "1 - Create image embeddings.ipynb",
        [
            (
                "NUM_WORKERS 0 (one thread on both sides)",
                "BATCH_SIZE, NUM_WORKERS = 8, 4",
                "BATCH_SIZE, NUM_WORKERS = 8, 0",
            ),
            (
                "get_model_by_name(pretrained=False): offline, random weights (speed does not "
                "depend on them; visrec uses --weights none too)",
                "get_model_by_name(MODEL, output_layer=LAYER)",
                "get_model_by_name(MODEL, pretrained=False, output_layer=LAYER)",
            ),
            (
                "numpy >= 1.24: a ragged np.asarray needs dtype=object (older numpy made one)",
                "np.asarray([output_ids[i], output_embedding[i]])",
                "np.asarray([output_ids[i], output_embedding[i]], dtype=object)",
            ),
            (
                "output file extracted-resnet50.npy (the other stages' embedding file is kept)",
                'f"embedding-{MODEL}{LAYERED_OUTPUT}.npy"',
                'f"extracted-{MODEL}{LAYERED_OUTPUT}.npy"',
            ),
        ],
    ),
}
JPEGS = "jpegs-1600x1200"  # data.JPEGS (not imported: pandas would slow this side's start-up)
# cells not run: plots and single-user displays after the metrics (evaluation notebook)
STOP_AFTER = {"evaluate": "AVG NDCG200"}


class Probe:
    """Wraps a DataLoader: times one full pass over it (the train phase of one epoch)."""

    def __init__(self, loader, record: dict):
        self.loader, self.record = loader, record
        self.dataset = loader.dataset

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        began = time.perf_counter()
        yield from self.loader
        if "seconds" not in self.record:
            self.record["seconds"] = time.perf_counter() - began
            self.record["items"] = len(self.dataset)


def stub(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    return module


def stub_modules() -> None:
    """Modules imported at the top of the tutorial's packages but never called by these stages."""
    stubs = {
        "skimage": ["io", "transform"],
        "sklearn.metrics.pairwise": [],
        "sklearn.metrics": ["pairwise"],
        "sklearn": ["metrics"],
        "seaborn": [],
    }
    for name, attrs in stubs.items():
        try:
            __import__(name)
            continue
        except ImportError:
            pass
        sys.modules[name] = stub(name)
        for attr in attrs:
            setattr(
                sys.modules[name], attr, sys.modules.get(f"{name}.{attr}") or stub(f"{name}.{attr}")
            )
        PATCHES.append(f"stub module {name} (imported, never called here; not installed)")
    sys.modules["sklearn.metrics.pairwise"].cosine_similarity = None
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        board = stub("torch.utils.tensorboard")

        class SummaryWriter:
            def __init__(self, *a, **k):
                pass

            def add_scalar(self, *a, **k):
                pass

        board.SummaryWriter = SummaryWriter
        sys.modules["torch.utils.tensorboard"] = board
        PATCHES.append(
            "stub torch.utils.tensorboard.SummaryWriter (tensorboard not installed; logs only)"
        )


def shims() -> None:
    import numpy as np
    import torch

    if not hasattr(np, "string_"):
        np.string_ = np.bytes_
        PATCHES.append("numpy 2: np.string_ = np.bytes_")
    torch.load = functools.partial(torch.load, weights_only=False)
    PATCHES.append(
        "torch >= 2.6: torch.load(weights_only=False) for the tutorial's own checkpoints"
    )


def code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text())["cells"]
    out = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        lines = [
            ln for ln in "".join(cell["source"]).splitlines() if not ln.lstrip().startswith("%")
        ]
        out.append("\n".join(lines))
    return out


def apply(source: str, patches, used: set) -> str:
    for desc, old, new in patches:
        if old in source:
            source = source.replace(old, new)
            used.add(desc)
    return source


def run_stage(stage: str, checkout: Path, work: Path, triplets: int | None) -> dict:
    notebook, patches = STAGES[stage]
    patches = COMMON + patches
    if stage == "sampling" and triplets:
        patches = patches + [
            (
                f"TOTAL_SAMPLES_TRAIN = {triplets} (scaled run)",
                "TOTAL_SAMPLES_TRAIN = 5_000_000",
                f"TOTAL_SAMPLES_TRAIN = {triplets}",
            ),
            (
                f"TOTAL_SAMPLES_VALID = {max(1, triplets // 10)}",
                "TOTAL_SAMPLES_VALID = 500_000",
                f"TOTAL_SAMPLES_VALID = {max(1, triplets // 10)}",
            ),
        ]
    if stage == "sampling":
        patches = patches + [
            (
                "output CSVs under data/Wikimedia/sampled-* (inputs of the other stages kept)",
                'f"naive-{MODE_PROFILE_VERBOSE}-',
                'f"sampled-{MODE_PROFILE_VERBOSE}-',
            )
        ]
    if stage == "extract":
        patches = patches + [
            (
                "IMAGES_DIR = the generated JPEGs (WORK/jpegs-1600x1200)",
                'os.path.join("/", "mnt", "data2", "wikimedia", "imagenes_tarea")',
                repr(str(work / JPEGS)),
            )
        ]
    sys.path.insert(0, str(checkout))
    os.chdir(work / "tutorial")
    stub_modules()
    shims()
    if stage == "acf":
        import trainers.acf_trainer as acf_trainer

        loader = acf_trainer.DataLoader
        acf_trainer.DataLoader = lambda *a, **k: loader(*a, **{**k, "num_workers": 0})
        PATCHES.append("ACFTrainer's DataLoaders: num_workers 0 (one thread on both sides)")
        shutil.rmtree(work / "tutorial/checkpoints/ACF_wikimedia", ignore_errors=True)
        PATCHES.append(
            "checkpoints/ACF_wikimedia removed first (its Log empties an existing folder)"
        )
    record: dict = {}
    namespace = {"__name__": "__main__"}
    namespace["_concat"] = lambda lists: [x for part in lists for x in part]
    namespace["_probe_acf"] = lambda trainer: setattr(
        trainer, "train_loader", Probe(trainer.train_loader, record)
    )
    used: set = set()
    began = time.perf_counter()
    for source in code_cells(checkout / notebook):
        source = apply(source, patches, used)
        if stage in ("vbpr", "curatornet") and "trainer = Trainer(" in source:
            namespace["train_dataloader"] = Probe(namespace["train_dataloader"], record)
            used.add("timing probe around the train DataLoader (measures, changes nothing)")
        cell_began = time.perf_counter()
        exec(compile(source, f"{notebook}", "exec"), namespace)
        if stage == "extract" and "image_dataloader = DataLoader" in source:
            # the extraction cell: model, dataset, loop, save (as visrec extract's whole call)
            record["seconds"] = time.perf_counter() - cell_began
            record["items"] = len(namespace["image_dataset"])
        if stage in STOP_AFTER and STOP_AFTER[stage] in source:
            break
    optional = {d for d, _, _ in COMMON[1:]}  # USE_GPU: not every notebook has it
    missing = [d for d, _, _ in patches if d not in used and d not in optional]
    if missing:
        raise SystemExit(f"patch did not apply (the checkout differs): {missing}")
    record.setdefault("seconds", time.perf_counter() - began)
    if (
        stage == "sampling"
    ):  # the notebook's work: its train triplets (and a tenth more for validation)
        record["items"] = int(namespace["TOTAL_SAMPLES_TRAIN"])
    return {**record, "patches": sorted(used) + PATCHES}


def setup_evaluate(checkout: Path, work: Path) -> None:
    """The evaluation notebook loads a trained checkpoint: write one with the tutorial's VBPR class."""
    import numpy as np
    import torch

    sys.path.insert(0, str(checkout))
    stub_modules()
    from models.vbpr import VBPR

    folder = work / "tutorial"
    rows = np.load(folder / "data/Wikimedia/embedding-resnet50.npy", allow_pickle=True)
    features = torch.tensor(np.stack(rows[:, 1]))
    n_users = int(json.loads((work / "prepared.json").read_text())["users"])
    torch.manual_seed(0)
    model = VBPR(n_users, len(features), features, 200, 100)
    state = {"model": model.state_dict(), "epoch": 0, "accuracy": 0.0, "loss": 0.0}
    torch.save(state, folder / "checkpoints/VBPR_wikimedia.tar")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=sorted(STAGES))
    parser.add_argument(
        "--setup", action="store_true", help="write the stage's inputs, time nothing"
    )
    parser.add_argument("--checkout", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--triplets", type=int, default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    if args.setup:
        if args.stage == "evaluate":
            setup_evaluate(args.checkout.resolve(), args.work.resolve())
        return
    result = run_stage(args.stage, args.checkout.resolve(), args.work.resolve(), args.triplets)
    print("PEER_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

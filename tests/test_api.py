"""The Python API (visrec.load_run, visrec.Experiment) and the benchmark's backbone axis."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import visrec
from visrec.benchmark import load_config
from visrec.cli import main
from visrec.errors import ConfigError
from visrec.features.backbones import imagenet_top1
from visrec.runs import evaluate_run


@pytest.fixture(scope="module")
def store(demo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "store"
    args = ["extract", str(demo_dir), "-o", str(out), "--backbone", "resnet18", "--weights", "none"]
    assert main([*args, "--input-size", "32", "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def visrank_run(demo_dir, store, tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "visrank"
    args = ["train", "visrank", "--data", str(demo_dir), "--features", str(store), "-o", str(out)]
    assert main(args) == 0
    return out


def test_import_visrec_is_light():
    code = "import sys, visrec; print('torch' in sys.modules, 'load_run' in dir(visrec))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
    assert visrec.load_run.__module__ == "visrec.api"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        visrec.nothing  # noqa: B018


def test_recommend_by_ids(visrank_run, demo_dataset):
    run = visrec.load_run(visrank_run)
    ds = demo_dataset
    user = ds.users.id(3)
    top = run.recommend(user, k=10)
    assert list(top.index) == list(range(1, 11)) and list(top.columns) == [
        "item_id",
        "score",
        "consumed",
    ]
    assert not set(top.item_id) & set(ds.items.ids_of(ds.consumed[3].indices))
    assert np.all(np.diff(top.score.to_numpy()) <= 0)
    scores = run.model.score(np.array([3]))[0].numpy()
    assert top.score.iloc[0] == pytest.approx(float(scores[ds.items.index(top.item_id.iloc[0])]))
    shown = run.recommend(user, k=ds.n_items, show_consumed=True)
    consumed = set(ds.items.ids_of(ds.consumed[3].indices))
    assert set(shown.item_id[shown.consumed]) == consumed
    with pytest.raises(KeyError, match="unknown user"):
        run.recommend("nobody")
    with pytest.raises(ConfigError, match="k must be"):
        run.recommend(user, k=0)


def test_profile_similar_evaluate(visrank_run, demo_dataset):
    run = visrec.load_run(visrank_run)
    ds = demo_dataset
    profile = list(ds.items.ids[:3])
    top = run.recommend_profile(profile, k=5)
    assert len(top) == 5 and not set(top.item_id) & set(profile)
    near = run.similar(profile[0], k=4)
    assert len(near) == 4 and profile[0] not in set(near.item_id)
    assert "consumed" not in near.columns
    result = run.evaluate(split="test", mode="full")
    stored = evaluate_run(visrank_run, split="test", mode="full")
    assert result.means == pytest.approx(stored.means)
    assert not (visrank_run / "eval" / "validation-full.json").exists()
    assert run.evaluate(split="validation").means["AUC"] != result.means["AUC"]
    with pytest.raises(ConfigError, match="list of item ids"):
        run.recommend_profile("i0001")


def test_imagenet_top1_from_metadata():
    assert imagenet_top1("resnet18") == pytest.approx(69.758)
    assert imagenet_top1("efficientnet_lite0") is None  # its weight package states none
    with pytest.raises(ConfigError, match="unknown backbone"):
        imagenet_top1("resnet_nonexistent")


def test_backbone_axis_in_toml(demo_dir, tmp_path):
    toml = tmp_path / "b.toml"
    toml.write_text(
        f'[dataset]\npath = "{demo_dir}"\n[backbones]\nnames = ["resnet18", "alexnet"]\n'
        '[[models]]\nmodel = "pop"\n[[models]]\nmodel = "visrank"\nfeatures = "backbones"\n'
    )
    config = load_config(toml)
    assert [m.name for m in config.models] == ["pop", "visrank@resnet18", "visrank@alexnet"]
    assert [m.backbone for m in config.models] == [None, "resnet18", "alexnet"]
    toml.write_text(
        f'[dataset]\npath = "{demo_dir}"\n[backbones]\nnames = ["resnet18"]\n'
        '[[models]]\nmodel = "bpr"\nfeatures = "backbones"\n'
    )
    with pytest.raises(ConfigError, match="does not read pooled features"):
        load_config(toml)
    toml.write_text(
        f'[dataset]\npath = "{demo_dir}"\n[[models]]\nmodel = "visrank"\nfeatures = "backbones"\n'
    )
    with pytest.raises(ConfigError, match=r"set \[backbones\] names"):
        load_config(toml)


@pytest.mark.slow
def test_experiment_with_backbones(demo_dir, tmp_path):
    exp = visrec.Experiment(
        data=demo_dir,
        models=["pop", {"model": "visrank", "features": "backbones"}],
        backbones=["resnet18", "alexnet"],
        extract={"weights": "none", "input_size": 64},
        benchmark={"n_boot": 50},
    )
    out = tmp_path / "bench"
    results = exp.run(out, plots=False)
    assert list(results.table.index) == ["pop", "visrank@resnet18", "visrank@alexnet"]
    table = results.backbones
    assert list(table.index) == ["resnet18", "alexnet"]
    assert table["imagenet_top1"].isna().all()  # random weights: no ImageNet accuracy applies
    for name in ("resnet18", "alexnet"):
        assert (out / "features" / f"{name}-pooled-64" / "meta.json").is_file()
        auc = results.table.loc[f"visrank@{name}", "AUC"]
        assert table.loc[name, "visrank AUC"] == pytest.approx(auc)
    md = (out / "results.md").read_text()
    assert "## Backbones" in md and "n/a (weights none)" in md
    lines = []
    again = exp.run(out, plots=False, echo=lines.append)  # everything reused, same numbers
    assert any("features resnet18: reusing" in line for line in lines)
    assert again.table.equals(results.table)


@pytest.mark.slow
def test_experiment_with_splits_and_backbones(demo_dir, tmp_path):
    exp = visrec.Experiment(
        data=demo_dir,
        models=["pop", {"model": "visrank", "features": "backbones"}],
        splits=[
            {"name": "warm", "split": "leave-last-out"},
            {"name": "cold", "split": "cold-items", "cold_fraction": 0.15},
        ],
        backbones=["resnet18"],
        extract={"weights": "none", "input_size": 64},
        benchmark={"n_boot": 50},
    )
    out = tmp_path / "bench"
    lines = []
    results = exp.run(out, plots=False, echo=lines.append)
    assert sum("features resnet18" in line for line in lines) == 1  # extracted once, both splits
    titles = ["split warm: full", "split cold: cold", "split cold: mixed"]
    assert list(results.table.index.get_level_values(0).unique()) == titles
    assert results.table.loc[("split warm: full", "visrank@resnet18"), "AUC"] > 0.5
    sections = results.summary["sections"]
    assert [s["split_name"] for s in sections] == ["warm", "cold", "cold"]
    assert all(s["backbones"][0]["backbone"] == "resnet18" for s in sections)
    assert list(results.backbones.index.get_level_values(0).unique()) == titles
    md = (out / "results.md").read_text()
    assert md.count("### Backbones") == 3

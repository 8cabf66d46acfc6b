"""`visrec benchmark` with several splits: warm and cold side by side, n/a rows, refit labelled."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from visrec.benchmark import load_config
from visrec.cli import main
from visrec.errors import ConfigError

SPLITS = """
[[splits]]
name = "warm"
split = "leave-last-out"
[[splits]]
name = "cold"
split = "cold-items"
cold_fraction = 0.15
"""
MODELS = """
[[models]]
model = "pop"
[[models]]
model = "bpr"
config = {epochs = 2, factors = 4, batch_size = 256}
[[models]]
model = "visrank"
features = "onehot"
"""
NA = "n/a (cannot score new items)"


@pytest.fixture(scope="module")
def features(demo_dir, tmp_path_factory):
    from visrec.features import FeatureStore

    items = pd.read_csv(demo_dir / "items.csv", dtype=str)
    onehot = pd.get_dummies(items[["palette", "shape"]]).to_numpy(np.float32)
    noisy = onehot + np.random.default_rng(0).normal(0, 0.1, onehot.shape).astype(np.float32)
    path = tmp_path_factory.mktemp("splits") / "onehot"
    FeatureStore.write(path, items["item_id"].tolist(), noisy, {"backbone": "synthetic"})
    return path


def write(folder, demo_dir, features, body=SPLITS, extra=""):
    text = (
        f'[dataset]\npath = "{demo_dir}"\n[features]\nonehot = "{features}"\n'
        f"[benchmark]\nn_boot = 100\n{extra}\n{body}\n{MODELS}"
    )
    path = folder / "bench.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def finished(demo_dir, features, tmp_path_factory):
    folder = tmp_path_factory.mktemp("two-splits")
    out = folder / "out"
    assert main(["benchmark", str(write(folder, demo_dir, features)), "-o", str(out)]) == 0
    return out


def test_config_reads_named_splits(demo_dir, features, tmp_path):
    config = load_config(write(tmp_path, demo_dir, features))
    assert [s.name for s in config.splits] == ["warm", "cold"]
    assert [s.modes for s in config.splits] == [("full",), ("cold", "mixed")]
    assert config.splits[1].data.split["cold_fraction"] == 0.15
    assert not config.refit


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (SPLITS.replace('"cold"\nsplit', '"warm"\nsplit'), "split names must be unique"),
        (SPLITS.replace('name = "cold"', 'name = "a b"'), "split name 'a b'"),
        (SPLITS + '[[splits]]\nname = "t"\nsplit = "temporal"\n', "[[splits]] entry 3"),
        (SPLITS + "[[splits]]\nsplit = 'given'\n", "[[splits]] entry 3"),
    ],
)
def test_split_errors_name_the_entry(demo_dir, features, tmp_path, body, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(write(tmp_path, demo_dir, features, body))


def test_split_keys_in_dataset_and_splits_are_refused(demo_dir, features, tmp_path):
    path = write(tmp_path, demo_dir, features)
    path.write_text(path.read_text().replace("[features]", 'split = "temporal"\n[features]'))
    with pytest.raises(ConfigError, match=r"\[dataset\] split and \[\[splits\]\]"):
        load_config(path)


def test_warm_and_cold_tables_side_by_side(finished):
    summary = json.loads((finished / "results.json").read_text())
    assert summary["format"] == "visrec-benchmark-splits/1"
    titles = [(s["split_name"], s["mode"]) for s in summary["sections"]]
    assert titles == [("warm", "full"), ("cold", "cold"), ("cold", "mixed")]
    warm, cold, mixed = summary["sections"]
    assert all(m["status"] == "ok" for m in warm["models"])
    for section in (cold, mixed):
        status = {m["name"]: m["status"] for m in section["models"]}
        assert status == {"pop": "n/a", "bpr": "n/a", "visrank": "ok"}
        pop = section["models"][0]
        assert set(pop["means"].values()) == {NA}
        visrank = section["models"][2]
        assert 0.0 <= visrank["means"][section["metrics"][0]] <= 1.0
    assert cold["metrics"][0] == "AUC[cold]" and mixed["metrics"][0] == "AUC[mixed]"
    # selection on the cold split reads the cold-mode validation evaluation
    assert (finished / "cold" / "runs" / "visrank" / "eval" / "validation-cold.json").is_file()
    assert not (finished / "cold" / "runs" / "pop").exists()
    assert (finished / "warm" / "runs" / "pop" / "eval" / "test-full.json").is_file()


def test_na_rows_in_markdown_and_csv(finished):
    md = (finished / "results.md").read_text()
    assert "## split warm: full" in md and "## split cold: cold" in md
    assert f"| pop | {NA} |" in md and "| AUC[cold] |" in md
    table = pd.read_csv(finished / "results.csv", dtype=str, keep_default_na=False)
    na = table[(table["split"] == "cold") & (table["model"] == "bpr")]
    assert len(na) == 16 and set(na["mean"]) == {NA} and set(na["status"]) == {"n/a"}
    warm = table[table["split"] == "warm"]
    assert set(warm["status"]) == {"ok"} and warm["mean"].astype(float).between(0, 1).all()


def test_refit_is_labelled_and_trains_on_train_plus_validation(demo_dir, features, tmp_path):
    body = SPLITS.split("[[splits]]")[1]
    config = write(tmp_path, demo_dir, features, "[[splits]]" + body, extra="refit = true")
    out = tmp_path / "out"
    assert main(["benchmark", str(config), "-o", str(out), "--no-plots"]) == 0
    summary = json.loads((out / "results.json").read_text())
    assert summary["refit"] is True and summary["split_name"] == "warm"
    bpr = next(m for m in summary["models"] if m["name"] == "bpr")
    assert bpr["refit"] and bpr["refit_run_dir"].endswith("warm/refit/bpr")
    meta = json.loads((out / "warm" / "refit" / "bpr" / "run.json").read_text())
    assert meta["data"]["split"]["validation"] is False
    md = (out / "results.md").read_text()
    assert "| bpr [refit] |" in md and "[refit]: the chosen options retrained" in md
    chosen = json.loads((out / "warm" / "runs" / "bpr" / "run.json").read_text())
    assert meta["config"]["epochs"] == chosen["info"]["training"]["best_epoch"]

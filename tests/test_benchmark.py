"""`visrec benchmark`: config validation, training/reuse, failures kept apart, tables, marks, plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from visrec.benchmark import load_config, run_suite
from visrec.benchmark.entries import ModelSpec
from visrec.benchmark.report import METRICS, summarise, table_markdown
from visrec.benchmark.runner import GridPoint, ModelOutcome
from visrec.cli import main
from visrec.errors import ConfigError
from visrec.evaluation.results import EvalResult

MODELS = """
[[models]]
model = "random"
[[models]]
model = "pop"
[[models]]
model = "bpr"
config = {epochs = 1, factors = 4, batch_size = 256}
grid = {lr = [0.001, 0.05]}
[[models]]
model = "visrank"
features = "onehot"
"""


@pytest.fixture(scope="module")
def features(demo_dir, tmp_path_factory):
    """Synthetic pooled features: one-hot palette/shape of the demo items plus noise."""
    from visrec.features import FeatureStore

    items = pd.read_csv(demo_dir / "items.csv", dtype=str)
    onehot = pd.get_dummies(items[["palette", "shape"]]).to_numpy(np.float32)
    noisy = onehot + np.random.default_rng(0).normal(0, 0.1, onehot.shape).astype(np.float32)
    path = tmp_path_factory.mktemp("bench") / "onehot"
    FeatureStore.write(path, items["item_id"].tolist(), noisy, {"backbone": "synthetic"})
    return path


def write_config(folder, demo_dir, features, models=MODELS, extra=""):
    text = (
        f'[dataset]\npath = "{demo_dir}"\n[features]\nonehot = "{features}"\n'
        f"[benchmark]\nn_boot = 200\n{extra}\n{models}"
    )
    path = folder / "bench.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def finished(demo_dir, features, tmp_path_factory):
    """One benchmark run through the CLI (shared by the tests that only read its outputs)."""
    folder = tmp_path_factory.mktemp("suite")
    config = write_config(folder, demo_dir, features)
    out = folder / "out"
    assert main(["benchmark", str(config), "-o", str(out)]) == 0
    return config, out


def test_benchmark_writes_tables_with_cis(finished):
    _, out = finished
    summary = json.loads((out / "results.json").read_text())
    names = [m["name"] for m in summary["models"]]
    assert names == ["random", "pop", "bpr", "visrank"]
    for m in summary["models"]:
        assert m["status"] == "ok"
        for metric in METRICS:
            low, high = m["ci95"][metric]
            assert low <= m["means"][metric] <= high
    md = (out / "results.md").read_text()
    assert "| model | AUC | RR | R@20 | P@20 | nDCG@20 | R@100 | P@100 | nDCG@100 |" in md
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 4 * len(METRICS)
    # the evaluations are stored in the run folders
    assert (out / "runs" / "visrank" / "eval" / "test-full.json").is_file()


def test_grid_is_chosen_on_validation_only(finished):
    _, out = finished
    summary = json.loads((out / "results.json").read_text())
    bpr = next(m for m in summary["models"] if m["name"] == "bpr")
    assert len(bpr["grid"]) == 2
    best = max(bpr["grid"], key=lambda p: p["validation"])
    assert bpr["run_dir"] == best["run_dir"]
    assert bpr["options"]["lr"] == best["options"]["lr"]
    # only the chosen grid point was evaluated on test
    tested = [p for p in bpr["grid"] if (out / p["run_dir"] / "eval" / "test-full.json").is_file()]
    assert [p["run_dir"] for p in tested] == [best["run_dir"]]


def test_plots_are_written_and_not_empty(finished):
    _, out = finished
    pngs = sorted((out / "plots").glob("*.png"))
    assert [p.name for p in pngs] == ["by_profile_size.png", "first_hit_rank.png", "metrics_ci.png"]
    md = (out / "results.md").read_text()
    assert all(f"(plots/{p.name})" in md for p in pngs)
    for p in pngs:
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_rerun_reuses_finished_runs(finished, capsys):
    config, out = finished
    before = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("run.json")}
    results_before = json.loads((out / "results.json").read_text())
    capsys.readouterr()
    assert main(["benchmark", str(config), "-o", str(out), "--no-plots"]) == 0
    text = capsys.readouterr().out
    assert text.count("reusing finished run") == 5  # random, pop, 2 bpr grid points, visrank
    assert "training ->" not in text
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("run.json")} == before
    again = json.loads((out / "results.json").read_text())
    assert [m["means"] for m in again["models"]] == [m["means"] for m in results_before["models"]]


def test_failed_model_keeps_the_others(demo_dir, features, tmp_path, monkeypatch):
    models = MODELS.replace("grid = {lr = [0.001, 0.05]}\n", "") + '[[models]]\nmodel = "vbpr"\n'
    config = write_config(tmp_path, demo_dir, features, models)
    out = tmp_path / "out"
    from visrec.models.baselines import MostPopular

    def broken(self, dataset, features, **options):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(MostPopular, "_fit", broken)
    summary = run_suite(config, out, plots=False)
    status = {m["name"]: m["status"] for m in summary["models"]}
    assert status == {
        "random": "ok",
        "pop": "failed",
        "bpr": "ok",
        "visrank": "ok",
        "vbpr": "failed",
    }
    errors = {m["name"]: m["error"] for m in summary["models"]}
    assert "simulated crash" in errors["pop"] and "features" in errors["vbpr"]
    md = (out / "results.md").read_text()
    assert "| pop | failed |" in md and "simulated crash" in md
    assert (out / "runs" / "bpr" / "eval" / "test-full.json").is_file()
    # the failed model runs again later without disturbing the finished ones
    monkeypatch.undo()
    summary = run_suite(config, out, plots=False)
    assert {m["name"]: m["status"] for m in summary["models"]}["pop"] == "ok"


def test_changed_options_are_not_silently_reused(demo_dir, features, tmp_path):
    models = '[[models]]\nmodel = "bpr"\nconfig = {epochs = 1, factors = 4}\n'
    config = write_config(tmp_path, demo_dir, features, models)
    out = tmp_path / "out"
    run_suite(config, out, plots=False)
    config.write_text(config.read_text().replace("factors = 4", "factors = 6"))
    with pytest.raises(Exception, match="every model"):
        run_suite(config, out, plots=False)
    md = (out / "results.md").read_text()
    assert "factors=4" in md and "--force" in md
    summary = run_suite(config, out, plots=False, force=True)
    assert summary["models"][0]["options"]["factors"] == 6


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ('[[models]]\nmodel = "nope"\n', "unknown model 'nope'"),
        ('[[models]]\nmodel = "visrank"\nfeatures = "resnet"\n', "unknown features 'resnet'"),
        ('[[models]]\nmodel = "bpr"\ngrid = {lr = 0.1}\n', "grid.lr must be a non-empty list"),
        ('[[models]]\nmodel = "bpr"\nconfig = {lr = -1.0}\n', "lr must be > 0"),
        ('[[models]]\nmodel = "pop"\n[[models]]\nmodel = "pop"\n', "repeated: pop"),
        ('[[models]]\nmodel = "pop"\ncolour = 1\n', "unknown [[models]] entry 1 key 'colour'"),
        (
            'seed = "x"\n[[models]]\nmodel = "pop"\n',
            "[benchmark] key seed: cannot read 'x'",
        ),
        (
            'nboot = 9\n[[models]]\nmodel = "pop"\n',
            "'nboot'; expected one of seed, n_boot",
        ),
        (
            '[[models]]\nmodel = "bpr"\nconfig = {epochs = 1.5}\n',
            "option epochs: cannot read 1.5 as int",
        ),
    ],
)
def test_config_errors_name_the_file_and_entry(demo_dir, features, tmp_path, snippet, message):
    config = write_config(tmp_path, demo_dir, features, snippet)
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert str(config) in str(info.value) and message in str(info.value)


def test_cold_items_split_settings_reach_the_data_spec(demo_dir, features, tmp_path):
    text = write_config(tmp_path, demo_dir, features, MODELS).read_text()
    cold = 'split = "cold-items"\ncold_fraction = 0.2\nsplit_seed = 7\n[features]'
    (tmp_path / "bench.toml").write_text(text.replace("[features]", cold))
    split = load_config(tmp_path / "bench.toml").data.split
    assert (split["method"], split["cold_fraction"], split["seed"]) == ("cold-items", 0.2, 7)


def test_config_paths_are_relative_to_the_file(demo_dir, tmp_path):
    (tmp_path / "bench.toml").write_text('[dataset]\npath = "missing"\n[[models]]\nmodel = "pop"\n')
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "bench.toml")
    (tmp_path / "bench.toml").write_text("[dataset\n")
    with pytest.raises(ConfigError, match="not a valid TOML"):
        load_config(tmp_path / "bench.toml")


def fake_outcome(name, values, profile):
    n = len(values)
    table = pd.DataFrame(
        {"user_id": [f"u{i}" for i in range(n)], "user_idx": np.arange(n), "profile_size": profile}
        | {m: values for m in METRICS}
        | {"first_hit_rank": np.zeros(n)}
    )
    result = EvalResult(
        "full", "test", (20, 100), {m: float(np.mean(values)) for m in METRICS}, table
    )
    point = GridPoint(run_dir=__import__("pathlib").Path(name), options={}, validation=0.5)
    return ModelOutcome(ModelSpec(name, "pop"), points=[point], chosen=point, test=result)


def test_significance_marks_agree_with_scipy_and_holm():
    rng = np.random.default_rng(0)
    n = 120
    base = rng.random(n)
    noise = [rng.normal(0, 0.05, n) for _ in range(3)]
    values = {
        "best": base,
        "tied": base - 0.003 + noise[0] - noise[0].mean(),
        "worse": base - 0.06 + noise[1] - noise[1].mean(),
        "slightly": base - 0.011 + noise[2] - noise[2].mean(),
    }
    outcomes = [fake_outcome(k, v, rng.integers(1, 30, n)) for k, v in values.items()]
    config = type("C", (), {"alpha": 0.05, "n_boot": 100, "seed": 0, "select_metric": "AUC",
                            "path": "x.toml"})()  # fmt: skip
    summary = summarise(outcomes, config, "fake")
    others = ["tied", "worse", "slightly"]
    raw = np.array([stats.wilcoxon(values[m], values["best"]).pvalue for m in others])
    order = np.argsort(raw)
    holm = np.empty(3)
    for i, j in enumerate(order):
        holm[j] = max(holm[order[i - 1]] if i else 0.0, min(1.0, (3 - i) * raw[j]))
    by_name = {m["name"]: m for m in summary["models"]}
    assert by_name["best"]["tests"]["AUC"] == {"best": True}
    for m, p in zip(others, holm, strict=True):
        t = by_name[m]["tests"]["AUC"]
        assert t["p_wilcoxon_holm"] == pytest.approx(p)
        assert t["p_ttest"] == pytest.approx(stats.ttest_rel(values[m], values["best"]).pvalue)
        assert t["below_best"] == bool(p < 0.05)
    assert by_name["worse"]["tests"]["AUC"]["below_best"]
    assert not by_name["tied"]["tests"]["AUC"]["below_best"]
    rows = {line.split("|")[1].strip(): line for line in table_markdown(summary).splitlines()[2:]}
    for m in others:
        assert ("▼" in rows[m]) == by_name[m]["tests"]["AUC"]["below_best"]
    assert "**" in rows["best"] and "▼" not in rows["best"]


def test_missing_feature_store_fails_only_its_models(demo_dir, tmp_path):
    (tmp_path / "bench.toml").write_text(
        f'[dataset]\npath = "{demo_dir}"\n[features]\nghost = "not-extracted-yet"\n'
        '[[models]]\nmodel = "pop"\n[[models]]\nmodel = "visrank"\nfeatures = "ghost"\n'
    )
    summary = run_suite(tmp_path / "bench.toml", tmp_path / "out", plots=False)
    pop, visrank = summary["models"]
    assert pop["status"] == "ok" and visrank["status"] == "failed"
    assert "not-extracted-yet" in visrank["error"]


def test_reuse_check_compares_settings_as_stored_in_json(demo_dir, tmp_path):
    """Tuple options (CuratorNet's strategy_shares) come back from run.json as lists: still the same."""
    from visrec._io import write_json
    from visrec.benchmark.runner import _check_same_settings
    from visrec.models import create

    (tmp_path / "bench.toml").write_text(
        f'[dataset]\npath = "{demo_dir}"\n[features]\nf = "feats"\n'
        '[[models]]\nmodel = "curatornet"\nfeatures = "f"\n'
    )
    config = load_config(tmp_path / "bench.toml")
    spec = config.models[0]
    run_dir = tmp_path / "run"
    meta = {
        "model": "curatornet",
        "config": create("curatornet", {}).config.to_dict(),
        "data": config.data.__dict__,
        "features": spec.features,
        "status": "finished",
    }
    write_json(run_dir / "run.json", meta)
    _check_same_settings(spec, GridPoint(run_dir, {}), config)  # no error
    meta["config"]["n_clusters"] = 7
    write_json(run_dir / "run.json", meta)
    with pytest.raises(Exception, match="n_clusters=7"):
        _check_same_settings(spec, GridPoint(run_dir, {}), config)
    # a run that predates an option (absent from its run.json) matches its default, not another value
    meta["config"] = create("curatornet", {}).config.to_dict()
    del meta["config"]["optimizer"]
    write_json(run_dir / "run.json", meta)
    _check_same_settings(spec, GridPoint(run_dir, {}), config)  # no error
    with pytest.raises(Exception, match="optimizer=None"):
        _check_same_settings(spec, GridPoint(run_dir, {"optimizer": "sparse_adam"}), config)


def test_report_labels_cold_results_from_the_registry():
    from visrec.benchmark.report import report_metrics, to_markdown

    keys = report_metrics("cold")
    assert keys[0] == "AUC[cold]" and "nDCG@100[cold]" in keys
    assert report_metrics() == METRICS
    rng = np.random.default_rng(1)
    outcomes = []
    for name in ("a", "b"):
        o = fake_outcome(name, rng.random(30), rng.integers(1, 9, 30))
        o.test.mode = "cold"
        o.test.per_user = o.test.per_user.rename(columns={m: f"{m}[cold]" for m in METRICS})
        o.test.means = {f"{m}[cold]": v for m, v in o.test.means.items()}
        outcomes.append(o)
    config = type("C", (), {"alpha": 0.05, "n_boot": 50, "seed": 0, "select_metric": "AUC",
                            "path": "x.toml"})()  # fmt: skip
    summary = summarise(outcomes, config, "fake")
    assert summary["mode"] == "cold" and summary["metrics"] == list(keys)
    text = to_markdown(summary, [], __import__("pathlib").Path("."))
    assert "| AUC[cold] |" in text and "new items ranked among all new items" in text


def test_select_metric_must_be_a_stored_validation_metric(demo_dir, features, tmp_path):
    for metric, message in (("XYZ", "unknown metric"), ("MAP@20", "stored validation metrics")):
        extra = f'select_metric = "{metric}"'
        config = write_config(tmp_path, demo_dir, features, '[[models]]\nmodel = "pop"\n', extra)
        with pytest.raises(ConfigError, match=message):
            load_config(config)


@pytest.mark.parametrize(
    "toml", sorted((Path(__file__).parents[1] / "benchmarks").glob("*.toml")), ids=lambda p: p.name
)
def test_the_shipped_benchmark_tomls_hold_valid_model_entries(toml):
    """Every [[models]] entry of the TOMLs under benchmarks/ (their data is not needed): a known model,
    a known feature name and every grid point a valid config, as the benchmark checks before running."""
    import tomllib

    from visrec.benchmark.entries import model_spec

    raw = tomllib.loads(toml.read_text())
    features = {name: f"/nowhere/{name}" for name in raw.get("features", {})}
    specs = [model_spec(e, i, features, str(toml)) for i, e in enumerate(raw["models"])]
    assert len({s.name for s in specs}) == len(specs)  # each row has its own label
    assert all(s.candidates() for s in specs)

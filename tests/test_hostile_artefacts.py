"""Broken and tampered stored artefacts: every one is a one-line CLI error (exit 2), never a traceback."""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import pytest
import torch

from visrec.cli import main
from visrec.features import FeatureStore, extract_features
from visrec.features import extract as extract_module

TINY = ["--backbone", "resnet18", "--weights", "none", "--input-size", "32", "--workers", "0",
        "--batch-size", "8", "--device", "cpu", "--precision", "fp32"]  # fmt: skip


@pytest.fixture(scope="module")
def corpus(demo_dir, tmp_path_factory):
    """Finished runs (pop, bpr with a checkpoint), a feature store and an interrupted extraction."""
    root = tmp_path_factory.mktemp("corpus")
    assert main(["train", "pop", "--data", str(demo_dir), "-o", str(root / "pop")]) == 0
    bpr = ["train", "bpr", "--data", str(demo_dir), "-o", str(root / "bpr")]
    assert main([*bpr, "--set", "epochs=1", "--set", "device=cpu"]) == 0
    assert (root / "bpr" / "checkpoint.pt").is_file()
    images = root / "images"
    shutil.copytree(demo_dir / "images", images, ignore=lambda d, names: sorted(names)[12:])
    with pytest.MonkeyPatch.context() as patch:  # interrupted just before finishing
        patch.setattr(extract_module, "_finalise", _interrupt)
        with pytest.raises(KeyboardInterrupt):
            extract_features(images, root / "store", backbone="resnet18", weights="none",
                             input_size=32, workers=0, device="cpu", precision="fp32")  # fmt: skip
    assert (root / ".store.partial").is_dir()
    return {"root": root, "demo": demo_dir, "images": images}


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def _copy(corpus, name: str, tmp_path) -> pathlib.Path:
    return pathlib.Path(shutil.copytree(corpus["root"] / name, tmp_path / name))


def _user(corpus) -> str:
    return json.loads((corpus["root"] / "pop" / "model" / "model.json").read_text())["users"][0]


def _run_json(run: pathlib.Path, **changes) -> None:
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, **changes}))


# Each case breaks one artefact and returns (CLI arguments, text the error must contain).


def weights_garbage(corpus, tmp):
    run = _copy(corpus, "pop", tmp)
    (run / "model" / "weights.pt").write_bytes(b"\x00not a torch file")
    return ["recommend", str(run), "--user", _user(corpus)], "weights.pt: damaged or unsafe"


def weights_truncated(corpus, tmp):
    run = _copy(corpus, "bpr", tmp)
    data = (run / "model" / "weights.pt").read_bytes()
    (run / "model" / "weights.pt").write_bytes(data[: len(data) // 2])
    # `evaluate` of BPR scores from the exported factors, not the weights: recommend loads them
    return ["recommend", str(run), "--user", _user(corpus)], "model weights"


def factors_changed(corpus, tmp):
    run = _copy(corpus, "bpr", tmp)
    path = run / "model" / "factors-items.npy"
    data = bytearray(path.read_bytes())
    data[-4:] = b"\x7f\x7f\x7f\x7f"  # a changed value: still a valid array, no longer the saved one
    path.write_bytes(bytes(data))
    return ["evaluate", str(run)], "factors-items.npy: the file changed since the model was saved"


def weights_with_code(corpus, tmp):
    run = _copy(corpus, "pop", tmp)
    torch.save({"x": pathlib.PurePosixPath("/")}, run / "model" / "weights.pt")
    return ["recommend", str(run), "--user", _user(corpus)], "--force"


def weights_wrong_shapes(corpus, tmp):
    run = _copy(corpus, "bpr", tmp)
    state = torch.load(run / "model" / "weights.pt", weights_only=True)
    torch.save({k: torch.zeros(1) for k in state}, run / "model" / "weights.pt")
    return ["recommend", str(run), "--user", _user(corpus)], "weights do not fit"


def model_json_garbage(corpus, tmp):
    run = _copy(corpus, "pop", tmp)
    (run / "model" / "model.json").write_text("{not json")
    return ["evaluate", str(run)], "model.json: damaged saved model metadata"


def model_json_fields(corpus, tmp):
    run = _copy(corpus, "pop", tmp)
    meta = json.loads((run / "model" / "model.json").read_text())
    del meta["items"]
    (run / "model" / "model.json").write_text(json.dumps(meta))
    return ["evaluate", str(run)], "damaged saved model"


def run_json_garbage(corpus, tmp):
    run = _copy(corpus, "pop", tmp)
    (run / "run.json").write_bytes(b"\xff\xfe\x00")
    return ["recommend", str(run), "--user", _user(corpus)], "run.json: damaged run metadata"


def run_json_not_an_object(corpus, tmp):
    run = _copy(corpus, "pop", tmp)
    (run / "run.json").write_text("[1, 2]")
    return ["evaluate", str(run)], "not a JSON object"


def run_json_without_data(corpus, tmp):
    run = _copy(corpus, "pop", tmp)
    _run_json(run, data={"nonsense": 1})
    return ["evaluate", str(run)], "damaged run metadata"


def checkpoint_garbage(corpus, tmp):
    run = _copy(corpus, "bpr", tmp)
    _run_json(run, status="running")
    (run / "checkpoint.pt").write_bytes(b"PK\x03\x04 broken zip")
    args = ["train", "bpr", "--data", str(corpus["demo"]), "-o", str(run), "--resume"]
    return [*args, "--set", "epochs=1", "--set", "device=cpu"], "checkpoint.pt: damaged or unsafe"


def checkpoint_missing_keys(corpus, tmp):
    run = _copy(corpus, "bpr", tmp)
    _run_json(run, status="running")
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    torch.save({"config": state["config"], "module": {}}, run / "checkpoint.pt")
    args = ["train", "bpr", "--data", str(corpus["demo"]), "-o", str(run), "--resume"]
    return [*args, "--set", "epochs=1", "--set", "device=cpu"], "damaged training checkpoint"


def partial_done_garbage(corpus, tmp):
    shutil.copytree(corpus["root"] / ".store.partial", tmp / ".store.partial")
    (tmp / ".store.partial" / "done.npy").write_bytes(b"\x93NUMPY garbage")
    return ["extract", str(corpus["images"]), "-o", str(tmp / "store"), "--resume", *TINY], (
        "done.npy: damaged interrupted extraction"
    )


def partial_features_shape(corpus, tmp):
    shutil.copytree(corpus["root"] / ".store.partial", tmp / ".store.partial")
    np.save(tmp / ".store.partial" / "features.npy", np.zeros((3, 2), dtype=np.float32))
    return ["extract", str(corpus["images"]), "-o", str(tmp / "store"), "--resume", *TINY], (
        "--overwrite"
    )


def partial_failed_log(corpus, tmp):
    shutil.copytree(corpus["root"] / ".store.partial", tmp / ".store.partial")
    (tmp / ".store.partial" / "failed.jsonl").write_text("{broken\n")
    return ["extract", str(corpus["images"]), "-o", str(tmp / "store"), "--resume", *TINY], (
        "failed.jsonl: damaged list of unreadable images"
    )


def legacy_not_rows(corpus, tmp):
    np.save(tmp / "embedding.npy", np.array([1, 2, 3], dtype=object), allow_pickle=True)
    args = ["features", "import-legacy", str(tmp / "embedding.npy"), "--allow-pickle"]
    return [*args, "-o", str(tmp / "out")], "not a tutorial feature file"


def legacy_bad_vector(corpus, tmp):
    rows = np.empty((2, 2), dtype=object)
    rows[0] = ["a", np.zeros(3)]
    rows[1] = ["b", "not a vector"]
    np.save(tmp / "embedding.npy", rows, allow_pickle=True)
    args = ["features", "import-legacy", str(tmp / "embedding.npy"), "--allow-pickle"]
    return [*args, "-o", str(tmp / "out")], "not a tutorial feature file"


def legacy_duplicate_ids(corpus, tmp):
    rows = np.empty((2, 2), dtype=object)
    rows[0] = ["a", np.zeros(3)]
    rows[1] = ["a", np.ones(3)]
    np.save(tmp / "embedding.npy", rows, allow_pickle=True)
    args = ["features", "import-legacy", str(tmp / "embedding.npy"), "--allow-pickle"]
    return [*args, "-o", str(tmp / "out")], "duplicate"


def train_out_is_a_file(corpus, tmp):
    (tmp / "taken").write_text("mine")
    return ["train", "pop", "--data", str(corpus["demo"]), "-o", str(tmp / "taken")], "is a file"


def extract_out_is_a_file(corpus, tmp):
    (tmp / "taken").write_text("mine")
    return ["extract", str(corpus["images"]), "-o", str(tmp / "taken"), *TINY], "is a file"


def store_of_another_dataset(corpus, tmp):
    ids = [f"other{i}" for i in range(30)]
    FeatureStore.write(tmp / "other", ids, np.ones((30, 4), np.float32), {"layer": "pooled"})
    args = ["train", "visrank", "--data", str(corpus["demo"]), "--features", str(tmp / "other")]
    return [*args, "-o", str(tmp / "run")], "covers only 0 of the dataset's 90 items (0.0%"


def store_features_garbage(corpus, tmp):
    FeatureStore.write(tmp / "s", ["a", "b"], np.ones((2, 4), np.float32), {"layer": "pooled"})
    (tmp / "s" / "features.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    return ["features", "info", str(tmp / "s")], "features.npy"


CASES = [weights_garbage, weights_truncated, factors_changed, weights_with_code, weights_wrong_shapes,
         model_json_garbage, model_json_fields, run_json_garbage, run_json_not_an_object,
         run_json_without_data, checkpoint_garbage, checkpoint_missing_keys, partial_done_garbage,
         partial_features_shape, partial_failed_log, legacy_not_rows, legacy_bad_vector,
         legacy_duplicate_ids, train_out_is_a_file, extract_out_is_a_file,
         store_of_another_dataset, store_features_garbage]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_cli_over_broken_artefacts_exits_2_without_traceback(case, corpus, tmp_path, capsys):
    args, expected = case(corpus, tmp_path)
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], err


def test_run_failing_at_start_up_does_not_block_the_retry(corpus, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    out = tmp_path / "run"
    args = ["train", "bpr", "--data", str(corpus["demo"]), "-o", str(out), "--set", "epochs=1"]
    assert main([*args, "--set", "device=cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert not out.exists()
    assert main([*args, "--set", "device=cpu"]) == 0  # no --force, no --resume needed
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


def test_start_up_failure_in_an_existing_folder_keeps_the_folder(corpus, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    args = ["train", "bpr", "--data", str(corpus["demo"]), "-o", str(out), "--set", "epochs=1"]
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    assert main([*args, "--set", "device=cuda"]) == 2
    assert out.is_dir() and not (out / "run.json").exists()


def test_a_mostly_covering_store_is_mean_filled_and_lists_the_rest(demo_dataset, tmp_path, caplog):
    from visrec.models.features import item_features

    ids = list(demo_dataset.items.ids)
    store = FeatureStore.write(
        tmp_path / "s", ids[:-3], np.ones((len(ids) - 3, 4), np.float32), {"layer": "pooled"}
    )
    array, absent = item_features(store, demo_dataset.items)
    assert absent.tolist() == [len(ids) - 3, len(ids) - 2, len(ids) - 1]
    assert array[absent].numpy() == pytest.approx(np.ones((3, 4)))
    assert ids[-1] in caplog.text and "3 items have no features" in caplog.text
    with pytest.raises(Exception, match=r"covers only 87 of the dataset's 90 items \(96.7%"):
        store.aligned(demo_dataset.items, "mean", min_share=0.99)


def test_coverage_share_from_the_environment(demo_dataset, tmp_path, monkeypatch):
    ids = list(demo_dataset.items.ids)[:30]
    store = FeatureStore.write(tmp_path / "s", ids, np.ones((30, 4), np.float32), {"l": 1})
    with pytest.raises(Exception, match="at least 50% needed"):
        store.aligned(demo_dataset.items, "mean")
    monkeypatch.setenv("VISREC_MIN_FEATURE_COVERAGE", "0.3")
    assert store.aligned(demo_dataset.items, "mean")[1].size == 60
    monkeypatch.setenv("VISREC_MIN_FEATURE_COVERAGE", "lots")
    with pytest.raises(Exception, match="must be a number in"):
        store.aligned(demo_dataset.items, "mean")


@pytest.mark.parametrize(
    "text,reason",
    [("{", "damaged evaluation result"), ("[]", "not a JSON object"),
     ('{"format": "visrec-eval/1"}', "damaged evaluation result")],
)  # fmt: skip
def test_damaged_evaluation_result_is_one_error(tmp_path, text, reason):
    from visrec.errors import DataError
    from visrec.evaluation.results import FORMAT, EvalResult

    path = tmp_path / "eval.json"
    path.write_text(text.replace("visrec-eval/1", str(FORMAT)))
    with pytest.raises(DataError, match=reason) as info:
        EvalResult.from_json(path)
    assert "eval.json" in str(info.value) and "--force" in str(info.value)

"""`visrec train` prints one readable line per epoch; the JSON rows stay in train_log.jsonl."""

from __future__ import annotations

import json

from visrec.cli import main
from visrec.training.trainer import format_epoch


def test_format_epoch_names_loss_metric_time_and_speed():
    row = {"epoch": 3, "loss": 0.51234, "lr": 1e-3, "seconds": 2.04, "triplets_per_s": 12345.6}
    row["val_ndcg@20"] = 0.0812
    line = format_epoch(row, 20)
    assert line.split() == [
        "epoch", "3/20", "loss", "0.5123", "ndcg@20", "0.0812", "2.0", "s", "12,346", "triplets/s",
    ]  # fmt: skip


def test_train_prints_a_line_per_epoch_and_keeps_json_log(demo_dir, tmp_path, capsys):
    run = tmp_path / "bpr"
    args = ["train", "bpr", "--data", str(demo_dir), "-o", str(run), "--set", "epochs=3"]
    assert main([*args, "--set", "patience=0"]) == 0
    out = capsys.readouterr().out.splitlines()
    epoch_lines = [line for line in out if line.startswith("epoch ")]
    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert len(epoch_lines) == len(rows) == 3
    for line, row in zip(epoch_lines, rows, strict=True):
        assert line == format_epoch(row, 3)
    assert not any(line.lstrip().startswith("{") for line in out)  # no raw JSON without -v

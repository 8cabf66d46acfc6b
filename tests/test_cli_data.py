"""The ``visrec data`` commands end to end."""

from __future__ import annotations

import json

import pytest

from visrec.cli import main


def test_demo_and_stats_json(tmp_path, capsys):
    out = tmp_path / "demo"
    assert (
        main(["data", "demo", str(out), "--users", "30", "--items", "40", "--image-size", "16"])
        == 0
    )
    capsys.readouterr()
    assert main(["data", "stats", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["users"] == 30 and stats["items"] == 40
    assert stats["interactions"] > 30
    assert 0 < stats["top10_users_share"] <= 1


def test_stats_table_on_csv(tmp_path, capsys):
    path = tmp_path / "x.csv"
    path.write_text("user_id,item_id,timestamp\nu,a,1\nu,b,2\nv,a,3\n")
    assert main(["data", "stats", str(path)]) == 0
    out = capsys.readouterr().out
    assert "users          2" in out and "interactions   3" in out


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    path = tmp_path / "x.csv"
    path.write_text("user_id,item_id,timestamp\nu,a,soon\n")
    assert main(["data", "stats", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "line 2" in err and "Traceback" not in err


def test_bad_flag(capsys):
    assert main(["data", "demo", "/tmp/x", "--users", "1"]) == 2
    assert "Invalid value" in capsys.readouterr().err


@pytest.mark.realdata
def test_movielens_posters_stats(real_data, capsys):
    assert main(["data", "stats", str(real_data), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["users"], stats["items"], stats["interactions"]) == (943, 1682, 100_000)

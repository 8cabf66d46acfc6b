"""The tutorial notebooks (docs/tutorial/) run end to end on the demo data, so they never rot."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial"
NOTEBOOKS = sorted(TUTORIAL.glob("*.ipynb"))


def test_notebooks_match_their_generator(tmp_path):
    sys.path.insert(0, str(TUTORIAL))
    try:
        import make_notebooks
    finally:
        sys.path.remove(str(TUTORIAL))
    written = make_notebooks.write(tmp_path)
    assert [p.name for p in written] == [p.name for p in NOTEBOOKS]
    for path in written:
        assert path.read_text() == (TUTORIAL / path.name).read_text(), path.name
        book = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in book.cells if c.cell_type == "code")


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    book = nbformat.read(path, as_version=4)
    src = str(ROOT / "src")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebooks' work folders go with the test's
    client = nbclient.NotebookClient(
        book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [o for c in book.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors

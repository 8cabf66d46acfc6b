"""Shared fixtures: small data generated in code (no network, no files from the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens-100k-posters"
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """visrec's caches (pixels, built datasets) go to a folder of this session, never ~/.cache."""
    os.environ["VISREC_CACHE_DIR"] = str(tmp_path_factory.mktemp("visrec-cache"))


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A small demo dataset folder (80 users, 90 items, 32 px images), generated once per session."""
    from visrec.data.demo import DemoSpec, generate_demo

    out = tmp_path_factory.mktemp("demo") / "data"
    return generate_demo(out, DemoSpec(n_users=80, n_items=90, image_size=32, seed=3))


@pytest.fixture(scope="session")
def demo_dataset(demo_dir):
    from visrec.data import open_dataset

    return open_dataset(demo_dir).build()


@pytest.fixture
def real_data() -> Path:
    if not (REAL_DATA / "u.data").is_file():
        pytest.skip(f"real data not present at {REAL_DATA}")
    return REAL_DATA


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path

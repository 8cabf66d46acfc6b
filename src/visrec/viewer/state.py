"""What the viewer serves: loaded runs and their labels, item titles, stored per-user metrics,
explanations, the image folder, an on-disk thumbnail cache, item vectors."""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from visrec._io import atomic_path
from visrec.data.images import inside, load_rgb, scan_image_folder
from visrec.errors import DataError
from visrec.evaluation import evaluate
from visrec.features import FeatureStore
from visrec.models.capabilities import Explains
from visrec.runs import Run, load_run
from visrec.serving import recommend_users, similar_items
from visrec.serving.index import build_index
from visrec.viewer.catalog import Catalog
from visrec.viewer.explain import explain_items, explanation_note
from visrec.viewer.labels import run_labels
from visrec.viewer.new_items import NewItemsView
from visrec.viewer.users import load_per_user, stored_evaluations

log = logging.getLogger(__name__)


@dataclass
class ViewerState:
    runs: list[Run]
    images_dir: Path
    thumbs_dir: Path
    image_paths: dict[str, Path] = field(default_factory=dict)
    _vectors: np.ndarray | None = None
    indexed: dict = field(default_factory=dict)
    """Run number -> :class:`~visrec.serving.index.IndexedModel` (``--index faiss``)."""
    new_items: NewItemsView | None = None
    """Items never seen in training (``--new-items``), served per run (viewer/new_items.py)."""
    _labels: list[str] | None = None
    _catalog: Catalog | None = None
    _per_user: dict = field(default_factory=dict)

    @classmethod
    def open(
        cls,
        run_dirs: list[str | Path],
        images_dir: str | Path,
        thumbs_dir: str | Path | None = None,
        index: str = "exact",
        new_items: str | Path | None = None,
    ) -> ViewerState:
        if not run_dirs:
            raise DataError("give at least one run directory")
        runs = [load_run(r) for r in run_dirs]
        images_dir = Path(images_dir).resolve()
        image_paths = _served_images(images_dir, runs)
        thumbs = Path(thumbs_dir) if thumbs_dir else images_dir.parent / ".visrec-thumbs"
        view = NewItemsView(new_items, thumbs)
        return cls(
            runs, images_dir, thumbs, image_paths, indexed=_indexes(runs, index), new_items=view
        )

    @property
    def dataset(self):
        return self.runs[0].dataset

    def run(self, k: int) -> Run:
        if not 0 <= k < len(self.runs):
            raise KeyError(f"unknown run {k}; runs are 0..{len(self.runs) - 1}")
        return self.runs[k]

    def user_index(self, user_id: str) -> int:
        return self.dataset.users.index(user_id)

    def item_index(self, item_id: str) -> int:
        return self.dataset.items.index(item_id)

    # --- recommendations ----------------------------------------------------------------------------
    def recommendations(
        self, run_no: int, user_idx: int, k: int, *, show_consumed: bool = False
    ) -> list[dict]:
        """Top-k rows (rank, item_id, score, consumed, hit) of run ``run_no`` for ``user_idx``.

        Consumed items (serving's definition, :attr:`visrec.data.Dataset.consumed`) are left out
        unless ``show_consumed``; then they are kept and flagged (``hit``: a held-out test item)."""
        run = self.run(run_no)
        exclude = not show_consumed
        if run_no in self.indexed:
            serve = self.indexed[run_no].recommend_users
            rec = serve(run.dataset, [user_idx], k, exclude_consumed=exclude)[0]
        else:
            serve = partial(recommend_users, run.model)
            rec = serve(run.dataset, [user_idx], k, exclude_consumed=exclude)[0]
        truth = set(run.dataset.test[user_idx].indices.tolist())
        rows = rec.to_rows(run.dataset.items.ids)
        for row, idx in zip(rows, rec.items, strict=True):
            row["hit"] = int(idx) in truth
        return rows

    def user_metrics(self, run_no: int, user_idx: int) -> dict:
        run = self.run(run_no)
        if run.dataset.test[user_idx].nnz == 0:
            return {}
        res = evaluate(
            run.model.scorer(run.dataset, "test"),
            run.dataset,
            split="test",
            users=np.array([user_idx]),
        )
        return {k: float(v) for k, v in res.means.items()}

    def attention(self, run_no: int, user_idx: int) -> dict | None:
        model = self.run(run_no).model
        if not isinstance(model, Explains):
            return None
        maps = model.explain([user_idx])
        profile = maps["profile"][0].numpy()
        keep = profile >= 0
        return {
            "items": profile[keep],
            "item_weights": maps["item_attention"][0].numpy()[keep],
            "components": maps["component_attention"][0].numpy()[keep],
            "grid": model.grid,
        }

    # --- labels, titles, stored evaluations, explanations -------------------------------------------
    @property
    def labels(self) -> list[str]:
        """Each run's label: model + chosen options (:func:`visrec.viewer.labels.run_labels`)."""
        if self._labels is None:
            self._labels = run_labels(self.runs)
        return self._labels

    @property
    def catalog(self) -> Catalog:
        """Titles and metadata of the items (the first run's dataset item table)."""
        if self._catalog is None:
            self._catalog = Catalog.open(self.runs[0].data.path, self.dataset.items)
        return self._catalog

    def evaluations(self, run_no: int) -> list[str]:
        """Names of the run's stored evaluations (``test-full``, ...)."""
        return stored_evaluations(self.run(run_no).path)

    def per_user(self, run_no: int, name: str) -> pd.DataFrame:
        """The per-user table of a stored evaluation of the run (read once)."""
        key = (run_no, name)
        if key not in self._per_user:
            self._per_user[key] = load_per_user(self.run(run_no).path, name)
        return self._per_user[key]

    def explain(self, run_no: int, user_idx: int, item_ids: list[str]) -> list[dict | None]:
        """Why each of ``item_ids`` was recommended to the user (:mod:`visrec.viewer.explain`)."""
        model = self.run(run_no).model
        return explain_items(model, user_idx, model.items.indices(item_ids))

    def explanation_note(self, run_no: int) -> str:
        return explanation_note(self.run(run_no).model)

    # --- items --------------------------------------------------------------------------------------
    def vectors(self) -> np.ndarray | None:
        """Item vectors for 'similar items': the first run's feature store, aligned to the items."""
        if self._vectors is None:
            path = next((r.meta.get("features") for r in self.runs if r.meta.get("features")), None)
            if path is None:
                return None
            try:
                array, _ = FeatureStore.open(path).aligned(self.dataset.items, missing="zero")
                self._vectors = np.asarray(array, dtype=np.float32)
            except (DataError, OSError) as exc:
                log.warning("no item vectors for similar items: %s", exc)
                return None
        return self._vectors

    def similar(self, item_idx: int, k: int) -> list[dict] | None:
        vectors = self.vectors()
        if vectors is None:
            return None
        return similar_items(vectors, item_idx, k).to_rows(self.dataset.items.ids, flags=False)

    def consumers(self, item_idx: int, limit: int = 50) -> list[str]:
        col = self.dataset.consumed[:, item_idx].tocoo().row
        return self.dataset.users.ids_of(np.sort(col)[:limit]).tolist()

    # --- images -------------------------------------------------------------------------------------
    def image_path(self, item_id: str) -> Path:
        path = self.image_paths.get(item_id)
        if path is None or not inside(path, self.images_dir):  # re-checked: the folder may change
            raise KeyError(f"no image for item {item_id!r}")
        return path

    def thumbnail(self, item_id: str, size: int) -> Path:
        """A JPEG thumbnail, generated once and cached on disk."""
        source = self.image_path(item_id)
        digest = hashlib.sha1(f"{source}:{source.stat().st_mtime_ns}".encode()).hexdigest()[:16]
        out = self.thumbs_dir / str(size) / f"{digest}.jpg"
        if not out.is_file():
            img = load_rgb(source, max_side=size * 2)
            img.thumbnail((size, size))
            with atomic_path(out) as tmp:
                img.save(tmp, format="JPEG", quality=85)
        return out

    def heatmap(self, item_id: str, weights: np.ndarray, grid: tuple[int, int], size: int) -> bytes:
        """The thumbnail with the component attention drawn over it (red = attended), as PNG bytes."""
        base = Image.open(self.thumbnail(item_id, size)).convert("RGB")
        w = torch.as_tensor(weights, dtype=torch.float32).reshape(1, 1, *grid)
        w = torch.nn.functional.interpolate(w, size=base.size[::-1], mode="bilinear")[0, 0]
        w = (w / w.max().clamp(min=1e-12)).numpy()
        arr = np.asarray(base, dtype=np.float32)
        red = np.zeros_like(arr)
        red[..., 0] = 255
        mixed = arr * (1 - 0.55 * w[..., None]) + red * 0.55 * w[..., None]
        buf = io.BytesIO()
        Image.fromarray(mixed.clip(0, 255).astype(np.uint8)).save(buf, format="PNG")
        return buf.getvalue()


def _served_images(images_dir: Path, runs: list[Run]) -> dict[str, Path]:
    """Item id -> resolved image path, only for items of the runs' vocabularies, inside the folder."""
    scan = scan_image_folder(images_dir)
    for rejected in scan.rejected:
        log.warning("not served: %s (%s)", rejected["path"], rejected["reason"])
    known = set().union(*(map(str, run.model.items.ids) for run in runs))
    return {i: p.resolve() for i, p in scan.images.items() if i in known}


def _indexes(runs: list[Run], index: str) -> dict:
    """A faiss index per dot-product run (``index == "faiss"``); other runs keep exact scoring."""
    indexed = {n: build_index(run.model, index, fallback=True) for n, run in enumerate(runs)}
    return {n: model for n, model in indexed.items() if model is not None}

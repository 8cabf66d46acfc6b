"""What the viewer serves: loaded runs, the image folder, an on-disk thumbnail cache, item vectors."""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
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
from visrec.viewer.new_items import NewItemsView

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
    def recommendations(self, run_no: int, user_idx: int, k: int) -> list[dict]:
        run = self.run(run_no)
        if run_no in self.indexed:
            rec = self.indexed[run_no].recommend_users(
                run.dataset, [user_idx], k, exclude_consumed=False
            )[0]
        else:
            rec = recommend_users(run.model, run.dataset, [user_idx], k, exclude_consumed=False)[0]
        truth = set(run.dataset.test[user_idx].indices.tolist())
        consumed = set(run.dataset.train[user_idx].indices.tolist())
        rows = rec.to_rows(run.dataset.items.ids)
        for row, idx in zip(rows, rec.items, strict=True):
            row["hit"], row["consumed"] = int(idx) in truth, int(idx) in consumed
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
        return similar_items(vectors, item_idx, k).to_rows(self.dataset.items.ids)

    def consumers(self, item_idx: int, limit: int = 50) -> list[str]:
        col = self.dataset.train[:, item_idx].tocoo().row
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

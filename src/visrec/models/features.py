"""Item features for models: a FeatureStore (or an array already aligned to the items) -> float32 tensor."""

from __future__ import annotations

import logging

import numpy as np
import torch

from visrec.data.vocab import Vocabulary
from visrec.errors import ConfigError, DataError
from visrec.features.pixel_cache import PixelCache

log = logging.getLogger(__name__)
MISSING_POLICIES = ("error", "mean", "zero")


def item_features(
    features, items: Vocabulary, *, spatial: bool = False, missing: str = "mean"
) -> tuple[torch.Tensor, np.ndarray]:
    """Features aligned to ``items`` as a float32 tensor, plus the indices of items that had none.

    ``features``: a :class:`~visrec.features.FeatureStore` (aligned by id; items without an image are
    filled per ``missing`` and listed in the log, never silently) or an array of shape (n_items, ...)
    already in vocabulary order. ``spatial`` asks for (n, h, w, d) maps instead of (n, d) vectors.
    """
    if missing not in MISSING_POLICIES:
        raise ConfigError(
            f"missing-feature policy must be one of {MISSING_POLICIES}, not {missing!r}"
        )
    if isinstance(features, (np.ndarray, torch.Tensor)):
        array = np.asarray(features, dtype=np.float32)
        if len(array) != len(items):
            raise DataError(f"feature array has {len(array)} rows for {len(items)} items")
        absent = np.zeros(0, dtype=np.int64)
    else:
        array, absent = features.aligned(items, missing=missing)
        array = np.asarray(array, dtype=np.float32)
        if len(absent):
            shown = ", ".join(items.ids_of(absent[:10]))
            log.warning(
                "%d items have no features (filled with %s): %s%s",
                len(absent),
                missing,
                shown,
                " ..." if len(absent) > 10 else "",
            )
    if spatial and array.ndim != 4:
        raise DataError(
            f"this model needs spatial features (n, h, w, d); got shape {array.shape} "
            "(extract with --layer, e.g. layer4)"
        )
    if not spatial and array.ndim != 2:
        raise DataError(
            f"this model needs pooled features (n, d); got shape {array.shape} "
            "(extract with --layer pooled)"
        )
    return torch.from_numpy(np.ascontiguousarray(array)), np.asarray(absent, dtype=np.int64)


def feature_shape(features) -> tuple[int, ...]:
    """Shape of a FeatureStore's array (or of an aligned array) without reading or aligning it."""
    if isinstance(features, (np.ndarray, torch.Tensor)):
        return tuple(np.shape(features))
    return tuple(features.array.shape)


def new_item_content(content, kind: str, tail: tuple[int, ...]) -> torch.Tensor:
    """New items' ``content`` checked against what the model was trained on: a float32 tensor of shape
    (n_new, *tail) for ``pooled``/``spatial`` features (finite numbers), uint8 (n_new, S, S, 3) for
    ``pixels``. Anything else is a :class:`DataError` naming the expected shape."""
    if kind == "pixels":
        array = np.asarray(content)
        if array.dtype != np.uint8 or array.ndim != 4 or tuple(array.shape[1:]) != tuple(tail):
            raise DataError(
                f"new items' pixels must be uint8 images of shape (n, {', '.join(map(str, tail))}), "
                f"got {array.dtype} {tuple(array.shape)}"
            )
        return torch.from_numpy(np.array(array, copy=True))  # writable (a cache's rows are not)
    tensor = torch.as_tensor(np.asarray(content, dtype=np.float32))
    if tensor.ndim != len(tail) + 1 or tuple(tensor.shape[1:]) != tuple(tail):
        raise DataError(
            f"new items' {kind} features must have shape (n, {', '.join(map(str, tail))}) like the "
            f"features the model was trained on, got {tuple(tensor.shape)}"
        )
    if not bool(torch.isfinite(tensor).all()):
        raise DataError("new items' features contain NaN or infinite values")
    return tensor


def content_of(source, items: Vocabulary, rows) -> np.ndarray:
    """The stored content (features or pixels) of the items at ``rows`` (indices into ``items``) in a
    model's feature source (an aligned array, a FeatureStore or a pixel cache): what
    ``score_new_items`` takes for them."""
    rows = np.asarray(rows, dtype=np.int64)
    if isinstance(source, (np.ndarray, torch.Tensor)):
        return np.asarray(source)[rows]
    if isinstance(source, PixelCache):
        return np.asarray(source.pixels[source.rows(items)[rows]])
    array, _ = source.aligned(items, missing="mean")
    return np.asarray(array, dtype=np.float32)[rows]


def gather_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` for an integer ``index`` of any shape, through ``index_select``: a copy per row,
    ~6x faster on the CPU than advanced indexing for 2048-wide feature rows (measured: 0.4 vs 2.4 ms
    for 200 rows), same values. For buffers (features): the backward of the two differs in the order
    it sums duplicate rows."""
    flat = table.index_select(0, index.reshape(-1))
    return flat.reshape(*index.shape, *table.shape[1:])

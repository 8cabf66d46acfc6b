"""UGallery, the online art store data of CuratorNet (Messina et al., 2020): purchases, inventory, clusters.

The files were published without a schema; what is assumed here comes from the CuratorNet repository's
training notebook and the dataset's README (hashed ids, one artist per artwork):

- ``purchases.csv``: one row per purchase transaction with the buyer (``user_id_hash``), the time
  (``purchase_timestamp``) and the artworks bought (``purchased_artwork_ids_hash``, a Python-style list
  such as ``['a1', 'b2']``; a plain single id is accepted too). Same user + same timestamp = one basket.
- ``inventory.csv``: one row per artwork with ``artwork_id_hash``, ``artist_id_hash`` and, when present,
  ``upload_timestamp``.
- ``clusters.json``: ``{artwork_id: visual_cluster_id}``.

Because these names are assumptions, every column is looked up through :data:`COLUMN_CANDIDATES` and can
be set explicitly (``columns={"purchases.user": "buyer"}``, CLI ``--column purchases.user=buyer``); a
column that cannot be found is an error that lists the header found and the names tried. Timestamps may be
integers (Unix seconds), decimals or dates; they are converted to integer Unix seconds (UTC).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd

from visrec.data.interactions import Interactions
from visrec.data.loaders import DatasetSource, read_string_table
from visrec.errors import ConfigError, DataError

COLUMN_CANDIDATES: dict[str, tuple[str, ...]] = {
    "purchases.user": ("user_id_hash", "user_id", "customer_id", "user"),
    "purchases.items": (
        "purchased_artwork_ids_hash",
        "artwork_id_hash",
        "artwork_ids",
        "artwork_id",
        "item_id",
    ),
    "purchases.timestamp": ("purchase_timestamp", "timestamp", "purchase_date", "date"),
    "inventory.item": ("artwork_id_hash", "artwork_id", "item_id"),
    "inventory.artist": ("artist_id_hash", "artist_id", "artist"),
    "inventory.upload": ("upload_timestamp", "upload_date"),
}
OPTIONAL_COLUMNS = ("inventory.upload",)


def resolve_columns(
    header: list[str], table: str, overrides: dict[str, str] | None, path: Path
) -> dict[str, str | None]:
    """Map each key of ``table`` ('purchases' or 'inventory') to a column of ``header``."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(COLUMN_CANDIDATES))
    if unknown:
        raise ConfigError(
            f"unknown UGallery column key(s) {', '.join(unknown)}; "
            f"known: {', '.join(COLUMN_CANDIDATES)}"
        )
    found: dict[str, str | None] = {}
    for key, candidates in COLUMN_CANDIDATES.items():
        if not key.startswith(table + "."):
            continue
        if key in overrides:
            if overrides[key] not in header:
                raise DataError(
                    f"column {overrides[key]!r} given for {key} is not in the header "
                    f"({', '.join(header)})",
                    path=path,
                    line=1,
                )
            found[key] = overrides[key]
            continue
        match = next((c for c in candidates if c in header), None)
        if match is None and key not in OPTIONAL_COLUMNS:
            raise DataError(
                f"cannot find the {key} column: tried {', '.join(candidates)}; the header is "
                f"{', '.join(header) or 'empty'}. Name it with --column {key}=NAME",
                path=path,
                line=1,
            )
        found[key] = match
    return found


def to_unix_seconds(values: pd.Series, path: Path, column: str) -> np.ndarray:
    """Per value: Unix seconds stay as they are, decimals are floored, anything else is a UTC date."""
    text = values.astype(str).str.strip().reset_index(drop=True)
    numeric = pd.to_numeric(text, errors="coerce")
    result = np.zeros(len(text), dtype=np.int64)
    is_number = numeric.notna().to_numpy()
    result[is_number] = np.floor(numeric[is_number].to_numpy(dtype=np.float64)).astype(np.int64)
    if not is_number.all():
        dates = pd.to_datetime(text[~is_number], utc=True, errors="coerce", format="mixed")
        bad = dates.isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(~is_number)[np.flatnonzero(bad)[0]])
            raise DataError(
                f"{column}: {text.iloc[row]!r} is neither a Unix time nor a date",
                path=path,
                line=row + 2,
            )
        epoch = pd.Timestamp(0, tz="UTC")
        result[~is_number] = ((dates - epoch) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)
    return result


def _item_lists(values: pd.Series, path: Path, column: str) -> list[list[str]]:
    lists = []
    for row, raw in enumerate(values.astype(str)):
        text = raw.strip()
        if text.startswith("["):
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError) as exc:
                raise DataError(
                    f"{column}: cannot read the list {text[:60]!r}", path=path, line=row + 2
                ) from exc
            lists.append([str(x).strip() for x in parsed])
        else:
            lists.append([text])
    return lists


def read_purchases(path: str | Path, columns: dict[str, str] | None = None) -> Interactions:
    """Purchases -> one interaction per (buyer, artwork, time)."""
    path = Path(path)
    frame = read_string_table(path)
    cols = resolve_columns(list(frame.columns), "purchases", columns, path)
    items = _item_lists(frame[cols["purchases.items"]], path, cols["purchases.items"])
    times = to_unix_seconds(frame[cols["purchases.timestamp"]], path, cols["purchases.timestamp"])
    sizes = [len(x) for x in items]
    table = pd.DataFrame(
        {
            "user_id": np.repeat(frame[cols["purchases.user"]].to_numpy(), sizes),
            "item_id": [i for group in items for i in group],
            "timestamp": np.repeat(times, sizes),
        }
    )
    return Interactions.from_frame(table, source=str(path))


def read_inventory(path: str | Path, columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Inventory -> item table indexed by item_id with ``group`` (the artist) and ``upload_timestamp``."""
    path = Path(path)
    frame = read_string_table(path)
    cols = resolve_columns(list(frame.columns), "inventory", columns, path)
    table = pd.DataFrame(
        {
            "item_id": frame[cols["inventory.item"]].str.strip(),
            "group": frame[cols["inventory.artist"]].str.strip(),
        }
    )
    if cols["inventory.upload"]:
        table["upload_timestamp"] = to_unix_seconds(
            frame[cols["inventory.upload"]], path, cols["inventory.upload"]
        )
    dup = table["item_id"].duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(
            f"repeated artwork id {table['item_id'].iloc[row]!r}", path=path, line=row + 2
        )
    return table.set_index("item_id")


def read_clusters(path: str | Path) -> dict[str, int]:
    """``{artwork_id: cluster_id}`` with integer cluster ids."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"not a readable JSON file ({exc})", path=path) from exc
    if not isinstance(raw, dict):
        raise DataError("expected a JSON object {artwork_id: cluster_id}", path=path)
    clusters = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise DataError(f"cluster of {key!r} must be an integer, got {value!r}", path=path)
        clusters[str(key)] = int(value)
    return clusters


def load_ugallery(
    purchases: str | Path,
    inventory: str | Path,
    clusters: str | Path | None = None,
    *,
    columns: dict[str, str] | None = None,
) -> DatasetSource:
    """UGallery as a :class:`DatasetSource`: ``group`` = artist (CuratorNet's item attribute).

    No images: the artworks' pictures were never published, only their ResNet50 embeddings.
    """
    interactions = read_purchases(purchases, columns)
    items = read_inventory(inventory, columns)
    if clusters is not None:
        mapping = read_clusters(clusters)
        items["cluster"] = [mapping.get(i, -1) for i in items.index]
    return DatasetSource(interactions, "ugallery", None, None, items)

"""Item titles and metadata for display, and the search box (user ids, item ids, titles).

Titles come from the dataset's item table (``items.csv`` of a visrec folder, ``u.item`` of MovieLens, as
the loaders carry them); a dataset without one shows item ids only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from visrec.data.loaders import open_dataset
from visrec.data.vocab import Vocabulary
from visrec.errors import VisrecError

log = logging.getLogger(__name__)
TITLE_COLUMNS = ("title", "name")
"""Item-table columns shown as an item's title (the first present)."""


@dataclass
class Catalog:
    """Titles and metadata of the items of a vocabulary (empty when the dataset has no item table)."""

    items: Vocabulary
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    title_column: str | None = None

    @classmethod
    def open(cls, data_path: str, items: Vocabulary) -> Catalog:
        """The item table of the dataset at ``data_path`` (a run's recorded data), kept for its items."""
        try:
            table = open_dataset(data_path).items
        except (VisrecError, OSError) as exc:
            log.warning("no item titles: %s", exc)
            table = None
        if table is None:
            return cls(items)
        table = table.copy()
        table.index = table.index.astype(str)
        table = table[table.index.isin(set(map(str, items.ids)))].astype(str)
        title = next((c for c in TITLE_COLUMNS if c in table.columns), None)
        return cls(items, table, title)

    def title(self, item_id: str) -> str | None:
        """The item's title, or None (no item table, no title column, or an empty title)."""
        if self.title_column is None or item_id not in self.table.index:
            return None
        value = str(self.table.at[item_id, self.title_column]).strip()
        return value or None

    def label(self, item_id: str) -> str:
        """What a thumbnail shows: the title, else the id."""
        return self.title(item_id) or item_id

    def metadata(self, item_id: str) -> dict[str, str]:
        """Every non-empty column of the item's row (the title first)."""
        if item_id not in self.table.index:
            return {}
        row = self.table.loc[item_id]
        return {str(k): str(v) for k, v in row.items() if str(v).strip()}

    def search_items(self, query: str, limit: int = 50) -> list[str]:
        """Item ids whose id or title contains ``query`` (case-insensitive), exact id first."""
        q = query.strip().lower()
        if not q:
            return []
        ids = pd.Series(self.items.ids.astype(str))
        hay = ids.str.lower()
        if self.title_column is not None:
            titles = self.table[self.title_column].reindex(ids.to_numpy()).fillna("")
            hay = hay + "\n" + titles.str.lower().to_numpy()
        found = ids[hay.str.contains(q, regex=False).to_numpy()].tolist()
        found.sort(key=lambda i: (i.lower() != q, i))
        return found[:limit]


def search_users(users: Vocabulary, query: str, limit: int = 50) -> list[str]:
    """User ids that contain ``query`` (case-insensitive), the exact id first."""
    q = query.strip().lower()
    if not q:
        return []
    ids = users.ids.astype(str)
    found = ids[np.char.find(np.char.lower(ids), q) >= 0].tolist()
    found.sort(key=lambda u: (u.lower() != q, u))
    return found[:limit]

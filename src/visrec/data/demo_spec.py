"""The demo dataset's options (size and taste), apart from the generator in demo.py so that the CLI can
show their defaults in ``--help`` without importing numpy, pandas or PIL."""

from __future__ import annotations

from dataclasses import dataclass

from visrec.errors import VisrecError


@dataclass(frozen=True)
class DemoSpec:
    """Size and taste parameters of the demo dataset."""

    n_users: int = 300
    n_items: int = 360
    median_activity: float = 16.0
    """Median number of interactions per user (log-normal, sigma 0.8)."""
    image_size: int = 128
    palette_weight: float = 4.0
    shape_weight: float = 3.0
    popularity_weight: float = 0.7
    """Weight of log(popularity) in the users' choice (lower: taste matters more than popularity)."""
    basket_prob: float = 0.2
    """Probability that an interaction shares its predecessor's timestamp (multi-item baskets)."""
    seed: int = 7

    def __post_init__(self):
        if self.n_users < 2 or self.n_items < 10:
            raise VisrecError("the demo needs at least 2 users and 10 items")
        if not 16 <= self.image_size <= 1024:
            raise VisrecError("image_size must be in [16, 1024]")

"""Serving recommendations: top-k for known users or new profiles, visually similar items, and new
items (never seen in training): their audience and where they land in a user's list."""

from visrec.serving.new_content import NewItems, load_new_items
from visrec.serving.new_items import Audience, new_item_audience, new_item_placement
from visrec.serving.topk import Recommendation, recommend_profile, recommend_users, similar_items

__all__ = [
    "Audience",
    "NewItems",
    "Recommendation",
    "load_new_items",
    "new_item_audience",
    "new_item_placement",
    "recommend_profile",
    "recommend_users",
    "similar_items",
]

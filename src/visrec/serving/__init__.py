"""Serving recommendations: top-k for known users or new profiles, visually similar items, and new
items (never seen in training): their audience and where they land in a user's list."""

from visrec._lazy import lazy_exports

_EXPORTS = {
    "Audience": "visrec.serving.new_items",
    "NewItems": "visrec.serving.new_content",
    "load_new_items": "visrec.serving.new_content",
    "new_item_audience": "visrec.serving.new_items",
    "new_item_placement": "visrec.serving.new_items",
    "Recommendation": "visrec.serving.topk",
    "recommend_profile": "visrec.serving.topk",
    "recommend_users": "visrec.serving.topk",
    "similar_items": "visrec.serving.topk",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""Serving recommendations: top-k for known users or new profiles, visually similar items."""

from visrec._lazy import lazy_exports

_EXPORTS = {
    "Recommendation": "visrec.serving.topk",
    "recommend_profile": "visrec.serving.topk",
    "recommend_users": "visrec.serving.topk",
    "similar_items": "visrec.serving.topk",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

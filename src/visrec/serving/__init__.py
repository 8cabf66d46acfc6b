"""Serving recommendations: top-k for known users or new profiles, visually similar items."""

from visrec.serving.topk import Recommendation, recommend_profile, recommend_users, similar_items

__all__ = ["Recommendation", "recommend_profile", "recommend_users", "similar_items"]

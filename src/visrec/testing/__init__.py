"""Test helpers shipped with visrec: the conformance checks every Recommender passes."""

from visrec.testing.conformance import check_recommender

__all__ = ["check_recommender"]

"""Triplet sampling (uniform, profile mode, CuratorNet's guided strategies)."""

from visrec.sampling.triplets import (
    last_profiles,
    pad_profiles,
    profile_triplets,
    sample_negatives,
    uniform_triplets,
)

__all__ = [
    "last_profiles",
    "pad_profiles",
    "profile_triplets",
    "sample_negatives",
    "uniform_triplets",
]

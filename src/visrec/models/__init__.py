"""Models: every one a typed config + nn.Module + Recommender wrapper, created through the registry."""

from visrec.models.base import Recommender
from visrec.models.registry import create, get, names, register

__all__ = ["Recommender", "create", "get", "names", "register"]

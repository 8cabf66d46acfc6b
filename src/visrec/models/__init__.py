"""Models: every one a typed config + nn.Module + Recommender wrapper, created through the registry."""

from visrec._lazy import lazy_exports

_EXPORTS = {
    "Recommender": "visrec.models.base",
    "create": "visrec.models.registry",
    "get": "visrec.models.registry",
    "names": "visrec.models.registry",
    "register": "visrec.models.registry",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

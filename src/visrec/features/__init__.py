"""Features: item images -> CNN feature store (pooled vectors or spatial maps), memory-mapped, no pickle."""

from visrec._lazy import lazy_exports

_EXPORTS = {
    "available_backbones": "visrec.features.backbones",
    "create_backbone": "visrec.features.backbones",
    "register": "visrec.features.backbones",
    "ExtractConfig": "visrec.features.extract",
    "extract_features": "visrec.features.extract",
    "ImageReadError": "visrec.features.images",
    "load_rgb": "visrec.features.images",
    "FeatureStore": "visrec.features.store",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

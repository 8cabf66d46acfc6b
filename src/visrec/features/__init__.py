"""Features: item images -> CNN feature store (pooled vectors or spatial maps), memory-mapped, no pickle."""

from visrec.features.backbones import available_backbones, create_backbone, register
from visrec.features.extract import ExtractConfig, extract_features
from visrec.features.images import ImageReadError, load_rgb
from visrec.features.store import FeatureStore

__all__ = [
    "ExtractConfig",
    "FeatureStore",
    "ImageReadError",
    "available_backbones",
    "create_backbone",
    "extract_features",
    "load_rgb",
    "register",
]

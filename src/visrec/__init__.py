"""visrec: visually-aware recommendation in PyTorch.

The pipeline (see DESIGN.md): interactions -> Dataset; images -> FeatureStore; (Dataset, FeatureStore)
-> sampler -> Trainer -> Recommender; Recommender.score -> evaluation -> tables, plots, viewer.
"""

__version__ = "0.1.0"

from visrec.errors import DataError, VisrecError

__all__ = ["DataError", "VisrecError", "__version__"]

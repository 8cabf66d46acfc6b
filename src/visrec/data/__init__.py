"""Data layer: raw files -> validated interactions -> split -> Dataset."""

from visrec._lazy import lazy_exports

_EXPORTS = {
    "Dataset": "visrec.data.dataset",
    "build_dataset": "visrec.data.cache",
    "Interactions": "visrec.data.interactions",
    "load_interactions": "visrec.data.interactions",
    "DatasetSource": "visrec.data.loaders",
    "load_folder": "visrec.data.loaders",
    "load_movielens": "visrec.data.loaders",
    "load_wikimedia": "visrec.data.loaders",
    "open_dataset": "visrec.data.loaders",
    "SplitSpec": "visrec.data.split",
    "Vocabulary": "visrec.data.vocab",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

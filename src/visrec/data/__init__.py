"""Data layer: raw files -> validated interactions -> split -> Dataset."""

from visrec.data.dataset import Dataset
from visrec.data.interactions import Interactions, load_interactions
from visrec.data.loaders import (
    DatasetSource,
    load_folder,
    load_movielens,
    load_wikimedia,
    open_dataset,
)
from visrec.data.split import SplitSpec
from visrec.data.vocab import Vocabulary

__all__ = [
    "Dataset",
    "DatasetSource",
    "Interactions",
    "SplitSpec",
    "Vocabulary",
    "load_folder",
    "load_interactions",
    "load_movielens",
    "load_wikimedia",
    "open_dataset",
]

"""Run Cornac's VBPR (an installed ``cornac`` package, e.g. ``pip install visrec[peers]``) on the data
``data.prepare`` wrote: the same train interactions (visrec's split) and the same features.

``python cornac_side.py vbpr100 --work DIR``: one epoch of ``cornac.models.VBPR`` at batch 100 (stage
``vbpr1024``: 1,024) with the tutorial's dimensions (k=200, k2=100), one torch thread; the timed part is
``fit`` (one pass over every train interaction, one triplet each). The last line printed is
``PEER_RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

BATCH = {"vbpr100": 100, "vbpr1024": 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=sorted(BATCH))
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    import cornac
    import numpy as np
    import torch
    from cornac.data import ImageModality
    from cornac.models import VBPR

    from visrec.data import open_dataset
    from visrec.data.split import SplitSpec
    from visrec.features import FeatureStore

    torch.set_num_threads(1)
    dataset = open_dataset(args.work / "visrec-data").build(SplitSpec())
    train = dataset.train.tocoo()
    users, items = np.asarray(dataset.users.ids), np.asarray(dataset.items.ids)
    triples = list(zip(users[train.row], items[train.col], np.ones(train.nnz), strict=True))
    store = FeatureStore.open(args.work / "features")
    image = ImageModality(features=np.asarray(store.array), ids=list(store.ids), normalized=True)
    train_set = cornac.data.Dataset.from_uir(triples, seed=0)
    image.build(id_map=train_set.iid_map)
    train_set.add_modalities(item_image=image)
    model = VBPR(k=200, k2=100, n_epochs=1, batch_size=BATCH[args.stage], learning_rate=0.001,
                 lambda_w=1.0, lambda_b=0.01, lambda_e=0.0, use_gpu=False, verbose=False, seed=0)  # fmt: skip
    began = time.perf_counter()
    model.fit(train_set)
    seconds = time.perf_counter() - began
    result = {"seconds": seconds, "items": int(train.nnz), "cornac": cornac.__version__}
    print("PEER_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

"""How much of a DVBPR run's score comes from the pixels: the spread over items of its visual part
theta_u . Phi(image_i) against that of its latent part gamma_u . gamma_i (the tutorial's extra term), each
as the standard deviation over the catalogue averaged over users. A visual part far smaller than the
latent part means the model ranks warm items like BPR-MF and new items (latent part 0) almost at random.

Usage (docs/benchmarks.md, "Reading it"):
    python benchmarks/dvbpr_score_parts.py .bench/movielens/out-cold/warm/runs/dvbpr
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from visrec import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished DVBPR run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = load_run(args.run)
    if run.meta.get("model") != "dvbpr":
        raise SystemExit(f"{args.run}: a {run.meta.get('model')} run, not dvbpr")
    module = run.model.module.eval()
    with torch.no_grad():
        visual = module.theta.weight @ module.item_embeddings.T
        parts = {"visual theta_u . Phi(i)": visual}
        if module.latent_dim:
            parts["latent gamma_u . gamma_i"] = (
                module.gamma_user.weight @ module.gamma_item.weight.T
            )
    for name, scores in parts.items():
        print(f"{name}: sd over items {scores.std(1).mean().item():.4f} (mean over users)")


if __name__ == "__main__":
    main()

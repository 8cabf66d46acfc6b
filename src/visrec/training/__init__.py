"""Training: losses and the one Trainer every gradient model uses."""

from visrec.training.losses import bce_loss, bpr_loss, warp_loss
from visrec.training.trainer import Trainer, TrainingError, fit_model, train_module

__all__ = [
    "Trainer",
    "TrainingError",
    "bce_loss",
    "bpr_loss",
    "fit_model",
    "train_module",
    "warp_loss",
]

"""Training: losses and the one Trainer every gradient model uses."""

from visrec.training.losses import bce_loss, bpr_loss, warp_loss
from visrec.training.trainer import DistContext, Trainer, TrainingError

__all__ = ["DistContext", "Trainer", "TrainingError", "bce_loss", "bpr_loss", "warp_loss"]

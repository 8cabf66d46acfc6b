"""Training: losses and the one Trainer every gradient model uses."""

from visrec._lazy import lazy_exports

_EXPORTS = {
    "bce_loss": "visrec.training.losses",
    "bpr_loss": "visrec.training.losses",
    "warp_loss": "visrec.training.losses",
    "Trainer": "visrec.training.trainer",
    "TrainingError": "visrec.training.trainer",
    "fit_model": "visrec.training.trainer",
    "train_module": "visrec.training.trainer",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

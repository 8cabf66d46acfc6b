"""One Trainer for every gradient model.

Per epoch: sample triplets afresh (numpy Generator seeded by (seed, epoch, rank), so a resumed run draws
exactly what an uninterrupted one would), step Adam on the pairwise loss, score the validation targets with
the evaluation engine (never the test targets), step ReduceLROnPlateau, keep the best epoch's weights, write
a checkpoint atomically and one JSONL log line. Stops early after ``patience`` epochs without improvement,
then restores the best epoch. A non-finite loss stops the run with a message naming the epoch and batch.

Per-step overhead, which dominates at the batch sizes of the papers and of Cornac (100-1,024): the
epoch's triplets go to the device once and each batch is a view of them; the loss is summed on the device
and checked for finiteness every ``FINITE_CHECK_EVERY`` steps (one host sync per check, not per step);
Adam runs its fused kernel (``fused_adam``, one pass per parameter instead of ~10 elementwise kernels).

Ready for DistributedDataParallel: pass a :class:`DistContext`; each rank samples its share of triplets
from its own stream; all ranks compute the same validation score, so they agree on stopping; rank 0 writes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from visrec._io import atomic_path, load_tensor_file, write_text
from visrec.data.dataset import Dataset
from visrec.devices import progress_disabled
from visrec.distributed import DistContext
from visrec.errors import ConfigError, DataError, VisrecError
from visrec.evaluation import validation_score
from visrec.models.base import Recommender
from visrec.models.capabilities import Regularised, TrainOptions, TrainsByGradient
from visrec.training.losses import bce_loss, bpr_loss, bpr_loss_of_differences, warp_loss
from visrec.training.optim import Adam, LazyAdam, use_sparse_gradients
from visrec.training.resume import check_resume_config

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"
LOG_FILE = "train_log.jsonl"


class TrainingError(VisrecError):
    """Training cannot go on (non-finite loss, incompatible checkpoint)."""


def format_epoch(row: dict, epochs: int | None = None) -> str:
    """One human line for a row of train_log.jsonl: loss, validation metric, time, triplets/s."""
    head = f"epoch {row['epoch']}" + (f"/{epochs}" if epochs else "")
    parts = [f"{head:<11}", f"loss {row['loss']:.4f}"]
    parts += [f"{k[4:]} {v:.4f}" for k, v in row.items() if k.startswith("val_")]
    parts += [f"{row['seconds']:.1f} s", f"{row['triplets_per_s']:,.0f} triplets/s"]
    return "  ".join(parts)


def epoch_rng(seed: int, epoch: int, rank: int = 0) -> np.random.Generator:
    """The sampling stream of one (seed, epoch, rank)."""
    return np.random.default_rng([seed, epoch, rank])


class Trainer:
    """Fits ``model.module`` of a :class:`~visrec.models.capabilities.TrainsByGradient` model."""

    FINITE_CHECK_EVERY = 32
    """Steps between two checks that the loss is finite (each check is one device-to-host sync)."""

    def __init__(
        self,
        model: TrainsByGradient,
        dataset: Dataset,
        *,
        run_dir: str | Path | None = None,
        resume: bool = False,
        dist: DistContext | None = None,
        on_batch: Callable[[int, int], None] | None = None,
        on_epoch: Callable[[dict, int], None] | None = None,
    ):
        self.model, self.dataset = model, dataset
        self.cfg = model.config
        self.run_dir = Path(run_dir) if run_dir else None
        self.resume = resume
        self.dist = dist or DistContext()
        self.on_batch = on_batch
        self.on_epoch = on_epoch if self.dist.is_main else None
        self.device = model.device
        self.history: list[dict] = []
        self.best: dict = {"epoch": 0, "value": -float("inf")}
        self.best_state: dict | None = None
        self.stale = 0

    # --- the loop ---------------------------------------------------------------------------------
    def setup(self) -> None:
        """Wrap the module (DDP when distributed) and create the optimiser and the scheduler."""
        module = self.model.module
        self.net = self._wrap(module)
        groups = self.model.param_groups()
        params = [p for group in groups for p in group["params"]]
        adam = Adam
        if self.cfg.optimizer == "sparse_adam":
            if self.dist.active:
                raise ConfigError("optimizer=sparse_adam is single-process only (use adam)")
            use_sparse_gradients(module)
            adam = LazyAdam
        self.optimizer = adam(
            groups, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay, **self._adam_kernel(params)
        )
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="max", factor=self.cfg.lr_factor, patience=self.cfg.lr_patience
        )

    def _adam_kernel(self, params: list[torch.Tensor]) -> dict[str, bool]:
        """``fused`` when configured and every parameter is a dense float on CPU/CUDA, else ``foreach``
        (the per-tensor maths batched over tensors: bit-identical to the plain loop)."""
        fusable = all(
            p.is_floating_point() and not p.is_sparse and p.device.type in ("cpu", "cuda")
            for p in params
        )
        return {"fused": True} if self.cfg.fused_adam and fusable else {"foreach": True}

    def step(self, batch: dict[str, torch.Tensor], where: str = "") -> torch.Tensor:
        """One optimisation step on a batch (under DDP, gradients are averaged over ranks); a
        non-finite loss raises before the update."""
        loss = self._batch_loss(batch)
        if not torch.isfinite(loss):
            raise TrainingError(f"non-finite loss ({loss.item()}) at {where or 'this step'}")
        return self._update(loss)

    def _batch_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The pairwise loss of a batch plus, for a :class:`Regularised` module, the paper's per-triplet
        L2 of the rows this batch used: the one objective of :meth:`step` and of every epoch."""
        module = self.model.module
        if not isinstance(module, Regularised):
            return self._loss(*self.net(batch))
        if module.scores_differences and self.cfg.loss == "bpr":  # BPR needs x_ui - x_uj only
            differences, penalty = self.net(batch, with_penalty=True, differences=True)
            return bpr_loss_of_differences(differences.float()) + penalty
        if module.penalty_in_forward:
            # one lookup per table (through DDP's forward when distributed)
            pos, neg, penalty = self.net(batch, with_penalty=True)
            return self._loss(pos, neg) + penalty
        return self._loss(*self.net(batch)) + module.penalty(batch)

    def _update(self, loss: torch.Tensor) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def fit(self) -> list[dict]:
        module = self.model.module
        self.setup()
        start = self._restore() + 1 if self.resume else 1
        has_val = self.dataset.validation.nnz > 0
        if not has_val:
            log.warning(
                "no validation targets: training all %d epochs, keeping the last", self.cfg.epochs
            )
        for epoch in range(start, self.cfg.epochs + 1):
            if self.stale >= self.cfg.patience > 0 and has_val:
                break
            row = self._epoch(epoch)
            if has_val:
                row["val_" + self.cfg.val_metric] = value = self._validate()
                self.scheduler.step(value)
                self._track(epoch, value, module)
            self.history.append(row)
            log.info(json.dumps(row))
            self._checkpoint(epoch, module)
            if self.on_epoch is not None:  # after the checkpoint: an exception here loses nothing
                self.on_epoch(row, self.cfg.epochs)
        if self.best_state is not None:
            module.load_state_dict(self.best_state)
        stopped_early = len(self.history) < self.cfg.epochs
        self.model.info["training"] = {
            "epochs_run": len(self.history),
            "best_epoch": self.best["epoch"],
            "best_val_" + self.cfg.val_metric: self.best["value"] if has_val else None,
            "stopped_early": stopped_early,
            "stopped_by": "patience" if stopped_early else "budget",
        }
        self._log_stop(has_val)
        return self.history

    def _log_stop(self, has_val: bool) -> None:
        """One line saying why training ended: patience (converged) or the epoch budget."""
        n, best = len(self.history), self.best["epoch"]
        if n < self.cfg.epochs:
            log.info(
                "stopped early at epoch %d (patience %d); best epoch %d", n, self.cfg.patience, best
            )
        elif has_val and best == n and n > 1:
            log.warning(
                "epoch budget reached (%d epochs) while validation %s was still improving: "
                "raise epochs (--set epochs=N)",
                n,
                self.cfg.val_metric,
            )
        else:
            log.info("epoch budget reached (%d epochs); best epoch %d", n, best)

    def _wrap(self, module: torch.nn.Module):
        if not self.dist.active:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def _epoch(self, epoch: int) -> dict:
        cfg = self.cfg
        n_total = cfg.triplets_per_epoch or self.dataset.n_train
        n = int(np.ceil(n_total / self.dist.world_size))
        began = time.perf_counter()
        sample = self.model.sample(self.dataset, n, epoch_rng(cfg.seed, epoch, self.dist.rank))
        self.model.module.train()
        # the epoch's triplets go to the device once; a batch is a view of them
        tensors = {
            k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device) for k, v in sample.items()
        }
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        window: list[torch.Tensor] = []
        batches = 0
        bar = tqdm(
            range(0, n, cfg.batch_size),
            desc=f"epoch {epoch}",
            leave=False,
            disable=progress_disabled(),
            unit="batch",
        )
        with torch.random.fork_rng(devices=self._fork_devices()):
            torch.manual_seed(hash((cfg.seed, epoch, self.dist.rank)) & 0x7FFFFFFF)
            for batch_no, lo in enumerate(bar, start=1):
                batch = {k: v[lo : lo + cfg.batch_size] for k, v in tensors.items()}
                loss = self._update(self._batch_loss(batch))
                total += loss  # on the device: no host sync per step
                window.append(loss)
                batches += 1
                if len(window) == self.FINITE_CHECK_EVERY or lo + cfg.batch_size >= n:
                    self._check_finite(window, epoch, batch_no)
                if not bar.disable and batches % 10 == 1:  # a host sync only with a progress bar
                    bar.set_postfix(loss=f"{float(total) / batches:.4f}", refresh=False)
                if self.on_batch is not None:
                    self.on_batch(epoch, batch_no)
        seconds = time.perf_counter() - began
        return {
            "epoch": epoch,
            "loss": float(total) / max(batches, 1),
            "lr": self.optimizer.param_groups[0]["lr"],
            "seconds": round(seconds, 3),
            "triplets_per_s": round(n / seconds, 1),
        }

    def _check_finite(self, window: list[torch.Tensor], epoch: int, last_batch: int) -> None:
        """One host sync per ``FINITE_CHECK_EVERY`` steps; names the first batch whose loss was not
        finite (the run stops there; the last checkpoint is the previous epoch's)."""
        losses = torch.stack(window)
        if not bool(torch.isfinite(losses).all()):
            bad = int((~torch.isfinite(losses)).nonzero()[0, 0])
            batch_no = last_batch - len(window) + 1 + bad
            raise TrainingError(
                f"non-finite loss ({float(losses[bad])}) at epoch {epoch}, batch {batch_no}"
            )
        window.clear()

    def _fork_devices(self) -> list:
        return [self.device] if self.device.type == "cuda" else []

    def _loss(self, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        pos, neg = pos.float(), neg.float().reshape(len(pos), -1)
        if self.cfg.loss == "bpr":
            return bpr_loss(pos, neg)
        if self.cfg.loss == "bce":
            return bce_loss(pos, neg)
        return warp_loss(pos, neg, n_items=self.dataset.n_items)

    def _validate(self) -> float:
        self.model.module.eval()
        scorer = self.model.scorer(self.dataset, "validation")  # profiles: train items only
        return float(validation_score(scorer, self.dataset, metric=self.cfg.val_metric))

    def _track(self, epoch: int, value: float, module: torch.nn.Module) -> None:
        if value > self.best["value"]:
            self.best = {"epoch": epoch, "value": value}
            self.best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
            self.stale = 0
        else:
            self.stale += 1

    # --- checkpoints --------------------------------------------------------------------------------
    def _checkpoint(self, epoch: int, module: torch.nn.Module) -> None:
        if self.run_dir is None or not self.dist.is_main:
            return
        state = {
            "epoch": epoch,
            "config": json.dumps(self.model.config.to_dict(), sort_keys=True),
            "module": module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "best_epoch": self.best["epoch"],
            "best_value": float(self.best["value"]),
            "best_state": self.best_state or {},
            "stale": self.stale,
            "history": json.dumps(self.history),
        }
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.run_dir / CHECKPOINT) as tmp:
            torch.save(state, tmp)
        write_text(self.run_dir / LOG_FILE, "".join(json.dumps(r) + "\n" for r in self.history))

    def _restore(self) -> int:
        path = self.run_dir / CHECKPOINT if self.run_dir else None
        if path is None or not path.is_file():
            return 0
        fix = "pass --force to start the run again"
        state = load_tensor_file(
            path, what="training checkpoint", fix=fix, map_location=self.device
        )
        check_resume_config(state.get("config"), self.model.config, path, fix)
        try:
            self.model.module.load_state_dict(state["module"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.best = {"epoch": int(state["best_epoch"]), "value": float(state["best_value"])}
            self.best_state = state["best_state"] or None
            self.stale = int(state["stale"])
            self.history = json.loads(state["history"])
            epoch = int(state["epoch"])
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as exc:
            reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else repr(exc)
            raise DataError(f"damaged training checkpoint ({reason}); {fix}", path=path) from None
        log.info("resumed from %s after epoch %d", path, epoch)
        return epoch


def train_module(model: TrainsByGradient, dataset: Dataset, options: TrainOptions) -> list[dict]:
    """The ``TrainOptions.trainer`` of every gradient fit: the Trainer's loop, its history returned."""
    return Trainer(
        model,
        dataset,
        run_dir=options.run_dir,
        resume=options.resume,
        dist=options.dist,
        on_batch=options.on_batch,
        on_epoch=options.on_epoch,
    ).fit()


def fit_model(
    model: Recommender, dataset: Dataset, features=None, options: TrainOptions | None = None
) -> Recommender:
    """Fit any model: gradient models through the Trainer (``options``: run_dir, resume, dist, ...),
    the others with their own ``fit``."""
    if isinstance(model, TrainsByGradient):
        options = options or TrainOptions()
        trainer = options.trainer or train_module
        return model.fit(dataset, features, replace(options, trainer=trainer))
    return model.fit(dataset, features)

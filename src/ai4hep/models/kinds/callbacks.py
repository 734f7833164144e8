"""Callbacks: atomic checkpoints (temp file + rename), per-epoch seeding and training throughput."""

from __future__ import annotations

import math
import time
from pathlib import Path

import lightning.pytorch as pl
import torch

from ai4hep.atomic import atomic_path


def atomic_save(trainer: pl.Trainer, path: Path) -> None:
    with atomic_path(path) as tmp:
        trainer.save_checkpoint(str(tmp))


class AtomicCheckpoint(pl.Callback):
    """last.ckpt after every epoch, best.ckpt when the validation loss improves; never a half-written file.

    Saved at the end of each validation, after the early-stopping check (which runs there too, not at the end of the
    training epoch): Lightning then resumes such a checkpoint at the next epoch, with nothing redone.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.best = math.inf

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        loss = trainer.callback_metrics.get("val_loss")
        # The best checkpoint first: a kill between the two renames leaves last.ckpt one epoch old, never ahead.
        if loss is not None and float(loss) < self.best:
            self.best = float(loss)
            atomic_save(trainer, self.folder / "best.ckpt")
        atomic_save(trainer, self.folder / "last.ckpt")

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.best = state["best"]


class EpochSeed(pl.Callback):
    """Dropout depends only on (seed, epoch), the shuffle too (StreamDataset): a resumed run repeats a straight one."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        torch.manual_seed(self.seed * 100_003 + trainer.current_epoch)


class Throughput(pl.Callback):
    """Training jets per second: data loading and optimisation steps, validation and checkpointing excluded."""

    def __init__(self) -> None:
        self.jets = 0
        self.seconds = 0.0
        self._last = 0.0

    def on_train_epoch_start(self, trainer, module) -> None:
        self._last = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()  # from the previous step's end: reading the batch counts, validation does not
        self.seconds += now - self._last
        self._last = now
        self.jets += len(batch["label"])

    @property
    def jets_per_s(self) -> float:
        return self.jets / self.seconds if self.seconds else 0.0

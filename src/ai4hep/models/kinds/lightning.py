"""The torch kind's fitting loop: the Lightning module around any registered network, and the iterable dataset over a
JetStream."""

from __future__ import annotations

import math
from collections.abc import Callable

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from ai4hep.data.loader import JetStream
from ai4hep.metrics.binary import auc
from ai4hep.models.kinds.torch import model_inputs
from ai4hep.models.tasks import weighted_cross_entropy


def task_losses(model: nn.Module, out, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weighted loss per task: a multi-task model (dict outputs) names its own, a plain tagger has the jet loss."""
    if isinstance(out, dict):
        return model.losses(out, batch)
    return {"jet": weighted_cross_entropy(out, batch["label"], batch["weight"])}


def jet_logits(out) -> torch.Tensor:
    return out["jet"] if isinstance(out, dict) else out


class StreamDataset(IterableDataset):
    """Sets the stream's epoch when iteration starts: Lightning prefetches a batch before epoch-start hooks run."""

    def __init__(self, stream: JetStream, epoch: Callable[[], int] | None = None) -> None:
        self.stream = stream
        self.epoch = epoch

    def __iter__(self):
        if self.epoch is not None:
            self.stream.set_epoch(self.epoch())
        return iter(self.stream)

    def __len__(self) -> int:
        return len(self.stream)


def loader(stream: JetStream, epoch: Callable[[], int] | None = None) -> DataLoader:
    """Batches are already formed by the stream; the DataLoader only turns numpy into tensors."""
    return DataLoader(StreamDataset(stream, epoch), batch_size=None, num_workers=0)


class TaggerModule(pl.LightningModule):
    def __init__(self, model: nn.Module, lr: float, weight_decay: float, max_epochs: int) -> None:
        super().__init__()
        self.model = model
        self.lr, self.weight_decay, self.max_epochs = lr, weight_decay, max_epochs
        self._val: list[tuple[np.ndarray, np.ndarray]] = []

    def forward(self, batch: dict[str, torch.Tensor]):
        return self.model(**model_inputs(self.model, batch))

    def _loss(self, batch: dict[str, torch.Tensor], stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        out = self(batch)
        losses = task_losses(self.model, out, batch)
        loss = sum(losses.values())
        if len(losses) > 1:  # each task's share, so a user sees which one learns
            n = len(batch["label"])
            for name, value in losses.items():
                self.log(f"{stage}_{name}_loss", value, batch_size=n, on_epoch=True, on_step=False)
        return loss, jet_logits(out)

    def training_step(self, batch: dict[str, torch.Tensor], _: int) -> torch.Tensor:
        loss, _ = self._loss(batch, "train")
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["label"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], _: int) -> None:
        loss, logits = self._loss(batch, "val")
        n = len(batch["label"])
        acc = (logits.argmax(-1) == batch["label"]).float().mean()
        self.log("val_loss", loss, prog_bar=True, batch_size=n, on_epoch=True)
        self.log("val_acc", acc, prog_bar=True, batch_size=n, on_epoch=True)
        probs = torch.softmax(logits, -1)
        self._val.append((probs.detach().cpu().numpy(), batch["label"].cpu().numpy()))

    def on_validation_epoch_end(self) -> None:
        if self._val:
            probs = np.concatenate([p for p, _ in self._val])
            labels = np.concatenate([y for _, y in self._val])
            if probs.shape[1] == 2 and len(np.unique(labels)) == 2:
                self.log("val_auc", float(auc(probs[:, 1], labels == 1)), prog_bar=True)
        self._val = []

    def lr_at(self, epoch: int) -> float:
        """Cosine decay over max_epochs, a pure function of the epoch (nothing to restore on resume)."""
        return 0.5 * self.lr * (1 + math.cos(math.pi * min(epoch, self.max_epochs) / self.max_epochs))

    def on_train_epoch_start(self) -> None:
        for group in self.optimizers().optimizer.param_groups:
            group["lr"] = self.lr_at(self.current_epoch)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)

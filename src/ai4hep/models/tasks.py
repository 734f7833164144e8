"""Task heads of a multi-task tagger (the salt idea): every head has the same interface, so training, prediction
write-out and ONNX export loop over heads and a new task is one class.

A head reads the encoder's per-track embeddings (B, T, D), the pooled jet embedding (B, D) and the track mask, and
gives raw outputs (`forward`); `loss` compares them with the batch's labels, `infer` turns them into the
probabilities a user reads (and ONNX exports), and `output_name` / `object_axes` name those and say which of their
axes run over tracks (so batches trimmed to different track counts are padded back on those axes when written).
Track labels of padding and unlabelled tracks are -1 and never enter a loss.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ai4hep.data.labels import ORIGINS
from ai4hep.models.mlp import mlp

# The categories of the flavour dataset's `origin` field.
ORIGIN_CLASSES = ORIGINS


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-jet cross entropy averaged with the class weights of the batch (balanced classes by default)."""
    per_jet = F.cross_entropy(logits, labels, reduction="none")
    return (per_jet * weight).sum() / weight.sum().clamp(min=1e-12)


class Task(nn.Module):
    """One output of the tagger. Subclasses set `name`, `target` (batch key of the labels) and `output_axes`."""

    name = ""
    target = ""
    object_axes: ClassVar[tuple[int, ...]] = ()  # axes of the inference output that run over tracks

    def __init__(self, weight: float) -> None:
        super().__init__()
        self.weight = weight

    def forward(self, tracks: torch.Tensor, pooled: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def infer(self, out: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def output_name(self) -> str:
        return f"{self.name}_probs"


class JetClassification(Task):
    name, target = "jet", "label"

    def __init__(self, dim: int, n_classes: int, hidden: list[int], weight: float = 1.0) -> None:
        super().__init__(weight)
        self.net = mlp([dim, *hidden, n_classes])

    def forward(self, tracks: torch.Tensor, pooled: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net(pooled)

    def loss(self, out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return weighted_cross_entropy(out, batch["label"], batch["weight"])

    def infer(self, out: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.softmax(out, -1)

    @property
    def output_name(self) -> str:
        return "probs"


class TrackOrigin(Task):
    """Per-track origin class (from b, from c, primary, other secondary, pile-up), from the track and jet context."""

    name, target = "origin", "origin"
    object_axes = (1,)

    def __init__(self, dim: int, hidden: list[int], weight: float = 0.5) -> None:
        super().__init__(weight)
        self.net = mlp([2 * dim, *hidden, len(ORIGIN_CLASSES)])

    def forward(self, tracks: torch.Tensor, pooled: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        context = pooled.unsqueeze(1).expand(-1, tracks.shape[1], -1)
        return self.net(torch.cat([tracks, context], dim=-1))

    def loss(self, out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        labels = batch["origin"]
        if not (labels >= 0).any():
            return out.sum() * 0.0
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), labels.reshape(-1), ignore_index=-1)

    def infer(self, out: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.softmax(out, -1) * mask.unsqueeze(-1).to(out.dtype)


class TrackPairVertexing(Task):
    """Whether two tracks come from the same truth vertex: a symmetric network on each pair of track embeddings.

    Label of pair (i, j): both tracks from one vertex (index >= 0, so pile-up and padding never pair up). The loss is
    the binary cross entropy averaged over pairs i < j of labelled tracks.
    """

    name, target = "vertex", "vertex"
    object_axes = (1, 2)

    def __init__(self, dim: int, hidden: list[int], weight: float = 1.5) -> None:
        super().__init__(weight)
        width = hidden[0] if hidden else dim
        self.project = nn.Linear(dim, width)
        self.net = mlp([2 * width, *hidden[1:], 1])

    def forward(self, tracks: torch.Tensor, pooled: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.project(tracks)
        a, b = h.unsqueeze(2), h.unsqueeze(1)  # (B, T, 1, W), (B, 1, T, W)
        pair = torch.cat([torch.relu(a + b), a * b], dim=-1)  # symmetric in (i, j)
        return self.net(pair).squeeze(-1)

    def loss(self, out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        v = batch["vertex"]
        labelled = v >= 0
        t = v.shape[1]
        upper = torch.ones(t, t, dtype=torch.bool, device=v.device).triu(1)
        pairs = labelled.unsqueeze(2) & labelled.unsqueeze(1) & upper
        if not pairs.any():
            return out.sum() * 0.0
        same = (v.unsqueeze(2) == v.unsqueeze(1)).to(out.dtype)
        return F.binary_cross_entropy_with_logits(out[pairs], same[pairs])

    def infer(self, out: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(out.dtype)
        return torch.sigmoid(out) * m.unsqueeze(2) * m.unsqueeze(1)


AUX_TASKS = {"origin": TrackOrigin, "vertex": TrackPairVertexing}

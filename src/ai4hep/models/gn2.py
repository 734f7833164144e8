"""A GN2-style flavour tagger (ATLAS, arXiv:2505.19689): per-track embedding, transformer encoder, attention pooling,
and jointly trained task heads: jet flavour, track origin (loss weight 0.5) and track-pair vertexing (weight 1.5).

The auxiliary heads are optional (`aux_tasks`), which is how the ablation "with and without auxiliary tasks" is one
config key. Jet-level inputs (the paper uses jet pT and eta) are appended to every track before the embedding.

Softmax attention and attention pooling average over the jet's tracks, so without help the network cannot tell how
many tracks a jet has (a jet with every track doubled gives the same output), while DIPS's sum over tracks can. The
track count is a strong flavour input (b-hadron decays add tracks), so `track_count` appends log(1 + n) of the
jet's real tracks to every track's inputs.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from torch import nn

from ai4hep.models.mlp import mlp
from ai4hep.models.tasks import AUX_TASKS, JetClassification, Task

NEG = -1e9


class GN2Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    init: list[PositiveInt] = [128, 128]
    embed: int = Field(128, gt=0)
    heads: int = Field(8, gt=0)
    layers: int = Field(4, gt=0)
    ffn_ratio: int = Field(2, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    track_count: bool = Field(True, description="append log(1 + real tracks) to every track's inputs")
    head_hidden: list[PositiveInt] = [128, 64, 32]
    aux_tasks: list[Literal["origin", "vertex"]] = ["origin", "vertex"]
    origin_weight: float = Field(0.5, ge=0)
    vertex_weight: float = Field(1.5, ge=0)


class EncoderLayer(nn.Module):
    """Pre-LayerNorm transformer layer; padding tracks are masked as keys with an additive bias (never NaN, even for
    a jet without tracks)."""

    def __init__(self, dim: int, heads: int, ffn_ratio: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_ratio * dim), nn.SiLU(), nn.Dropout(dropout), nn.Linear(ffn_ratio * dim, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (
            y.reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for y in self.qkv(self.ln1(x)).chunk(3, dim=-1)
        )
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        x = x + self.drop(self.proj(attn.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.ffn(self.ln2(x)))


class AttentionPooling(nn.Module):
    """Global attention pooling: a learned weight per track (softmax over the jet's real tracks), weighted sum."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor, key_pad: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.score(x).squeeze(-1) + key_pad, dim=-1)
        return (w.unsqueeze(-1) * x).sum(dim=1)


class GN2(nn.Module):
    inputs = ("objects", "mask")
    extras: tuple[str, ...] = ()

    @staticmethod
    def targets_for(params: GN2Params) -> tuple[str, ...]:
        return tuple(AUX_TASKS[name].target for name in params.aux_tasks)

    def __init__(self, n_jet: int, n_obj: int, n_classes: int, params: GN2Params) -> None:
        super().__init__()
        if params.embed % params.heads:
            raise ValueError(f"embed width {params.embed} is not divisible by heads={params.heads}")
        self.inputs = ("jet", "objects", "mask") if n_jet else ("objects", "mask")
        self.track_count = params.track_count
        self.init = mlp([n_obj + n_jet + int(params.track_count), *params.init, params.embed])
        self.layers = nn.ModuleList(
            EncoderLayer(params.embed, params.heads, params.ffn_ratio, params.dropout) for _ in range(params.layers)
        )
        self.norm = nn.LayerNorm(params.embed)
        self.pool = AttentionPooling(params.embed)
        weights = {"origin": params.origin_weight, "vertex": params.vertex_weight}
        tasks: list[Task] = [JetClassification(params.embed, n_classes, params.head_hidden)]
        tasks += [AUX_TASKS[n](params.embed, params.head_hidden[1:], weights[n]) for n in params.aux_tasks]
        self.tasks = nn.ModuleList(tasks)

    def encode(self, objects: torch.Tensor, mask: torch.Tensor, jet: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        b, t, _ = objects.shape
        extra = [] if jet is None else [jet]
        if self.track_count:
            extra.append(torch.log1p(mask.sum(dim=1, keepdim=True).to(objects.dtype)))
        if extra:
            objects = torch.cat([objects, torch.cat(extra, dim=-1).unsqueeze(1).expand(-1, t, -1)], dim=-1)
        m = mask.unsqueeze(-1).to(objects.dtype)
        key_pad = (~mask).to(objects.dtype) * NEG
        x = self.init(objects) * m
        bias = key_pad.view(b, 1, 1, t)
        for layer in self.layers:
            x = layer(x, bias)
        x = self.norm(x) * m
        return x, self.pool(x, key_pad)

    def forward(
        self, objects: torch.Tensor, mask: torch.Tensor, jet: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Raw outputs of every task, by task name ("jet" holds the flavour logits)."""
        tracks, pooled = self.encode(objects, mask, jet)
        return {task.name: task(tracks, pooled, mask) for task in self.tasks}

    def losses(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each task's weighted loss; the training loss is their sum."""
        return {task.name: task.weight * task.loss(out[task.name], batch) for task in self.tasks}

    def infer(self, out: dict[str, torch.Tensor], mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """What a user reads and ONNX exports: jet probabilities first, then each auxiliary task's."""
        return {task.output_name: task.infer(out[task.name], mask) for task in self.tasks}

    def object_axes(self) -> dict[str, tuple[int, ...]]:
        """Per inference output, the axes that run over tracks."""
        return {task.output_name: task.object_axes for task in self.tasks}

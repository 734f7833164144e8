"""MLP on high-level jet features (the classic substructure-variable tagger)."""

from __future__ import annotations

import itertools

import torch
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from torch import nn


class MLPParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hidden: list[PositiveInt] = [64, 64, 64]
    dropout: float = Field(0.1, ge=0, lt=1)


def mlp(sizes: list[int], dropout: float = 0.0, last_activation: bool = False) -> nn.Sequential:
    """Linear-ReLU stack; works on any leading shape, so it serves as a per-object network too."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class MLP(nn.Module):
    inputs = ("jet",)
    extras: tuple[str, ...] = ()
    fastml_route = "hls4ml"  # `ai4hep fastml convert` takes it to firmware through hls4ml

    def __init__(self, n_jet: int, n_obj: int, n_classes: int, params: MLPParams) -> None:
        super().__init__()
        self.net = mlp([n_jet, *params.hidden, n_classes], params.dropout)

    def forward(self, jet: torch.Tensor) -> torch.Tensor:
        return self.net(jet)

"""DIPS: Deep Sets over tracks for flavour tagging (ATLAS, ATL-PHYS-PUB-2020-014), the GN2 paper's baseline network.

A per-track network, a sum over the jet's real tracks, and a jet network. Jet-level inputs, when configured, are
appended to every track as in the GN2-style model, so that the two differ only in architecture.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from torch import nn

from ai4hep.models.mlp import mlp


class DIPSParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phi: list[PositiveInt] = [100, 100, 128]
    f: list[PositiveInt] = [100, 100, 100, 30]
    dropout: float = Field(0.0, ge=0, lt=1)


class DIPS(nn.Module):
    inputs = ("objects", "mask")
    extras: tuple[str, ...] = ()

    def __init__(self, n_jet: int, n_obj: int, n_classes: int, params: DIPSParams) -> None:
        super().__init__()
        self.inputs = ("jet", "objects", "mask") if n_jet else ("objects", "mask")
        self.phi = mlp([n_obj + n_jet, *params.phi], last_activation=True)
        self.f = mlp([params.phi[-1], *params.f, n_classes], params.dropout)

    def forward(self, objects: torch.Tensor, mask: torch.Tensor, jet: torch.Tensor | None = None) -> torch.Tensor:
        if jet is not None:
            objects = torch.cat([objects, jet.unsqueeze(1).expand(-1, objects.shape[1], -1)], dim=-1)
        latent = self.phi(objects) * mask.unsqueeze(-1).to(objects.dtype)
        return self.f(latent.sum(dim=1))

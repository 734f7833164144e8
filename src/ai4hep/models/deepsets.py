"""Deep Sets: Particle Flow and Energy Flow Networks (Komiske, Metodiev, Thaler, arXiv:1810.05165).

Both sum a per-particle latent over the jet's valid particles and classify the sum; padding slots contribute zero.
The EFN's per-particle network sees only angles and its sum is weighted by the momentum fraction z, so the EFN is
IRC safe by construction.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from torch import nn

from ai4hep.models.mlp import mlp


class DeepSetsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phi: list[PositiveInt] = [100, 100, 128]
    f: list[PositiveInt] = [100, 100, 100]
    dropout: float = Field(0.0, ge=0, lt=1)


class PFN(nn.Module):
    inputs = ("objects", "mask")
    extras: tuple[str, ...] = ()

    def __init__(self, n_jet: int, n_obj: int, n_classes: int, params: DeepSetsParams) -> None:
        super().__init__()
        self.phi = mlp([n_obj, *params.phi], last_activation=True)
        self.f = mlp([params.phi[-1], *params.f, n_classes], params.dropout)

    def forward(self, objects: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        latent = self.phi(objects) * mask.unsqueeze(-1).to(objects.dtype)
        return self.f(latent.sum(dim=1))


class EFN(nn.Module):
    inputs = ("mask",)
    extras = ("points", "z")

    def __init__(self, n_jet: int, n_obj: int, n_classes: int, params: DeepSetsParams) -> None:
        super().__init__()
        self.phi = mlp([2, *params.phi], last_activation=True)
        self.f = mlp([params.phi[-1], *params.f, n_classes], params.dropout)

    def forward(self, mask: torch.Tensor, points: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        weights = (z * mask.to(z.dtype)).unsqueeze(-1)
        return self.f((self.phi(points) * weights).sum(dim=1))

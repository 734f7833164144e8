"""ParticleNet: dynamic-graph CNN with EdgeConv blocks on the particle cloud (Qu, Gouskos, arXiv:1902.08570).

The first block finds neighbours in (delta eta, delta phi); later blocks in the learned feature space. Padding slots
never change a real particle's output, however many follow it: they are pushed far away, so they come after every real
particle in the neighbour ranking; a particle with fewer than k real neighbours averages its edges over those it has
(padding slots may fill the remaining places of the k but are left out of the average); their outputs are zeroed
after every block; batch-norm statistics in training are those of real particles and real edges; and the pooling
averages over real particles only.
"""

from __future__ import annotations

import itertools
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from torch import nn

FAR = 1e9


class ParticleNetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    k: int = Field(16, gt=0)
    blocks: list[Annotated[list[PositiveInt], Field(min_length=1)]] = Field(
        [[64, 64, 64], [128, 128, 128], [256, 256, 256]], min_length=1
    )
    fusion: int = Field(384, ge=0)  # 0 disables the fusion layer
    fc: list[PositiveInt] = [256]
    dropout: float = Field(0.1, ge=0, lt=1)


def knn(points: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, N, k) of each slot's k nearest neighbours (itself excluded), k = min(k, N - 1); points is (B, N, C).
    Real particles come first: padding slots fill the places of a particle with fewer than k real neighbours, and
    EdgeConv leaves those out.

    Ties are broken by the lower slot index, i.e. the harder constituent. Ties are common, not a corner case:
    calorimeter cells sit on an (eta, phi) grid, so equal distances to several cells are frequent in the first
    block. torch.topk orders ties arbitrarily while ONNX TopK takes the lower index by specification, and that
    alone made exported ParticleNets differ from PyTorch by up to ~7e-4. So eager PyTorch takes a stable sort and
    the exported graph TopK: both pick the same neighbours. The diagonal is set below any distance so the slot
    itself, not an equidistant twin, is what gets dropped.
    """
    shifted = points + (~mask).unsqueeze(-1).to(points.dtype) * FAR
    sq = (shifted**2).sum(dim=-1, keepdim=True)
    dist = sq - 2 * torch.matmul(shifted, shifted.transpose(1, 2)) + sq.transpose(1, 2)
    n = points.shape[1]
    slot = torch.arange(n, device=points.device)
    dist = dist.masked_fill(slot.unsqueeze(1) == slot.unsqueeze(0), -1.0)
    k = min(k, n - 1)
    if torch.onnx.is_in_onnx_export():
        return dist.topk(k + 1, dim=-1, largest=False).indices[:, :, 1:]
    return dist.sort(dim=-1, stable=True).indices[:, :, 1 : k + 1]


def neighbours(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Gather x (B, N, C) at idx (B, N, k) -> (B, N, k, C)."""
    b, n, c = x.shape
    k = idx.shape[-1]
    return x.gather(1, idx.reshape(b, n * k, 1).expand(b, n * k, c)).view(b, n, k, c)


class ChannelBN(nn.BatchNorm1d):
    """BatchNorm over the last (channel) axis of a tensor of any shape, as BatchNorm2d on (B, C, N, k) does.

    In training the batch statistics (and the running statistics they update) are those of the entries `mask` marks
    real (particles, or edges between real particles), not of padding: padding makes up much of a batch, and how much
    depends on the batch's longest jet. Padded entries come out zero. Evaluation applies the running statistics to
    every entry alike, so it needs no mask and keeps static shapes for ONNX.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        if not self.training or mask is None:
            return super().forward(flat).view(x.shape)
        keep = mask.reshape(-1)
        real = flat[keep]
        if real.shape[0] < 2:  # no batch statistics from fewer than two entries: the running ones, not updated
            real = F.batch_norm(real, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        else:
            real = super().forward(real)
        return flat.new_zeros(flat.shape).index_put((keep,), real).view(x.shape)


def masked(layers: nn.Sequential, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Run a Sequential, handing `mask` to its batch norms."""
    for layer in layers:
        x = layer(x, mask) if isinstance(layer, ChannelBN) else layer(x)
    return x


class EdgeConv(nn.Module):
    """Edge MLP on (x_i, x_j - x_i), averaged over the k neighbours (the real ones, where a particle has fewer than k),
    plus a shortcut.

    Channels-last Linear layers instead of 1x1 convolutions (same maths, several times faster on CPU); the first layer
    is split as W (x_i, x_j - x_i) = (W_c - W_d) x_i + W_d x_j, so it runs per particle rather than per edge.
    """

    def __init__(self, k: int, c_in: int, channels: list[int]) -> None:
        super().__init__()
        self.k = k
        self.centre = nn.Linear(c_in, channels[0], bias=False)
        self.neighbour = nn.Linear(c_in, channels[0], bias=False)
        self.bn0 = ChannelBN(channels[0])
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(channels):
            layers += [nn.Linear(a, b, bias=False), ChannelBN(b), nn.ReLU()]
        self.edge = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(nn.Linear(c_in, channels[-1], bias=False), ChannelBN(channels[-1]))
        self.act = nn.ReLU()

    def forward(self, points: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        idx = knn(points, mask, self.k)
        m = mask.unsqueeze(-1).to(x.dtype)
        # edges between real particles: padding fills a particle's k places only where it has fewer real neighbours
        real = neighbours(m, idx) * m.unsqueeze(2)  # (B, N, k, 1)
        own = self.centre(x) - self.neighbour(x)
        h = own.unsqueeze(2) + neighbours(self.neighbour(x), idx)
        edge_mask = real.squeeze(-1) > 0
        edge = masked(self.edge, torch.relu(self.bn0(h, edge_mask)), edge_mask)
        edge = (edge * real).sum(dim=2) / real.sum(dim=2).clamp(min=1.0)
        return self.act(edge + masked(self.shortcut, x, mask)) * m


class ParticleNet(nn.Module):
    inputs = ("objects", "mask")
    extras = ("points",)

    def __init__(self, n_jet: int, n_obj: int, n_classes: int, params: ParticleNetParams) -> None:
        super().__init__()
        self.input_bn = ChannelBN(n_obj)
        self.blocks = nn.ModuleList()
        c = n_obj
        for channels in params.blocks:
            self.blocks.append(EdgeConv(params.k, c, channels))
            c = channels[-1]
        total = sum(ch[-1] for ch in params.blocks)
        self.fusion = (
            nn.Sequential(nn.Linear(total, params.fusion, bias=False), ChannelBN(params.fusion), nn.ReLU())
            if params.fusion
            else None
        )
        c = params.fusion or total
        head: list[nn.Module] = []
        for width in params.fc:
            head += [nn.Linear(c, width), nn.ReLU(), nn.Dropout(params.dropout)]
            c = width
        head.append(nn.Linear(c, n_classes))
        self.head = nn.Sequential(*head)

    def forward(self, objects: torch.Tensor, mask: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(objects.dtype)
        x = self.input_bn(objects, mask) * m
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(points if i == 0 else x, x, mask)
            outputs.append(x)
        x = torch.cat(outputs, dim=-1)
        if self.fusion is not None:
            x = masked(self.fusion, x, mask) * m
        pooled = x.sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
        return self.head(pooled)

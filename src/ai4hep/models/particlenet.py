"""ParticleNet: dynamic-graph CNN with EdgeConv blocks on the particle cloud (Qu, Gouskos, arXiv:1902.08570).

The first block finds neighbours in (delta eta, delta phi); later blocks in the learned feature space. Padding slots
are pushed far away so they are never the neighbour of a real particle, their outputs are zeroed after every block,
and the pooling averages over real particles only.
"""

from __future__ import annotations

import itertools

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

FAR = 1e9


class ParticleNetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    k: int = Field(16, gt=0)
    blocks: list[list[int]] = [[64, 64, 64], [128, 128, 128], [256, 256, 256]]
    fusion: int = 384  # 0 disables the fusion layer
    fc: list[int] = [256]
    dropout: float = 0.1


def knn(points: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, N, k) of each slot's k nearest real neighbours (itself excluded); points is (B, N, C).

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
    """BatchNorm over the last (channel) axis of a tensor of any shape, as BatchNorm2d on (B, C, N, k) does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


class EdgeConv(nn.Module):
    """Edge MLP on (x_i, x_j - x_i), averaged over the k neighbours, plus a shortcut.

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
        own = self.centre(x) - self.neighbour(x)
        h = own.unsqueeze(2) + neighbours(self.neighbour(x), idx)
        edge = self.edge(torch.relu(self.bn0(h))).mean(dim=2)
        return self.act(edge + self.shortcut(x)) * mask.unsqueeze(-1).to(x.dtype)


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
        x = self.input_bn(objects) * m
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(points if i == 0 else x, x, mask)
            outputs.append(x)
        x = torch.cat(outputs, dim=-1)
        if self.fusion is not None:
            x = self.fusion(x) * m
        pooled = x.sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
        return self.head(pooled)

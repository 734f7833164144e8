"""ParticleNet: dynamic-graph CNN with EdgeConv blocks on the particle cloud (Qu, Gouskos, arXiv:1902.08570).

The first block finds neighbours in (delta eta, delta phi); later blocks in the learned feature space. Padding slots
are pushed far away so they are never the neighbour of a real particle, their outputs are zeroed after every block,
and the pooling averages over real particles only.
"""

from __future__ import annotations

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
    """Indices (B, N, k) of each slot's k nearest real neighbours (itself excluded); points is (B, C, N)."""
    shifted = points + (~mask).unsqueeze(1).to(points.dtype) * FAR
    inner = -2 * torch.matmul(shifted.transpose(1, 2), shifted)
    sq = (shifted**2).sum(dim=1, keepdim=True)
    dist = sq.transpose(1, 2) + inner + sq
    k = min(k, points.shape[-1] - 1)
    return dist.topk(k + 1, dim=-1, largest=False).indices[:, :, 1:]


def neighbours(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Gather x (B, C, N) at idx (B, N, k) -> (B, C, N, k)."""
    b, c, n = x.shape
    k = idx.shape[-1]
    flat = idx.reshape(b, 1, n * k).expand(b, c, n * k)
    return x.gather(2, flat).reshape(b, c, n, k)


class EdgeConv(nn.Module):
    def __init__(self, k: int, c_in: int, channels: list[int]) -> None:
        super().__init__()
        self.k = k
        layers: list[nn.Module] = []
        c = 2 * c_in
        for c_out in channels:
            layers += [nn.Conv2d(c, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            c = c_out
        self.edge = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(nn.Conv1d(c_in, channels[-1], 1, bias=False), nn.BatchNorm1d(channels[-1]))
        self.act = nn.ReLU()

    def forward(self, points: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        idx = knn(points, mask, self.k)
        nb = neighbours(x, idx)
        centre = x.unsqueeze(-1).expand_as(nb)
        edge = self.edge(torch.cat([centre, nb - centre], dim=1)).mean(dim=-1)
        return self.act(edge + self.shortcut(x)) * mask.unsqueeze(1).to(x.dtype)


class ParticleNet(nn.Module):
    inputs = ("objects", "mask")
    extras = ("points",)

    def __init__(self, n_jet: int, n_obj: int, n_classes: int, params: ParticleNetParams) -> None:
        super().__init__()
        self.input_bn = nn.BatchNorm1d(n_obj)
        self.blocks = nn.ModuleList()
        c = n_obj
        for channels in params.blocks:
            self.blocks.append(EdgeConv(params.k, c, channels))
            c = channels[-1]
        total = sum(ch[-1] for ch in params.blocks)
        self.fusion = (
            nn.Sequential(nn.Conv1d(total, params.fusion, 1, bias=False), nn.BatchNorm1d(params.fusion), nn.ReLU())
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
        m = mask.unsqueeze(1).to(objects.dtype)
        x = self.input_bn(objects.transpose(1, 2)) * m
        pts = points.transpose(1, 2)
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(pts if i == 0 else x, x, mask)
            outputs.append(x)
        x = torch.cat(outputs, dim=1)
        if self.fusion is not None:
            x = self.fusion(x) * m
        pooled = x.sum(dim=-1) / m.sum(dim=-1).clamp(min=1.0)
        return self.head(pooled)

"""Particle Transformer with pairwise interaction features (Qu, Li, Qian, arXiv:2202.03772).

Particle attention blocks add a learned bias U_ab, embedded from the pair features ln Delta, ln kT, ln z and ln m^2,
to the attention logits; class attention blocks then pool the particles into a class token. Padding slots are masked
as keys everywhere, and are ignored as queries because only the class token is read out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from torch import nn

NEG = -1e9
EPS = 1e-8


class ParTParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    embed: list[PositiveInt] = Field([128, 512, 128], min_length=1)
    pair_embed: list[PositiveInt] = [64, 64, 64]
    heads: int = Field(8, gt=0)
    blocks: int = Field(8, gt=0)
    class_blocks: int = Field(2, gt=0)
    ffn_ratio: int = Field(4, gt=0)
    dropout: float = Field(0.1, ge=0, lt=1)
    use_interaction: bool = True


def pair_features(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Four-vectors (..., 4) = (px, py, pz, E) of pair members -> (..., 4): ln Delta, ln kT, ln z, ln m^2."""

    def kinematics(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        px, py, pz, e = v.unbind(-1)
        pt = torch.sqrt(px**2 + py**2).clamp(min=EPS)
        rap = 0.5 * torch.log((e + pz).clamp(min=EPS) / (e - pz).clamp(min=EPS))
        return pt, rap, torch.atan2(py, px)

    pt_a, rap_a, phi_a = kinematics(a)
    pt_b, rap_b, phi_b = kinematics(b)
    dphi = (phi_a - phi_b + torch.pi) % (2 * torch.pi) - torch.pi
    delta = torch.sqrt((rap_a - rap_b) ** 2 + dphi**2)
    ptmin = torch.minimum(pt_a, pt_b)
    s = a + b
    m2 = s[..., 3] ** 2 - s[..., 0] ** 2 - s[..., 1] ** 2 - s[..., 2] ** 2
    return torch.stack(
        [
            torch.log(delta.clamp(min=EPS)),
            torch.log((ptmin * delta).clamp(min=EPS)),
            torch.log((ptmin / (pt_a + pt_b)).clamp(min=EPS)),
            torch.log(m2.clamp(min=EPS)),
        ],
        dim=-1,
    )


def upper_pairs(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(i, j) of the pairs i < j in row-major order, exactly as torch.triu_indices(n, n, 1) lists them, but from
    arange, comparisons and sums: triu_indices has no ONNX operator, and these keep the object axis dynamic.

    Pair p lies in row i = (number of rows whose first pair index is <= p) - 1; row r starts at r n - r (r + 1) / 2.
    """
    rows = torch.arange(n, device=device)
    start = rows * n - rows * (rows + 1) // 2
    p = torch.arange(n * (n - 1) // 2, device=device)
    i = (start.unsqueeze(0) <= p.unsqueeze(1)).sum(dim=1) - 1
    return i, p - start[i] + i + 1


class PairEmbed(nn.Module):
    """Pair features -> one attention bias per head: per-pair layers (BN, GELU) as the paper's 1x1 convolutions.

    Written as Linear layers on a channels-last (pairs, features) matrix, which runs several times faster on CPU than
    1x1 Conv2d on (B, C, N, N), and only over the upper triangle, since the features are symmetric in the pair; in
    training only over the pairs of real particles.
    """

    def __init__(self, widths: list[int], heads: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.BatchNorm1d(4)]
        c = 4
        for w in widths:
            layers += [nn.Linear(c, w), nn.BatchNorm1d(w), nn.GELU()]
            c = w
        layers.append(nn.Linear(c, heads))
        self.net = nn.Sequential(*layers)
        self.heads = heads

    def forward(self, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, _ = vectors.shape
        i, j = upper_pairs(n, vectors.device)
        full = vectors.new_zeros(b, n * n, self.heads)
        real = mask[:, i] & mask[:, j]  # (B, P): both members are particles, not padding
        if self.training:
            # Only the pairs of real particles: padding makes up most of a batch's pairs (its longest jet sets n), and
            # the batch-norm statistics are then those of real pairs, as the evaluation path below assumes.
            jet, pair = real.nonzero(as_tuple=True)
            u = self.net(pair_features(vectors[jet, i[pair]], vectors[jet, j[pair]]))
            full[jet, i[pair] * n + j[pair]] = u
            full[jet, j[pair] * n + i[pair]] = u
        else:  # every pair, masked: no data-dependent shapes, so the ONNX graph keeps a dynamic object axis
            pair_mask = real.unsqueeze(-1).to(vectors.dtype)  # (B, P, 1)
            feats = pair_features(vectors[:, i], vectors[:, j]) * pair_mask  # (B, P, 4)
            u = self.net(feats.reshape(-1, 4)).view(b, -1, self.heads) * pair_mask
            full[:, i * n + j] = u
            full[:, j * n + i] = u
        return full.view(b, n, n, self.heads).permute(0, 3, 1, 2)


class Block(nn.Module):
    """NormFormer-style block: LN before and after attention and inside the feed-forward network."""

    def __init__(self, dim: int, heads: int, ffn_ratio: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln_attn = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln_post = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.LayerNorm(dim),
            nn.Linear(dim, ffn_ratio * dim),
            nn.GELU(),
            nn.LayerNorm(ffn_ratio * dim),
            nn.Dropout(dropout),
            nn.Linear(ffn_ratio * dim, dim),
        )
        self.drop = nn.Dropout(dropout)

    def attend(self, q_in: torch.Tensor, kv_in: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, nq, d = q_in.shape
        h = self.heads
        if q_in is kv_in:  # self-attention: one fused projection
            q, k, v = self.qkv(q_in).chunk(3, dim=-1)
        else:
            w_q, w_kv = self.qkv.weight.split([d, 2 * d])
            b_q, b_kv = self.qkv.bias.split([d, 2 * d])
            q = F.linear(q_in, w_q, b_q)
            k, v = F.linear(kv_in, w_kv, b_kv).chunk(2, dim=-1)
        q, k, v = (t.reshape(b, -1, h, d // h).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        # an explicit copy, not reshape: torch.export traces reshape as a view of SDPA's output, which its ONNX
        # decomposition then lays out differently ("cannot view a tensor ..."); same values, same one copy
        return self.proj(out.transpose(1, 2).clone(memory_format=torch.contiguous_format).view(b, nq, d))

    def forward(self, x: torch.Tensor, bias: torch.Tensor, cls: torch.Tensor | None = None) -> torch.Tensor:
        if cls is None:  # particle attention: every particle attends to every real particle
            residual, y = x, self.ln_attn(x)
            y = self.attend(y, y, bias)
        else:  # class attention: the class token attends to itself and the particles
            residual = cls
            kv = self.ln_attn(torch.cat([cls, x], dim=1))
            y = self.attend(kv[:, :1], kv, bias)
        x = residual + self.drop(self.ln_post(y))
        return x + self.ffn(x)


class ParT(nn.Module):
    inputs = ("objects", "mask")
    extras = ("vectors",)

    def __init__(self, n_jet: int, n_obj: int, n_classes: int, params: ParTParams) -> None:
        super().__init__()
        dim = params.embed[-1]
        if dim % params.heads:
            raise ValueError(f"embed width {dim} is not divisible by heads={params.heads}")
        layers: list[nn.Module] = [nn.LayerNorm(n_obj)]
        c = n_obj
        for w in params.embed:
            layers += [nn.Linear(c, w), nn.GELU(), nn.LayerNorm(w)]
            c = w
        self.embed = nn.Sequential(*layers[:-1])
        self.heads = params.heads
        self.pair = PairEmbed(params.pair_embed, params.heads) if params.use_interaction else None
        self.blocks = nn.ModuleList(
            Block(dim, params.heads, params.ffn_ratio, params.dropout) for _ in range(params.blocks)
        )
        self.class_blocks = nn.ModuleList(
            Block(dim, params.heads, params.ffn_ratio, 0.0) for _ in range(params.class_blocks)
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, objects: torch.Tensor, mask: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        b, n, _ = objects.shape
        key_pad = (~mask).to(objects.dtype) * NEG  # (B, N)
        bias = key_pad.view(b, 1, 1, n).expand(b, self.heads, n, n)
        if self.pair is not None:
            bias = bias + self.pair(vectors, mask)
        x = self.embed(objects) * mask.unsqueeze(-1).to(objects.dtype)
        for block in self.blocks:
            x = block(x, bias)
        cls = self.cls_token.expand(b, 1, -1)
        cls_bias = torch.cat([torch.zeros(b, 1, device=x.device, dtype=x.dtype), key_pad], dim=1)
        cls_bias = cls_bias.view(b, 1, 1, n + 1).expand(b, self.heads, 1, n + 1)
        for block in self.class_blocks:
            cls = block(x, cls_bias, cls=cls)
        return self.head(self.norm(cls.squeeze(1)))

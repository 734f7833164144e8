"""ParT training step alone: forward + backward jets/s of ai4hep's ParT and weaver-core's ParticleTransformer.

Same paper-size widths, one fixed batch of padded jets shaped like `top`'s (lengths drawn from a normal with the
given mean and spread, the batch as wide as its longest jet), 2 threads, both models in training mode, after six
warm-up steps (weaver's sequence trimmer starts at its sixth). No data loading, no optimiser: the model's own cost.

    python benchmarks/part_step.py [--batch 128] [--mean 55] [--spread 15] [--steps 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ai4hep.models.part import ParT, ParTParams


def batch(n: int, mean: float, spread: float, features: int = 8, max_objects: int = 100):
    rng = np.random.default_rng(1)
    lengths = np.clip(rng.normal(mean, spread, n).astype(int), 10, max_objects)
    width = int(lengths.max())
    mask = torch.from_numpy(np.arange(width)[None, :] < lengths[:, None])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, width, features, generator=g) * mask.unsqueeze(-1)
    pt = torch.rand(n, width, generator=g) * 50 + 1
    eta, phi = (torch.randn(n, width, generator=g) * 0.3 for _ in range(2))
    v = torch.stack([pt * phi.cos(), pt * phi.sin(), pt * eta.sinh(), pt * eta.cosh()], -1) * mask.unsqueeze(-1)
    return x, v, mask, torch.randint(0, 2, (n,), generator=g), lengths


def rate(step, n: int, steps: int) -> float:
    for _ in range(6):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return n * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--mean", type=float, default=55)
    parser.add_argument("--spread", type=float, default=15)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    x, v, mask, y, lengths = batch(args.batch, args.mean, args.spread)
    print(f"batch {args.batch}: mean length {lengths.mean():.0f}, width {mask.shape[1]}")
    ours = ParT(0, x.shape[-1], 2, ParTParams()).train()

    def step_ours() -> None:
        torch.nn.functional.cross_entropy(ours(x, mask, v), y).backward()

    print(f"ai4hep ParT: {rate(step_ours, args.batch, args.steps):.1f} jets/s")
    try:
        from weaver.nn.model.ParticleTransformer import ParticleTransformer
    except ImportError:
        print("weaver-core not installed (pip install weaver-core): its row is skipped")
        return
    theirs = ParticleTransformer(
        input_dim=x.shape[-1],
        num_classes=2,
        embed_dims=[128, 512, 128],
        pair_embed_dims=[64, 64, 64],
        num_heads=8,
        num_layers=8,
        num_cls_layers=2,
        fc_params=[],
        use_pre_activation_pair=False,
    ).train()
    xt, vt, mt = x.transpose(1, 2), v.transpose(1, 2), mask.unsqueeze(1).float()

    def step_theirs() -> None:
        torch.nn.functional.cross_entropy(theirs(xt, vt, mt), y).backward()

    print(f"weaver-core ParticleTransformer: {rate(step_theirs, args.batch, args.steps):.1f} jets/s")


if __name__ == "__main__":
    main()

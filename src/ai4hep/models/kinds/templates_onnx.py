"""IP3D-like template runs as ONNX: the histogram look-up written as a small torch graph and exported like a network.

Per track, bin k of variable v is the number of bin edges <= x_v (numpy's searchsorted, side='right'); the bins of
one or two variables index the flattened per-flavour log-density table; the jet's log-likelihoods are the sums over
real tracks and its probabilities their softmax. Everything runs in float64 as ai4hep.models.ip3d does in numpy, and
a float32 input is compared with the float64 edges exactly, so every track falls into the same bin.
"""

from __future__ import annotations

import numpy as np
import torch


class TemplateGraph(torch.nn.Module):
    def __init__(self, edges: list[np.ndarray], log_density: np.ndarray) -> None:
        super().__init__()
        self.n_edges = [len(e) for e in edges]
        for k, e in enumerate(edges):
            self.register_buffer(f"edges{k}", torch.as_tensor(np.asarray(e, dtype=np.float64)))
        table = np.asarray(log_density, dtype=np.float64)
        self.register_buffer("table", torch.as_tensor(table.reshape(table.shape[0], -1)))

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor]:
        """(objects, mask) -> (probs,): float32 class probabilities, the softmax of the float64 log-likelihoods.
        Positional, as the exporter passes the networks' inputs."""
        objects, mask = args
        b, t, _ = objects.shape
        flat = torch.zeros(b, t, dtype=torch.int64, device=objects.device)
        for k, n in enumerate(self.n_edges):
            x = objects[:, :, k].to(torch.float64).unsqueeze(-1)
            flat = flat * (n + 1) + (x >= getattr(self, f"edges{k}")).to(torch.int64).sum(dim=-1)
        per_track = self.table.index_select(1, flat.reshape(-1)).view(-1, b, t)  # (classes, jets, tracks)
        log_likelihood = (per_track * mask.to(torch.float64)).sum(dim=-1).transpose(0, 1)
        return (torch.softmax(log_likelihood, dim=-1).to(torch.float32),)


def graph(ip3d) -> TemplateGraph:
    """The torch graph of a fitted ai4hep.models.ip3d.IP3D (same bins, same table)."""
    return TemplateGraph(ip3d.edges, ip3d.log_density).eval()

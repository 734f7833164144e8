"""Smaller firmware from a trained MLP: magnitude pruning and quantisation-aware training (brevitas), each fine-tuned
briefly on the run's training split, starting from the run's float weights.

Pruning removes the smallest weights of all layers together (global L1) and fine-tunes with the zeros held fixed; a
zero weight costs no multiplier in hls4ml's fully parallel (reuse factor 1) layers. QAT trains with b-bit
fixed-point (power-of-two scale) quantisers on inputs, weights and ReLU outputs, so the brevitas model maps one to one
onto ap_fixed types: brevitas -> QONNX -> hls4ml (export/hls.py convert_qonnx).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np

from ai4hep.export.hls import bops, linear_layers, quiet


def training_data(tagger, max_jets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardised features, labels and class weights of the run's training split (up to max_jets jets)."""
    from ai4hep.export.fastml import load_inputs

    files = [Path(s["file"]) for s in tagger.card["dataset"]["shards"]["train"]]
    x, y = load_inputs(tagger, files, max_jets)
    w = np.asarray(tagger.pre["class_weights"], dtype=np.float32)[y]
    return x, y, w


def finetune(model, logits, x: np.ndarray, y: np.ndarray, w: np.ndarray, epochs: int, lr: float, seed: int) -> None:
    """Weighted cross-entropy with Adam; `logits(batch)` is the model's pre-softmax output."""
    import torch

    if epochs <= 0:
        return
    gen = torch.Generator().manual_seed(seed)
    xt, yt, wt = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(w)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(256):
            loss = (torch.nn.functional.cross_entropy(logits(xt[idx]), yt[idx], reduction="none") * wt[idx]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()


def prune(net, sparsity: float, x, y, w, epochs: int, lr: float = 1e-3, seed: int = 1):
    """A copy of `net` (hls_network form) with the fraction `sparsity` of its weights zeroed, then fine-tuned. (One
    cut: on the hlf5 MLP, three rounds of pruning and fine-tuning kept less accuracy for the same epochs.)"""
    from torch.nn.utils import prune as tprune

    pruned = copy.deepcopy(net)
    params = [(m, "weight") for m in linear_layers(pruned)]
    tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=sparsity)
    finetune(pruned, pruned[:-1], x, y, w, epochs, lr, seed)
    for m, name in params:
        tprune.remove(m, name)
    return pruned.eval()


def _quant_mlp(net, bits: int):
    import brevitas.nn as qnn
    import torch
    from brevitas.quant import (
        Int8ActPerTensorFixedPoint,
        Int8WeightPerTensorFixedPoint,
        Int16Bias,
        Uint8ActPerTensorFixedPoint,
    )
    from torch import nn

    class QuantMLP(nn.Module):
        """The run's MLP with b-bit fixed-point inputs, weights and ReLU outputs, and a softmax at the end."""

        def __init__(self) -> None:
            super().__init__()
            lins = linear_layers(net)
            self.bits = bits
            self.inp = qnn.QuantIdentity(bit_width=bits, act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True)
            self.fcs = nn.ModuleList(
                qnn.QuantLinear(
                    m.in_features,
                    m.out_features,
                    bias=True,
                    weight_bit_width=bits,
                    weight_quant=Int8WeightPerTensorFixedPoint,
                    bias_quant=Int16Bias,  # on the accumulator's grid, so hls4ml adds it exactly
                    return_quant_tensor=False,
                )
                for m in lins
            )
            self.acts = nn.ModuleList(
                qnn.QuantReLU(bit_width=bits, act_quant=Uint8ActPerTensorFixedPoint, return_quant_tensor=True)
                for _ in lins[:-1]
            )
            self.softmax = nn.Softmax(dim=-1)
            with torch.no_grad():
                for q, m in zip(self.fcs, lins, strict=True):
                    q.weight.copy_(m.weight)
                    q.bias.copy_(m.bias)

        def logits(self, x):
            h = self.inp(x)
            for i, fc in enumerate(self.fcs):
                h = fc(h)
                if i < len(self.acts):
                    h = self.acts[i](h)
            return h

        def forward(self, x):
            return self.softmax(self.logits(x))

    return QuantMLP()


class QATModel:
    """A trained brevitas MLP: its probabilities in PyTorch, its QONNX file, its input type and resource proxy."""

    def __init__(self, net, bits: int, x, y, w, epochs: int, lr: float = 1e-3, seed: int = 1) -> None:
        import torch

        torch.manual_seed(seed)
        self.bits = bits
        with quiet():
            self.model = _quant_mlp(net, bits)
            finetune(self.model, self.model.logits, x, y, w, max(epochs, 1), lr, seed)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad(), quiet():
            return self.model(torch.from_numpy(x)).double().numpy()

    def input_type(self, x: np.ndarray) -> str:
        """The input quantiser as an ap_fixed type (its scale is a power of two; brevitas rounds half to even)."""
        import torch

        with torch.no_grad(), quiet():
            scale = float(self.model.inp(torch.from_numpy(x[:2])).scale)
        frac = -round(math.log2(scale))
        return f"ap_fixed<{self.bits},{self.bits - frac},AP_RND_CONV,AP_SAT>"

    def export(self, path: Path, x: np.ndarray) -> Path:
        import torch

        with quiet():
            from brevitas.export import export_qonnx

            export_qonnx(self.model, torch.from_numpy(x[:1]), export_path=str(path))
        return path

    def proxy(self) -> dict:
        import torch

        with torch.no_grad(), quiet():
            weights = [fc.quant_weight().value.numpy() for fc in self.model.fcs]
        n = len(weights)
        return bops(weights, [self.bits] * n, [self.bits] * n)

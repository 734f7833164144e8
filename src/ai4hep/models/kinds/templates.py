"""Histogram templates (the IP3D-like likelihood ratio): filled in one pass over the training split, stored as JSON
(templates.json), exported as a small torch look-up graph (ai4hep.models.kinds.templates_onnx)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ai4hep.metrics.binary import accuracy
from ai4hep.models.kinds.base import FitContext, OnnxGraph, SingleFileKind

TEMPLATES = "templates.json"


class TemplatesKind(SingleFileKind):
    name = "templates"
    framework = "the numpy templates"
    files: ClassVar[tuple[str, ...]] = (TEMPLATES,)
    model_file = TEMPLATES

    def fit(self, ctx: FitContext) -> dict:
        model = ctx.model_cls(ctx.params, ctx.n_classes)
        start = time.perf_counter()
        info = model.fit(ctx.stream("train"))
        seconds = time.perf_counter() - start
        self.save(model, ctx.out)
        probs, labels = [], []
        for batch in ctx.stream("val"):
            probs.append(model.predict_proba(batch["objects"], batch["mask"]))
            labels.append(batch["label"])
        return {
            "parameters": {"bins": [len(e) + 1 for e in model.edges], **info},
            "parameter_count": model.parameter_count,
            "train_jets": info["train_jets"],
            "train_jets_per_s": round(info["train_jets"] / seconds, 1),
            "metrics": {"val_accuracy": accuracy(np.concatenate(probs), np.concatenate(labels))},
        }

    def predict(self, model: Any, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"probs": model.predict_proba(batch["objects"], batch["mask"])}

    def write_onnx(self, model: Any, sample: dict[str, np.ndarray], path: Path) -> OnnxGraph:
        import torch

        from ai4hep.models.kinds.onnx_graph import export_graph
        from ai4hep.models.kinds.templates_onnx import graph

        inputs, outputs = ["objects", "mask"], ["probs"]
        exporter = export_graph(graph(model), tuple(torch.from_numpy(sample[n]) for n in inputs), path, inputs, outputs)
        return OnnxGraph(inputs, outputs, exporter, lambda feed: [model.predict_proba(feed["objects"], feed["mask"])])

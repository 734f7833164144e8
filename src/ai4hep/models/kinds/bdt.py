"""LightGBM BDTs on high-level jet features: fitted on the whole normalised training split at once, stored as
LightGBM's text model (model.txt), exported through onnxmltools (ai4hep.models.kinds.bdt_onnx), firmware through
conifer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ai4hep.data.loader import JetStream
from ai4hep.metrics.binary import accuracy, auc
from ai4hep.models.kinds.base import FitContext, OnnxGraph, SingleFileKind

MODEL_FILE = "model.txt"


def collect(stream: JetStream) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Jet features, labels and class weights of a whole stream."""
    xs, ys, ws = [], [], []
    for batch in stream:
        xs.append(batch["jet"])
        ys.append(batch["label"])
        ws.append(batch["weight"])
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)


class BDTKind(SingleFileKind):
    name = "bdt"
    framework = "LightGBM"
    files: ClassVar[tuple[str, ...]] = (MODEL_FILE,)
    model_file = MODEL_FILE

    def fit(self, ctx: FitContext) -> dict:
        x, y, w = collect(ctx.stream("train"))
        xv, yv, _ = collect(ctx.stream("val"))
        bdt = ctx.model_cls(ctx.params, ctx.n_classes, ctx.seed, ctx.threads)
        start = time.perf_counter()
        info = bdt.fit(x, y, w, xv, yv)
        seconds = time.perf_counter() - start
        self.save(bdt, ctx.out)
        probs = bdt.predict_proba(xv)
        metrics = {"val_accuracy": accuracy(probs, yv)}
        if ctx.n_classes == 2:
            metrics["val_auc"] = auc(probs[:, 1], yv == 1)
        return {
            "parameters": {"trees": bdt.n_trees(), "best_iteration": info["best_iteration"]},
            "parameter_count": bdt.n_trees(),
            "ops_per_jet": bdt.ops_per_jet(),
            "ops_note": "BDT: comparisons per jet (one per tree level), not FLOPs",
            "train_jets": len(y),
            "train_jets_per_s": round(len(y) / seconds, 1),  # jets through the whole fit
            "metrics": metrics,
        }

    def predict(self, model: Any, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"probs": model.predict_proba(batch["jet"])}

    def write_onnx(self, model: Any, sample: dict[str, np.ndarray], path: Path) -> OnnxGraph:
        import onnx

        from ai4hep.models.kinds.bdt_onnx import INPUT, OUTPUT, convert

        graph, exporter = convert(model.booster, sample[INPUT].shape[1])
        onnx.save(graph, str(path))
        return OnnxGraph([INPUT], [OUTPUT], exporter, lambda feed: [model.predict_proba(feed[INPUT])])

    def fastml_route(self, model: Any) -> str | None:
        return "conifer"

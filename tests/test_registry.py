"""The open model registry: a user's own model, and a user's own model kind, defined in this file, train, evaluate and
export without editing ai4hep, named as `module:Class` or through an `ai4hep.models` entry point."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import yaml
from pydantic import BaseModel, ConfigDict
from torch import nn

from ai4hep.atomic import atomic_path
from ai4hep.cli import main
from ai4hep.errors import UserError
from ai4hep.models import get_model, registry
from ai4hep.models.kinds import FitContext, ModelKind, OnnxGraph
from ai4hep.models.kinds.bdt import collect


class TinyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    width: int = 16


class TinyTagger(nn.Module):
    """A Deep Sets tagger written outside ai4hep: sum of per-particle embeddings, then a linear read-out."""

    inputs = ("objects", "mask")
    extras: tuple[str, ...] = ()
    Params = TinyParams

    def __init__(self, n_jet: int, n_obj: int, n_classes: int, params: TinyParams) -> None:
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(n_obj, params.width), nn.ReLU(), nn.Linear(params.width, params.width))
        self.out = nn.Linear(params.width, n_classes)

    def forward(self, objects: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pooled = (self.phi(objects) * mask.unsqueeze(-1).to(objects.dtype)).sum(1)
        return self.out(pooled)


class CentroidKind(ModelKind):
    """A model kind written outside ai4hep: the nearest class centroid in the normalised jet features."""

    name = "centroid"
    framework = "the numpy centroids"
    files: ClassVar[tuple[str, ...]] = ("centroids.json",)

    def fit(self, ctx: FitContext) -> dict:
        x, y, _ = collect(ctx.stream("train"))
        model = ctx.model_cls(np.stack([x[y == k].mean(0) for k in range(ctx.n_classes)]))
        self.save(model, ctx.out)
        xv, yv, _ = collect(ctx.stream("val"))
        metrics = {"val_accuracy": float(np.mean(model.probs(xv).argmax(1) == yv))}
        return {"parameter_count": int(model.centroids.size), "train_jets_per_s": 0.0, "metrics": metrics}

    def save(self, model: Any, out: Path) -> None:
        with atomic_path(Path(out) / "centroids.json") as tmp:
            tmp.write_text(json.dumps(model.centroids.tolist()))

    def load(self, run: Path, model_cls: type, params: BaseModel, pre: dict) -> Any:
        return model_cls(np.asarray(json.loads((Path(run) / "centroids.json").read_text())))

    def predict(self, model: Any, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"probs": model.probs(batch["jet"])}

    def write_onnx(self, model: Any, sample: dict[str, np.ndarray], path: Path) -> OnnxGraph:
        """softmax(2 x.c - |c|^2): the nearest centroid's softmax, |x|^2 cancelling."""
        c = model.centroids.astype(np.float32)
        h = onnx.helper
        graph = h.make_graph(
            [
                h.make_node("MatMul", ["jet", "w"], ["xw"]),
                h.make_node("Add", ["xw", "b"], ["logits"]),
                h.make_node("Softmax", ["logits"], ["probs"], axis=-1),
            ],
            "centroids",
            [h.make_tensor_value_info("jet", onnx.TensorProto.FLOAT, ["batch", c.shape[1]])],
            [h.make_tensor_value_info("probs", onnx.TensorProto.FLOAT, ["batch", c.shape[0]])],
            [onnx.numpy_helper.from_array(2 * c.T, "w"), onnx.numpy_helper.from_array(-(c * c).sum(1), "b")],
        )
        onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 18)]), str(path))
        return OnnxGraph(["jet"], ["probs"], "onnx.helper", lambda feed: [model.probs(feed["jet"])])


class Centroids:
    """Nearest class centroid on high-level jet features, fitted by its own kind."""

    inputs = ("jet",)
    kind = CentroidKind

    def __init__(self, centroids: np.ndarray) -> None:
        self.centroids = centroids

    def probs(self, x: np.ndarray) -> np.ndarray:
        logits = 2 * x @ self.centroids.T - (self.centroids**2).sum(1)
        e = np.exp(logits - logits.max(1, keepdims=True))
        return (e / e.sum(1, keepdims=True)).astype(np.float32)


def _config(tmp: Path, data: Path, model: dict, **data_kw) -> Path:
    raw = {
        "seed": 3,
        "data": {"paths": [str(data)], "batch_size": 64, "max_objects": 30, **data_kw},
        "model": model,
        "trainer": {"max_epochs": 3, "threads": 1, "lr": 0.003},
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


OBJECTS = ["log(pt_rel)", "deta", "dphi"]


def test_user_model_by_class_path_trains_evaluates_and_exports(top_shards: Path, tmp_path: Path) -> None:
    name = f"{__name__}:TinyTagger"
    config = _config(tmp_path, top_shards, {"name": name, "params": {"width": 12}}, object_features=OBJECTS)
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run), "--no-progress"]) == 0
    card = json.loads((run / "model_card.json").read_text())
    assert card["model"] == name and card["kind"] == "torch"
    assert card["parameter_count"] == sum(p.numel() for p in TinyTagger(0, 3, 2, TinyParams(width=12)).parameters())
    assert main(["evaluate", str(run)]) == 0
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["task"] == "binary" and metrics["auc"] > 0.6  # top vs QCD from three particle features
    assert main(["export", "onnx", str(run)]) == 0
    session = ort.InferenceSession(str(run / "export" / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["objects", "mask"]
    # a bad param of the user's model: the user's own schema names it
    bad = _config(tmp_path, top_shards, {"name": name, "params": {"depth": 2}}, object_features=OBJECTS)
    assert main(["train", str(bad), "--out", str(tmp_path / "bad"), "--no-progress"]) == 2


def test_user_model_kind_fits_predicts_and_exports(top_shards: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, top_shards, {"name": f"{__name__}:Centroids"}, jet_features=["mass", "tau32", "c2"])
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run), "--no-progress"]) == 0
    assert json.loads((run / "model_card.json").read_text())["kind"] == "centroid"
    assert json.loads((run / "centroids.json").read_text())  # the kind wrote its own file
    assert main(["evaluate", str(run)]) == 0
    assert json.loads((run / "eval" / "metrics.json").read_text())["auc"] > 0.6
    assert main(["export", "onnx", str(run)]) == 0  # checked against the kind's own predict within 1e-4


def test_entry_point_names_a_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "ai4hep_tiny_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ai4hep-tiny-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[ai4hep.models]\ntiny = {__name__}:TinyTagger\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._entry_points.cache_clear()
    try:
        entry = get_model("tiny")
        assert entry.cls is TinyTagger and entry.params is TinyParams and entry.adapter.name == "torch"
        assert entry.inputs == ("objects", "mask")
        with pytest.raises(UserError, match=r"valid models: .*tiny"):
            get_model("tiny2")
    finally:
        monkeypatch.undo()
        registry._entry_points.cache_clear()
    assert "tiny" not in registry._entry_points()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no_such_module_xyz:Net", "cannot import module 'no_such_module_xyz'"),
        (f"{__name__}:NoSuchClass", "has no 'NoSuchClass'"),
        (f"{__name__}:collect", "is not a class"),
        (f"{__name__}:TinyParams", "declares no `inputs`"),
        ("../evil.py:Net", "unknown model"),
    ],
)
def test_bad_class_paths_are_one_clear_error(name: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        get_model(name)
    assert "../evil" not in sys.modules

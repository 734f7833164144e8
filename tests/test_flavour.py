"""Flavour tagging end to end on real generated b / c / light jets: track labels in the loader, the GN2-style task
heads, the IP3D-like templates, evaluation with flavour metrics, and ONNX export with auxiliary outputs."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import yaml

from ai4hep.cli import main
from ai4hep.data.loader import DataConfig, InputSpec, JetStream, split_files
from ai4hep.metrics.binary import auc
from ai4hep.metrics.flavour import discriminant_b
from ai4hep.models import get_model
from ai4hep.models.kinds.lightning import model_inputs
from ai4hep.models.tasks import ORIGIN_CLASSES, TrackPairVertexing

from .conftest import _sample

TRACKS = ["signed_log(d0sig)", "signed_log(z0sig)", "log(pt_rel)", "deta", "dphi", "charge"]
SMALL_GN2 = {"init": [32], "embed": 32, "heads": 4, "layers": 2, "head_hidden": [32, 16]}
FROM_B = ORIGIN_CLASSES.index("from_b")


@pytest.fixture(scope="module")
def flavour_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 b / c / light jets in 6 shards (train 4, validation 1, test 1)."""
    return _sample(tmp_path_factory, "flavour", 600, seed=9, shard_size=100)


def _config(tmp: Path, data: Path, model: str, params: dict, features: list[str] = TRACKS, epochs: int = 3) -> Path:
    cfg = {
        "seed": 3,
        "data": {
            "paths": [str(data)],
            "objects": "tracks",
            "max_objects": 40,
            "object_features": features,
            "batch_size": 50,
        },
        "model": {"name": model, "params": params},
        "trainer": {"max_epochs": epochs, "lr": 0.003, "patience": 10, "threads": 1},
    }
    if model != "ip3d":
        cfg["data"]["jet_features"] = ["log(pt)", "eta"]
    path = tmp / f"{model}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _stream(data: Path, max_objects: int, targets=("origin", "vertex")) -> JetStream:
    cfg = DataConfig(
        paths=[str(data)],
        objects="tracks",
        jet_features=["log(pt)", "eta"],
        object_features=TRACKS,
        max_objects=max_objects,
        batch_size=40,
        trim=False,
    )
    return JetStream(split_files(cfg).train, InputSpec(cfg, targets=targets), 3)


def test_loader_serves_track_labels_and_b_jets_carry_b_tracks(flavour_shards: Path) -> None:
    origin, vertex, mask, label = [], [], [], []
    for batch in _stream(flavour_shards, 40):
        origin.append(batch["origin"])
        vertex.append(batch["vertex"])
        mask.append(batch["mask"])
        label.append(batch["label"])
    origin, vertex, mask, label = map(np.concatenate, (origin, vertex, mask, label))
    assert (origin[~mask] == -1).all() and (vertex[~mask] == -1).all()
    assert ((origin[mask] >= 0) & (origin[mask] < len(ORIGIN_CLASSES))).all()
    from_b = origin == FROM_B
    b_share = from_b[label == 2].sum() / mask[label == 2].sum()
    light_share = from_b[label == 0].sum() / mask[label == 0].sum()
    assert b_share > 0.2 and light_share < 0.05, (b_share, light_share)
    # b-hadron decay products come from displaced vertices (index >= 1), never the primary one (index 0)
    assert (vertex[from_b] >= 1).mean() > 0.95


def test_gn2_heads_ignore_padding_and_follow_track_order(flavour_shards: Path) -> None:
    entry = get_model("gn2")
    torch.manual_seed(0)
    model = entry.cls(2, len(TRACKS), 3, entry.parse_params(SMALL_GN2)).eval()
    short = {k: torch.from_numpy(v) for k, v in next(iter(_stream(flavour_shards, 40))).items()}
    long = {k: torch.from_numpy(v) for k, v in next(iter(_stream(flavour_shards, 56))).items()}
    with torch.no_grad():
        a = model.infer(model(**model_inputs(model, short)), short["mask"])
        b = model.infer(model(**model_inputs(model, long)), long["mask"])
    assert list(a) == ["probs", "origin_probs", "vertex_probs"]
    assert torch.allclose(a["probs"], b["probs"], atol=1e-5)
    assert torch.allclose(a["origin_probs"], b["origin_probs"][:, :40], atol=1e-5)
    assert torch.allclose(a["vertex_probs"], b["vertex_probs"][:, :40, :40], atol=1e-5)
    assert (b["origin_probs"][:, 40:] == 0).all() and (b["vertex_probs"][:, 40:] == 0).all()
    assert torch.allclose(a["vertex_probs"], a["vertex_probs"].transpose(1, 2))
    # permuting a jet's tracks leaves the jet output alone and permutes the track outputs the same way
    n = int(short["mask"].sum(1).min())
    keep = short["mask"].sum(1) == n
    perm = torch.arange(40)
    perm[:n] = torch.from_numpy(np.random.default_rng(1).permutation(n))
    shuffled = {k: (v[:, perm] if v.ndim >= 2 and v.shape[1] == 40 else v) for k, v in short.items()}
    with torch.no_grad():
        c = model.infer(model(**model_inputs(model, shuffled)), shuffled["mask"])
    assert keep.any()
    assert torch.allclose(a["probs"][keep], c["probs"][keep], atol=1e-5)
    assert torch.allclose(a["origin_probs"][keep][:, perm], c["origin_probs"][keep], atol=1e-5)
    assert torch.allclose(a["vertex_probs"][keep][:, perm][:, :, perm], c["vertex_probs"][keep], atol=1e-5)


def test_vertexing_loss_counts_only_labelled_pairs() -> None:
    task = TrackPairVertexing(dim=4, hidden=[4])
    out = torch.randn(1, 4, 4)
    vertex = torch.tensor([[0, 1, 1, -1]])  # three labelled tracks, the last is pile-up or padding
    loss = task.loss(out, {"vertex": vertex})
    pairs = [(0, 1), (0, 2), (1, 2)]
    target = torch.tensor([0.0, 0.0, 1.0])
    logits = torch.stack([out[0, i, j] for i, j in pairs])
    assert torch.isclose(loss, torch.nn.functional.binary_cross_entropy_with_logits(logits, target))
    changed = out.clone()
    changed[0, 3, :] = 50.0
    changed[0, :, 3] = -50.0
    changed[0, 1, 0] = 9.0  # lower triangle: each pair counts once
    assert torch.isclose(task.loss(changed, {"vertex": vertex}), loss)


def test_ip3d_templates_separate_b_from_light(flavour_shards: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, flavour_shards, "ip3d", {"bins": 12}, features=["d0sig", "z0sig"])
    assert main(["train", str(config), "--out", str(tmp_path / "ip3d"), "--no-progress"]) == 0
    assert main(["evaluate", str(tmp_path / "ip3d")]) == 0
    m = json.loads((tmp_path / "ip3d" / "eval" / "metrics.json").read_text())
    wp70 = next(r for r in m["flavour"]["b_tagging"] if r["working_point"] == 0.7)
    # b-jets carry displaced tracks: impact-parameter templates alone reject most light jets at 70% b-efficiency
    assert wp70["light"]["rejection"] is None or wp70["light"]["rejection"] > 4, wp70
    assert wp70["c"]["rejection"] > 1.2, wp70
    assert {"b_tagging", "c_tagging", "b_tagging_vs_pt", "fc_scan"} <= set(m["flavour"])


def test_gn2_trains_evaluates_and_exports_its_auxiliary_outputs(flavour_shards: Path, tmp_path: Path) -> None:
    run = tmp_path / "gn2"
    config = _config(tmp_path, flavour_shards, "gn2", SMALL_GN2, epochs=4)
    assert main(["train", str(config), "--out", str(run), "--no-progress"]) == 0
    card = json.loads((run / "model_card.json").read_text())
    assert {"val_jet_loss", "val_origin_loss", "val_vertex_loss"} <= set(card["metrics"])
    assert main(["evaluate", str(run)]) == 0
    m = json.loads((run / "eval" / "metrics.json").read_text())
    assert {"track_origin", "vertexing"} <= set(m)
    with h5py.File(run / "eval" / "predictions.h5") as f:
        probs, labels = f["probs"][:], f["label"][:]
        origin, vertex = f["origin_probs"][:], f["vertex_probs"][:]
    assert origin.shape == (len(labels), 40, len(ORIGIN_CLASSES)) and vertex.shape == (len(labels), 40, 40)
    real = origin.sum(-1) > 0
    assert np.allclose(origin.sum(-1)[real], 1, atol=1e-5)
    b_vs_light = (labels == 2) | (labels == 0)
    assert auc(discriminant_b(probs[b_vs_light]), labels[b_vs_light] == 2) > 0.7
    # ONNX: every head exported, validated against PyTorch, preprocessing embedded
    assert main(["export", "onnx", str(run)]) == 0
    path = run / "export" / "model.onnx"
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["ai4hep.outputs"]) == ["probs", "origin_probs", "vertex_probs"]
    assert json.loads(meta["ai4hep.preprocessing"])["object_features"] == TRACKS
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch = next(iter(_stream(flavour_shards, 40, targets=())))
    feed = {"jet": batch["jet"][:7], "objects": batch["objects"][:7, :13], "mask": batch["mask"][:7, :13]}
    got = session.run(None, feed)
    assert [g.shape for g in got] == [(7, 3), (7, 13, 5), (7, 13, 13)]


def test_auxiliary_task_on_data_without_track_labels(top_shards: Path, tmp_path: Path, capsys) -> None:
    cfg = yaml.safe_load(_config(tmp_path, top_shards, "gn2", SMALL_GN2).read_text())
    cfg["data"]["objects"] = "consts"
    cfg["data"]["object_features"] = ["log(pt)", "deta", "dphi"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "bad"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no 'origin' labels" in err and "aux_tasks" in err


def test_ip3d_needs_one_or_two_features_and_exports_1d_templates_to_onnx(flavour_shards: Path, tmp_path: Path, capsys):
    config = _config(tmp_path, flavour_shards, "ip3d", {}, features=["d0sig", "z0sig", "pt"])
    assert main(["train", str(config), "--out", str(tmp_path / "ip3d3"), "--no-progress"]) == 2
    assert "1D or 2D templates" in capsys.readouterr().err
    config = _config(tmp_path, flavour_shards, "ip3d", {}, features=["d0sig"])
    assert main(["train", str(config), "--out", str(tmp_path / "ip2d"), "--no-progress"]) == 0
    assert main(["export", "onnx", str(tmp_path / "ip2d")]) == 0  # 2D templates: tests/test_export_onnx.py
    assert "checked against the numpy templates" in capsys.readouterr().out
    assert (tmp_path / "ip2d" / "export" / "model.onnx").is_file()

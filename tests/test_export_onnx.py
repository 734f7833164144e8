"""`ai4hep export onnx` for every model on tiny real runs (one epoch): exported through the CLI, re-run in onnxruntime
at other batch sizes and object counts against the original model, metadata read back; plus the failures that must
stay loud and the three places where an export used to go wrong (ParticleNet's kNN ties, ParT's pair indexing, float32
BDT thresholds)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import lightgbm as lgb
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import yaml

from ai4hep.cli import main
from ai4hep.data.loader import OBJECT_KEYS
from ai4hep.models.kinds.bdt_onnx import float32_thresholds, threshold_probes
from ai4hep.models.part import upper_pairs
from ai4hep.models.particlenet import knn
from ai4hep.run import TrainedRun

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-4
# model -> (config in configs/, params shrunk for speed; None keeps the config's)
MODELS = {
    "mlp": ("top_mlp", {"hidden": [16, 16]}),
    "pfn": ("top_pfn", {"phi": [16, 16], "f": [16]}),
    "efn": ("top_efn", {"phi": [16, 16], "f": [16]}),
    "particlenet": ("top_particlenet_small", None),  # the bench's ParticleNet, whose export used to fail
    "part": ("top_part_small", {"embed": [16, 32], "pair_embed": [8, 8], "heads": 2, "blocks": 2, "class_blocks": 1}),
    "bdt": ("top_bdt", {"n_estimators": 40, "num_leaves": 8, "min_child_samples": 5}),
    "dips": ("flavour_dips", {"phi": [16, 16], "f": [16]}),
    "gn2": ("flavour_gn2_small", {"init": [16], "embed": 16, "heads": 2, "layers": 1, "head_hidden": [16]}),
    "ip3d": ("flavour_ip3d", {"bins": 10}),
}
FRAMEWORK = {"bdt": "LightGBM", "ip3d": "the numpy templates"}


def _train(tmp: Path, name: str, data: Path) -> Path:
    config, params = MODELS[name]
    cfg = yaml.safe_load((ROOT / "configs" / f"{config}.yaml").read_text())
    if params is not None:
        cfg["model"]["params"] = {**cfg["model"]["params"], **params}
    first, second = sorted(str(p) for p in data.glob("*.h5"))[:2]
    cfg["data"].pop("paths")
    cfg["data"].update(train=[first], val=[second], test=[second], batch_size=48)
    cfg.setdefault("trainer", {})["threads"] = 1  # LightGBM's too: its spinning threads crawl on a shared machine
    if name not in ("bdt", "ip3d"):  # fitted, not trained by epochs
        cfg["trainer"]["max_epochs"] = 1
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "--out", str(tmp / name), "--no-progress"]) == 0
    return tmp / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, top_dir: Path, flavour_dir: Path):
    """Trains a model's tiny run the first time a test asks for it."""
    tmp = tmp_path_factory.mktemp("export_runs")
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            data = flavour_dir if MODELS[name][0].startswith("flavour") else top_dir
            cache[name] = _train(tmp, name, data)
        return cache[name]

    return get


def _resized(batch: dict[str, np.ndarray], jets: int, objects: int | None) -> dict[str, np.ndarray]:
    """The first `jets` jets and (object models) their first `objects` slots."""
    out = {}
    for k, v in batch.items():
        v = v[:jets]
        if objects is not None and k in OBJECT_KEYS:
            v = v[:, :objects]
        out[k] = np.ascontiguousarray(v)
    return out


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_exports_and_matches_its_framework(runs, name: str, capsys) -> None:
    run = runs(name)
    assert main(["export", "onnx", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"checked against {FRAMEWORK.get(name, 'PyTorch')} on" in out
    reported = {k: float(v) for k, v in re.findall(r"(\w+) (\d\.\de[-+]\d+)", out.split("max |difference|")[1])}
    assert reported and all(v <= TOLERANCE for v in reported.values()), reported

    path = run / "export" / "model.onnx"
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs, outputs = json.loads(meta["ai4hep.inputs"]), json.loads(meta["ai4hep.outputs"])
    assert meta["ai4hep.model"] == name and meta["ai4hep.exporter"]
    assert inputs == [i.name for i in session.get_inputs()] and outputs == [o.name for o in session.get_outputs()]
    assert outputs[0] == "probs" and all(o.type == "tensor(float)" for o in session.get_outputs())
    assert json.loads(meta["ai4hep.preprocessing"]) == json.loads((run / "preprocessing.json").read_text())
    assert yaml.safe_load(meta["ai4hep.config"])["model"]["name"] == name

    tagger = TrainedRun(run)
    batch = next(iter(tagger.stream(tagger.test_files())))
    width = batch["mask"].shape[1] if "mask" in batch else None
    shapes = [(len(batch["label"]), width), (5, None if width is None else min(width, 6))]
    assert width is None or width > 6  # the object count really changes
    for jets, objects in shapes:
        feed = _resized(batch, jets, objects)
        got = dict(zip(outputs, session.run(outputs, {n: feed[n] for n in inputs}), strict=True))
        want = tagger.outputs(feed)
        assert got["probs"].shape == (jets, len(tagger.classes))
        assert np.allclose(got["probs"].sum(1), 1, atol=1e-5)
        for k in outputs:
            assert got[k].shape == want[k].shape
            assert np.abs(got[k] - want[k]).max() <= TOLERANCE, (k, jets, objects)


def test_an_export_beyond_tolerance_fails_and_writes_nothing(runs, tmp_path: Path, capsys) -> None:
    target = tmp_path / "out" / "model.onnx"
    assert main(["export", "onnx", str(runs("part")), "--out", str(target), "--tolerance", "0"]) == 2
    err = capsys.readouterr().err
    found = re.search(r"differs from PyTorch by (\S+) on 'probs' \(tolerance 0\); nothing written", err)
    assert found and float(found.group(1)) > 0, err
    assert not target.exists() and not list(target.parent.iterdir())


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")  # the exporter's notes
def test_particlenet_picks_the_neighbours_onnx_topk_picks(top_dir: Path, tmp_path: Path) -> None:
    """Calorimeter cells sit on a grid: real jets have exactly equidistant neighbours at the k-th place, which
    torch.topk orders arbitrarily and ONNX TopK by lower index. The kNN must pick the same set in both."""
    from ai4hep.data.inspect import dataset_files
    from ai4hep.data.loader import DataConfig, InputSpec, JetStream

    cfg = DataConfig(paths=[str(top_dir)], object_features=["deta"], max_objects=64, batch_size=120)
    batch = next(iter(JetStream(dataset_files(top_dir), InputSpec(cfg, extras=("points",)), 2)))
    points, mask, k = torch.from_numpy(batch["points"]), torch.from_numpy(batch["mask"]), 8

    class KNN(torch.nn.Module):
        def forward(self, p: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
            return knn(p, m, k)

    p64 = points.double()
    d = ((p64.unsqueeze(2) - p64.unsqueeze(1)) ** 2).sum(-1).masked_fill(~mask.unsqueeze(1), np.inf)
    kth = d.sort(dim=-1).values[:, :, k : k + 2]  # place 0 is the particle itself
    assert (mask & (kth[..., 0] == kth[..., 1])).any(), "no ties at the k-th neighbour in this sample"
    dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("objects")}
    path = tmp_path / "knn.onnx"
    torch.onnx.export(
        KNN(), (points, mask), str(path), input_names=["p", "m"], dynamo=True, dynamic_shapes=(dims, dims)
    )
    got = ort.InferenceSession(str(path)).run(None, {"p": batch["points"], "m": batch["mask"]})[0]
    want = knn(points, mask, k).numpy()
    real = batch["mask"]
    assert np.array_equal(np.sort(got, -1)[real], np.sort(want, -1)[real])


def test_part_pairs_are_triu_indices() -> None:
    for n in (0, 1, 2, 3, 17, 64):
        i, j = upper_pairs(n, torch.device("cpu"))
        assert torch.equal(torch.stack([i, j]), torch.triu_indices(n, n, offset=1))


def test_bdt_thresholds_take_lightgbm_branches_for_float32_inputs(runs) -> None:
    """LightGBM compares in double; ONNX trees hold float32 thresholds. Feed the exported file the float32 values that
    a round-to-nearest threshold would misplace (the nearest float32 above a threshold) and compare with LightGBM."""
    run = runs("bdt")
    assert main(["export", "onnx", str(run)]) == 0
    tagger = TrainedRun(run)
    booster = tagger.model.booster
    jets = next(iter(tagger.stream(tagger.test_files())))["jet"]
    x = threshold_probes(booster, jets)  # every test jet with one feature set just above one threshold
    session = ort.InferenceSession(str(run / "export" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(session.run(["probs"], {"jet": x})[0] - tagger.model.predict_proba(x)).max() <= 1e-6
    # the rewritten booster itself takes the same branches as the original for float32 inputs
    exact = lgb.Booster(model_str=float32_thresholds(booster.model_to_string()))
    assert np.array_equal(exact.predict(x), booster.predict(x))
    assert "ZipMap" not in {node.op_type for node in onnx.load(str(run / "export" / "model.onnx")).graph.node}

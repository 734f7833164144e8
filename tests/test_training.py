"""`ai4hep train` and `ai4hep evaluate` end to end on real generated jets, through the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from ai4hep.cli import main

HLF = ["mass", "mass_sd", "tau21", "tau32", "c2", "d2", "n_consts", "log(pt)"]
OBJ = ["log(pt)", "log(energy)", "log(pt_rel)", "log(e_rel)", "deta", "dphi", "dr", "charge"]


def write_config(tmp: Path, data: Path, model: str, params: dict, epochs: int = 3, **data_kw) -> Path:
    cfg = {
        "seed": 5,
        "data": {"paths": [str(data)], "jet_features": HLF, "batch_size": 32, **data_kw},
        "model": {"name": model, "params": params},
        "trainer": {"max_epochs": epochs, "lr": 0.003, "patience": 10, "threads": 1},
    }
    if model not in ("bdt", "mlp"):
        cfg["data"].update({"object_features": OBJ, "max_objects": 64})
    path = tmp / f"{model}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_cli(*args: str) -> int:
    return main([*map(str, args)])


@pytest.fixture(scope="module")
def trained(top_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("runs")
    runs = {}
    models = {
        "bdt": ({"n_estimators": 100}, 1),
        "mlp": ({"hidden": [32, 32]}, 15),
        "particlenet": ({"k": 8, "blocks": [[32, 32], [32, 32]], "fusion": 64, "fc": [32]}, 4),
        "part": ({"embed": [32, 64, 32], "pair_embed": [16, 16], "heads": 4, "blocks": 2, "class_blocks": 1}, 4),
    }
    for name, (params, epochs) in models.items():
        config = write_config(tmp, top_shards, name, params, epochs)
        assert run_cli("train", config, "--out", tmp / name, "--no-progress") == 0
        runs[name] = tmp / name
    return runs


def test_taggers_separate_top_from_qcd(trained: dict[str, Path], top_shards: Path) -> None:
    test_shard = sorted(top_shards.glob("*.h5"))[-1]
    for name, run in trained.items():
        assert run_cli("evaluate", run, "--data", test_shard) == 0
        m = json.loads((run / "eval" / "metrics.json").read_text())
        assert m["n_jets"] == 50 and m["data"] == [str(test_shard)]
        # top jets are heavy and three-pronged: every tagger must beat random guessing clearly
        floor = 0.85 if name in ("bdt", "mlp") else 0.7
        assert m["auc"] > floor, f"{name}: AUC {m['auc']:.3f}"
        for eff in ("0.3", "0.5", "0.7"):
            r = m["rejection"][eff]
            assert (r["rejection"] or r["lower_limit"]) > 1.0
        assert len(m["rejection_vs_pt_at_0.5"]) >= 2
        for plot in m["plots"]:
            assert Path(plot).read_bytes()[:4] == b"\x89PNG"


def test_model_card_records_what_reproduces_the_run(trained: dict[str, Path]) -> None:
    for name, run in trained.items():
        card = json.loads((run / "model_card.json").read_text())
        assert card["status"] == "complete" and card["model"] == name and card["seed"] == 5
        assert card["dataset"]["name"] == "top" and len(card["dataset"]["shards"]["train"]) == 6
        assert all(len(s["content_hash"]) == 64 for s in card["dataset"]["shards"]["train"])
        env = card["environment"]
        assert {"torch", "numpy", "ai4hep"} <= set(env["packages"]) and env["git"] and env["cpu"]
        assert card["parameter_count"] > 0 and card["training_time_s"] > 0 and card["train_jets_per_s"] > 0
        assert card["config"]["model"]["name"] == name
        if name != "bdt":
            assert card["flops_per_jet"] > card["parameter_count"]  # at least one multiply-add per weight
            assert (run / "checkpoints" / "best.ckpt").exists() and list((run / "logs").glob("version_*/metrics.csv"))
    # ParT's attention over particle pairs costs more per jet than the MLP on 8 numbers
    flops = {n: json.loads((r / "model_card.json").read_text()).get("flops_per_jet") for n, r in trained.items()}
    assert flops["part"] > 100 * flops["mlp"]


def test_reference_ratio_panel_and_rerun_is_a_no_op(trained: dict[str, Path], top_shards: Path, tmp_path: Path):
    test_shard = sorted(top_shards.glob("*.h5"))[-1]
    out = tmp_path / "cmp"
    assert run_cli("evaluate", trained["part"], "--data", test_shard, "--reference", trained["bdt"], "--out", out) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["reference"]["model"] == "bdt" and m["reference"]["n_jets"] == m["n_jets"]
    before = (trained["mlp"] / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    config = trained["mlp"] / "config.yaml"
    assert run_cli("train", config, "--out", trained["mlp"], "--no-progress") == 0  # finished run: nothing to do
    assert (trained["mlp"] / "checkpoints" / "last.ckpt").stat().st_mtime_ns == before


def test_multiclass_confusion_matrix(hlf5_shards: Path, tmp_path: Path) -> None:
    from ai4hep.data.schema import HLF5_FEATURES

    config = write_config(tmp_path, hlf5_shards, "bdt", {"n_estimators": 60, "min_child_samples": 5})
    raw = yaml.safe_load(config.read_text())
    raw["data"]["jet_features"] = list(HLF5_FEATURES)
    config.write_text(yaml.safe_dump(raw))
    assert run_cli("train", config, "--out", tmp_path / "run", "--no-progress") == 0
    assert run_cli("evaluate", tmp_path / "run", "--data", hlf5_shards) == 0
    m = json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())
    conf = m["confusion_matrix"]
    assert len(conf) == 5 and sum(map(sum, conf)) == m["n_jets"] == 250
    assert m["accuracy"] > 0.4  # five classes: chance is 0.2
    assert set(m["vs_background"]) == {"q", "w", "z", "t"}
    assert (tmp_path / "run" / "eval" / "confusion.png").exists()


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


def test_killed_run_resumes_to_the_same_weights(top_shards: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, top_shards, "mlp", {"hidden": [32, 32]}, epochs=6)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "ai4hep.cli", "train", str(config), "--no-progress", "--out"]
    subprocess.run([*cmd, str(tmp_path / "straight")], check=True, env=env, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = killed / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists() and not (killed / "model_card.json").exists(), "the kill must land mid-training"
    torch.load(last, map_location="cpu", weights_only=False)  # what is there is whole
    subprocess.run([*cmd, str(killed)], check=True, env=env, capture_output=True)
    a, b = _weights(tmp_path / "straight"), _weights(killed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

"""`ai4hep fastml convert` and `ai4hep fastml scan`: real hls4ml and conifer projects compiled with g++ and run
bit-accurately on generated hlf5 jets, against the float models they came from."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from ai4hep.cli import main
from ai4hep.export.hls import synthesis_tool

ROOT = Path(__file__).resolve().parents[1]


def _train(config: str, data: Path, out: Path, model: dict, trainer: dict | None = None, **data_kw) -> Path:
    cfg = yaml.safe_load((ROOT / "configs" / config).read_text())
    shards = [str(f) for f in sorted(data.glob("*.h5"))]  # the fixture holds five shards of 50 jets
    cfg["data"].update(paths=[], train=shards[:3], val=shards[3:4], test=shards[4:], batch_size=32, **data_kw)
    cfg["model"] = model
    cfg["trainer"] = {"threads": 1, **(trainer or {})}
    path = out.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def runs(hlf5_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("fastml-runs")
    mlp = {"name": "mlp", "params": {"hidden": [64, 32, 32], "dropout": 0.0}}  # the hls4ml benchmark network
    bdt = {"name": "bdt", "params": {"n_estimators": 30, "num_leaves": 8, "max_depth": 4, "min_child_samples": 5}}
    return {
        "mlp": _train("hlf5_mlp.yaml", hlf5_shards, tmp / "mlp", mlp, {"max_epochs": 15, "lr": 0.003, "patience": 15}),
        "bdt": _train("hlf5_bdt.yaml", hlf5_shards, tmp / "bdt", bdt),
    }


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_mlp_converts_and_matches_float(runs: dict[str, Path], hlf5_dir: Path, capsys) -> None:
    run = runs["mlp"]
    assert main(["fastml", "convert", str(run), "--precision", "ap_fixed<16,6>", "--data", str(hlf5_dir)]) == 0
    out = run / "fastml" / "ap_fixed_16_6"
    v = json.loads((out / "validation.json").read_text())
    assert v["route"] == "hls4ml" and v["backend"] == "Vitis" and v["io_type"] == "io_parallel"
    assert v["n_jets"] == 150 and v["precision_used"] == "ap_fixed<16,6,AP_RND,AP_SAT>"
    assert v["argmax_agreement"] >= 0.97, v["argmax_agreement"]
    assert abs(v["accuracy_difference"]) <= 0.03 and v["max_abs_diff"] < 0.1
    assert v["float_accuracy"] > v["chance_accuracy"]  # the network learned something worth emulating
    # the proxy counts what the firmware multiplies: every non-zero weight of 16->64->32->32->5
    assert 0.9 * 4256 <= v["resource_proxy"]["multiplications"] <= 4256
    assert v["resource_proxy"]["bops"] == v["resource_proxy"]["multiplications"] * 16 * 16
    if synthesis_tool() is None:  # no Vitis here: one clear line, and the proxies stand in
        assert not v["synthesis"]["ran"] and "synthesis skipped" in v["synthesis"]["message"]
    # the softmax pins reached the C++ that was compiled
    defines = (out / "hls4ml" / "firmware" / "defines.h").read_text()
    assert "ap_ufixed<16,4,AP_RND,AP_SAT,0> softmax_inp_norm_t;" in defines
    assert list((out / "hls4ml" / "firmware").glob("*.so"))
    assert "argmax agreement" in capsys.readouterr().out
    assert not _leftovers(run / "fastml")


def test_collapse_of_automatic_precision_is_caught(runs: dict[str, Path], hlf5_dir: Path, capsys) -> None:
    """hls4ml's per-layer automatic types make the softmax output constant; the validation must refuse it."""
    run = runs["mlp"]
    args = ["fastml", "convert", str(run), "--precision", "ap_fixed<16,6>", "--data", str(hlf5_dir)]
    assert main([*args, "--granularity", "name"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "collapsed" in err
    assert "softmax" in err and "--granularity model" in err and "argmax agreement" in err
    assert not (run / "fastml" / "ap_fixed_16_6-name").exists() and not _leftovers(run / "fastml")


def test_bdt_converts_with_conifer(runs: dict[str, Path], hlf5_dir: Path) -> None:
    run = runs["bdt"]
    assert main(["fastml", "convert", str(run), "--precision", "ap_fixed<16,6>", "--data", str(hlf5_dir)]) == 0
    v = json.loads((run / "fastml" / "ap_fixed_16_6" / "validation.json").read_text())
    assert v["route"] == "conifer" and v["n_jets"] == 150
    assert v["conversion_check_float_margin_diff"] < 1e-6  # the tree translation itself is exact in float
    # quantising features and thresholds sends a jet down another branch only when it sits within 2^-10 of a cut: few
    # jets move, though one that does can move by a whole leaf's difference (its largest change says little)
    assert v["argmax_agreement"] >= 0.95 and abs(v["accuracy_difference"]) <= 0.03 and v["mean_abs_diff"] < 0.01
    assert v["resource_proxy"]["trees"] == json.loads((run / "model_card.json").read_text())["parameter_count"]
    assert v["headers"]["json"] and Path(v["headers"]["ap_types"], "ap_fixed.h").exists()


def test_quick_scan_writes_table_and_plot(runs: dict[str, Path], hlf5_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "scan"
    args = ["fastml", "scan", str(runs["mlp"]), "--quick", "--data", str(hlf5_dir), "--out", str(out), "--epochs", "1"]
    assert main([*args, "--widths", "6,16", "--integers", "6", "--prune", "0.5", "--qat-bits", "6"]) == 0
    rows = list(csv.DictReader((out / "scan.csv").open()))
    assert [r["kind"] for r in rows] == ["ptq", "pruned", "qat"]  # <6,6> has no fractional bit: skipped
    ptq, pruned, qat = rows
    assert ptq["config"] == "ap_fixed<16,6>" and ptq["collapsed"] == ""
    # <16,6> emulates the float network, to the bounds test_mlp_converts_and_matches_float sets for the same
    # conversion on these 150 jets (one jet is 0.0067 of accuracy: the scan's 0.01 is one or two jets' near-ties)
    assert float(ptq["argmax_agreement"]) >= 0.97 and abs(float(ptq["accuracy_difference"])) <= 0.03
    # half the weights pruned: about half the multipliers
    assert int(pruned["multiplications"]) <= 0.55 * int(ptq["multiplications"])
    # QAT: the hls4ml emulation reproduces the brevitas model it was converted from
    assert float(qat["source_agreement"]) >= 0.99 and int(qat["bops"]) < int(ptq["bops"])
    result = json.loads((out / "scan.json").read_text())
    assert result["synthesis"].startswith("not asked for")
    assert result["smallest_within_tolerance"] is not None
    assert result["smallest_within_tolerance"]["bops"] <= int(ptq["bops"])
    assert (out / "scan.png").read_bytes()[:4] == b"\x89PNG" and not (out / "projects").exists()
    assert "smallest:" in capsys.readouterr().out


def test_bad_inputs_are_one_line_errors(runs: dict[str, Path], hlf5_shards: Path, tmp_path: Path, capsys) -> None:
    mlp = str(runs["mlp"])
    pfn = {"name": "pfn", "params": {"phi": [8], "f": [8]}}
    objects = {"object_features": ["log(pt)", "deta", "dphi"], "max_objects": 32}
    pfn_run = _train("hlf5_mlp.yaml", hlf5_shards, tmp_path / "pfn", pfn, {"max_epochs": 1}, **objects)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    cases = [
        (["fastml", "convert", mlp, "--precision", "ap_fixd<16,6>"], "not a fixed-point type"),
        (["fastml", "convert", mlp, "--precision", "ap_fixed<16,20>"], "integer bits 20"),
        (["fastml", "convert", mlp, "--precision", "ap_fixed<16,6,AP_FOO>"], "unknown rounding mode"),
        (["fastml", "convert", mlp, "--granularity", "layer"], "--granularity 'layer'"),
        (["fastml", "convert", str(pfn_run)], "fastml converts the MLP"),
        (["fastml", "convert", str(tmp_path)], "not an ai4hep run directory"),
        (["fastml", "convert", mlp, "--out", str(tmp_path / "mine")], "not an earlier fastml output"),
        (["fastml", "scan", str(runs["bdt"]), "--quick"], "the scan covers MLPs"),
        (["fastml", "convert", str(runs["bdt"]), "--granularity", "name"], "a BDT goes through conifer"),
        (["fastml", "scan", mlp, "--widths", "8,x"], "comma-separated list"),
        (["fastml", "scan", mlp, "--prune", "1.5"], "strictly between 0 and 1"),
    ]
    for args, expected in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and expected in err, (args, err)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_missing_json_header_names_the_fix(runs: dict[str, Path], monkeypatch, tmp_path: Path, capsys) -> None:
    """conifer's wheel lacks nlohmann/json.hpp: without it on the machine the error says how to install it."""
    import ai4hep.export.bdt as bdt

    monkeypatch.setattr(bdt, "DEFAULT_INCLUDES", (str(tmp_path),))
    monkeypatch.delenv("CPLUS_INCLUDE_PATH", raising=False)
    monkeypatch.delenv("CPATH", raising=False)
    assert main(["fastml", "convert", str(runs["bdt"]), "--out", str(tmp_path / "out")]) == 2
    assert "apt-get install nlohmann-json3-dev" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

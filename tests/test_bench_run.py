"""`ai4hep bench run / report / compare` end to end on a tiny suite: real generation, training in fresh processes,
records in SQLite, the static report, and the upgrade check (metric shifts and ONNX re-runs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from ai4hep.bench.store import RecordStore
from ai4hep.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _suite(tmp: Path, **changes) -> Path:
    mlp = yaml.safe_load((ROOT / "configs" / "top_mlp.yaml").read_text())
    mlp["model"]["params"] = {"hidden": [16, 16], "dropout": 0.0}
    mlp["data"]["batch_size"] = 32
    mlp["trainer"]["threads"] = 1
    (tmp / "tiny_mlp.yaml").write_text(yaml.safe_dump(mlp))
    suite = {
        "name": "tiny",
        "seeds": [1, 2],
        # 160 training jets at the MLP's batch of 32: 5 steps an epoch, so 15 steps are 3 epochs
        "budgets": {"small": {"jets": 240, "shard_size": 40, "steps": 15, "threads": 1}},
        "tasks": [{"dataset": "top", "configs": [str(ROOT / "configs" / "top_bdt.yaml"), "tiny_mlp.yaml"]}],
    }
    suite.update(changes)
    path = tmp / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("bench")
    db = tmp / "records.sqlite"
    assert main(["bench", "run", str(_suite(tmp)), "--db", str(db), "--work", str(tmp / "work")]) == 0
    return tmp, db


def test_a_record_per_cell_with_spread_cost_and_provenance(bench: tuple[Path, Path]) -> None:
    _, db = bench
    with RecordStore(str(db)) as store:
        records = store.query()
    assert sorted(r.model for r in records) == ["bdt", "mlp"]
    for r in records:
        assert r.task == "top" and r.seeds == [1, 2] and r.primary_metric == "auc"
        auc = r.metrics["auc"]
        # the seeds' spread is zero only when both seeds agree exactly, and the Hanley-McNeil error (the mean of the
        # seeds') only when every seed separates its tiny test split perfectly (AUC = 1)
        assert len(auc.values) == 2 and auc.std is not None and (auc.std > 0) == (auc.values[0] != auc.values[1])
        assert (auc.error > 0) == (min(auc.values) < 1.0)
        assert 0.6 < auc.mean <= 1.0  # tops separate from QCD even at this size
        assert r.cost.train_jets_per_s > 0 and r.cost.infer_jets_per_s > 0 and r.cost.cpu_time_s > 0
        assert 50 < r.cost.peak_rss_mb < 24_000 and r.cost.energy_j > 0 and r.cost.energy_method
        assert len(r.dataset_hash) == 64 and r.dataset_card["name"] == "top"
        assert r.environment["packages"]["torch"] and r.config["model"]["name"] == r.model
        assert (Path(r.artifacts) / "model_card_seed2.json").is_file()
    mlp = next(r for r in records if r.model == "mlp")
    assert (Path(mlp.artifacts) / "model.onnx").is_file() and (Path(mlp.artifacts) / "test_inputs.npz").is_file()
    bdt = Path(next(r for r in records if r.model == "bdt").artifacts)  # BDTs export to ONNX too
    assert (bdt / "model.onnx").is_file() and set(np.load(bdt / "test_inputs.npz")) == {"jet"}


def test_a_budget_in_steps_sets_max_steps_and_enough_epochs(bench: tuple[Path, Path]) -> None:
    _, db = bench
    with RecordStore(str(db)) as store:
        records = {r.model: r for r in store.query()}
    mlp = records["mlp"].config
    assert mlp["trainer"]["max_steps"] == 15 and mlp["trainer"]["max_epochs"] == 3  # ceil(15 / ceil(160 / 32))
    assert mlp["data"]["batch_size"] == 32 and mlp["trainer"]["lr"] == 0.001  # the config's: the budget gives none
    bdt = records["bdt"].config["trainer"]
    assert bdt["max_steps"] == -1 and bdt["threads"] == 1  # fitted models have no steps, but take the threads


def test_cell_config_applies_each_kind_of_budget(bench: tuple[Path, Path]) -> None:
    from ai4hep.bench.run import _cell_config
    from ai4hep.bench.suite import Budget

    tmp, _ = bench
    (data,) = (tmp / "work" / "data").glob("top-*")  # made by the bench fixture: 6 shards, 160 training jets
    mlp, bdt = ROOT / "configs" / "top_mlp.yaml", ROOT / "configs" / "top_bdt.yaml"

    def cell(config: Path, **budget) -> dict:
        out = _cell_config(config, data, 7, Budget(jets=240, shard_size=40, **budget), tmp / "cells" / "c.yaml")
        return yaml.safe_load(out.read_text())

    steps = cell(mlp, steps=100, batch_size=16)  # 10 steps an epoch: 10 epochs
    assert steps["trainer"] == {"max_epochs": 10, "lr": 0.001, "patience": 5, "max_steps": 100}
    assert steps["data"]["batch_size"] == 16 and steps["seed"] == 7 and steps["data"]["paths"] == [str(data)]
    both = cell(mlp, steps=100, epochs=4)  # both given: whichever ends training first
    assert both["trainer"]["max_steps"] == 100 and both["trainer"]["max_epochs"] == 4
    epochs = cell(mlp, epochs=30)  # the full budget's meaning: max_epochs only, the config's steps, batch and lr
    assert epochs["trainer"] == {"max_epochs": 30, "lr": 0.001, "patience": 5} and epochs["data"]["batch_size"] == 256
    fitted = cell(bdt, steps=100, batch_size=16)  # a BDT has no trainer block, steps or batches to set
    own = yaml.safe_load(bdt.read_text())["data"]
    assert "trainer" not in fitted and fitted["data"] == {**own, "paths": [str(data)]}
    assert cell(bdt, epochs=30, threads=1)["trainer"] == {"threads": 1}
    assert cell(mlp, steps=100, threads=2)["trainer"]["threads"] == 2


def test_report_lists_the_records(bench: tuple[Path, Path]) -> None:
    tmp, db = bench
    assert main(["bench", "report", "--db", str(db), "--out", str(tmp / "site")]) == 0
    html = (tmp / "site" / "index.html").read_text()
    assert "bdt" in html and "mlp" in html and "top" in html


def test_compare_flags_shifted_metrics_and_changed_onnx_outputs(bench: tuple[Path, Path], capsys) -> None:
    tmp, db = bench
    assert main(["bench", "compare", str(db), str(db)]) == 0  # a store against itself: nothing changed
    out = capsys.readouterr().out
    assert "0 change(s) beyond tolerance" in out and out.count("onnx ok") == 2  # the MLP's and the BDT's files
    shifted = tmp / "shifted.sqlite"
    with RecordStore(str(db)) as store, RecordStore(str(shifted)) as out:
        for r in store.query():
            auc = r.metrics["auc"]
            moved = auc.model_copy(update={"mean": auc.mean - 0.3, "values": [v - 0.3 for v in auc.values]})
            out.add(r.model_copy(update={"id": r.id[:-4] + "beef", "metrics": {**r.metrics, "auc": moved}}))
    assert main(["bench", "compare", str(db), str(shifted)]) == 1
    assert "CHANGED top/" in capsys.readouterr().out
    # an ONNX model whose outputs no longer match what was recorded (as after a breaking runtime upgrade)
    with RecordStore(str(db)) as store:
        mlp = next(r for r in store.query() if r.model == "mlp")
    ref = Path(mlp.artifacts) / "reference_outputs.npz"
    saved = tmp / "saved.npz"
    shutil.copy2(ref, saved)
    try:
        np.savez(ref, **{k: v + 0.01 for k, v in np.load(saved).items()})
        assert main(["bench", "compare", str(db), str(db)]) == 1
        assert "onnx changed" in capsys.readouterr().out
    finally:
        shutil.copy2(saved, ref)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tasks": [{"dataset": "tops", "configs": ["top_bdt"]}]}, "unknown dataset 'tops'; valid datasets: top"),
        ({"tasks": [{"dataset": "top", "configs": ["no_such_config"]}]}, "config 'no_such_config' not found"),
        ({"budgets": {}}, "the suite has no budgets"),
        (
            {"budgets": {"small": {"jets": 240, "shard_size": 40, "step": 15}}},
            "unknown key 'budgets.small.step'; valid keys here: jets, shard_size, epochs, steps, batch_size, threads",
        ),
        ({"budgets": {"small": {"jets": 240, "shard_size": 40}}}, "budgets.small: Value error, give epochs or steps"),
        ({"budgets": {"small": {"jets": 240, "shard_size": 40, "steps": 0}}}, "budgets.small.steps: Input should be"),
        (
            {"tasks": [{"dataset": "top", "configs": ["top_bdt"], "seed": 3}]},
            "unknown key 'tasks.0.seed'; valid keys here: dataset, configs",
        ),
        ({"budget": {}}, "unknown key 'budget'; valid keys here: name, description, data_seed, seeds, budgets, tasks"),
    ],
)
def test_bad_suites_fail_before_any_work(tmp_path: Path, capsys, change: dict, message: str) -> None:
    db = tmp_path / "records.sqlite"
    assert main(["bench", "run", str(_suite(tmp_path, **change)), "--db", str(db), "--work", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not db.exists() and not (tmp_path / "data").exists()


def test_unknown_model_and_budget(tmp_path: Path, capsys) -> None:
    bad = yaml.safe_load((ROOT / "configs" / "top_bdt.yaml").read_text())
    bad["model"]["name"] = "xgboost"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    suite = _suite(tmp_path, tasks=[{"dataset": "top", "configs": ["bad.yaml"]}])
    assert main(["bench", "run", str(suite), "--db", str(tmp_path / "r.sqlite"), "--work", str(tmp_path)]) == 2
    assert "unknown model 'xgboost'; valid models:" in capsys.readouterr().err
    suite = _suite(tmp_path)
    assert main(["bench", "run", str(suite), "--budget", "huge", "--db", str(tmp_path / "r.sqlite")]) == 2
    assert "unknown budget 'huge'; valid budgets: small" in capsys.readouterr().err
    assert not (tmp_path / "r.sqlite").exists()

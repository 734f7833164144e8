"""Bad input found by an outside test campaign (issue 27): each case is one clear line with exit code 2, or a
documented recovery, never a silent success, a generic exception line or a half-written output."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from ai4hep.cli import main
from ai4hep.data.inspect import dataset_files
from ai4hep.data.schema import GROUPS, content_hash, read_shard

from .test_train_errors import _config

ROOT = Path(__file__).resolve().parents[1]


def _fails(capsys: pytest.CaptureFixture, args: list, *needles: str) -> str:
    rc = main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip() and "%|" not in ln]  # tqdm bars aside
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _edit_jets(path: Path, change, rehash: bool) -> None:
    """Change a shard's jets table in place; with rehash, store the new content hash too (a 'valid-looking' file)."""
    with h5py.File(path, "r+") as f:
        jets = change(f["jets"][...])
        del f["jets"]
        f.create_dataset("jets", data=jets)
        if rehash:
            f.attrs["content_hash"] = content_hash({n: f[n][...] for n in GROUPS if n in f})


def _nan_mass(jets: np.ndarray) -> np.ndarray:
    jets["mass"][:3] = np.nan
    return jets


def _without(field: str):
    def change(jets: np.ndarray) -> np.ndarray:
        names = [n for n in jets.dtype.names if n != field]
        out = np.empty(jets.shape, dtype=[(n, jets.dtype[n]) for n in names])
        for n in names:
            out[n] = jets[n]
        return out

    return change


@pytest.fixture(scope="module")
def trained(top_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished mlp run on top_shards (1 epoch)."""
    tmp = tmp_path_factory.mktemp("hardening-run")
    run = tmp / "run"
    assert main(["train", str(_config(tmp, top_shards)), "--out", str(run), "--no-progress"]) == 0
    return run


# --- item 4: exit 0 where it must not ---------------------------------------------------------------------------


def test_resumed_generate_regenerates_altered_shards(top_shards: Path, tmp_path: Path, capsys) -> None:
    """Decision: a shard of this very dataset whose content fails its check (stored hash, the manifest's hash, finite
    values) is regenerated on resume, which gives back exactly the promised arrays, and the run says so."""
    out = tmp_path / "copy"
    shutil.copytree(top_shards, out)
    files = dataset_files(out)
    manifest = json.loads((out / "dataset.json").read_text())
    _edit_jets(files[1], _nan_mass, rehash=False)  # NaN written, stored hash now stale
    _edit_jets(files[4], _nan_mass, rehash=True)  # NaN written and the stored hash recomputed
    args = ["data", "generate", "top", "--jets", "400", "--seed", "21", "--shard-size", "50", "--out", out]
    assert main([str(a) for a in args] + ["--workers", "2"]) == 0
    stdout = capsys.readouterr().out
    assert "6 shard(s) already there" in stdout, stdout
    assert f"regenerated {files[1].name}" in stdout and f"regenerated {files[4].name}" in stdout, stdout
    assert manifest["dataset_hash"][:16] in stdout
    for k in (1, 4):
        shard = read_shard(files[k])
        assert shard.attrs["content_hash"] == manifest["shards"][k]["content_hash"]
        assert np.isfinite(shard.arrays["jets"]["mass"]).all()


def test_info_names_shard_field_and_count_of_non_finite_values(top_shards: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "copy"
    shutil.copytree(top_shards, out)
    victim = dataset_files(out)[2]
    _edit_jets(victim, _nan_mass, rehash=True)  # the hash agrees: only the values give it away
    _fails(capsys, ["data", "info", out], victim.name, "'mass'", "3 non-finite")
    _fails(capsys, ["data", "info", victim], victim.name, "'mass'", "3 non-finite")


def test_evaluate_refuses_data_of_another_dataset(trained: Path, top_shards: Path, tmp_path: Path, capsys) -> None:
    """Decision: another dataset name or other classes are refused (the labels mean other things)."""
    other = tmp_path / "qg-00000.h5"
    shutil.copy(dataset_files(top_shards)[-1], other)
    with h5py.File(other, "r+") as f:
        card = json.loads(f.attrs["card"])
        card.update({"name": "qg", "classes": ["gluon", "quark"]})
        f.attrs["card"] = json.dumps(card)
    _fails(capsys, ["evaluate", trained, "--data", other, "--out", tmp_path / "eval"], "dataset 'qg'", "'top'")
    assert not (tmp_path / "eval").exists()


def test_evaluate_warns_and_records_another_card_version(
    trained: Path, top_shards: Path, tmp_path: Path, capsys
) -> None:
    """Decision: the same dataset at another card version is evaluated (a robustness check), with a warning line and
    the difference recorded in metrics.json."""
    other = tmp_path / "top-00000.h5"
    shutil.copy(dataset_files(top_shards)[-1], other)
    with h5py.File(other, "r+") as f:
        card = json.loads(f.attrs["card"])
        card["version"] += 1
        f.attrs["card"] = json.dumps(card)
    assert main(["evaluate", str(trained), "--data", str(other), "--out", str(tmp_path / "eval")]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "version" in err, err
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert "card version" in metrics["data_warnings"][0]


def test_bench_only_with_unknown_name_is_refused_before_any_work(tmp_path: Path, capsys) -> None:
    suite = {
        "name": "tiny",
        "budgets": {"small": {"jets": 240, "shard_size": 40, "epochs": 1}},
        "tasks": [{"dataset": "top", "configs": ["top_bdt"]}],
    }
    path = tmp_path / "suites" / "suite.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(suite))
    (tmp_path / "configs").mkdir()
    shutil.copy(ROOT / "configs" / "top_bdt.yaml", tmp_path / "configs" / "top_bdt.yaml")
    work, db = tmp_path / "work", tmp_path / "records.sqlite"
    args = ["bench", "run", path, "--only", "top_mlpp", "--db", db, "--work", work]
    _fails(capsys, args, "--only top_mlpp", "valid names: top_bdt")
    assert not (work / "data").exists(), "no data generated"


# --- item 4: a generic exception line instead of a clear one ------------------------------------------------------


def test_shard_without_a_field(top_shards: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "copy"
    shutil.copytree(top_shards, out)
    victim = dataset_files(out)[0]
    _edit_jets(victim, _without("pt"), rehash=True)
    _fails(capsys, ["data", "info", out], victim.name, "'pt'")
    _fails(capsys, ["train", _config(tmp_path, out), "--out", tmp_path / "run"], victim.name, "'pt'")
    assert not (tmp_path / "run").exists()


def test_evaluate_on_a_shard_without_a_field(trained: Path, top_shards: Path, tmp_path: Path, capsys) -> None:
    victim = tmp_path / "top-00007.h5"
    shutil.copy(dataset_files(top_shards)[-1], victim)
    _edit_jets(victim, _without("pt"), rehash=False)
    _fails(capsys, ["evaluate", trained, "--data", victim, "--out", tmp_path / "eval"], victim.name, "'pt'")


# Small networks, so that a case the schema lets through trains for seconds, not minutes.
SMALL_PART = {"embed": [8], "pair_embed": [4], "heads": 1, "blocks": 1, "class_blocks": 1}
SMALL_PN = {"k": 4, "blocks": [[8]], "fc": [8]}
SMALL_GN2 = {"embed": 8, "heads": 1, "layers": 1, "head_hidden": [8]}
PARAMS = {
    "mlp dropout 7.5": ({"name": "mlp", "params": {"hidden": [8], "dropout": 7.5}}, "model.params.dropout"),
    "mlp dropout 1": ({"name": "mlp", "params": {"dropout": 1.0}}, "model.params.dropout"),
    "mlp hidden 0": ({"name": "mlp", "params": {"hidden": [8, 0]}}, "model.params.hidden.1"),
    "pfn phi -3": ({"name": "pfn", "params": {"phi": [-3]}}, "model.params.phi.0"),
    "part ffn_ratio 0": ({"name": "part", "params": {**SMALL_PART, "ffn_ratio": 0}}, "model.params.ffn_ratio"),
    "particlenet fusion -1": ({"name": "particlenet", "params": {**SMALL_PN, "fusion": -1}}, "model.params.fusion"),
    "particlenet dropout -0.1": ({"name": "particlenet", "params": {**SMALL_PN, "dropout": -0.1}}, "params.dropout"),
    "gn2 init 0": ({"name": "gn2", "params": {**SMALL_GN2, "init": [0]}}, "model.params.init.0"),
}


@pytest.mark.parametrize("case", PARAMS)
def test_model_params_out_of_range(case: str, top_shards: Path, tmp_path: Path, capsys) -> None:
    model, needle = PARAMS[case]
    over = {"data__object_features": ["deta", "dphi"]} if model["name"] != "mlp" else {}
    config = _config(tmp_path, top_shards, model=model, **over)
    _fails(capsys, ["train", config, "--out", tmp_path / "run"], needle)
    assert not (tmp_path / "run").exists()


@pytest.fixture
def read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder that behaves like a read-only file system (EROFS for writes), for root and non-root alike."""
    root = tmp_path / "ro"
    root.mkdir()
    real_access, real_mkdir = os.access, os.mkdir

    def inside(p) -> bool:
        return Path(os.path.abspath(os.fsdecode(p))).is_relative_to(root)

    def access(p, mode, *args, **kwargs):
        return False if inside(p) and mode & os.W_OK else real_access(p, mode, *args, **kwargs)

    def mkdir(p, *args, **kwargs):
        if inside(p):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(p))
        return real_mkdir(p, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "mkdir", mkdir)
    return root


def _command(verb: str, run: Path, top_shards: Path, tmp: Path, out: Path) -> list:
    if verb == "train":
        return ["train", _config(tmp, top_shards), "--out", out, "--no-progress"]
    if verb == "evaluate":
        return ["evaluate", run, "--out", out]
    if verb == "onnx":
        return ["export", "onnx", run, "--out", out]
    return ["fastml", "convert", run, "--no-synth", "--out", out]


@pytest.mark.parametrize("verb", ["train", "evaluate", "onnx", "fastml"])
@pytest.mark.parametrize("where", ["parent is a file", "read-only", "existing file"])
def test_unusable_out(verb, where, trained: Path, top_shards: Path, tmp_path: Path, read_only: Path, capsys) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = {"parent is a file": blocker / "sub", "read-only": read_only / "sub", "existing file": blocker}[where]
    if verb == "onnx" and where == "existing file":
        out = tmp_path / "a_folder"  # a file target: an existing folder is what cannot be used
        out.mkdir()
    before = sorted(p.name for p in trained.iterdir())
    _fails(capsys, _command(verb, trained, top_shards, tmp_path, out), "--out")
    assert blocker.read_text() == "x"
    assert not list(read_only.iterdir())
    assert sorted(p.name for p in trained.iterdir()) == before, "nothing written into the run"


# --- item 4: half-written output ------------------------------------------------------------------------------------


def _nan_tau32(jets: np.ndarray) -> np.ndarray:
    jets["tau32"][5] = np.nan
    return jets


def _bad_label(jets: np.ndarray) -> np.ndarray:
    jets["label"][0] = 7
    return jets


DEFECTS = {
    "NaN in a training shard": (0, _nan_tau32, "has NaN or inf"),
    "NaN in the validation shard": (6, _nan_tau32, "has NaN or inf"),
    "label out of range": (0, _bad_label, "outside 0..1"),
    "missing field": (3, _without("pt"), "'pt'"),
}


@pytest.mark.parametrize("defect", DEFECTS)
def test_bad_data_leaves_no_run_folder(defect: str, top_shards: Path, tmp_path: Path, capsys) -> None:
    k, change, needle = DEFECTS[defect]
    data = tmp_path / "data"
    shutil.copytree(top_shards, data)
    _edit_jets(dataset_files(data)[k], change, rehash=False)
    run = tmp_path / "runs" / "run"
    _fails(capsys, ["train", _config(tmp_path, data), "--out", run, "--no-progress"], needle)
    assert not (tmp_path / "runs").exists(), "a failed start leaves no trace"
    if defect == "NaN in a training shard":  # the corrected config trains into the same --out
        fixed = _config(tmp_path, data, name="fixed.yaml", data__jet_features=["mass"])
        assert main(["train", str(fixed), "--out", str(run), "--no-progress"]) == 0


# --- item 7: small datasets -----------------------------------------------------------------------------------------


def test_auto_shard_size_rule() -> None:
    from ai4hep.data.shards import auto_shard_size, shard_sizes

    assert auto_shard_size(2000) == 200 and shard_sizes(2000, auto_shard_size(2000)) == [200] * 10
    assert auto_shard_size(5) == 1 and auto_shard_size(10_000) == 1000 and auto_shard_size(10**6) == 1000
    assert auto_shard_size(2345) == 235 and len(shard_sizes(2345, 235)) == 10


def test_small_request_splits_for_training(tmp_path: Path, capsys) -> None:
    from ai4hep.data.loader import DataConfig, split_files

    out = tmp_path / "small"
    assert main(["data", "generate", "top", "--jets", "5", "--out", str(out)]) == 0
    assert "in 5 shard(s)" in capsys.readouterr().out
    splits = split_files(DataConfig(paths=[str(out)]))
    assert len(splits.train) == 3 and len(splits.val) == 1 and len(splits.test) == 1
    assert json.loads((out / "dataset.json").read_text())["shard_size"] == 1


@pytest.mark.parametrize("manifest", [True, False], ids=["finished", "interrupted"])
def test_auto_keeps_the_folder_s_shard_size(manifest: bool, top_dir: Path, tmp_path: Path, capsys) -> None:
    """A folder made with an explicit (or the former default) shard size resumes under the default without an error."""
    out = tmp_path / "copy"
    shutil.copytree(top_dir, out)
    if not manifest:
        (out / "dataset.json").unlink()
    expected = json.loads((top_dir / "dataset.json").read_text())["dataset_hash"]
    assert main(["data", "generate", "top", "--jets", "240", "--seed", "11", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "2 shard(s) already there" in stdout and expected[:16] in stdout, stdout


def test_shard_size_must_be_a_number_or_auto(tmp_path: Path, capsys) -> None:
    args = ["data", "generate", "top", "--jets", "5", "--out", tmp_path / "o", "--shard-size", "big"]
    _fails(capsys, args, "--shard-size must be a positive number of jets or 'auto'")
    assert not (tmp_path / "o").exists()

"""Bad input to train / evaluate: one clear line naming the problem and the fix, exit code 2, nothing lost."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from ai4hep.cli import main


def _config(tmp: Path, data: Path, name: str = "c.yaml", **over) -> Path:
    raw = {
        "seed": 1,
        "data": {"paths": [str(data)], "jet_features": ["mass", "tau32"], "batch_size": 32},
        "model": {"name": "mlp", "params": {"hidden": [8]}},
        "trainer": {"max_epochs": 1, "threads": 1},
    }
    for key, value in over.items():
        section, _, field = key.partition("__")
        if field:
            raw[section][field] = value
        else:
            raw[section] = value
    path = tmp / name
    path.write_text(yaml.safe_dump(raw))
    return path


def _fails(capsys: pytest.CaptureFixture, args: list, pattern: str) -> str:
    assert main([str(a) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert pattern in err, err
    return err


CASES = {
    "unknown top-level key": ({"optimiser": {"lr": 1}}, "unknown config key 'optimiser'; valid keys here: seed, data"),
    "unknown data key": ({"data__batchsize": 3}, "unknown config key 'data.batchsize'; valid keys here: paths"),
    "unknown model": ({"model": {"name": "resnet"}}, "unknown model 'resnet'; valid models: bdt, mlp, pfn"),
    "unknown model param": ({"model": {"name": "mlp", "params": {"width": 3}}}, "valid params for mlp: hidden"),
    "unknown variable": ({"data__jet_features": ["mass", "tau99"]}, "no input variable 'tau99'; valid names: pt"),
    "missing objects": (
        {"data__objects": "tracks", "data__object_features": ["d0sig"], "model": {"name": "pfn"}},
        "has no 'tracks' array",
    ),
    "model needs features": ({"model": {"name": "pfn"}}, "reads per-object inputs; set data.object_features"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_config(case: str, top_shards: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    over, pattern = CASES[case]
    _fails(capsys, ["train", _config(tmp_path, top_shards, **over), "--out", tmp_path / "run"], pattern)
    assert not (tmp_path / "run" / "model_card.json").exists()


def test_bad_yaml_and_missing_config(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    _fails(capsys, ["train", bad, "--out", tmp_path / "r"], "is not valid YAML")
    _fails(capsys, ["train", tmp_path / "nope.yaml", "--out", tmp_path / "r"], "no such config file")


def test_too_few_shards_to_split(top_shards: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    one = sorted(top_shards.glob("*.h5"))[0]
    _fails(capsys, ["train", _config(tmp_path, one), "--out", tmp_path / "r"], "cannot be split by shard")


def test_corrupt_checkpoint_is_reported_and_kept(top_shards: Path, tmp_path: Path, capsys) -> None:
    config = _config(tmp_path, top_shards, trainer={"max_epochs": 2, "threads": 1})
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    best = run / "checkpoints" / "best.ckpt"
    data = best.read_bytes()
    best.write_bytes(data[: len(data) // 3])  # truncated, as after a full disk
    _fails(capsys, ["evaluate", run, "--data", top_shards], "best.ckpt is corrupt or truncated")
    assert best.stat().st_size == len(data) // 3, "the damaged file is left for the user, not deleted"
    # resuming an unfinished run from a damaged last.ckpt: the same one line
    (run / "model_card.json").unlink()
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(b"not a checkpoint")
    _fails(capsys, ["train", config, "--out", run], "last.ckpt is corrupt or truncated")


def test_changed_config_does_not_overwrite_a_run(top_shards: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", str(_config(tmp_path, top_shards)), "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    saved = (run / "config.yaml").read_text()
    other = _config(tmp_path, top_shards, trainer={"max_epochs": 3, "threads": 1})
    _fails(capsys, ["train", other, "--out", run], "holds a run with a different config")
    assert (run / "config.yaml").read_text() == saved


def test_evaluate_on_something_that_is_not_a_run(top_shards: Path, tmp_path: Path, capsys) -> None:
    _fails(capsys, ["evaluate", tmp_path, "--data", top_shards], "is not an ai4hep run directory")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "x.h5").write_bytes(b"junk")
    shutil.copytree(top_shards, tmp_path / "copy")
    run = tmp_path / "run"
    assert main(["train", str(_config(tmp_path, tmp_path / "copy")), "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    _fails(capsys, ["evaluate", run, "--data", junk / "x.h5"], "not a readable HDF5 file")


class _Payload:
    """What a crafted checkpoint carries: unpickling it would create the marker file (os.system would run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_checkpoint_runs_no_code(top_shards: Path, tmp_path: Path, capsys) -> None:
    """A run folder sent by someone else: a checkpoint with code in it is refused by every command that reads it."""
    import torch

    config = _config(tmp_path, top_shards)
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    marker = tmp_path / "code-ran"
    state = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    for name in ("best.ckpt", "last.ckpt"):
        torch.save({**state, "payload": _Payload(marker)}, run / "checkpoints" / name)
    refused = "holds objects other than tensors (it asks for posix.system)"
    for command in (
        ["evaluate", run],
        ["export", "onnx", run],
        ["export", "triton", run, "--repository", tmp_path / "repo"],
        ["fastml", "convert", run, "--precision", "ap_fixed<16,6>", "--no-synth"],
    ):
        _fails(capsys, command, refused)
    (run / "model_card.json").unlink()  # an unfinished run: train resumes from last.ckpt
    _fails(capsys, ["train", config, "--out", run], refused)
    assert not marker.exists(), "unpickling ran the checkpoint's code"
    assert not (run / "export").exists() and not (run / "fastml").exists(), "nothing written on refusal"
    assert not any((tmp_path / "repo").glob("*")), "no model folder in the repository"

"""Same dataset, seed and jet count give bitwise-identical arrays: any worker count, Dask, or after a resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ai4hep.data.inspect import dataset_files
from ai4hep.data.schema import read_shard
from ai4hep.data.shards import generate
from tests.conftest import load

N_JETS, SHARD = 60, 20


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("ref")
    summary = generate("flavour", N_JETS, out, seed=21, workers=1, shard_size=SHARD, show_progress=False)
    return out, summary.dataset_hash


def _generate_cmd(out: Path) -> list[str]:
    """The CLI command that generates the reference dataset into `out`."""
    return [
        sys.executable,
        "-m",
        "ai4hep.cli",
        "data",
        "generate",
        "flavour",
        "--jets",
        str(N_JETS),
        "--out",
        str(out),
        "--seed",
        "21",
        "--shard-size",
        str(SHARD),
    ]


def test_worker_count_does_not_change_arrays(reference, tmp_path):
    ref_dir, ref_hash = reference
    summary = generate("flavour", N_JETS, tmp_path, seed=21, workers=2, shard_size=SHARD, show_progress=False)
    assert summary.dataset_hash == ref_hash
    a, b = load(ref_dir), load(tmp_path)
    for name in a:
        assert a[name].tobytes() == b[name].tobytes()


def test_different_seed_gives_different_arrays(reference, tmp_path):
    _, ref_hash = reference
    summary = generate("flavour", SHARD, tmp_path, seed=22, workers=1, shard_size=SHARD, show_progress=False)
    assert summary.dataset_hash != ref_hash


def test_dask_local_cluster_gives_same_arrays(reference, tmp_path):
    from distributed import LocalCluster

    _, ref_hash = reference
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        summary = generate(
            "flavour",
            N_JETS,
            tmp_path,
            seed=21,
            shard_size=SHARD,
            dask_address=cluster.scheduler_address,
            show_progress=False,
        )
    assert summary.dataset_hash == ref_hash
    assert len(dataset_files(tmp_path)) == N_JETS // SHARD


def _start_and_interrupt(out: Path, sig: int) -> subprocess.CompletedProcess:
    """Start a CLI run and send `sig` once the first shard is on disk (mid-run)."""
    proc = subprocess.Popen(
        _generate_cmd(out),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob("flavour-*.h5")):
        time.sleep(0.05)
    time.sleep(0.3)  # well inside the generation of the next shard
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_interrupted_then_resumed_equals_uninterrupted(reference, tmp_path, sig):
    _, ref_hash = reference
    out = tmp_path / "run"
    result = _start_and_interrupt(out, sig)
    done = sorted(out.glob("flavour-*.h5"))
    assert 1 <= len(done) < N_JETS // SHARD, "the run should have been stopped mid-way"
    for path in done:  # every file on disk is whole
        read_shard(path)
    if sig == signal.SIGINT:
        assert result.returncode == 130
        lines = [ln for ln in result.stderr.splitlines() if ln.strip() and "%|" not in ln]
        assert len(lines) == 1 and "interrupted" in lines[0] and "Traceback" not in result.stderr
        assert not list(out.glob(".*.tmp-*")), "Ctrl-C left a temporary file"
    assert not (out / "dataset.json").exists()
    resumed = subprocess.run(
        _generate_cmd(out),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(done)} shard(s) already there" in resumed.stdout
    assert ref_hash[:16] in resumed.stdout
    assert not list(out.glob(".*.tmp-*"))


def test_same_seed_twice_is_bitwise_identical_per_shard(reference, tmp_path):
    ref_dir, _ = reference
    generate("flavour", SHARD, tmp_path, seed=21, workers=1, shard_size=SHARD, show_progress=False)
    a = read_shard(dataset_files(ref_dir)[0]).arrays
    b = read_shard(dataset_files(tmp_path)[0]).arrays
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert os.path.getsize(dataset_files(tmp_path)[0]) > 0

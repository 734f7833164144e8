"""Tiny generated samples shared by the tests (generated once per session, real Pythia + FastJet)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ai4hep.data.inspect import dataset_files
from ai4hep.data.schema import read_shard
from ai4hep.data.shards import generate


def load(path: Path) -> dict[str, np.ndarray]:
    shards = [read_shard(f).arrays for f in dataset_files(path)]
    return {k: np.concatenate([s[k] for s in shards]) for k in shards[0]}


@pytest.fixture(scope="session")
def top_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("top")
    generate("top", 240, out, seed=11, workers=2, shard_size=120, show_progress=False)
    return out


@pytest.fixture(scope="session")
def flavour_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("flavour")
    generate("flavour", 300, out, seed=5, workers=2, shard_size=150, show_progress=False)
    return out


@pytest.fixture(scope="session")
def qg_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("qg")
    generate("qg", 160, out, seed=7, workers=2, shard_size=80, show_progress=False)
    return out


@pytest.fixture(scope="session")
def hlf5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hlf5")
    generate("hlf5", 150, out, seed=3, workers=2, shard_size=75, show_progress=False)
    return out

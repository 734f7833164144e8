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


def _sample(factory: pytest.TempPathFactory, name: str, n_jets: int, seed: int, shard_size: int | None = None) -> Path:
    """Two shards by default; more where a test splits the data by shard."""
    out = factory.mktemp(name)
    generate(name, n_jets, out, seed=seed, workers=2, shard_size=shard_size or n_jets // 2, show_progress=False)
    return out


@pytest.fixture(scope="session")
def top_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _sample(tmp_path_factory, "top", 240, seed=11)


@pytest.fixture(scope="session")
def flavour_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _sample(tmp_path_factory, "flavour", 300, seed=5)


@pytest.fixture(scope="session")
def qg_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _sample(tmp_path_factory, "qg", 160, seed=7)


@pytest.fixture(scope="session")
def hlf5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _sample(tmp_path_factory, "hlf5", 150, seed=3)


@pytest.fixture(scope="session")
def top_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 top/QCD jets in 8 shards: enough to split by shard into train / val / test."""
    return _sample(tmp_path_factory, "top", 400, seed=21, shard_size=50)


@pytest.fixture(scope="session")
def hlf5_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _sample(tmp_path_factory, "hlf5", 250, seed=4, shard_size=50)

"""The streaming data module: split by shard, every jet once per epoch, masks, normalisation, memory bound, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from ai4hep.data.loader import (
    DataConfig,
    InputSpec,
    JetStream,
    balanced_weights,
    compute_normalisation,
    label_counts,
    split_files,
)
from ai4hep.errors import UserError

OBJ = ["log(pt)", "log(pt_rel)", "deta", "dphi", "dr", "charge"]


def _cfg(path: Path, **kw) -> DataConfig:
    return DataConfig(paths=[str(path)], jet_features=["mass", "tau32"], object_features=OBJ, **kw)


def test_split_is_by_shard_and_disjoint(top_shards: Path) -> None:
    s = split_files(_cfg(top_shards))
    assert (len(s.train), len(s.val), len(s.test)) == (6, 1, 1)
    assert not set(s.train) & set(s.val) and not set(s.train) & set(s.test) and not set(s.val) & set(s.test)


def test_every_jet_once_per_epoch_shuffled_reproducibly(top_shards: Path) -> None:
    cfg = _cfg(top_shards, batch_size=32, max_objects=60)
    files = split_files(cfg).train
    stream = JetStream(files, InputSpec(cfg, ("points", "vectors", "z")), 2, shuffle=True, seed=3)

    def epoch(e: int) -> np.ndarray:
        stream.set_epoch(e)
        return np.concatenate([b["pt"] for b in stream])

    a, a2, b = epoch(0), epoch(0), epoch(1)
    n = 0
    for p in files:
        with h5py.File(p) as f:
            n += len(f["jets"])
    assert len(a) == n == stream.n_jets
    assert np.array_equal(a, a2) and not np.array_equal(a, b)
    assert np.array_equal(np.sort(a), np.sort(b))


def test_masks_padding_and_extras(top_shards: Path) -> None:
    cfg = _cfg(top_shards, batch_size=32, max_objects=60, trim=False)
    files = split_files(cfg).train[:1]
    batch = next(iter(JetStream(files, InputSpec(cfg, ("points", "vectors", "z")), 2)))
    with h5py.File(files[0]) as f:
        n_consts = f["jets"]["n_consts"][:32]
    assert np.array_equal(batch["mask"].sum(1), np.minimum(n_consts, 60))
    for key in ("objects", "points", "vectors"):
        assert batch[key].shape[:2] == (32, 60)
        assert not batch[key][~batch["mask"]].any(), f"padding of {key} must be zero"
    # momentum fractions of real constituents sum to about one (below: cut at 60, detector thresholds)
    zsum = batch["z"].sum(1)
    assert np.all(zsum < 1.2) and np.median(zsum) > 0.8


def test_normalisation_standardises_training_inputs(top_shards: Path) -> None:
    cfg = _cfg(top_shards, batch_size=50)
    files = split_files(cfg).train
    spec = InputSpec(cfg)
    norm = compute_normalisation(JetStream(files, spec, 2), 10_000)
    batches = list(JetStream(files, spec, 2, norm))
    jet = np.concatenate([b["jet"] for b in batches])
    obj = np.concatenate([b["objects"][b["mask"]] for b in batches])
    assert np.allclose(jet.mean(0), 0, atol=1e-3) and np.allclose(jet.std(0), 1, atol=1e-3)
    assert np.allclose(obj.mean(0), 0, atol=1e-3) and np.allclose(obj.std(0), 1, atol=1e-3)


def test_reads_are_bounded_by_the_memory_budget(top_shards: Path) -> None:
    cfg = _cfg(top_shards, batch_size=16, memory_mb=0.5)
    stream = JetStream(split_files(cfg).train, InputSpec(cfg), 2)
    assert stream.chunk_jets < 50  # smaller than a shard: the budget, not the file, sets the read size
    assert max(len(b["label"]) for _, b in stream.blocks()) <= stream.chunk_jets


def test_balanced_class_weights(top_shards: Path) -> None:
    counts = label_counts(split_files(_cfg(top_shards)).train, "label", 2)
    w = balanced_weights(counts)
    assert np.isclose((w * counts)[0], (w * counts)[1]) and np.isclose((w * counts).sum(), counts.sum())


def test_unknown_variable_lists_valid_names(top_shards: Path) -> None:
    cfg = DataConfig(paths=[str(top_shards)], object_features=["log(ptt)"])
    with pytest.raises(UserError, match=r"no input variable 'ptt'; valid names: .*pt_rel"):
        JetStream(split_files(cfg).train, InputSpec(cfg), 2)
    with pytest.raises(Exception, match="unknown transform 'sqrt'"):
        DataConfig(paths=[str(top_shards)], jet_features=["sqrt(mass)"])


def test_missing_object_array_is_named(top_shards: Path) -> None:
    cfg = DataConfig(paths=[str(top_shards)], objects="tracks", object_features=["d0sig"])
    with pytest.raises(UserError, match="has no 'tracks' array"):
        JetStream(split_files(cfg).train, InputSpec(cfg), 2)


def test_nan_input_names_variable_and_file(top_shards: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(top_shards, bad)
    victim = sorted(bad.glob("*.h5"))[2]
    with h5py.File(victim, "r+") as f:
        consts = f["consts"][...]
        consts["deta"][3, 0] = np.nan
        f["consts"][...] = consts
    cfg = _cfg(bad)
    stream = JetStream(split_files(cfg).train, InputSpec(cfg), 2)
    with pytest.raises(UserError, match=rf"{victim.name}: input variable 'deta' has NaN or inf"):
        list(stream)


def test_trimming_cuts_padding_only(top_shards: Path) -> None:
    full = _cfg(top_shards, batch_size=16, max_objects=200, trim=False)
    cut = _cfg(top_shards, batch_size=16, max_objects=200)
    files = split_files(full).test
    for a, b in zip(
        JetStream(files, InputSpec(full, ("vectors",)), 2),
        JetStream(files, InputSpec(cut, ("vectors",)), 2),
        strict=True,
    ):
        n = b["mask"].shape[1]
        assert n == a["mask"].sum(1).max() < 200
        assert not a["mask"][:, n:].any() and np.array_equal(a["vectors"][:, :n], b["vectors"])


def test_feature_cache_gives_the_same_batches_without_reading_hdf5(top_shards: Path, tmp_path: Path) -> None:
    plain = _cfg(top_shards, batch_size=40, max_objects=80)
    cached = _cfg(top_shards, batch_size=40, max_objects=80, cache=str(tmp_path / "cache"))
    files = split_files(plain).train
    extras = ("points", "vectors", "z")
    norm = compute_normalisation(JetStream(files, InputSpec(plain, extras), 2), 1000)

    def epoch(cfg: DataConfig, e: int, stream: JetStream | None = None) -> list[dict]:
        stream = stream or JetStream(files, InputSpec(cfg, extras), 2, norm, shuffle=True, seed=9)
        stream.set_epoch(e)
        return list(stream)

    reference = epoch(plain, 1)
    stream = JetStream(files, InputSpec(cached, extras), 2, norm, shuffle=True, seed=9)
    first = epoch(cached, 1, stream)  # fills the cache
    assert len(list((tmp_path / "cache").iterdir())) == len(files)
    assert not list((tmp_path / "cache").glob(".*"))  # no temporary folder left

    def fail(*_):
        raise AssertionError("read HDF5 although the cache holds the shard")

    stream._computed = fail
    second = epoch(cached, 1, stream)
    for a, b, c in zip(reference, first, second, strict=True):
        assert a.keys() == b.keys() == c.keys()
        assert all(np.array_equal(a[k], b[k]) and np.array_equal(a[k], c[k]) for k in a)


def test_partial_pass_leaves_no_cache(top_shards: Path, tmp_path: Path) -> None:
    cfg = _cfg(top_shards, batch_size=10, cache=str(tmp_path / "cache"))
    stream = JetStream(split_files(cfg).train, InputSpec(cfg), 2)
    it = iter(stream)
    next(it)
    it.close()
    assert not any((tmp_path / "cache").iterdir())

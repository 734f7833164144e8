"""The HDF5 layout: structured arrays with `valid`, attributes, content hash, parquet export."""

from __future__ import annotations

import json

import awkward as ak
import h5py
import numpy as np

from ai4hep.data.cards import DatasetCard, get_card
from ai4hep.data.export import export
from ai4hep.data.inspect import dataset_files, summarise
from ai4hep.data.schema import content_hash, read_shard


def test_layout_and_attributes(flavour_dir):
    path = dataset_files(flavour_dir)[0]
    with h5py.File(path) as f:
        assert set(f) == {"jets", "consts", "tracks"}
        assert f["consts"].compression == "gzip" and f["consts"].chunks is not None
        card = DatasetCard.model_validate(json.loads(f.attrs["card"]))
        assert card == get_card("flavour")
        for key in ("seed", "ai4hep_version", "card_version", "content_hash"):
            assert key in f.attrs
    shard = read_shard(path)
    consts, tracks = shard.arrays["consts"], shard.arrays["tracks"]
    assert consts.shape[1] == 60 and tracks.shape[1] == 40
    # padding rows are zeros with valid=False, valid rows come first
    pad = consts[~consts["valid"]]
    assert np.all(pad["pt"] == 0) and np.all(pad["pid"] == 0)
    n_valid = consts["valid"].sum(axis=1)
    assert np.all(consts["valid"] == (np.arange(60)[None, :] < n_valid[:, None]))
    # constituents sorted by pT, tracks by |d0 significance|
    pts = np.where(consts["valid"], consts["pt"], -1)
    assert np.all(np.diff(pts, axis=1) <= 0)
    sig = np.where(tracks["valid"], np.abs(tracks["d0sig"]), -1)
    assert np.all(np.diff(sig, axis=1) <= 1e-6)
    # tracks: the charged constituents that pass the flavour-tagging selection, at most 40 (jets whose constituents
    # all fit in the 60 stored)
    whole = shard.arrays["jets"]["n_consts"] <= 60
    consts, tracks = consts[whole], tracks[whole]
    charged = consts["valid"] & (consts["charge"] != 0)
    assert np.array_equal(shard.arrays["jets"]["n_tracks"][whole], charged.sum(axis=1))
    z0sintheta = consts["dz"] / np.cosh(consts["eta"])
    cut = get_card("flavour").track_selection
    selected = charged & (np.abs(consts["d0"]) < cut.abs_d0_max) & (np.abs(z0sintheta) < cut.abs_z0sintheta_max)
    assert np.array_equal(np.minimum(selected.sum(axis=1), 40), tracks["valid"].sum(axis=1))
    assert content_hash(shard.arrays) == shard.attrs["content_hash"]


def test_summary_counts(top_dir):
    s = summarise(top_dir)
    assert s["jets"] == 240 and s["complete"] and s["shards"] == 2
    assert [c["jets"] for c in s["classes"]] == [120, 120]


def test_parquet_export_round_trip(top_dir, tmp_path):
    files = export(top_dir, tmp_path / "pq")
    assert len(files) == 2
    table = ak.from_parquet(files[0])
    shard = read_shard(dataset_files(top_dir)[0]).arrays
    assert len(table) == len(shard["jets"])
    assert np.array_equal(ak.to_numpy(ak.num(table["part_pt"])), shard["consts"]["valid"].sum(axis=1))
    assert np.allclose(ak.to_numpy(table["jet_mass"]), shard["jets"]["mass"])
    assert np.array_equal(ak.to_numpy(table["label_top"]), shard["jets"]["label"] == 1)
    assert not list(tmp_path.glob("pq/.*"))

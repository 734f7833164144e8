"""Every registered neural model: shapes, padding-mask awareness and permutation symmetry on real jets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ai4hep.data.loader import DataConfig, InputSpec, JetStream, split_files
from ai4hep.models import MODELS, get_model
from ai4hep.models.kinds.lightning import jet_logits, model_inputs

SMALL = {
    "mlp": {"hidden": [16, 16]},
    "pfn": {"phi": [16, 16], "f": [16]},
    "efn": {"phi": [16, 16], "f": [16]},
    "particlenet": {"k": 4, "blocks": [[16, 16], [16, 16]], "fusion": 32, "fc": [16]},
    "part": {"embed": [16, 32], "pair_embed": [8, 8], "heads": 2, "blocks": 2, "class_blocks": 1},
    "dips": {"phi": [16, 16], "f": [16]},
    # auxiliary tasks need track labels, which top jets lack: tests/test_flavour.py covers them
    "gn2": {"init": [16], "embed": 16, "heads": 2, "layers": 2, "head_hidden": [16, 8], "aux_tasks": []},
}
TORCH_MODELS = [name for name, e in MODELS.items() if e.adapter.name == "torch"]


def _batch(top_shards: Path, name: str, max_objects: int) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    entry = get_model(name)
    cfg = DataConfig(
        paths=[str(top_shards)],
        jet_features=["mass", "tau32", "log(pt)"],
        object_features=["log(pt)", "log(pt_rel)", "deta", "dphi", "charge"],
        max_objects=max_objects,
        batch_size=24,
        trim=False,
    )
    stream = JetStream(split_files(cfg).test, InputSpec(cfg, entry.extras), 2)
    batch = {k: torch.from_numpy(v) for k, v in next(iter(stream)).items()}
    torch.manual_seed(0)
    model = entry.cls(3, 5, 2, entry.parse_params(SMALL[name])).eval()
    return model, batch


def test_every_torch_model_is_covered() -> None:
    assert set(TORCH_MODELS) == set(SMALL)


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_padding_slots_do_not_change_the_output(top_shards: Path, name: str) -> None:
    model, short = _batch(top_shards, name, 120)
    _, long = _batch(top_shards, name, 200)
    assert long["mask"].shape[1] == 200 and torch.equal(long["mask"][:, :120], short["mask"])
    with torch.no_grad():
        a = jet_logits(model(**model_inputs(model, short)))
        b = jet_logits(model(**model_inputs(model, long)))
    assert a.shape == (24, 2) and torch.isfinite(a).all()
    assert torch.allclose(a, b, atol=1e-5), f"{name}: extra padding changed the output by {(a - b).abs().max()}"


@pytest.mark.parametrize("name", [n for n in TORCH_MODELS if n != "mlp"])
def test_particle_order_does_not_matter(top_shards: Path, name: str) -> None:
    model, batch = _batch(top_shards, name, 120)
    n = int(batch["mask"].sum(1).min())
    perm = torch.arange(120)
    perm[:n] = torch.from_numpy(np.random.default_rng(0).permutation(n))  # shuffle real particles among themselves
    shuffled = {k: (v[:, perm] if v.ndim >= 2 and v.shape[1] == 120 else v) for k, v in batch.items()}
    # only jets whose real particles all lie in the shuffled range keep their particle set
    keep = batch["mask"].sum(1) == n
    with torch.no_grad():
        a = jet_logits(model(**model_inputs(model, batch)))[keep]
        b = jet_logits(model(**model_inputs(model, shuffled)))[keep]
    assert keep.any() and torch.allclose(a, b, atol=1e-4)


def test_part_pair_bias_same_on_real_pairs_in_training_and_evaluation(top_shards: Path) -> None:
    """ParT's pair embedding runs over real pairs only in training and over every (masked) pair in evaluation: with
    the batch-norm statistics held fixed, both give the same bias, and zero on pairs with a padding slot."""
    model, batch = _batch(top_shards, "part", 120)
    pair = model.pair
    assert pair is not None
    with torch.no_grad():
        for m in pair.modules():  # fixed, non-trivial statistics so that the two paths share the same maths
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        dense = pair.eval()(batch["vectors"], batch["mask"])
        pair.train()
        for m in pair.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.eval()
        sparse = pair(batch["vectors"], batch["mask"])
    real = batch["mask"][:, None, :, None] & batch["mask"][:, None, None, :]
    assert dense.shape == sparse.shape == (24, 2, 120, 120)
    assert torch.count_nonzero(sparse[~real.expand_as(sparse)]) == 0
    assert torch.allclose(dense, sparse, atol=1e-5) and dense[real.expand_as(dense)].abs().sum() > 0


@pytest.mark.parametrize("track_count", [True, False])
def test_gn2_sees_how_many_tracks_a_jet_has(top_shards: Path, track_count: bool) -> None:
    """Attention averages over tracks, so a jet with every track doubled looks the same to it; the track-count input
    is what tells GN2 (like DIPS's sum) that the doubled jet has twice the tracks."""
    entry = get_model("gn2")
    model, batch = _batch(top_shards, "gn2", 60)
    torch.manual_seed(0)
    model = entry.cls(3, 5, 2, entry.parse_params({**SMALL["gn2"], "track_count": track_count})).eval()
    doubled = {k: (torch.cat([v, v], dim=1) if v.ndim >= 2 and v.shape[1] == 60 else v) for k, v in batch.items()}
    with torch.no_grad():
        a = jet_logits(model(**model_inputs(model, batch)))
        b = jet_logits(model(**model_inputs(model, doubled)))
    differs = (a - b).abs().amax(dim=1) > 1e-4
    assert bool(differs.all()) == track_count and bool(differs.any()) == track_count

"""The parametric detector: particle level with --detector none, smearing, calorimeter cells, pile-up overlay."""

from __future__ import annotations

import numpy as np
import pytest

from ai4hep.data.cards import get_card
from ai4hep.data.generate.detector import PRESETS, ip_resolution, reconstruct
from ai4hep.data.generate.pythia import Generator, pythia_seed
from ai4hep.data.generate.truth import PILEUP, PRIMARY
from ai4hep.data.shards import generate
from tests.conftest import load


@pytest.fixture(scope="module")
def batch_and_gen():
    card = get_card("top")
    gen = Generator((*card.common_settings, *card.processes[1].settings), pythia_seed(1, 0, 1))
    return gen.next_batch(10), gen


def test_particle_level_keeps_every_visible_particle(batch_and_gen):
    batch, gen = batch_and_gen
    reco = reconstruct(batch, gen, PRESETS["none"], np.random.default_rng(1))
    visible = (batch.status > 0) & ~np.isin(np.abs(batch.pid), (12, 14, 16))
    assert len(reco.px) == visible.sum()
    assert np.isclose(reco.e.sum(), batch.e[visible].sum())
    assert np.all(reco.d0[reco.is_track & (np.abs(batch.vx[reco.truth]) == 0)] == 0)


def test_detector_level_cells_tracks_and_thresholds(batch_and_gen):
    batch, gen = batch_and_gen
    cfg = PRESETS["atlas-like"]
    reco = reconstruct(batch, gen, cfg, np.random.default_rng(1))
    tracks, cells = reco.is_track, ~reco.is_track
    pt = np.hypot(reco.px, reco.py)
    eta = np.arcsinh(reco.pz / pt)
    assert np.all(pt[tracks] > cfg.track_pt_min * 0.5) and np.all(np.abs(eta[tracks]) < cfg.track_abs_eta_max)
    assert np.all(reco.pid[cells] == np.where(reco.pid[cells] == 22, 22, 130))
    assert np.all(reco.e[cells & (reco.pid == 22)] > cfg.ecal_e_min)
    assert np.all(reco.e[cells & (reco.pid == 130)] > cfg.hcal_e_min)
    # cells are massless and centred on the ECAL grid
    assert np.allclose(reco.e[cells] ** 2, (reco.px**2 + reco.py**2 + reco.pz**2)[cells], rtol=1e-6)
    fine = cells & (reco.pid == 22) & (np.abs(eta) < 2.4)
    frac = np.mod(eta[fine] / cfg.ecal_cell, 1.0)
    assert np.allclose(frac, 0.5, atol=1e-6)
    # fewer objects than particles: cells merge neutrals, soft charged particles are lost
    visible = (batch.status > 0) & ~np.isin(np.abs(batch.pid), (12, 14, 16))
    assert len(reco.px) < visible.sum()
    # energy is conserved within the resolution, apart from what falls below thresholds / outside acceptance
    pt_true = np.maximum(np.hypot(batch.px, batch.py), 1e-9)
    in_calo = visible & (np.abs(np.arcsinh(batch.pz / pt_true)) < 4.9)
    assert 0.8 < reco.e.sum() / batch.e[in_calo].sum() < 1.05


def test_impact_parameter_resolution_scales_with_pt():
    d0err, _ = ip_resolution(np.array([1.0, 10.0, 1000.0]), np.zeros(3), PRESETS["atlas-like"])
    assert d0err[0] == pytest.approx(np.hypot(0.010, 0.080))
    assert d0err[0] > d0err[1] > d0err[2] >= 0.010


def test_pileup_overlay_adds_pileup_tracks(tmp_path):
    generate("flavour", 40, tmp_path, seed=4, shard_size=40, pileup_mu=30, show_progress=False)
    tracks = load(tmp_path)["tracks"]
    valid = tracks["valid"]
    pu = valid & (tracks["origin"] == PILEUP)
    prompt = valid & (tracks["origin"] == PRIMARY)
    assert pu.sum() > 5
    assert np.all(tracks["vertex"][pu] == -1)
    # pile-up vertices are spread along the beam: their z0 is far larger than the primary tracks'
    assert np.median(np.abs(tracks["z0sig"][pu])) > 10 * np.median(np.abs(tracks["z0sig"][prompt]))


def test_particle_level_dataset_has_exact_prompt_impact_parameters(tmp_path):
    generate("flavour", 30, tmp_path, seed=4, shard_size=30, detector="none", show_progress=False)
    tracks = load(tmp_path)["tracks"]
    prompt = tracks["valid"] & (tracks["origin"] == PRIMARY)
    assert prompt.sum() > 50
    # unsmeared: prompt tracks carry their true impact parameter, 0 up to the primary-vertex tolerance (1 um)
    assert np.all(np.abs(tracks["d0"][prompt]) <= 1e-3)
    assert np.mean(tracks["d0"][prompt] == 0) > 0.5

"""Physics checks on small samples: each would fail if the generation, detector or labels were wrong."""

from __future__ import annotations

import numpy as np

from ai4hep.data.cards import get_card
from ai4hep.data.generate.truth import FROM_B, OTHER_SECONDARY, PRIMARY
from tests.conftest import load


def test_top_jet_mass_peaks_near_top_mass_and_qcd_falls(top_dir):
    jets = load(top_dir)["jets"]
    top, qcd = jets[jets["label"] == 1], jets[jets["label"] == 0]
    assert len(top) == len(qcd) == 120
    counts, edges = np.histogram(top["mass_sd"], bins=np.arange(0, 300, 20))
    peak = edges[np.argmax(counts)] + 10
    assert 150 <= peak <= 195, f"top soft-drop mass peaks at {peak} GeV"
    assert 160 < np.median(top["mass"]) < 195
    qcd_counts, _ = np.histogram(qcd["mass"], bins=[0, 60, 120, 180, 240])
    assert qcd_counts[1] > qcd_counts[2] > qcd_counts[3], f"QCD jet mass does not fall: {qcd_counts}"
    assert np.mean((qcd["mass_sd"] > 150) & (qcd["mass_sd"] < 200)) < 0.2
    # three-prong top jets: lower tau32 than QCD
    assert np.mean(top["tau32"]) < np.mean(qcd["tau32"]) - 0.1


def test_selection_window(top_dir):
    jets = load(top_dir)["jets"]
    assert np.all((jets["pt"] >= 550) & (jets["pt"] < 650))
    assert np.all(np.abs(jets["eta"]) < 2.0)


def test_w_jets_peak_near_w_mass(hlf5_dir):
    jets = load(hlf5_dir)["jets"]
    w = jets[jets["label"] == 2]
    z = jets[jets["label"] == 3]
    g = jets[jets["label"] == 0]
    assert 70 < np.median(w["mass_sd"]) < 90
    assert 82 < np.median(z["mass_sd"]) < 100
    assert np.median(g["mass_sd"]) < np.median(w["mass_sd"])
    assert np.median(w["d2_b1"]) < np.median(g["d2_b1"])  # two-prong W jets have lower D2


def test_quark_jets_have_fewer_constituents_than_gluon_jets(qg_dir):
    jets = load(qg_dir)["jets"]
    quark, gluon = jets[jets["label"] == 1], jets[jets["label"] == 0]
    assert np.mean(quark["n_consts"]) < 0.85 * np.mean(gluon["n_consts"])
    pz = jets["pt"] * np.sinh(jets["eta"])
    rapidity = 0.5 * np.log((jets["energy"] + pz) / (jets["energy"] - pz))
    assert np.all(np.abs(rapidity) < 1.7 + 1e-4)
    assert np.all((jets["pt"] >= 500) & (jets["pt"] < 550))


def test_b_jet_tracks_are_displaced(flavour_dir):
    arrays = load(flavour_dir)
    jets, tracks = arrays["jets"], arrays["tracks"]
    b, light = jets["flavour"] == 5, jets["flavour"] == 0
    assert b.sum() >= 20 and light.sum() >= 20
    sig_b = np.abs(tracks["d0sig"][b][tracks["valid"][b]])
    sig_l = np.abs(tracks["d0sig"][light][tracks["valid"][light]])
    assert np.mean(sig_b) > 3 * np.mean(sig_l)
    assert np.mean(sig_b > 3) > 4 * np.mean(sig_l > 3)
    # lifetime sign: b-hadron decay products sit in front of the primary vertex along the jet
    assert np.mean(tracks["d0"][b][tracks["valid"][b]] > 0) > 0.6


def test_track_origin_and_vertex_labels(flavour_dir):
    arrays = load(flavour_dir)
    jets, tracks = arrays["jets"], arrays["tracks"]
    valid = tracks["valid"]
    b, light = jets["flavour"] == 5, jets["flavour"] == 0
    origin_b = tracks["origin"][b][valid[b]]
    origin_l = tracks["origin"][light][valid[light]]
    assert np.mean(origin_b == FROM_B) > 0.2
    assert np.mean(origin_l == FROM_B) < 0.02
    assert np.mean(origin_l == PRIMARY) > 0.8
    from_b = (tracks["origin"] == FROM_B) & valid
    prompt = (tracks["origin"] == PRIMARY) & valid
    assert np.all(tracks["vertex"][from_b] >= 1)
    assert np.all(tracks["vertex"][prompt] == 0)
    # b-hadron tracks are far more significant than primary ones
    assert np.median(np.abs(tracks["d0sig"][from_b])) > 3 * np.median(np.abs(tracks["d0sig"][prompt]))


def _pair_mass(tracks: np.ndarray, m: float = 0.13957) -> float:
    p = np.stack(
        [
            tracks["pt"] * np.cos(tracks["phi"]),
            tracks["pt"] * np.sin(tracks["phi"]),
            tracks["pt"] * np.sinh(tracks["eta"]),
        ],
        1,
    )
    e = np.sqrt((p**2).sum(axis=1) + m**2)
    return float(np.sqrt(max(e.sum() ** 2 - (p.sum(axis=0) ** 2).sum(), 0.0)))


def test_k0s_decay_in_flight_in_flavour_jets(flavour_dir):
    """Long-lived strange hadrons decay in the tracker: opposite-charge "other secondary" track pairs from one vertex,
    taken as pions, peak at the K0S mass, and every stored track passes the flavour-tagging selection."""
    tracks = load(flavour_dir)["tracks"]
    masses = []
    for row in tracks:
        second = row[row["valid"] & (row["origin"] == OTHER_SECONDARY)]
        for vertex in np.unique(second["vertex"]):
            pair = second[second["vertex"] == vertex]
            if len(pair) == 2 and pair["charge"].sum() == 0:
                masses.append(_pair_mass(pair))
    assert len(masses) >= 3, f"only {len(masses)} V0 candidates"
    assert np.mean((np.array(masses) > 0.47) & (np.array(masses) < 0.53)) > 0.4, f"pair masses {sorted(masses)}"
    valid, cut = tracks["valid"], get_card("flavour").track_selection
    assert np.all(np.abs(tracks["d0"][valid]) < cut.abs_d0_max)
    assert np.all(np.abs(tracks["z0sintheta"][valid]) < cut.abs_z0sintheta_max)


def test_flavour_labels_match_hadron_counts(flavour_dir):
    jets = load(flavour_dir)["jets"]
    assert np.all((jets["flavour"] == 5) == (jets["n_bhad"] > 0))
    assert np.all(jets["label"][jets["flavour"] == 5] == 2)
    assert np.all(jets["label"][jets["flavour"] == 0] == 0)

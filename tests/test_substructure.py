"""Substructure definitions checked against brute force and FastJet's EnergyCorrelator."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from ai4hep.data.generate.substructure import ecf_e2_e3, substructure


def _toy_jet(n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    pt = rng.exponential(20, n) + 1
    eta = rng.normal(0, 0.2, n)
    phi = rng.normal(0, 0.2, n)
    return pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_matrix_ecf_equals_brute_force(beta):
    px, py, pz, e = _toy_jet(12, 1)
    pt = np.hypot(px, py)
    z = pt / pt.sum()
    y = 0.5 * np.log((e + pz) / (e - pz))
    phi = np.arctan2(py, px)

    def dr(i, j):
        dphi = (phi[i] - phi[j] + np.pi) % (2 * np.pi) - np.pi
        return np.hypot(y[i] - y[j], dphi)

    e2 = sum(z[i] * z[j] * dr(i, j) ** beta for i, j in combinations(range(12), 2))
    e3 = sum(z[i] * z[j] * z[k] * (dr(i, j) * dr(i, k) * dr(j, k)) ** beta for i, j, k in combinations(range(12), 3))
    got2, got3 = ecf_e2_e3(z, y, phi, (beta,))[beta]
    assert got2 == pytest.approx(e2, rel=1e-10)
    assert got3 == pytest.approx(e3, rel=1e-10)


def test_c2_d2_agree_with_fastjet_generalized_correlators():
    jets = [_toy_jet(n, s) for n, s in ((15, 2), (30, 3))]
    jet_of = np.concatenate([np.full(len(j[0]), i) for i, j in enumerate(jets)])
    px, py, pz, e = (np.concatenate([j[k] for j in jets]) for k in range(4))
    feats = substructure(jet_of, 2, px, py, pz, e, radius=0.8, hlf5=True)
    # M2 = 1e3/1e2 and N2 = 2e3/(1e2)^2 come from FastJet; C2 and D2 from our matrix ECFs: for angles=1 the
    # generalized 2-point function equals e2, so c1_b1 (ours) must match the FastJet normalisation of M2/N2 inputs
    assert np.all(feats["m2_b1"] > 0) and np.all(feats["n2_b1"] > 0)
    assert np.all(feats["c2"] == feats["c2_b1"])
    assert np.all(feats["d2"] == feats["d2_b1"])
    assert np.all(feats["multiplicity"] == [15, 30])
    assert np.all(feats["tau21"] <= 1.0 + 1e-9) and np.all(feats["tau32"] <= 1.0 + 1e-9)
    assert np.all(
        feats["mass_mmdt"]
        <= np.sqrt(
            np.maximum(
                np.bincount(jet_of, e) ** 2
                - np.bincount(jet_of, px) ** 2
                - np.bincount(jet_of, py) ** 2
                - np.bincount(jet_of, pz) ** 2,
                0,
            )
        )
        + 1e-6
    )


def test_native_helper_matches_python_interface(tmp_path):
    """The compiled batch helper (clustering, soft drop, N-subjettiness, generalised ECFs) and FastJet's Python
    interface give bitwise-identical datasets."""
    import os
    import subprocess
    import sys

    from ai4hep.data.generate import native
    from ai4hep.data.shards import generate

    assert native.library() is not None, "the native helper was not built (make installs it with g++)"
    fast = generate("hlf5", 25, tmp_path / "native", seed=8, shard_size=25, show_progress=False)
    code = (
        "from ai4hep.data.shards import generate; "
        f"print(generate('hlf5', 25, r'{tmp_path / 'python'}', seed=8, shard_size=25, show_progress=False)"
        ".dataset_hash)"
    )
    env = {**os.environ, "AI4HEP_NO_NATIVE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == fast.dataset_hash

"""Jet substructure: N-subjettiness, soft-drop mass and energy-correlation functions.

The compiled helper (native/fjbatch.cpp) computes all of them per batch of jets in C++. Without it, N-subjettiness and
soft drop use FastJet's vectorised Python interface (fjcontrib), the energy-correlation functions e2 and e3 an O(n^3)
matrix product in numpy, and the generalised ones of the hls4ml set (M2, N2) FastJet's EnergyCorrelatorGeneralized.
"""

from __future__ import annotations

import awkward as ak
import fastjet
import numpy as np

from ai4hep.data.generate import native
from ai4hep.data.schema import HLF5_FEATURES

SOFT_DROP_ZCUT = 0.1
SOFT_DROP_BETA = 0.0


def rapidity(pz: np.ndarray, e: np.ndarray) -> np.ndarray:
    return 0.5 * np.log(np.maximum(e + pz, 1e-12) / np.maximum(e - pz, 1e-12))


def ecf_e2_e3(z: np.ndarray, y: np.ndarray, phi: np.ndarray, betas: tuple[float, ...]) -> dict[float, tuple]:
    """Normalised e2 = sum z_i z_j R_ij^b and e3 = sum z_i z_j z_k (R_ij R_ik R_jk)^b (i<j<k), for each beta."""
    dphi = np.mod(phi[:, None] - phi[None, :] + np.pi, 2 * np.pi) - np.pi
    dr = np.sqrt((y[:, None] - y[None, :]) ** 2 + dphi**2)
    out = {}
    zz = np.outer(z, z)
    for beta in betas:
        theta = dr**beta if beta != 0 else (dr > 0).astype(float)
        np.fill_diagonal(theta, 0.0)
        e2 = 0.5 * float(np.sum(zz * theta))
        a = theta * z[None, :]  # a_ij = z_j theta_ij
        e3 = float(np.sum(z[:, None] * a * (a @ theta))) / 6.0
        out[beta] = (e2, e3)
    return out


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def _per_jet_awkward(counts: np.ndarray, px, py, pz, e) -> ak.Array:
    rec = ak.zip({"px": px, "py": py, "pz": pz, "E": e}, with_name="Momentum4D")
    return ak.unflatten(rec, counts)


def _native_groom(counts: np.ndarray, px, py, pz, e, radius: float, hlf5: bool, betas: tuple[float, ...]):
    lib = native.library()
    n_jets = len(counts)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    mass_sd, taus, ecfg = np.zeros(n_jets), np.zeros((n_jets, 3)), np.zeros((n_jets, 6))
    e2, e3, zlogz = np.zeros((n_jets, len(betas))), np.zeros((n_jets, len(betas))), np.zeros(n_jets)
    lib.ai4hep_substructure(
        native.f64(px),
        native.f64(py),
        native.f64(pz),
        native.f64(e),
        native.i64(offsets),
        n_jets,
        radius,
        SOFT_DROP_BETA,
        SOFT_DROP_ZCUT,
        int(hlf5),
        native.f64(mass_sd),
        native.f64(taus),
        native.f64(ecfg),
        len(betas),
        native.f64(np.asarray(betas, dtype=np.float64)),
        native.f64(e2),
        native.f64(e3),
        native.f64(zlogz),
    )
    correlators = {b: (e2[:, k], e3[:, k]) for k, b in enumerate(betas)}
    return mass_sd, taus, ecfg if hlf5 else None, correlators, zlogz


def _python_correlators(counts: np.ndarray, px, py, pz, e, betas: tuple[float, ...]):
    n_jets = len(counts)
    pt = np.hypot(px, py)
    y = rapidity(pz, e)
    phi = np.arctan2(py, px)
    stops = np.cumsum(counts)
    starts = stops - counts
    e2 = {b: np.zeros(n_jets) for b in betas}
    e3 = {b: np.zeros(n_jets) for b in betas}
    zlogz = np.zeros(n_jets)
    for j in range(n_jets):
        s = slice(starts[j], stops[j])
        z = pt[s] / pt[s].sum()
        for beta, (v2, v3) in ecf_e2_e3(z, y[s], phi[s], betas).items():
            e2[beta][j], e3[beta][j] = v2, v3
        zlogz[j] = float(np.sum(z * np.log(np.maximum(z, 1e-300))))
    return {b: (e2[b], e3[b]) for b in betas}, zlogz


def _python_groom(counts: np.ndarray, px, py, pz, e, radius: float, hlf5: bool, betas: tuple[float, ...]):
    n_jets = len(counts)
    jets = _per_jet_awkward(counts, px, py, pz, e)
    cs = fastjet.ClusterSequence(jets, fastjet.JetDefinition(fastjet.cambridge_algorithm, 10.0))
    taus = cs.njettiness(axes_definition="WTA_KT_Axes", njets=[1, 2, 3], beta=1.0, R0=radius)  # ATLAS's tau^wta
    taus = ak.to_numpy(taus).reshape(n_jets, 3)
    groomed = cs.exclusive_jets_softdrop_grooming(njets=1, beta=SOFT_DROP_BETA, symmetry_cut=SOFT_DROP_ZCUT, R0=radius)
    mass_sd = np.nan_to_num(ak.to_numpy(groomed.msoftdrop).astype(np.float64))
    correlators, zlogz = _python_correlators(counts, px, py, pz, e, betas)
    if not hlf5:
        return mass_sd, taus, None, correlators, zlogz

    def generalized(npoint: int, angles: int, beta: float) -> np.ndarray:
        values = cs.exclusive_jets_energy_correlator(
            njets=1, npoint=npoint, angles=angles, beta=beta, func="generalized", normalized=True
        )
        return np.asarray(ak.to_numpy(values), dtype=np.float64).reshape(-1)

    ecfg = np.stack([generalized(n, a, b) for b in (1.0, 2.0) for n, a in ((2, 1), (3, 1), (3, 2))], axis=1)
    return mass_sd, taus, ecfg, correlators, zlogz


def substructure(
    jet_of: np.ndarray,
    n_jets: int,
    px: np.ndarray,
    py: np.ndarray,
    pz: np.ndarray,
    e: np.ndarray,
    radius: float,
    hlf5: bool = False,
) -> dict[str, np.ndarray]:
    """Substructure per jet from its constituents (`jet_of` sorted ascending, every jet non-empty)."""
    out: dict[str, np.ndarray] = {}
    if n_jets == 0:
        names = ["tau1", "tau2", "tau3", "tau21", "tau32", "mass_sd", "c2", "d2", *(HLF5_FEATURES if hlf5 else ())]
        return {k: np.zeros(0) for k in names}
    counts = np.bincount(jet_of, minlength=n_jets)
    groom = _native_groom if native.library() is not None else _python_groom
    betas = (0.0, 1.0, 2.0) if hlf5 else (1.0,)
    mass_sd, taus, ecfg, correlators, zlogz = groom(counts, px, py, pz, e, radius, hlf5, betas)
    out["tau1"], out["tau2"], out["tau3"] = taus[:, 0], taus[:, 1], taus[:, 2]
    out["tau21"] = _safe_ratio(taus[:, 1], taus[:, 0])
    out["tau32"] = _safe_ratio(taus[:, 2], taus[:, 1])
    out["mass_sd"] = mass_sd
    e2 = {b: v[0] for b, v in correlators.items()}
    e3 = {b: v[1] for b, v in correlators.items()}
    out["c2"] = _safe_ratio(e3[1.0], e2[1.0] ** 2)
    out["d2"] = _safe_ratio(e3[1.0], e2[1.0] ** 3)
    if hlf5:
        out.update(_hlf5(ecfg, e2, e3, zlogz, mass_sd, counts))
    return out


def _hlf5(ecfg: np.ndarray, e2: dict, e3: dict, zlogz: np.ndarray, mass_sd: np.ndarray, multiplicity: np.ndarray):
    """The 16 features of the hls4ml jet dataset (arXiv:1804.06913); ecfg columns: 1e2, 1e3, 2e3 for beta 1 then 2."""
    f: dict[str, np.ndarray] = {"zlogz": zlogz}
    for b in (0.0, 1.0, 2.0):
        f[f"c1_b{int(b)}"] = e2[b]
    for k, b in enumerate((1.0, 2.0)):
        tag = f"b{int(b)}"
        f[f"c2_{tag}"] = _safe_ratio(e3[b], e2[b] ** 2)
        f[f"d2_{tag}"] = _safe_ratio(e3[b], e2[b] ** 3)
        f[f"d2_a1_{tag}"] = _safe_ratio(e3[1.0], e2[b] ** (3.0 / b))
        e2_1, e3_1, e3_2 = ecfg[:, 3 * k], ecfg[:, 3 * k + 1], ecfg[:, 3 * k + 2]
        f[f"m2_{tag}"] = _safe_ratio(e3_1, e2_1)
        f[f"n2_{tag}"] = _safe_ratio(e3_2, e2_1**2)
    f["mass_mmdt"] = mass_sd
    f["multiplicity"] = multiplicity.astype(np.float64)
    return f

"""Parametric detector response between the generator and jet clustering.

All numbers are documented in docs/detector.md with their sources. The response is vectorised over a whole batch of
events: no per-particle Python. With `enabled=False` (`--detector none`) the output is particle level: every visible
final-state particle, charged ones carrying their exact impact parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ai4hep.data.generate.pythia import EventBatch, Generator
from ai4hep.data.generate.ranges import concat_ranges
from ai4hep.data.generate.substructure import rapidity

INVISIBLE = (12, 14, 16)
# A calorimeter cell sits at most half its width (0.1 at most) from the particles binned into it: particles further
# than this beyond a rapidity window can make no object inside it.
WINDOW_MARGIN = 0.1
PV_Z_SPREAD_MM = 45.0  # length of the LHC luminous region (sigma), for pile-up vertices


class DetectorConfig(BaseModel):
    """The detector's numbers; `name` is recorded in every file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "atlas-like"
    enabled: bool = True
    # tracking (Delphes ATLAS card: ChargedHadronTrackingEfficiency, ChargedHadronMomentumSmearing)
    track_abs_eta_max: float = 2.5
    track_pt_min: float = 0.5
    # charged particles produced beyond the outermost pixel layer (ATLAS: 122.5 mm) are not reconstructed
    track_r_prod_max: float = 122.5
    track_eff_barrel: tuple[float, float] = (0.70, 0.95)  # |eta|<=1.5: (0.5<pT<1 GeV, pT>1 GeV)
    track_eff_endcap: tuple[float, float] = (0.60, 0.85)  # 1.5<|eta|<=2.5
    muon_eff: float = 0.99
    # sigma(pT)/pT = a (+) b*pT per |eta| region (0.5, 1.5, 2.5)
    track_pt_res_a: tuple[float, float, float] = (0.01, 0.015, 0.025)
    track_pt_res_b: tuple[float, float, float] = (1.5e-4, 3.1e-4, 5.5e-4)
    # impact parameters (ATLAS Run 2 with IBL, rounded): sigma = a (+) b / pT[GeV], mm
    d0_res: tuple[float, float] = (0.010, 0.080)
    z0sintheta_res: tuple[float, float] = (0.030, 0.100)
    # calorimeters (Delphes ATLAS card ECal/HCal): sigma(E)^2 = (a E)^2 + b^2 E + c^2
    ecal_res: tuple[float, float, float] = (0.0017, 0.101, 0.0)
    hcal_res: tuple[float, float, float] = (0.0302, 0.5205, 1.59)
    ecal_cell: float = 0.025  # eta x phi cell size for |eta| < 2.5; 0.1 beyond
    hcal_cell: float = 0.1
    calo_abs_eta_max: float = 4.9
    ecal_e_min: float = 0.5
    hcal_e_min: float = 1.0
    pileup_mu: float = Field(default=0.0, ge=0.0)


PRESETS = {
    "atlas-like": DetectorConfig(),
    "none": DetectorConfig(name="none", enabled=False),
}


@dataclass
class RecoObjects:
    """Reconstructed objects of a batch, grouped by event: tracks (particle-flow charged) and calorimeter cells."""

    offsets: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    charge: np.ndarray  # int8
    pid: np.ndarray  # int32: true id for tracks, 22 (ECAL cell) or 130 (HCAL cell)
    is_track: np.ndarray
    d0: np.ndarray  # mm, signed geometrically (perigee = d0 * (nx, ny))
    z0: np.ndarray  # mm
    d0err: np.ndarray
    z0err: np.ndarray
    nx: np.ndarray
    ny: np.ndarray
    truth: np.ndarray  # int64 index into the batch's flat arrays, -1 for cells and pile-up
    pileup: np.ndarray  # bool

    @property
    def n_events(self) -> int:
        return len(self.offsets) - 1


def _pt_eta_phi(px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(np.where(pt > 0, pz / np.where(pt > 0, pt, 1.0), np.sign(pz) * 1e3))
    return pt, eta, np.arctan2(py, px)


def ip_resolution(pt: np.ndarray, eta: np.ndarray, cfg: DetectorConfig) -> tuple[np.ndarray, np.ndarray]:
    """sigma(d0) and sigma(z0) in mm for tracks of given pT and eta."""
    pt = np.maximum(pt, 1e-3)
    d0err = np.hypot(cfg.d0_res[0], cfg.d0_res[1] / pt)
    z0err = np.hypot(cfg.z0sintheta_res[0], cfg.z0sintheta_res[1] / pt) * np.cosh(eta)  # / sin(theta)
    return d0err, z0err


@dataclass
class _Particles:
    evt: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    vz: np.ndarray
    pid: np.ndarray
    charge: np.ndarray
    truth: np.ndarray
    pileup: np.ndarray

    def take(self, idx: np.ndarray) -> _Particles:
        return _Particles(**{k: v[idx] for k, v in self.__dict__.items()})

    def within(self, abs_y_max: float | None) -> _Particles:
        """The particles that can make an object inside |y| < abs_y_max (all of them for None)."""
        if abs_y_max is None:
            return self
        return self.take(np.flatnonzero(_can_reach(self.pz, self.e, abs_y_max)))

    @staticmethod
    def concat(parts: list[_Particles]) -> _Particles:
        return _Particles(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in parts[0].__dict__})


def _can_reach(pz: np.ndarray, e: np.ndarray, abs_y_max: float) -> np.ndarray:
    """Particles that can make an object inside |y| < abs_y_max: a track keeps its rapidity, a cell sits within
    WINDOW_MARGIN of its particles' (massless cells: y = eta, and |y| <= |eta| for a massive particle)."""
    return np.abs(rapidity(pz, e)) < abs_y_max + WINDOW_MARGIN


def visible_final_state(
    batch: EventBatch, gen: Generator, pileup: bool = False, abs_y_max: float | None = None
) -> _Particles:
    idx = np.flatnonzero(batch.status > 0)
    apid = np.abs(batch.pid[idx])
    idx = idx[(apid != INVISIBLE[0]) & (apid != INVISIBLE[1]) & (apid != INVISIBLE[2])]
    if abs_y_max is not None:
        idx = idx[_can_reach(batch.pz[idx], batch.e[idx], abs_y_max)]
    n = len(idx)
    return _Particles(
        evt=batch.event_index[idx],
        px=batch.px[idx],
        py=batch.py[idx],
        pz=batch.pz[idx],
        e=batch.e[idx],
        vx=batch.vx[idx],
        vy=batch.vy[idx],
        vz=batch.vz[idx],
        pid=batch.pid[idx],
        charge=gen.charges(batch.pid[idx]),
        truth=np.full(n, -1, dtype=np.int64) if pileup else idx.astype(np.int64),
        pileup=np.full(n, pileup),
    )


class PileUp:
    """Overlays Poisson(mu) minimum-bias events drawn from a pool generated once per shard (like Delphes' pile-up
    file), each rotated in phi and displaced in z along the luminous region."""

    POOL_EVENTS = 200

    def __init__(self, mu: float, seed: int, common_settings: tuple[str, ...]) -> None:
        self.mu = mu
        self._seed = seed
        self._settings = (*common_settings, "SoftQCD:nonDiffractive = on")
        self._pool: _Particles | None = None
        self._pool_offsets: np.ndarray | None = None

    def _fill_pool(self) -> None:
        gen = Generator(self._settings, self._seed)
        batch = gen.next_batch(self.POOL_EVENTS)
        parts = visible_final_state(batch, gen, pileup=True)
        counts = np.bincount(parts.evt, minlength=batch.n_events)
        self._pool_offsets = np.concatenate([[0], np.cumsum(counts)])
        self._pool = parts

    def overlay(self, n_events: int, rng: np.random.Generator) -> _Particles | None:
        if self.mu <= 0:
            return None
        if self._pool is None:
            self._fill_pool()
        assert self._pool is not None and self._pool_offsets is not None
        n_pool = len(self._pool_offsets) - 1
        n_pu = rng.poisson(self.mu, size=n_events)
        host = np.repeat(np.arange(n_events), n_pu)
        which = rng.integers(0, n_pool, size=len(host))
        starts, stops = self._pool_offsets[which], self._pool_offsets[which + 1]
        sizes = stops - starts
        idx = concat_ranges(starts, sizes)
        parts = self._pool.take(idx)
        rot = np.repeat(rng.uniform(-np.pi, np.pi, size=len(host)), sizes)
        dz = np.repeat(rng.normal(0.0, PV_Z_SPREAD_MM, size=len(host)), sizes)
        c, s = np.cos(rot), np.sin(rot)
        parts.px, parts.py = c * parts.px - s * parts.py, s * parts.px + c * parts.py
        parts.vx, parts.vy = c * parts.vx - s * parts.vy, s * parts.vx + c * parts.vy
        parts.vz = parts.vz + dz
        parts.evt = np.repeat(host, sizes)
        return parts


def _track_efficiency(pt: np.ndarray, eta: np.ndarray, pid: np.ndarray, cfg: DetectorConfig) -> np.ndarray:
    barrel = np.abs(eta) <= 1.5
    high = pt > 1.0
    eff = np.where(
        barrel,
        np.where(high, cfg.track_eff_barrel[1], cfg.track_eff_barrel[0]),
        np.where(high, cfg.track_eff_endcap[1], cfg.track_eff_endcap[0]),
    )
    return np.where(np.abs(pid) == 13, cfg.muon_eff, eff)


def _track_pt_resolution(pt: np.ndarray, eta: np.ndarray, cfg: DetectorConfig) -> np.ndarray:
    region = np.digitize(np.abs(eta), [0.5, 1.5])
    a = np.asarray(cfg.track_pt_res_a)[region]
    b = np.asarray(cfg.track_pt_res_b)[region]
    return np.hypot(a, b * pt)


def _impact_parameters(p: _Particles) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Straight-line perigee w.r.t. the beam line through the primary vertex at the origin (no magnetic field)."""
    pt = np.hypot(p.px, p.py)
    ux, uy = p.px / pt, p.py / pt
    d0 = p.vx * uy - p.vy * ux
    along = p.vx * ux + p.vy * uy
    z0 = p.vz - along * p.pz / pt
    return d0, z0, uy, -ux


def _calorimeter(
    evt: np.ndarray,
    pid: np.ndarray,
    e: np.ndarray,
    cfg: DetectorConfig,
    rng: np.random.Generator,
    eta: np.ndarray,
    phi: np.ndarray,
) -> dict:
    """Bin energies into eta-phi cells per event, smear each cell, apply thresholds; cells are massless. Takes the
    three columns it needs, not all twelve of the particles."""
    inside = np.abs(eta) < cfg.calo_abs_eta_max
    if not inside.all():
        evt, pid, e, eta, phi = evt[inside], pid[inside], e[inside], eta[inside], phi[inside]
    apid = np.abs(pid)
    em = (apid == 22) | (apid == 11)
    fine = em & (np.abs(eta) < 2.5)
    size = np.where(fine, cfg.ecal_cell, np.where(em, 0.1, cfg.hcal_cell))
    n_phi = np.round(2 * np.pi / size).astype(np.int64)
    calo = np.where(fine, 0, np.where(em, 1, 2))
    ieta = np.floor(eta / size).astype(np.int64)
    iphi = np.floor((phi + np.pi) / (2 * np.pi) * n_phi).astype(np.int64) % n_phi
    key = ((evt.astype(np.int64) * 3 + calo) * 100_000 + (ieta + 50_000)) * 1_000 + iphi
    # np.unique(key, return_inverse=True) by hand, with a stable sort: the particles come grouped by event, which a
    # merge sort exploits (half np.unique's time), and each cell's numbers are read off one of its particles instead
    # of decoded from its key. The same cells, in the same order, with the same sums.
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    new_cell = np.diff(sorted_key, prepend=sorted_key[:1] - 1) != 0
    inverse = np.empty(len(key), dtype=np.int64)
    inverse[order] = np.cumsum(new_cell) - 1
    first = order[new_cell]  # a particle of each cell
    energy = np.bincount(inverse, weights=e, minlength=len(first))
    is_em = calo[first] < 2
    a, b, c = (np.where(is_em, e_, h_) for e_, h_ in zip(cfg.ecal_res, cfg.hcal_res, strict=True))
    sigma = np.sqrt((a * energy) ** 2 + b**2 * energy + c**2)
    energy = energy + rng.normal(size=len(energy)) * sigma
    keep = energy > np.where(is_em, cfg.ecal_e_min, cfg.hcal_e_min)
    energy, is_em = energy[keep], is_em[keep]
    kept = first[keep]  # a particle of each kept cell: its indices, size and event
    ceta = (ieta[kept] + 0.5) * size[kept]
    cphi = -np.pi + (iphi[kept] + 0.5) * 2 * np.pi / n_phi[kept]
    pt = energy / np.cosh(ceta)
    n = len(energy)
    zeros = np.zeros(n)
    return dict(
        evt=evt[kept],
        px=pt * np.cos(cphi),
        py=pt * np.sin(cphi),
        pz=pt * np.sinh(ceta),
        e=energy,
        charge=np.zeros(n, dtype=np.int8),
        pid=np.where(is_em, 22, 130).astype(np.int32),
        is_track=np.zeros(n, dtype=bool),
        d0=zeros,
        z0=zeros,
        d0err=zeros,
        z0err=zeros,
        nx=zeros,
        ny=zeros,
        truth=np.full(n, -1, dtype=np.int64),
        pileup=np.zeros(n, dtype=bool),
    )


def _tracks(
    p: _Particles, cfg: DetectorConfig, smear: bool, rng: np.random.Generator, pt: np.ndarray, eta: np.ndarray
) -> dict:
    d0, z0, nx, ny = _impact_parameters(p)
    d0err, z0err = ip_resolution(pt, eta, cfg)
    px, py, pz, e = p.px, p.py, p.pz, p.e
    if smear:
        scale = 1.0 + rng.normal(size=len(pt)) * _track_pt_resolution(pt, eta, cfg)
        scale = np.maximum(scale, 0.05)
        mass2 = np.maximum(e**2 - (px**2 + py**2 + pz**2), 0.0)
        px, py, pz = px * scale, py * scale, pz * scale
        e = np.sqrt(px**2 + py**2 + pz**2 + mass2)
        d0 = d0 + rng.normal(size=len(pt)) * d0err
        z0 = z0 + rng.normal(size=len(pt)) * z0err
    return dict(
        evt=p.evt,
        px=px,
        py=py,
        pz=pz,
        e=e,
        charge=p.charge,
        pid=p.pid,
        is_track=np.ones(len(pt), dtype=bool),
        d0=d0,
        z0=z0,
        d0err=d0err,
        z0err=z0err,
        nx=nx,
        ny=ny,
        truth=p.truth,
        pileup=p.pileup,
    )


def _group(pieces: list[dict], n_events: int) -> RecoObjects:
    merged = {k: np.concatenate([piece[k] for piece in pieces]) for k in pieces[0]}
    evt = merged.pop("evt")
    order = np.argsort(evt, kind="stable")
    counts = np.bincount(evt, minlength=n_events)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return RecoObjects(offsets=offsets, **{k: v[order] for k, v in merged.items()})


def reconstruct(
    batch: EventBatch,
    gen: Generator,
    cfg: DetectorConfig,
    rng: np.random.Generator,
    pileup: PileUp | None = None,
    abs_y_max: float | None = None,
) -> RecoObjects:
    """Turn a batch of generated events into reconstructed objects, ready for clustering.

    With `abs_y_max`, only objects inside |y| < abs_y_max are wanted (the clustering window): particles that cannot
    make one are left out before the response (12% of the detector's time for `top`)."""
    parts = visible_final_state(batch, gen, abs_y_max=abs_y_max)
    if pileup is not None:
        extra = pileup.overlay(batch.n_events, rng)
        if extra is not None:
            parts = _Particles.concat([parts, extra.within(abs_y_max)])
    charged = parts.charge != 0
    pt, eta, phi = _pt_eta_phi(parts.px, parts.py, parts.pz)  # once: every step below takes rows of these
    if not cfg.enabled:
        ch, ne = np.flatnonzero(charged), np.flatnonzero(~charged)
        trk = _tracks(parts.take(ch), cfg, smear=False, rng=rng, pt=pt[ch], eta=eta[ch])
        neu = _tracks(parts.take(ne), cfg, smear=False, rng=rng, pt=pt[ne], eta=eta[ne])
        neu["is_track"][:] = False
        for k in ("d0", "z0", "d0err", "z0err"):
            neu[k] = np.zeros_like(neu[k])
        return _group([trk, neu], batch.n_events)
    in_tracker = charged & (np.abs(eta) < cfg.track_abs_eta_max) & (pt > cfg.track_pt_min)
    in_tracker &= parts.vx**2 + parts.vy**2 < cfg.track_r_prod_max**2
    found = in_tracker & (rng.random(len(pt)) < _track_efficiency(pt, eta, parts.pid, cfg))
    is_muon = np.abs(parts.pid) == 13
    to_calo = ~found & ~is_muon
    f, c = np.flatnonzero(found), np.flatnonzero(to_calo)
    trk = _tracks(parts.take(f), cfg, smear=True, rng=rng, pt=pt[f], eta=eta[f])
    cells = _calorimeter(parts.evt[c], parts.pid[c], parts.e[c], cfg, rng, eta=eta[c], phi=phi[c])
    return _group([trk, cells], batch.n_events)

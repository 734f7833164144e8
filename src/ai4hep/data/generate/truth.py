"""Truth labels from the generator record: resonance / parton matching, heavy-flavour hadrons, track origins."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ai4hep.data.generate.pythia import EventBatch
from ai4hep.data.generate.ranges import concat_ranges

# Track-origin classes, in the order of the dataset documentation.
ORIGIN_CLASSES = ("from_b", "from_c", "primary", "other_secondary", "pileup")
FROM_B, FROM_C, PRIMARY, OTHER_SECONDARY, PILEUP = range(5)
# Production vertices closer than this (mm) count as one vertex, and within it of the origin as primary:
# far below any tracker's resolution, far above the displacement of strong and electromagnetic decays.
VERTEX_TOLERANCE_MM = 1e-3
HEAVY_HADRON_PT_MIN = 5.0  # GeV, as in ATLAS's cone labelling

_QUARK_CATEGORY = {1, 2, 3, 4, 5}
_CHARGED_LEPTONS = {11, 13, 15}
_NEUTRINOS = {12, 14, 16}
_RESONANCES = {6, 23, 24, 25}


def contains_quark(pid: np.ndarray, quark: int) -> np.ndarray:
    """Hadrons whose id digits hold `quark`, quarkonia (q qbar of that flavour) excluded. The digits are taken of the
    hadrons only (their integer divisions over the whole record cost 0.6% of the generation for `flavour`)."""
    apid = np.abs(pid)
    hadron = np.flatnonzero((apid > 100) & (apid < 1_000_000))
    a = apid[hadron]
    q1, q2, q3 = (a // 1000) % 10, (a // 100) % 10, (a // 10) % 10
    onium = (q1 == 0) & (q2 == quark) & (q3 == quark)
    out = np.zeros(len(pid), dtype=bool)
    out[hadron] = ((q1 == quark) | (q2 == quark) | (q3 == quark)) & ~onium
    return out


def weakly_decaying(batch: EventBatch, quark: int) -> np.ndarray:
    """Boolean mask over the batch: hadrons with `quark` none of whose daughters carries the same flavour."""
    has_q = contains_quark(batch.pid, quark)
    candidates = np.flatnonzero(has_q)
    result = has_q.copy()
    if len(candidates) == 0:
        return result
    evt_start = batch.offsets[batch.event_index[candidates]]
    d1 = batch.daughter1[candidates].astype(np.int64)
    d2 = batch.daughter2[candidates].astype(np.int64)
    d2 = np.where(d2 < d1, d1, d2)  # single daughter (d2 = 0) or unordered pair: look at d1..max
    sizes = np.where(d1 > 0, d2 - d1 + 1, 0)
    owner = np.repeat(np.arange(len(candidates)), sizes)
    daughters = concat_ranges(d1 + evt_start, sizes)
    bad = np.zeros(len(candidates), dtype=bool)
    np.logical_or.at(bad, owner, has_q[daughters])
    result[candidates[bad]] = False
    return result


def _delta_r(eta1: np.ndarray, phi1: np.ndarray, eta2: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    dphi = np.mod(phi1 - phi2 + np.pi, 2 * np.pi) - np.pi
    return np.hypot(eta1 - eta2, dphi)


def _eta_phi(batch: EventBatch, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    px, py, pz = batch.px[idx], batch.py[idx], batch.pz[idx]
    pt = np.hypot(px, py)
    return pt, np.arcsinh(pz / np.maximum(pt, 1e-9)), np.arctan2(py, px)


def ancestry_flags(batch: EventBatch, truth: np.ndarray, is_b: np.ndarray, is_c: np.ndarray):
    """For each particle index, whether a weakly decaying b (c) hadron is among its mother1 ancestors."""
    from_b = np.zeros(len(truth), dtype=bool)
    from_c = np.zeros(len(truth), dtype=bool)
    starts = batch.offsets[batch.event_index[truth]] if len(truth) else np.zeros(0, dtype=np.int64)
    current = truth.copy()
    alive = np.ones(len(truth), dtype=bool)
    while alive.any():
        cur = current[alive]
        mother_local = batch.mother1[cur].astype(np.int64)
        stop = mother_local <= 0
        mother = mother_local + starts[alive]
        mother = np.where(stop, cur, mother)
        idx_alive = np.flatnonzero(alive)
        from_b[idx_alive] |= is_b[mother] & ~stop
        from_c[idx_alive] |= is_c[mother] & ~stop
        current[idx_alive] = mother
        alive[idx_alive[stop]] = False
    return from_b, from_c


def track_origins(
    batch: EventBatch, truth: np.ndarray, pileup: np.ndarray, is_b: np.ndarray, is_c: np.ndarray
) -> np.ndarray:
    """Origin class per track (see ORIGIN_CLASSES); `truth` is -1 for pile-up tracks."""
    origin = np.full(len(truth), PILEUP, dtype=np.int8)
    hard = np.flatnonzero(~pileup & (truth >= 0))
    idx = truth[hard]
    from_b, from_c = ancestry_flags(batch, idx, is_b, is_c)
    displaced = np.sqrt(batch.vx[idx] ** 2 + batch.vy[idx] ** 2 + batch.vz[idx] ** 2) > VERTEX_TOLERANCE_MM
    origin[hard] = np.where(from_b, FROM_B, np.where(from_c, FROM_C, np.where(displaced, OTHER_SECONDARY, PRIMARY)))
    return origin


def vertex_indices(batch: EventBatch, truth: np.ndarray, pileup: np.ndarray, jet_of: np.ndarray) -> np.ndarray:
    """Truth vertex index per track, within its jet: 0 for the primary vertex, 1.. for each displaced production
    vertex in order of appearance, -1 for pile-up."""
    out = np.full(len(truth), -1, dtype=np.int16)
    hard = np.flatnonzero(~pileup & (truth >= 0))
    idx = truth[hard]
    pos = np.stack([batch.vx[idx], batch.vy[idx], batch.vz[idx]], axis=1)
    key = np.round(pos / VERTEX_TOLERANCE_MM).astype(np.int64)
    prompt = np.linalg.norm(pos, axis=1) <= VERTEX_TOLERANCE_MM
    out[hard[prompt]] = 0
    disp = hard[~prompt]
    if len(disp):
        rows = np.concatenate([jet_of[disp][:, None], key[~prompt]], axis=1)
        _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        vertex_jet = jet_of[disp][first]
        order = np.lexsort((first, vertex_jet))  # per jet, by order of first appearance
        jet_sorted = vertex_jet[order]
        local = np.empty(len(first), dtype=np.int64)
        local[order] = np.arange(len(first)) - np.searchsorted(jet_sorted, jet_sorted, side="left")
        out[disp] = (local[inverse] + 1).astype(np.int16)
    return out


@dataclass
class ResonanceCandidate:
    eta: np.ndarray  # resonance first, then its visible decay products
    phi: np.ndarray
    signature: Counter


def _local_daughters(d1: int, d2: int) -> tuple[int, ...] | range:
    """Local indices of a particle's daughters from Pythia's (daughter1, daughter2) pair."""
    if d1 <= 0:
        return ()
    if d2 <= 0 or d2 == d1:
        return (d1,)
    if d2 < d1:
        return (d1, d2)
    return range(d1, d2 + 1)


def _daughters(batch: EventBatch, i: int, start: int) -> list[int]:
    return [start + d for d in _local_daughters(int(batch.daughter1[i]), int(batch.daughter2[i]))]


def _last_copy(batch: EventBatch, i: int, start: int) -> int:
    """Follows the first daughter with the same id down to the last copy (~10 steps per top quark)."""
    pid = batch.pid
    while True:
        code = pid[i]
        for d in _local_daughters(int(batch.daughter1[i]), int(batch.daughter2[i])):
            if pid[start + d] == code:
                i = start + d
                break
        else:
            return i


def _decay_products(batch: EventBatch, i: int, start: int, out: list[int]) -> None:
    for d in _daughters(batch, _last_copy(batch, i, start), start):
        apid = abs(int(batch.pid[d]))
        if apid in _RESONANCES:
            _decay_products(batch, d, start, out)
        else:
            out.append(d)


def _category(apid: int) -> str:
    if apid in _QUARK_CATEGORY:
        return "q"
    if apid == 21:
        return "g"
    if apid in _CHARGED_LEPTONS:
        return "l"
    if apid in _NEUTRINOS:
        return "v"
    return "x"


def expected_signature(products: str) -> Counter:
    return Counter("q" if c in "bcq" else c for c in products)


def resonance_candidates(
    batch: EventBatch, event: int, pdg: int, want: Counter | None = None
) -> list[ResonanceCandidate]:
    """The event's resonances of id +-pdg with their decay products; with `want`, only those whose decay has that
    signature (the others can match no jet, and their directions are not computed)."""
    start, stop = int(batch.offsets[event]), int(batch.offsets[event + 1])
    pid = batch.pid[start:stop]
    mother = batch.mother1
    # Walk each chain of copies from its first member only: a copy's mother is its previous copy (a resonance never
    # splits into two of itself), and every member leads to the same last copy.
    cands = []
    seen_last: set[int] = set()
    for local in np.flatnonzero(np.abs(pid) == pdg).tolist():
        m = int(mother[start + local])
        if m > 0 and pid[m] == pid[local]:
            continue
        last = _last_copy(batch, start + local, start)
        if last in seen_last:
            continue
        seen_last.add(last)
        products: list[int] = []
        _decay_products(batch, last, start, products)
        signature = Counter(_category(abs(int(batch.pid[d]))) for d in products)
        if want is not None and signature != want:
            continue
        visible = [d for d in products if abs(int(batch.pid[d])) not in _NEUTRINOS]
        _, eta, phi = _eta_phi(batch, np.array([last, *visible], dtype=np.int64))
        cands.append(ResonanceCandidate(eta=eta, phi=phi, signature=signature))
    return cands


def match_resonance(
    candidates: list[ResonanceCandidate], jet_eta: float, jet_phi: float, want: Counter, radius: float
) -> bool:
    """Whether one of the event's resonance candidates, with the wanted decay signature (expected_signature), lies
    inside the jet entirely."""
    for cand in candidates:
        if cand.signature != want:
            continue
        if np.all(_delta_r(cand.eta, cand.phi, jet_eta, jet_phi) < radius):
            return True
    return False


def match_parton(batch: EventBatch, event: int, jet_eta: float, jet_phi: float, kind: str, radius: float) -> bool:
    start, stop = int(batch.offsets[event]), int(batch.offsets[event + 1])
    local = np.flatnonzero(batch.status[start:stop] == -23)
    idx = start + local
    apid = np.abs(batch.pid[idx])
    want = np.isin(apid, list(_QUARK_CATEGORY)) if kind == "q" else apid == 21
    idx = idx[want]
    if len(idx) == 0:
        return False
    _, eta, phi = _eta_phi(batch, idx)
    return bool(np.any(_delta_r(eta, phi, jet_eta, jet_phi) < radius))


def hadron_flavour(
    batch: EventBatch,
    jet_evt: np.ndarray,
    jet_eta: np.ndarray,
    jet_phi: np.ndarray,
    is_b: np.ndarray,
    is_c: np.ndarray,
    radius: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ATLAS-style cone labels: 5 if a weakly decaying b hadron (pT > 5 GeV) lies within dR < radius, else 4 for c,
    else 0; also the numbers of such b and c hadrons per jet."""
    counts = {}
    evt_all = batch.event_index
    for code, mask in ((5, is_b), (4, is_c)):
        had = np.flatnonzero(mask)
        pt, eta, phi = _eta_phi(batch, had)
        keep = pt > HEAVY_HADRON_PT_MIN
        had_evt, eta, phi = evt_all[had[keep]], eta[keep], phi[keep]  # ascending in event
        # every (jet, hadron of the jet's event) pair at once
        first = np.searchsorted(had_evt, jet_evt, side="left")
        sizes = np.searchsorted(had_evt, jet_evt, side="right") - first
        jet = np.repeat(np.arange(len(jet_evt)), sizes)
        hadron = concat_ranges(first, sizes)
        inside = _delta_r(eta[hadron], phi[hadron], jet_eta[jet], jet_phi[jet]) < radius
        counts[code] = np.bincount(jet[inside], minlength=len(jet_evt)).astype(np.int8)
    flavour = np.where(counts[5] > 0, 5, np.where(counts[4] > 0, 4, 0)).astype(np.int8)
    return flavour, counts[5], counts[4]

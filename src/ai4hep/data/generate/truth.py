"""Truth labels from the generator record: resonance / parton matching, heavy-flavour hadrons, track origins."""

from __future__ import annotations

import numpy as np

from ai4hep.data.generate.pythia import EventBatch
from ai4hep.data.generate.ranges import concat_ranges
from ai4hep.data.labels import FROM_B, FROM_C, HADRON_LABEL_ID, ORIGINS, OTHER_SECONDARY, PILEUP, PRIMARY

# Track-origin classes (ai4hep.data.labels): the codes written to the `origin` field.
ORIGIN_CLASSES = ORIGINS
# Production vertices closer than this (mm) count as one vertex, and within it of the origin as primary:
# far below any tracker's resolution, far above the displacement of strong and electromagnetic decays.
VERTEX_TOLERANCE_MM = 1e-3
HEAVY_HADRON_PT_MIN = 5.0  # GeV, as in ATLAS's cone labelling

_RESONANCE_IDS = (6, 23, 24, 25)  # t, Z, W, H: followed down to their decay products


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
    owner, daughters = daughter_lists(batch, candidates)
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


# Decay-product categories of a resonance's signature, by |pdg id|: q (d u s c b), g, l (e mu tau), v (neutrinos), x.
SIGNATURE_CATEGORIES = "qglvx"
_CATEGORY_OF = np.full(32, 4, dtype=np.int64)
_CATEGORY_OF[[1, 2, 3, 4, 5]] = 0
_CATEGORY_OF[21] = 1
_CATEGORY_OF[[11, 13, 15]] = 2
_CATEGORY_OF[[12, 14, 16]] = 3


def expected_signature(products: str) -> np.ndarray:
    """Counts of each of SIGNATURE_CATEGORIES in a card's decay string ("bqq": three quarks)."""
    return np.array([sum(("q" if c in "bcq" else c) == k for c in products) for k in SIGNATURE_CATEGORIES])


def _categories(pid: np.ndarray) -> np.ndarray:
    return _CATEGORY_OF[np.minimum(np.abs(pid.astype(np.int64)), len(_CATEGORY_OF) - 1)]  # the last slot is x


def daughter_lists(batch: EventBatch, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every daughter of each particle idx[k] (global indices), as (k, daughter) pairs in Pythia's order: none for
    daughter1 <= 0, one for daughter2 <= 0 or equal, the pair (d1, d2) for d2 < d1, else the range d1..d2."""
    d1 = batch.daughter1[idx].astype(np.int64)
    d2 = batch.daughter2[idx].astype(np.int64)
    single = (d2 <= 0) | (d2 == d1)
    pair = ~single & (d2 < d1)
    sizes = np.where(d1 <= 0, 0, np.where(single, 1, np.where(pair, 2, d2 - d1 + 1)))
    owner = np.repeat(np.arange(len(idx)), sizes)
    position = concat_ranges(np.zeros(len(idx), dtype=np.int64), sizes)
    local = np.where(pair[owner] & (position == 1), d2[owner], d1[owner] + position)
    return owner, batch.offsets[batch.event_index[idx]][owner] + local


def last_copies(batch: EventBatch, idx: np.ndarray) -> np.ndarray:
    """The last copy of each particle: follows the first daughter with the same id, for all particles at once
    (~10 steps for a top quark; a per-particle walk in Python cost ~1% of the generation of `top` and `hlf5`)."""
    current = np.asarray(idx, dtype=np.int64).copy()
    todo = np.arange(len(current))
    while len(todo):
        owner, daughters = daughter_lists(batch, current[todo])
        same = np.flatnonzero(batch.pid[daughters] == batch.pid[current[todo]][owner])
        moved, first = np.unique(owner[same], return_index=True)  # the first daughter with the same id
        current[todo[moved]] = daughters[same[first]]
        todo = todo[moved]
    return current


def _pairs_by_event(jet_evt: np.ndarray, item_evt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (jet, item) pair of the same event; item_evt ascending."""
    first = np.searchsorted(item_evt, jet_evt, side="left")
    sizes = np.searchsorted(item_evt, jet_evt, side="right") - first
    return np.repeat(np.arange(len(jet_evt)), sizes), concat_ranges(first, sizes)


def resonance_matches(
    batch: EventBatch,
    jet_evt: np.ndarray,
    jet_eta: np.ndarray,
    jet_phi: np.ndarray,
    pdg: int,
    want: np.ndarray,
    radius: float,
) -> np.ndarray:
    """Per jet: whether a resonance of id +-pdg in its event, with the decay signature `want` (expected_signature),
    lies inside the jet entirely: the resonance (its last copy) and its visible decay products, resonances in the
    decay followed down to their own products, all within dR < radius of the jet axis."""
    out = np.zeros(len(jet_evt), dtype=bool)
    found = np.flatnonzero(np.abs(batch.pid) == pdg)
    found = found[np.isin(batch.event_index[found], jet_evt)]
    if len(found) == 0:
        return out
    # each chain of copies from its first member: a copy's mother is its previous copy
    mother = batch.mother1[found].astype(np.int64)
    mother_global = batch.offsets[batch.event_index[found]] + np.maximum(mother, 0)
    first_copy = found[~((mother > 0) & (batch.pid[mother_global] == batch.pid[found]))]
    last = np.unique(last_copies(batch, first_copy))  # ascending, so grouped by event
    owners, products = [], []
    front_owner, front = np.arange(len(last)), last
    while len(front):
        owner, daughters = daughter_lists(batch, last_copies(batch, front))
        owner = front_owner[owner]
        resonance = np.isin(np.abs(batch.pid[daughters]), _RESONANCE_IDS)
        owners.append(owner[~resonance])
        products.append(daughters[~resonance])
        front_owner, front = owner[resonance], daughters[resonance]
    owner, product = np.concatenate(owners), np.concatenate(products)
    category = _categories(batch.pid[product])
    n_cat = len(SIGNATURE_CATEGORIES)
    counts = np.bincount(owner * n_cat + category, minlength=n_cat * len(last)).reshape(len(last), n_cat)
    good = np.flatnonzero((counts == want[None, :]).all(axis=1))
    if len(good) == 0:
        return out
    # the points that must lie inside: each good candidate's last copy, then its visible products
    visible = np.isin(owner, good) & (category != SIGNATURE_CATEGORIES.index("v"))
    point_owner = np.concatenate([good, owner[visible]])
    point = np.concatenate([last[good], product[visible]])
    order = np.argsort(point_owner, kind="stable")
    point_owner, point = point_owner[order], point[order]
    _, eta, phi = _eta_phi(batch, point)
    n_points = np.bincount(point_owner, minlength=len(last))[good]
    point_start = np.concatenate([[0], np.cumsum(n_points)[:-1]])
    jet, cand = _pairs_by_event(jet_evt, batch.event_index[last[good]])
    pair = np.repeat(np.arange(len(jet)), n_points[cand])
    at = concat_ranges(point_start[cand], n_points[cand])
    outside = ~(_delta_r(eta[at], phi[at], jet_eta[jet[pair]], jet_phi[jet[pair]]) < radius)
    contained = np.bincount(pair[outside], minlength=len(jet)) == 0
    out[jet[contained]] = True
    return out


def parton_matches(
    batch: EventBatch, jet_evt: np.ndarray, jet_eta: np.ndarray, jet_phi: np.ndarray, kind: str, radius: float
) -> np.ndarray:
    """Per jet: whether an outgoing parton of the hard process (status -23) of the wanted kind (q: d u s c b; g)
    lies within dR < radius of the jet axis."""
    parton = np.flatnonzero(batch.status == -23)
    apid = np.abs(batch.pid[parton])
    parton = parton[(apid >= 1) & (apid <= 5) if kind == "q" else apid == 21]
    _, eta, phi = _eta_phi(batch, parton)
    jet, item = _pairs_by_event(jet_evt, batch.event_index[parton])
    inside = _delta_r(eta[item], phi[item], jet_eta[jet], jet_phi[jet]) < radius
    return np.bincount(jet[inside], minlength=len(jet_evt)) > 0


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
    b, c, light = HADRON_LABEL_ID["b"], HADRON_LABEL_ID["c"], HADRON_LABEL_ID["light"]
    for code, mask in ((b, is_b), (c, is_c)):
        had = np.flatnonzero(mask)
        pt, eta, phi = _eta_phi(batch, had)
        keep = pt > HEAVY_HADRON_PT_MIN
        had_evt, eta, phi = evt_all[had[keep]], eta[keep], phi[keep]  # ascending in event
        # every (jet, hadron of the jet's event) pair at once
        jet, hadron = _pairs_by_event(jet_evt, had_evt)
        inside = _delta_r(eta[hadron], phi[hadron], jet_eta[jet], jet_phi[jet]) < radius
        counts[code] = np.bincount(jet[inside], minlength=len(jet_evt)).astype(np.int8)
    flavour = np.where(counts[b] > 0, b, np.where(counts[c] > 0, c, light)).astype(np.int8)
    return flavour, counts[b], counts[c]

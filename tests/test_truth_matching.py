"""The vectorised truth matching (truth.resonance_matches / parton_matches) against a plain per-event walk of the
generator record, on real Pythia events and on the jets the pipeline clusters from them."""

from __future__ import annotations

import numpy as np
import pytest

from ai4hep.data.cards import get_card
from ai4hep.data.generate import truth
from ai4hep.data.generate.detector import PRESETS, reconstruct
from ai4hep.data.generate.jets import cluster_and_select, clustering_window
from ai4hep.data.generate.pythia import EventBatch, Generator, pythia_seed

RESONANCE_IDS = {6, 23, 24, 25}
CATEGORY = {**dict.fromkeys((1, 2, 3, 4, 5), "q"), 21: "g", **dict.fromkeys((11, 13, 15), "l")}
CATEGORY.update(dict.fromkeys((12, 14, 16), "v"))


def _daughters(batch: EventBatch, i: int, start: int) -> list[int]:
    d1, d2 = int(batch.daughter1[i]), int(batch.daughter2[i])
    if d1 <= 0:
        return []
    if d2 <= 0 or d2 == d1:
        return [start + d1]
    if d2 < d1:
        return [start + d1, start + d2]
    return [start + d for d in range(d1, d2 + 1)]


def _last_copy(batch: EventBatch, i: int, start: int) -> int:
    while True:
        same = [d for d in _daughters(batch, i, start) if batch.pid[d] == batch.pid[i]]
        if not same:
            return i
        i = same[0]


def _products(batch: EventBatch, i: int, start: int) -> list[int]:
    out = []
    for d in _daughters(batch, _last_copy(batch, i, start), start):
        out += _products(batch, d, start) if abs(int(batch.pid[d])) in RESONANCE_IDS else [d]
    return out


def _direction(batch: EventBatch, i: int) -> tuple[float, float]:
    pt = float(np.hypot(batch.px[i], batch.py[i]))
    return float(np.arcsinh(batch.pz[i] / max(pt, 1e-9))), float(np.arctan2(batch.py[i], batch.px[i]))


def _inside(batch: EventBatch, i: int, eta: float, phi: float, radius: float) -> bool:
    e, p = _direction(batch, i)
    dphi = (p - phi + np.pi) % (2 * np.pi) - np.pi
    return bool(np.hypot(e - eta, dphi) < radius)


def reference_resonance(batch: EventBatch, event: int, eta: float, phi: float, pdg: int, products: str, r: float):
    """Walks the event's record particle by particle, as a reader of Pythia's documentation would."""
    start, stop = int(batch.offsets[event]), int(batch.offsets[event + 1])
    want = sorted("q" if c in "bcq" else c for c in products)
    lasts = {_last_copy(batch, i, start) for i in range(start, stop) if abs(int(batch.pid[i])) == pdg}
    for last in lasts:
        decay = _products(batch, last, start)
        if sorted(CATEGORY.get(abs(int(batch.pid[d])), "x") for d in decay) != want:
            continue
        visible = [d for d in decay if CATEGORY.get(abs(int(batch.pid[d]))) != "v"]
        if all(_inside(batch, i, eta, phi, r) for i in (last, *visible)):
            return True
    return False


def reference_parton(batch: EventBatch, event: int, eta: float, phi: float, kind: str, r: float) -> bool:
    start, stop = int(batch.offsets[event]), int(batch.offsets[event + 1])
    ok = {1, 2, 3, 4, 5} if kind == "q" else {21}
    return any(
        batch.status[i] == -23 and abs(int(batch.pid[i])) in ok and _inside(batch, i, eta, phi, r)
        for i in range(start, stop)
    )


def _events_and_jets(name: str, process: str, n_events: int):
    card = get_card(name)
    p = [q.name for q in card.processes].index(process)
    gen = Generator((*card.common_settings, *card.processes[p].settings), pythia_seed(7, 0, p))
    batch = gen.next_batch(n_events)
    reco = reconstruct(batch, gen, PRESETS["atlas-like"], np.random.default_rng(1), abs_y_max=clustering_window(card))
    return card, card.processes[p], batch, cluster_and_select(reco, card)


@pytest.mark.parametrize(
    ("name", "process"),
    [("jetclass", "t_blv"), ("jetclass", "h_4q"), ("jetclass", "h_lvqq"), ("hlf5", "t_bqq"), ("hlf5", "w_qq")],
)
def test_resonance_matching_equals_a_walk_of_the_record(name, process):
    card, proc, batch, jets = _events_and_jets(name, process, 30)
    t = proc.truth
    # the clustered jets, and for every event axes on each resonance and shifted off it, so both answers occur
    evt, eta, phi = [jets.evt], [jets.eta], [jets.phi]
    for i in np.flatnonzero(np.abs(batch.pid) == t.pdg):
        e, p = _direction(batch, i)
        for shift in (0.0, 0.3, 0.7):
            evt.append([batch.event_index[i]])
            eta.append([e + shift])
            phi.append([p - shift])
    evt, eta, phi = np.concatenate(evt).astype(np.int64), np.concatenate(eta), np.concatenate(phi)
    got = truth.resonance_matches(batch, evt, eta, phi, t.pdg, truth.expected_signature(t.products), card.jets.radius)
    want = [
        reference_resonance(batch, int(ev), et, ph, t.pdg, t.products, card.jets.radius)
        for ev, et, ph in zip(evt, eta, phi, strict=True)
    ]
    assert got.tolist() == want
    assert 0 < sum(want) < len(want)  # both outcomes tested


@pytest.mark.parametrize(("name", "process"), [("hlf5", "gluon"), ("hlf5", "quark"), ("qg", "z_quark")])
def test_parton_matching_equals_a_walk_of_the_record(name, process):
    card, proc, batch, jets = _events_and_jets(name, process, 40)
    rng = np.random.default_rng(3)
    evt = np.concatenate([jets.evt, rng.integers(0, batch.n_events, 60)]).astype(np.int64)
    eta = np.concatenate([jets.eta, rng.uniform(-2, 2, 60)])
    phi = np.concatenate([jets.phi, rng.uniform(-np.pi, np.pi, 60)])
    r = card.jets.radius
    got = truth.parton_matches(batch, evt, eta, phi, proc.truth.parton, r)
    want = [
        reference_parton(batch, int(ev), et, ph, proc.truth.parton, r) for ev, et, ph in zip(evt, eta, phi, strict=True)
    ]
    assert got.tolist() == want
    assert 0 < sum(want) < len(want)


@pytest.mark.parametrize("quark", [4, 5])
def test_weakly_decaying_hadrons_equal_a_walk_of_the_record(quark):
    """A heavy hadron decays weakly when none of its daughters (every daughter, in Pythia's d1 / d2 conventions)
    carries its flavour: b -> c -> s chains give both answers in the batch."""
    _, _, batch, _ = _events_and_jets("flavour", "heavy_flavour_dijet", 30)
    has_q = truth.contains_quark(batch.pid, quark)
    want = np.zeros(len(batch.pid), dtype=bool)
    for event in range(batch.n_events):
        start = int(batch.offsets[event])
        for i in range(start, int(batch.offsets[event + 1])):
            if has_q[i]:
                want[i] = not any(has_q[d] for d in _daughters(batch, i, start))
    got = truth.weakly_decaying(batch, quark)
    assert np.array_equal(got, want)
    assert 0 < want.sum() < has_q.sum()  # weakly and strongly / electromagnetically decaying ones both seen

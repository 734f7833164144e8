"""The clustering window (jets.clustering_window): objects beyond it must neither join a selected jet nor change one.
On real Pythia events, clustering every object of the detector and clustering only those inside the window must give
the same selected jets, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from ai4hep.data.cards import get_card
from ai4hep.data.generate import jets
from ai4hep.data.generate.detector import PRESETS, reconstruct
from ai4hep.data.generate.pythia import Generator, pythia_seed
from ai4hep.data.generate.substructure import rapidity


def _selected(reco, card, monkeypatch, margin: float) -> jets.Jets:
    with monkeypatch.context() as m:
        m.setattr(jets, "CLUSTER_Y_MARGIN", margin)
        return jets.cluster_and_select(reco, card)


@pytest.mark.parametrize("name", ["flavour", "top"])
def test_objects_beyond_the_window_change_no_selected_jet(name: str, monkeypatch) -> None:
    card = get_card(name)
    n_jets, beyond = 0, 0
    for p, process in enumerate(card.processes[:2]):
        gen = Generator((*card.common_settings, *process.settings), pythia_seed(21, 0, p))
        batch = gen.next_batch(40)
        reco = reconstruct(batch, gen, PRESETS["atlas-like"], np.random.default_rng(p))  # every object, no window
        beyond += int((np.abs(rapidity(reco.pz, reco.e)) >= jets.clustering_window(card)).sum())
        windowed = jets.cluster_and_select(reco, card)
        everything = _selected(reco, card, monkeypatch, margin=50.0)
        for field in ("evt", "px", "py", "pz", "e", "const_jet", "const_idx"):
            assert np.array_equal(getattr(windowed, field), getattr(everything, field)), (
                f"{name}, process {process.name}: the objects beyond |y| = {jets.clustering_window(card):.1f} changed "
                f"the selected jets' {field}"
            )
        n_jets += len(windowed)
    assert n_jets > 10, "too few selected jets to test the window"
    assert beyond > 100, "no objects beyond the window: the test would compare two identical inputs"


def test_a_window_inside_the_jets_changes_them(monkeypatch) -> None:
    """The comparison above can fail: a window that cuts into the jets' own acceptance loses constituents."""
    card = get_card("top")
    gen = Generator((*card.common_settings, *card.processes[0].settings), pythia_seed(21, 0, 0))
    batch = gen.next_batch(40)
    reco = reconstruct(batch, gen, PRESETS["atlas-like"], np.random.default_rng(0))
    too_narrow = _selected(reco, card, monkeypatch, margin=-card.jets.radius - 1.0)  # |y| < 1: inside the jet window
    everything = _selected(reco, card, monkeypatch, margin=50.0)
    assert not (len(too_narrow) == len(everything) and np.array_equal(too_narrow.e, everything.e))

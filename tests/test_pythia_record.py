"""The native event-record reader gives nextBatch's events and numbers, bitwise, and stays in step with Pythia."""

from __future__ import annotations

import numpy as np

from ai4hep.data.cards import get_card
from ai4hep.data.generate.pythia import EventBatch, Generator, RecordReader, pythia_seed

COLUMNS = ("offsets", "pid", "status", "mother1", "daughter1", "daughter2", "px", "py", "pz", "e", "vx", "vy", "vz")


def _generators(dataset: str, process: int) -> tuple[Generator, Generator]:
    card = get_card(dataset)
    settings = (*card.common_settings, *card.processes[process].settings)
    seed = pythia_seed(3, 0, process)
    return Generator(settings, seed), Generator(settings, seed)


def _assert_same(a: EventBatch, b: EventBatch) -> None:
    for name in COLUMNS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        assert np.array_equal(x, y), f"column {name} differs between the native reader and nextBatch"


def test_native_reader_matches_next_batch_bitwise():
    # flavour's ttbar: b and c hadrons with displaced production vertices, so the vertex columns are not all zero
    native, reference = _generators("flavour", 0)
    assert native._reader is not None, "the native reader was not built (make installs it with g++)"
    assert reference._reader is not None
    for n_events in (7, 3):  # two batches in a row: both readers advance Pythia by the same events
        a, b = native.next_batch(n_events), reference.next_batch_awkward(n_events)
        assert a.n_events == n_events
        _assert_same(a, b)
    assert np.any(a.vx != 0) and np.any(a.vx == 0)


def test_layout_probe_finds_every_field_and_both_read_paths_agree():
    native, reference = _generators("flavour", 0)
    layout = native._reader._layout
    assert layout is not None, "the probe found no particle layout in this pythia8mc wheel"
    assert len(set(layout[1:].tolist())) == len(layout) - 1 and layout[1:].max() < layout[0]
    _assert_same(native.next_batch(4), reference.next_batch_awkward(4))
    native._reader._layout_ptr = None  # the accessor path
    _assert_same(native.next_batch(4), reference.next_batch_awkward(4))


def test_wrong_layout_falls_back_to_the_accessors():
    native, reference = _generators("top", 0)
    reader = native._reader
    reader._layout[0] += 8  # a wrong particle stride: the reader must notice and not read misplaced memory
    a, b = native.next_batch(3), reference.next_batch_awkward(3)
    _assert_same(a, b)
    assert reader._layout is None and reader._layout_ptr is None


def test_native_reader_grows_its_columns_inside_a_batch():
    native, reference = _generators("top", 0)
    native._reader._per_event = 1.0  # far too small: the reader must grow its columns mid-batch and keep what it has
    a, b = native.next_batch(5), reference.next_batch_awkward(5)
    _assert_same(a, b)
    assert len(a.pid) > 4096 + 5


def test_reader_refuses_without_pythia_accessors(monkeypatch):
    import ai4hep.data.generate.pythia as pythia

    native, _ = _generators("top", 0)
    monkeypatch.setattr(pythia, "_ACCESSORS", ("_ZN_no_such_symbol",))
    assert RecordReader.create(native.pythia) is None

"""The native event-record reader gives nextBatch's events and numbers, bitwise, and stays in step with Pythia; it is
used only after a probe in a child process passed, for the checked pythia8mc versions."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ai4hep.data.cards import get_card
from ai4hep.data.generate.pythia import EventBatch, Generator, RecordReader, pythia_seed
from ai4hep.data.shards import generate

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


# The guard in front of the native reader (native.record_library): the version range, the probe in a child process
# and its cached verdict. Each test keeps its verdicts in its own cache folder.

PROBE_ENV = ("AI4HEP_CACHE_DIR", "AI4HEP_NATIVE_PYTHIA", "AI4HEP_NO_NATIVE")


@pytest.fixture
def probes(tmp_path, monkeypatch) -> list[list[str]]:
    """A fresh verdict cache under tmp_path, and the command lines of the probe children started meanwhile."""
    from ai4hep.data.generate import native

    for name in PROBE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AI4HEP_CACHE_DIR", str(tmp_path / "cache"))
    started: list[list[str]] = []
    run = subprocess.run

    def counted(args, *a, **kw):
        if list(args[:2]) == [sys.executable, "-c"]:
            started.append(list(args))
        return run(args, *a, **kw)

    monkeypatch.setattr(subprocess, "run", counted)
    native.record_library.cache_clear()
    yield started
    native.record_library.cache_clear()  # the next test's generators decide afresh, with the real environment


def _dataset_hash(out: Path) -> str:
    return generate("top", 16, out, seed=4, workers=1, shard_size=8, show_progress=False).dataset_hash


def test_a_crashing_probe_child_falls_back_to_next_batch(probes, monkeypatch, caplog, tmp_path):
    from ai4hep.data.generate import native

    # a real segfault in the child, where a pythia8mc with another layout would crash on the reader's first checks
    monkeypatch.setattr(native, "_PROBE_CODE", "import ctypes; ctypes.string_at(0)", raising=False)
    with caplog.at_level(logging.INFO, logger="ai4hep.native"):
        crashed, _ = _generators("top", 0)
        fallback = _dataset_hash(tmp_path / "fallback")
    assert crashed._reader is None
    assert len(probes) == 1, "the probe child runs once; its verdict is cached for the other generators"
    lines = [r for r in caplog.records if r.name == "ai4hep.native"]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING and "SIGSEGV" in lines[0].getMessage()

    monkeypatch.undo()  # the real probe, in a new cache folder: the native reader
    monkeypatch.setenv("AI4HEP_CACHE_DIR", str(tmp_path / "cache2"))
    native.record_library.cache_clear()
    reader, _ = _generators("top", 0)
    assert reader._reader is not None
    assert _dataset_hash(tmp_path / "native") == fallback


def test_a_pythia8mc_outside_the_checked_range_skips_the_native_reader(probes, monkeypatch):
    import importlib.metadata

    from ai4hep.data.generate import native

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "8.318.0" if name == "pythia8mc" else real(name))
    generator, _ = _generators("top", 0)
    assert generator._reader is None and probes == [], "an unchecked pythia8mc gets nextBatch, without a probe"
    assert not native._in_checked_range("8.318.0") and not native._in_checked_range("8.316.0")
    assert native._in_checked_range("8.317.2") and not native._in_checked_range("9.0rc1")

    monkeypatch.setenv("AI4HEP_NATIVE_PYTHIA", "force")  # asks for the probe: the reader passes it here
    native.record_library.cache_clear()
    generator, _ = _generators("top", 0)
    assert generator._reader is not None and len(probes) == 1


def test_the_probe_verdict_is_cached_and_a_corrupt_cache_is_probed_again(probes, tmp_path):
    from ai4hep.data.generate import native

    assert native.record_library() is not None
    native.record_library.cache_clear()
    assert native.record_library() is not None
    assert len(probes) == 1, "the cached verdict was not reused"
    (verdict,) = (tmp_path / "cache").glob("*.json")
    assert json.loads(verdict.read_text())["ok"] is True
    # another process (a worker, the next shard's run) reads the verdict: it would fail if it started a probe child
    env = {**os.environ, "AI4HEP_CACHE_DIR": str(tmp_path / "cache")}
    code = "import subprocess; subprocess.run = None; from ai4hep.data.generate import native as n; "
    code += "assert n.record_library() is not None"
    subprocess.check_call([sys.executable, "-c", code], env=env)  # (not through run: not counted as a probe)

    verdict.write_text('{"key": {"pythia8mc": "8.3')  # half a file: ignored, probed again and rewritten
    native.record_library.cache_clear()
    assert native.record_library() is not None
    assert len(probes) == 2
    assert json.loads(verdict.read_text())["ok"] is True


def test_no_native_skips_the_probe(probes, monkeypatch):
    from ai4hep.data.generate import native

    monkeypatch.setenv("AI4HEP_NO_NATIVE", "1")
    assert native.record_library() is None and probes == []

"""Pythia 8 event generation into flat numpy arrays (whole batches at once, no per-particle Python)."""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

MAX_PYTHIA_SEED = 900_000_000
MAX_FAILED_EVENTS = 1000  # consecutive failed next() calls before a batch gives up
DENSE_PID = 10_000  # particle ids below this in magnitude get charges from a dense table
UNKNOWN_CHARGE = np.int8(-128)  # the dense table's mark for an id not looked up yet
_MISPLACED = -(2**63)  # native/pythia_record.cpp: the particles are not where the layout says

# Pythia's exported accessors (Itanium-mangled), in the order of native/pythia_record.cpp's Accessor enum:
# Event::size, Event::operator[], then Particle::id, status, mother1, daughter1, daughter2, px, py, pz, e, xProd,
# yProd, zProd, hasVertex.
_ACCESSORS = (
    "_ZNK7Pythia85Event4sizeEv",
    "_ZN7Pythia85EventixEi",
    *(
        f"_ZNK7Pythia88Particle{len(name)}{name}Ev"
        for name in (
            "id",
            "status",
            "mother1",
            "daughter1",
            "daughter2",
            "px",
            "py",
            "pz",
            "e",
            "xProd",
            "yProd",
            "zProd",
            "hasVertex",
        )
    ),
)
_VEC4_PX = "_ZNK7Pythia84Vec42pxEv"
# Particle setters and distinctive values for the layout probe, in the order of the reader's columns.
_PROBE_INTS = {"id": 1_234_567, "status": -7_654_321, "mother1": 1_357_911, "daughter1": 2_468_024, "daughter2": 9_753}
_PROBE_DOUBLES = {
    name: 0.123456789 + 1e-3 * k for k, name in enumerate(("px", "py", "pz", "e", "xProd", "yProd", "zProd"))
}


@dataclass
class EventBatch:
    """The full event records of a batch of events, flattened; `offsets[i]:offsets[i+1]` is event i."""

    offsets: np.ndarray  # int64, n_events + 1
    pid: np.ndarray  # int32
    status: np.ndarray  # int32
    mother1: np.ndarray  # int32, local index inside its event
    daughter1: np.ndarray
    daughter2: np.ndarray
    px: np.ndarray  # float64, GeV
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    vx: np.ndarray  # production vertex, mm
    vy: np.ndarray
    vz: np.ndarray

    @property
    def n_events(self) -> int:
        return len(self.offsets) - 1

    @cached_property
    def event_index(self) -> np.ndarray:
        """Event number of every particle (computed once: the detector and the truth labels all ask for it)."""
        return np.repeat(np.arange(self.n_events), np.diff(self.offsets))


@contextlib.contextmanager
def quiet_stdout() -> Iterable[None]:
    """Pythia's banner goes to the C-level stdout; silence it at file-descriptor level."""
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        ctypes.CDLL(None).fflush(None)  # C/C++ buffers must drain into /dev/null, not after the restore
        os.dup2(saved, 1)
        os.close(devnull)
        os.close(saved)


def pythia_seed(*keys: int) -> int:
    """A Pythia seed (1..9e8) derived from integer keys; independent streams for shards and processes."""
    state = np.random.SeedSequence(list(keys)).generate_state(1, dtype=np.uint32)[0]
    return int(state) % (MAX_PYTHIA_SEED - 1) + 1


def event_batch(layout) -> EventBatch:
    """The columns of nextBatch's particle array, read straight from its buffers: per-field awkward operations
    (flatten, fill_none on the optional production vertex) cost ~30x more for the same numbers."""
    raw = np.asarray(layout.offsets, dtype=np.int64)
    lo, hi = int(raw[0]), int(raw[-1])
    prt = layout.content

    def col(parent, field: str, dtype: type) -> np.ndarray:
        return np.asarray(np.asarray(parent.content(field).data)[lo:hi], dtype=dtype)

    p = prt.content("p")
    vprod = prt.content("vProd")  # None where Pythia has no production vertex: stored as the origin
    index = np.asarray(vprod.index)[lo:hi]
    has_vertex = index >= 0
    safe = np.where(has_vertex, index, 0)

    def vertex(field: str) -> np.ndarray:
        values = np.asarray(vprod.content.content(field).data, dtype=np.float64)
        return np.where(has_vertex, values[safe], 0.0) if len(values) else np.zeros(hi - lo)

    return EventBatch(
        offsets=raw - lo,
        pid=col(prt, "id", np.int32),
        status=col(prt, "status", np.int32),
        mother1=col(prt, "mother1", np.int32),
        daughter1=col(prt, "daughter1", np.int32),
        daughter2=col(prt, "daughter2", np.int32),
        px=col(p, "px", np.float64),
        py=col(p, "py", np.float64),
        pz=col(p, "pz", np.float64),
        e=col(p, "e", np.float64),
        vx=vertex("px"),
        vy=vertex("py"),
        vz=vertex("pz"),
    )


def _bound_pointer(obj: object) -> int:
    """The C++ object behind a pybind11 wrapper: pybind11's simple instance layout stores its address right after the
    Python object header."""
    return ctypes.c_void_p.from_address(id(obj) + object.__basicsize__).value or 0


def _particle_layout(lib: ctypes.CDLL, fns) -> np.ndarray | None:
    """The stride of an Event's particles and the byte offset of each column's field in a particle, found on probe
    particles whose fields hold distinctive values; None unless each value sits at exactly one aligned place."""
    import pythia8mc

    event = pythia8mc.Event()
    for k in range(3):
        particle = pythia8mc.Particle()
        for name, value in (*_PROBE_INTS.items(), *_PROBE_DOUBLES.items()):
            getattr(particle, name)(value + k)
        event.append(particle)
    address = [lib.ai4hep_particle_address(fns, _bound_pointer(event), i) or 0 for i in range(3)]
    stride = address[1] - address[0]
    if stride <= 0 or address[2] - address[1] != stride:
        return None
    raw = ctypes.string_at(address[1], stride)  # the middle probe: every value + 1
    layout = [stride]
    for values, fmt in ((_PROBE_INTS, "<i4"), (_PROBE_DOUBLES, "<f8")):
        size = np.dtype(fmt).itemsize
        for value in values.values():
            pattern = np.array(value + 1, dtype=fmt).tobytes()
            found = [i for i in range(0, stride - size + 1, size) if raw[i : i + size] == pattern]
            if len(found) != 1:
                return None
            layout.append(found[0])
    return np.array(layout, dtype=np.int64)


class RecordReader:
    """Generates events with next() and copies each event record into numpy columns in C++ (native/pythia_record.cpp),
    through the accessors the pythia8mc wheel exports. Same events and numbers as nextBatch (a test compares them
    bitwise), at a fraction of its cost on top of next()."""

    _INT_COLUMNS = ("pid", "status", "mother1", "daughter1", "daughter2")
    _FLOAT_COLUMNS = ("px", "py", "pz", "e", "vx", "vy", "vz")

    def __init__(self, pythia, lib: ctypes.CDLL, accessors: list[int]) -> None:
        self._pythia = pythia
        self._lib = lib
        self._fns = (ctypes.c_void_p * len(accessors))(*accessors)
        self._event = pythia.event  # the wrapper of the Pythia member: its address never changes
        self._event_ptr = ctypes.c_void_p(_bound_pointer(self._event))
        self._per_event = 2048.0  # the most particles per event seen in a batch, to size the columns
        self._cols: dict[str, np.ndarray] = {}
        self._capacity = 0
        self._layout = _particle_layout(lib, self._fns)  # None: every field through its accessor
        self._layout_ptr = None if self._layout is None else ctypes.c_void_p(self._layout.ctypes.data)

    @classmethod
    def create(cls, pythia, lib: ctypes.CDLL | None = None) -> RecordReader | None:
        """A reader, or None where the native reader is missing or not trusted for this pythia8mc (record_library: its
        version range and the probe in a child process), an accessor is not exported, or the calling convention fails
        its check on a Vec4 made here (callers then use nextBatch). `lib`: the helper, unguarded (the probe child)."""
        if lib is None:
            from ai4hep.data.generate.native import record_library

            lib = record_library()
            if lib is None:
                return None
        import pythia8mc

        try:
            module = ctypes.CDLL(pythia8mc.__file__)
            accessors = [ctypes.cast(getattr(module, name), ctypes.c_void_p).value for name in _ACCESSORS]
            vec4_px = ctypes.cast(getattr(module, _VEC4_PX), ctypes.c_void_p).value
        except (OSError, AttributeError):
            return None
        columns = len(cls._INT_COLUMNS) + len(cls._FLOAT_COLUMNS)
        if len(accessors) != lib.ai4hep_record_accessors() or lib.ai4hep_record_columns() != columns:
            return None
        probe = pythia8mc.Vec4(1.25, -2.5, 3.75, 10.0)
        if lib.ai4hep_call_double(vec4_px, _bound_pointer(probe)) != 1.25:
            return None
        return cls(pythia, lib, accessors)

    def _grow(self, capacity: int, keep_rows: int) -> None:
        """Columns of at least `capacity` rows, keeping the first `keep_rows`."""
        cols = {name: np.empty(capacity, dtype=np.int32) for name in self._INT_COLUMNS}
        cols |= {name: np.empty(capacity, dtype=np.float64) for name in self._FLOAT_COLUMNS}
        for name, values in self._cols.items():
            cols[name][:keep_rows] = values[:keep_rows]
        self._cols, self._capacity = cols, capacity
        self._pointers = (ctypes.c_void_p * len(cols))(*(a.ctypes.data for a in cols.values()))

    def _read(self, row: int) -> int:
        """The current event into the columns at `row`: its particle count, or minus it when the columns are full."""
        if self._layout_ptr is not None:
            n = self._lib.ai4hep_read_event_layout(
                self._fns, self._event_ptr, self._layout_ptr, self._pointers, row, self._capacity
            )
            if n != _MISPLACED:
                return n
            self._layout = self._layout_ptr = None  # the particles are not where the probe found them: accessors now
        return self._lib.ai4hep_read_event(self._fns, self._event_ptr, self._pointers, row, self._capacity)

    def next_batch(self, n_events: int, next_event: Callable[[], bool] | None = None) -> EventBatch:
        """`n_events` successful events, each made by `next_event` (Pythia's next() unless given); a failed one is
        retried (Pythia's 'skip'), up to MAX_FAILED_EVENTS in a row.

        The batch's columns are views of buffers this reader reuses: valid until its next call. Fresh buffers for
        every batch cost ~85 us per event of page faults, 1% of the generation."""
        need = int(self._per_event * 1.25 * n_events) + 4096
        if need > self._capacity:
            self._grow(need, 0)
        offsets = np.zeros(n_events + 1, dtype=np.int64)
        nxt = self._pythia.next if next_event is None else next_event
        rows, done, failed = 0, 0, 0
        while done < n_events:
            if not nxt():
                failed += 1
                if failed >= MAX_FAILED_EVENTS:
                    raise RuntimeError(f"Pythia failed {failed} events in a row; check the card's settings")
                continue
            failed = 0
            n = self._read(rows)
            if n < 0:
                self._grow(max(2 * self._capacity, rows - n), rows)
                n = self._read(rows)
            rows += n
            done += 1
            offsets[done] = rows
        self._per_event = max(self._per_event, rows / n_events)
        return EventBatch(offsets=offsets, **{name: values[:rows] for name, values in self._cols.items()})


def probe_record_reader() -> None:
    """The checks of the native reader, run in a child process by native.record_library before the reader is trusted
    in the caller's: a pythia8mc laid out differently can crash here (the child dies of a signal) or refuse. Every
    native call the reader makes (the accessors, the calling-convention and layout probes, both read paths) on
    particles with known values in a Pythia's own event record; exits 0 when they match, 2 with a reason when not."""
    import sys

    import pythia8mc

    from ai4hep.data.generate.native import _load_record

    def refuse(reason: str) -> None:
        print(reason, file=sys.stderr)
        sys.exit(2)

    lib = _load_record()
    if lib is None:
        refuse("the helper did not load")
    pythia = pythia8mc.Pythia("", False)
    reader = RecordReader.create(pythia, lib)
    if reader is None:
        refuse("an accessor or the calling-convention check failed")
    event = pythia.event
    for k in range(5):
        particle = pythia8mc.Particle()
        for name, value in (*_PROBE_INTS.items(), *_PROBE_DOUBLES.items()):
            if k % 2 or name not in ("xProd", "yProd", "zProd"):  # no production vertex on every other particle
                getattr(particle, name)(value - 3 * k)
        event.append(particle)
    want = {name: [] for name in (*reader._INT_COLUMNS, *reader._FLOAT_COLUMNS)}
    for i in range(event.size()):
        q = event[i]
        vertex = (q.xProd(), q.yProd(), q.zProd()) if q.hasVertex() else (0.0, 0.0, 0.0)
        row = (q.id(), q.status(), q.mother1(), q.daughter1(), q.daughter2(), q.px(), q.py(), q.pz(), q.e(), *vertex)
        for name, value in zip(want, row, strict=True):
            want[name].append(value)

    def check(path: str) -> None:
        reader._grow(64, 0)
        if reader._read(3) != event.size():
            refuse(f"the {path} read path read another particle count")
        for name, values in want.items():
            if not np.array_equal(reader._cols[name][3 : 3 + event.size()], values):
                refuse(f"the {path} read path gave other {name} values than Pythia's accessors")

    if reader._layout is not None:  # no layout found: the reader uses the accessors only, as it would in the caller
        check("layout")
    reader._layout_ptr = None  # the accessor path
    check("accessor")


class Generator:
    """One Pythia instance configured from settings strings and a seed."""

    def __init__(self, settings: Iterable[str], seed: int) -> None:
        import pythia8mc

        with quiet_stdout():
            self._pythia = pythia8mc.Pythia("", False)
            for line in [*settings, "Random:setSeed = on", f"Random:seed = {seed}"]:
                if not self._pythia.readString(line):
                    raise ValueError(f"Pythia rejected the setting '{line}'")
            if not self._pythia.init():
                raise RuntimeError("Pythia failed to initialise with the card's settings")
        self._charge_cache: dict[int, int] = {}
        self._charge_table = np.full(2 * DENSE_PID, UNKNOWN_CHARGE, dtype=np.int8)
        self._reader = RecordReader.create(self._pythia)
        # what the event loop calls for each event: benchmarks/generation_rate.py wraps it to step Pythia's bare loop
        # event by event beside the pipeline's (the native reader only; nextBatch makes its events inside Pythia)
        self.next_event: Callable[[], bool] = self._pythia.next

    @property
    def pythia(self):
        return self._pythia

    def next_batch(self, n_events: int) -> EventBatch:
        if self._reader is None:
            return self.next_batch_awkward(n_events)
        with quiet_stdout():
            return self._reader.next_batch(n_events, self.next_event)

    def next_batch_awkward(self, n_events: int) -> EventBatch:
        """Through Pythia's own nextBatch: the fallback, and the reference the native reader is tested against."""
        with quiet_stdout():
            events = self._pythia.nextBatch(n_events)
        return event_batch(events.prt.layout)

    def _charge(self, code: int) -> int:
        if code not in self._charge_cache:
            self._charge_cache[code] = self._pythia.particleData.chargeType(code) // 3
        return self._charge_cache[code]

    def charges(self, pid: np.ndarray) -> np.ndarray:
        """Electric charge per particle id, through Pythia's particle table. Ids below DENSE_PID in magnitude (every
        stable hadron and lepton) are looked up in a dense table filled as ids appear: a sort of the ids
        (np.unique) cost 12% of the detector's time, and on the first batch still 6 ms."""
        dense = np.abs(pid) < DENSE_PID
        slot = pid[dense].astype(np.int64) + DENSE_PID
        unknown = slot[self._charge_table[slot] == UNKNOWN_CHARGE]
        if len(unknown):  # the ids not seen before (every id, on a generator's first batch): marked, not sorted
            seen = np.zeros(2 * DENSE_PID, dtype=bool)
            seen[unknown] = True
            for s in np.flatnonzero(seen).tolist():
                self._charge_table[s] = self._charge(s - DENSE_PID)
        if dense.all():
            return self._charge_table[slot]
        values = np.empty(len(pid), dtype=np.int8)
        values[dense] = self._charge_table[slot]
        rest = np.flatnonzero(~dense)
        values[rest] = [self._charge(code) for code in pid[rest].tolist()]
        return values

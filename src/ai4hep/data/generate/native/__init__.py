"""Loaders for the compiled helpers: `library()` (FastJet batch clustering and substructure) and `record_library()`
(Pythia's event record into columns). Each is None when unavailable or disabled with AI4HEP_NO_NATIVE=1; callers then
use FastJet's Python interface and Pythia's nextBatch."""

from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path

import numpy as np

_I64 = ctypes.POINTER(ctypes.c_int64)
_F64 = ctypes.POINTER(ctypes.c_double)


def _built(stem: str) -> Path | None:
    """The compiled helper `stem` next to this file, or None when it was not built or AI4HEP_NO_NATIVE is set."""
    if os.environ.get("AI4HEP_NO_NATIVE"):
        return None
    candidates = sorted(Path(__file__).parent.glob(f"{stem}*.so"))
    return candidates[0] if candidates else None


def _load() -> ctypes.CDLL | None:
    path = _built("_fjbatch")
    if path is None:
        return None
    import fastjet

    lib_dir = Path(fastjet.__file__).parent / "lib64"
    try:
        for name in ("libfastjet.so", "libfastjettools.so", "libfastjetcontribfragile.so"):
            if (lib_dir / name).exists():
                ctypes.CDLL(str(lib_dir / name), mode=ctypes.RTLD_GLOBAL)
        lib = ctypes.CDLL(str(path))
    except OSError:
        return None
    lib.ai4hep_cluster.restype = ctypes.c_int64
    lib.ai4hep_cluster.argtypes = [_F64] * 4 + [
        _I64,
        ctypes.c_int64,
        ctypes.c_double,
        ctypes.c_double,
        ctypes.c_int64,
        ctypes.c_int64,
        _F64,
        _I64,
        _I64,
        _I64,
    ]
    lib.ai4hep_substructure.restype = None
    lib.ai4hep_substructure.argtypes = [_F64] * 4 + [
        _I64,
        ctypes.c_int64,
        ctypes.c_double,
        ctypes.c_double,
        ctypes.c_double,
        ctypes.c_int,
        _F64,
        _F64,
        _F64,
        ctypes.c_int64,
        _F64,
        _F64,
        _F64,
        _F64,
    ]
    return lib


def _load_record() -> ctypes.CDLL | None:
    path = _built("_pythiarecord")
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(str(path))
    except OSError:
        return None
    try:  # a helper built from an older source lacks some entry points: rebuild it (make does)
        lib.ai4hep_read_event.restype = ctypes.c_int64
        lib.ai4hep_read_event.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int64, ctypes.c_int64]
        lib.ai4hep_read_event_layout.restype = ctypes.c_int64
        lib.ai4hep_read_event_layout.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64, ctypes.c_int64]
        lib.ai4hep_particle_address.restype = ctypes.c_void_p
        lib.ai4hep_particle_address.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
        lib.ai4hep_call_double.restype = ctypes.c_double
        lib.ai4hep_call_double.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.ai4hep_record_columns.restype = ctypes.c_int
        lib.ai4hep_record_accessors.restype = ctypes.c_int
    except AttributeError:
        return None
    return lib


@functools.cache
def record_library() -> ctypes.CDLL | None:
    return _load_record()


@functools.cache
def library() -> ctypes.CDLL | None:
    return _load()


def f64(a: np.ndarray) -> ctypes.Array:
    return np.ascontiguousarray(a, dtype=np.float64).ctypes.data_as(_F64)


def i64(a: np.ndarray) -> ctypes.Array:
    return np.ascontiguousarray(a, dtype=np.int64).ctypes.data_as(_I64)

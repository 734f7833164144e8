"""Loaders for the compiled helpers: `library()` (FastJet batch clustering and substructure) and `record_library()`
(Pythia's event record into columns). Each is None when unavailable or disabled with AI4HEP_NO_NATIVE=1; callers then
use FastJet's Python interface and Pythia's nextBatch."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

_STATE: dict[str, ctypes.CDLL | bool | None] = {"loaded": False, "lib": None}
_RECORD: dict[str, ctypes.CDLL | bool | None] = {"loaded": False, "lib": None}
_I64 = ctypes.POINTER(ctypes.c_int64)
_F64 = ctypes.POINTER(ctypes.c_double)


def _load() -> ctypes.CDLL | None:
    if os.environ.get("AI4HEP_NO_NATIVE"):
        return None
    candidates = sorted(Path(__file__).parent.glob("_fjbatch*.so"))
    if not candidates:
        return None
    import fastjet

    lib_dir = Path(fastjet.__file__).parent / "lib64"
    try:
        for name in ("libfastjet.so", "libfastjettools.so", "libfastjetcontribfragile.so"):
            if (lib_dir / name).exists():
                ctypes.CDLL(str(lib_dir / name), mode=ctypes.RTLD_GLOBAL)
        lib = ctypes.CDLL(str(candidates[0]))
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
    if os.environ.get("AI4HEP_NO_NATIVE"):
        return None
    candidates = sorted(Path(__file__).parent.glob("_pythiarecord*.so"))
    try:
        lib = ctypes.CDLL(str(candidates[0])) if candidates else None
    except OSError:
        return None
    if lib is None:
        return None
    lib.ai4hep_read_event.restype = ctypes.c_int64
    lib.ai4hep_read_event.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64]
    lib.ai4hep_call_double.restype = ctypes.c_double
    lib.ai4hep_call_double.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.ai4hep_record_columns.restype = ctypes.c_int
    lib.ai4hep_record_accessors.restype = ctypes.c_int
    return lib


def record_library() -> ctypes.CDLL | None:
    if not _RECORD["loaded"]:
        _RECORD["lib"] = _load_record()
        _RECORD["loaded"] = True
    return _RECORD["lib"]  # type: ignore[return-value]


def library() -> ctypes.CDLL | None:
    if not _STATE["loaded"]:
        _STATE["lib"] = _load()
        _STATE["loaded"] = True
    return _STATE["lib"]  # type: ignore[return-value]


def f64(a: np.ndarray) -> ctypes.Array:
    return np.ascontiguousarray(a, dtype=np.float64).ctypes.data_as(_F64)


def i64(a: np.ndarray) -> ctypes.Array:
    return np.ascontiguousarray(a, dtype=np.int64).ctypes.data_as(_I64)

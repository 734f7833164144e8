"""Loader for the compiled FastJet batch helper; `library()` is None when it is unavailable (or disabled with
AI4HEP_NO_NATIVE=1), and callers then use FastJet's Python interface."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

_STATE: dict[str, ctypes.CDLL | bool | None] = {"loaded": False, "lib": None}
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


def library() -> ctypes.CDLL | None:
    if not _STATE["loaded"]:
        _STATE["lib"] = _load()
        _STATE["loaded"] = True
    return _STATE["lib"]  # type: ignore[return-value]


def f64(a: np.ndarray) -> ctypes.Array:
    return np.ascontiguousarray(a, dtype=np.float64).ctypes.data_as(_F64)


def i64(a: np.ndarray) -> ctypes.Array:
    return np.ascontiguousarray(a, dtype=np.int64).ctypes.data_as(_I64)

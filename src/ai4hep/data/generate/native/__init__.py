"""Loaders for the compiled helpers: `library()` (FastJet batch clustering and substructure) and `record_library()`
(Pythia's event record into columns). Each is None when unavailable or disabled with AI4HEP_NO_NATIVE=1; callers then
use FastJet's Python interface and Pythia's nextBatch.

The record reader calls pythia8mc's C++ by mangled name and reads pybind11 and particle memory directly, so a wheel
laid out differently could crash the process before its in-process checks notice. `record_library()` therefore only
loads it for the pythia8mc versions in CHECKED_PYTHIA8MC (or with AI4HEP_NATIVE_PYTHIA=force), and only after the same
checks passed in a child process (pythia.probe_record_reader): a crash there costs the child, not the caller. The
child's verdict is cached per pythia8mc version and build, helper build and Python version, in `cache_dir()`."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("ai4hep.native")

# The pythia8mc versions the record reader was checked against: (lowest included, first excluded). Checked: 8.317.2.
CHECKED_PYTHIA8MC = ((8, 317), (8, 318))
MODE_ENV = "AI4HEP_NATIVE_PYTHIA"  # "force": probe outside CHECKED_PYTHIA8MC too; "off": always nextBatch
CACHE_ENV = "AI4HEP_CACHE_DIR"  # where the probe's verdicts are kept (else $XDG_CACHE_HOME/ai4hep, ~/.cache/ai4hep)
PROBE_TIMEOUT_S = 120.0
# What the child runs: exit status 0 when the reader passed every check, 2 when it refused (reason on stderr).
_PROBE_CODE = "from ai4hep.data.generate.pythia import probe_record_reader; probe_record_reader()"

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


def _load_record(path: Path | None = None) -> ctypes.CDLL | None:
    """The record helper, unchecked: record_library() is the guarded way in; the probe child loads it through this."""
    path = path or _built("_pythiarecord")
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
    """The record helper, or None: not built, AI4HEP_NO_NATIVE or AI4HEP_NATIVE_PYTHIA=off set, a pythia8mc outside
    CHECKED_PYTHIA8MC (unless AI4HEP_NATIVE_PYTHIA=force), or the probe child crashed or refused (cached verdict)."""
    path = _built("_pythiarecord")
    if path is None or not _record_trusted(path):
        return None
    return _load_record(path)


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ai4hep"


def _pythia8mc_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pythia8mc")
    except PackageNotFoundError:
        return None


def _in_checked_range(text: str) -> bool:
    try:
        release = tuple(int(part) for part in text.split(".")[:2])
    except ValueError:
        return False
    low, high = CHECKED_PYTHIA8MC
    return low <= release < high


def _probe_key(helper: Path, pythia_version: str) -> dict[str, object]:
    """What the verdict depends on: pythia8mc's version and module file (a rebuild of one version gets a new probe),
    the helper's contents and the interpreter."""
    import importlib.util

    spec = importlib.util.find_spec("pythia8mc")
    module = Path(spec.origin) if spec is not None and spec.origin else None
    stat = module.stat() if module is not None else None
    return {
        "pythia8mc": pythia_version,
        "pythia8mc_module": [str(module), stat.st_size, stat.st_mtime_ns] if stat is not None else None,
        "helper_sha256": hashlib.sha256(helper.read_bytes()).hexdigest(),
        "python": f"{sys.implementation.name}-{sys.version.split()[0]}-{sys.platform}",
    }


def _record_trusted(helper: Path) -> bool:
    mode = os.environ.get(MODE_ENV, "").strip().lower()
    if mode in ("off", "0", "no"):
        return False
    pythia_version = _pythia8mc_version()
    if pythia_version is None:
        return False
    if mode != "force" and not _in_checked_range(pythia_version):
        low, high = (".".join(map(str, v)) for v in CHECKED_PYTHIA8MC)
        log.info(
            "pythia8mc %s is outside the versions the native record reader was checked on (>=%s,<%s): using "
            "nextBatch (%s=force probes it)",
            pythia_version,
            low,
            high,
            MODE_ENV,
        )
        return False
    key = _probe_key(helper, pythia_version)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    cache = cache_dir() / f"pythia_record-{digest}.json"
    verdict = _cached_verdict(cache, key)
    if verdict is None:
        with _locked(cache):  # concurrent workers: the first probes, the others read its verdict
            verdict = _cached_verdict(cache, key)
            if verdict is None:
                verdict = _probe_in_child()
                if verdict.pop("cache"):
                    _write_verdict(cache, {"key": key, **verdict})
                if not verdict["ok"]:
                    log.warning(
                        "native Pythia record reader disabled (pythia8mc %s): probe %s; using nextBatch",
                        pythia_version,
                        verdict["detail"],
                    )
                return bool(verdict["ok"])
    if not verdict["ok"]:
        log.info("native Pythia record reader disabled (cached in %s): %s", cache, verdict["detail"])
    return bool(verdict["ok"])


def _cached_verdict(path: Path, key: dict[str, object]) -> dict | None:
    """The verdict stored for `key`, or None: none yet, or a file that is unreadable, corrupt or for another key
    (then probed again and rewritten)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key or not isinstance(data.get("ok"), bool):
        return None
    return data


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock beside `path` where the cache folder can be written (else no lock: each process probes)."""
    try:
        import fcntl

        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path.with_suffix(".lock"), "a")  # noqa: SIM115 (held for the block)
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()


def _write_verdict(path: Path, data: dict) -> None:
    """Atomically (a temporary file renamed over it): a reader sees the old file or the new one, never half of one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("could not cache the native reader's probe verdict in %s: %s", path, exc)
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(tmp)


def _probe_in_child() -> dict[str, object]:
    """Runs pythia.probe_record_reader in a fresh interpreter: {'ok', 'detail', 'seconds', 'cache'}; a crash (a
    signal), a failure or a refusal is a 'no'. A child that could not start or timed out is not cached."""
    src = str(Path(__file__).resolve().parents[4])  # the folder holding the ai4hep package
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE_CODE],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "detail": f"timed out after {PROBE_TIMEOUT_S:.0f} s", "cache": False}
    except OSError as exc:
        return {"ok": False, "detail": f"child could not start ({exc})", "cache": False}
    seconds = round(time.perf_counter() - start, 3)
    last = (done.stderr.strip().splitlines() or [""])[-1][:300]
    if done.returncode == 0:
        return {"ok": True, "detail": "passed", "seconds": seconds, "cache": True}
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        detail = f"child crashed ({name})"
    elif done.returncode == 2:
        detail = f"refused: {last}"
    else:
        detail = f"child failed (exit status {done.returncode}: {last})"
    return {"ok": False, "detail": detail, "seconds": seconds, "cache": True}


@functools.cache
def library() -> ctypes.CDLL | None:
    return _load()


def f64(a: np.ndarray) -> ctypes.Array:
    return np.ascontiguousarray(a, dtype=np.float64).ctypes.data_as(_F64)


def i64(a: np.ndarray) -> ctypes.Array:
    return np.ascontiguousarray(a, dtype=np.int64).ctypes.data_as(_I64)

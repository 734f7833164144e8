"""The one HDF5 layout (structured arrays with a `valid` field, as salt reads) and validation of foreign files."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ai4hep.atomic import atomic_path
from ai4hep.data.cards import DatasetCard
from ai4hep.errors import UserError

LAYOUT_VERSION = 1
# The 16 high-level features of the hls4ml jet dataset (arXiv:1804.06913), stored for the `hlf5` card.
HLF5_FEATURES = (
    "zlogz",
    "c1_b0",
    "c1_b1",
    "c1_b2",
    "c2_b1",
    "c2_b2",
    "d2_b1",
    "d2_b2",
    "d2_a1_b1",
    "d2_a1_b2",
    "m2_b1",
    "m2_b2",
    "n2_b1",
    "n2_b2",
    "mass_mmdt",
    "multiplicity",
)
f4, i1, i2, i4, i8 = np.float32, np.int8, np.int16, np.int32, np.int64

JET_FIELDS = [
    ("pt", f4),
    ("eta", f4),
    ("phi", f4),
    ("mass", f4),
    ("energy", f4),
    ("n_consts", i2),
    ("n_tracks", i2),
    ("tau1", f4),
    ("tau2", f4),
    ("tau3", f4),
    ("tau21", f4),
    ("tau32", f4),
    ("mass_sd", f4),
    ("c2", f4),
    ("d2", f4),
    ("label", i4),
    ("process", i1),
    ("event", i8),
]
FLAVOUR_JET_FIELDS = [("flavour", i1), ("n_bhad", i1), ("n_chad", i1)]
CONST_FIELDS = [
    ("px", f4),
    ("py", f4),
    ("pz", f4),
    ("energy", f4),
    ("pt", f4),
    ("eta", f4),
    ("phi", f4),
    ("deta", f4),
    ("dphi", f4),
    ("charge", i1),
    ("pid", i4),
    ("d0", f4),
    ("d0err", f4),
    ("dz", f4),
    ("dzerr", f4),
    ("valid", bool),
]
TRACK_FIELDS = [
    ("pt", f4),
    ("eta", f4),
    ("phi", f4),
    ("deta", f4),
    ("dphi", f4),
    ("charge", i1),
    ("d0", f4),
    ("z0sintheta", f4),
    ("d0sig", f4),
    ("z0sig", f4),
    ("d0err", f4),
    ("z0err", f4),
    ("origin", i1),
    ("vertex", i2),
    ("valid", bool),
]


def jet_dtype(card: DatasetCard) -> np.dtype:
    fields = list(JET_FIELDS)
    if card.max_tracks:
        fields += FLAVOUR_JET_FIELDS
    if card.features == "hlf5":
        fields += [(name, f4) for name in HLF5_FEATURES]
    return np.dtype(fields)


CONST_DTYPE = np.dtype(CONST_FIELDS)
TRACK_DTYPE = np.dtype(TRACK_FIELDS)
GROUPS = ("jets", "consts", "tracks")


def content_hash(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the arrays' names, dtypes, shapes and bytes: equal hashes mean bitwise-equal content."""
    h = hashlib.sha256()
    for name in GROUPS:
        if name not in arrays:
            continue
        arr = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(arr.dtype.descr).encode())
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


# Level 1 writes ~25% faster than level 4 for 5-7% larger shards (measured on top and flavour shards); reading
# (inflate) costs the same at any level. No shuffle filter: on the shards of every dataset it made gzip 15-30% slower
# and the files 5-25% larger (the zero padding and repeated values compress better unshuffled).
GZIP_LEVEL = 1


def _chunks(arr: np.ndarray) -> tuple[int, ...] | None:
    if arr.shape[0] == 0:
        return None
    rows = max(1, min(arr.shape[0], 4_000_000 // max(1, arr[:1].nbytes)))
    return (rows, *arr.shape[1:])


def write_atomic(path: Path, arrays: dict[str, np.ndarray], attrs: dict[str, str | int]) -> str:
    """Write a shard to a temporary file in the same folder and rename it: readers see a whole file or none."""
    digest = content_hash(arrays)
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=True) as f:
        for name in GROUPS:
            if name in arrays:
                arr = arrays[name]
                f.create_dataset(
                    name,
                    data=arr,
                    chunks=_chunks(arr),
                    compression="gzip" if arr.shape[0] else None,
                    compression_opts=GZIP_LEVEL if arr.shape[0] else None,
                    track_times=False,
                )
        for key, value in {**attrs, "content_hash": digest, "layout_version": LAYOUT_VERSION}.items():
            f.attrs[key] = value
    return digest


@dataclass
class Shard:
    path: Path
    attrs: dict
    arrays: dict[str, np.ndarray]

    @property
    def card(self) -> dict:
        return json.loads(self.attrs["card"])


REQUIRED_ATTRS = ("card", "card_version", "seed", "ai4hep_version", "content_hash", "layout_version")


def read_shard(path: Path, verify: bool = True) -> Shard:
    """Read and validate one shard; a foreign, truncated or corrupt file raises a UserError naming the problem."""
    path = Path(path)
    fix = "regenerate it with 'ai4hep data generate' (or pass an ai4hep dataset file)"
    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    if path.is_dir():
        raise UserError(f"{path} is a directory; pass one shard file or use 'ai4hep data info DIR'")
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError:
        is_hdf5 = False
    if not is_hdf5:
        raise UserError(f"{path} is not an HDF5 file; {fix}")
    try:
        with h5py.File(path, "r") as f:
            missing = [a for a in REQUIRED_ATTRS if a not in f.attrs]
            if missing or "jets" not in f or "consts" not in f:
                what = ", ".join(missing) if missing else "datasets 'jets'/'consts'"
                raise UserError(f"{path} is an HDF5 file but not an ai4hep dataset (missing {what}); {fix}")
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            if int(attrs["layout_version"]) > LAYOUT_VERSION:
                raise UserError(
                    f"{path} uses layout version {attrs['layout_version']}, newer than this ai4hep "
                    f"({LAYOUT_VERSION}); upgrade ai4hep"
                )
            arrays = {name: f[name][...] for name in GROUPS if name in f}
    except UserError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"{path} is truncated or corrupt ({exc.__class__.__name__}: {exc}); {fix}") from None
    if "valid" not in arrays["consts"].dtype.names:
        raise UserError(f"{path}: 'consts' has no 'valid' field; {fix}")
    check_fields(path, attrs, arrays, fix)
    if verify and content_hash(arrays) != attrs["content_hash"]:
        raise UserError(f"{path}: content hash mismatch, the arrays were altered or damaged; {fix}")
    if verify:
        check_finite(path, arrays, fix)
    return Shard(path=path, attrs=attrs, arrays=arrays)


def expected_fields(card: dict) -> dict[str, tuple[str, ...]]:
    """The fields each array of a shard of this card (the stored JSON) must have."""
    jets = [name for name, _ in JET_FIELDS]
    if card.get("max_tracks"):
        jets += [name for name, _ in FLAVOUR_JET_FIELDS]
    if card.get("features") == "hlf5":
        jets += list(HLF5_FEATURES)
    return {"jets": tuple(jets), "consts": CONST_DTYPE.names, "tracks": TRACK_DTYPE.names}


def check_fields(path: Path, attrs: dict, arrays: dict[str, np.ndarray], fix: str) -> None:
    """Every field of the layout is there (a table with a field removed is named, not a dtype error later)."""
    try:
        card = json.loads(attrs["card"])
    except (TypeError, ValueError):
        raise UserError(f"{path}: its 'card' attribute is not JSON; {fix}") from None
    for name, fields in expected_fields(card).items():
        if name not in arrays:
            continue
        have = arrays[name].dtype.names or ()
        missing = [f for f in fields if f not in have]
        if missing:
            listed = ", ".join(f"'{f}'" for f in missing)
            raise UserError(f"{path}: the '{name}' table lacks field(s) {listed}; {fix}")


def check_finite(path: Path, arrays: dict[str, np.ndarray], fix: str) -> None:
    """No NaN or inf in any float field (generation writes none; padding is zeros): the first bad field is named with
    its count."""
    for name in GROUPS:
        arr = arrays.get(name)
        if arr is None:
            continue
        for field in arr.dtype.names:
            if arr.dtype[field].kind != "f":
                continue
            bad = int(np.count_nonzero(~np.isfinite(arr[field])))
            if bad:
                raise UserError(f"{path}: {name} field '{field}' has {bad} non-finite value(s) (NaN or inf); {fix}")

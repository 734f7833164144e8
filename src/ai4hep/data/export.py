"""Parquet export (awkward, jagged lists) for weaver-core users: one parquet file per shard."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np

from ai4hep.atomic import atomic_path
from ai4hep.data.inspect import dataset_files
from ai4hep.data.schema import read_shard
from ai4hep.errors import UserError

FORMATS = ("parquet",)


def _jagged(arr: np.ndarray) -> dict[str, ak.Array]:
    counts = arr["valid"].sum(axis=1)
    valid = arr["valid"]
    return {
        name: ak.unflatten(np.ascontiguousarray(arr[name][valid]), counts)
        for name in arr.dtype.names
        if name != "valid"
    }


def shard_to_awkward(arrays: dict[str, np.ndarray], classes: list[str]) -> ak.Array:
    """Columns named as weaver-core data configs expect: jet_*, part_*, track_*, label and one-hot label_*."""
    jets = arrays["jets"]
    columns: dict[str, ak.Array | np.ndarray] = {
        f"jet_{n}": np.ascontiguousarray(jets[n]) for n in jets.dtype.names if n != "label"
    }
    columns["label"] = np.ascontiguousarray(jets["label"])
    for i, name in enumerate(classes):
        columns[f"label_{name}"] = jets["label"] == i
    for prefix, group in (("part", "consts"), ("track", "tracks")):
        if group in arrays:
            columns.update({f"{prefix}_{k}": v for k, v in _jagged(arrays[group]).items()})
    return ak.zip(columns, depth_limit=1)


def export(path: Path, out_dir: Path, fmt: str = "parquet") -> list[Path]:
    if fmt not in FORMATS:
        raise UserError(f"unknown export format '{fmt}'; valid formats: {', '.join(FORMATS)}")
    files = dataset_files(path)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {out_dir}: {exc.strerror}; choose a writable --out") from None
    written = []
    for f in files:
        shard = read_shard(f)
        table = shard_to_awkward(shard.arrays, shard.card["classes"])
        target = out_dir / f"{f.stem}.parquet"
        with atomic_path(target) as tmp:
            ak.to_parquet(table, tmp)
        written.append(target)
    return written

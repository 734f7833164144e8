"""Streaming, chunked reading of the HDF5 layout for training and evaluation.

Memory follows the configured budget, not the dataset: a file is read `chunk_jets` rows at a time (then reduced to the
fields the model needs), shuffled inside the chunk, and cut into batches. The split into train/validation/test is by
shard, so no jet is ever in two splits, and normalisation statistics are computed once on the training split and then
stored with the model. Batches are dicts of numpy arrays; this module does not import torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ai4hep.data.inspect import dataset_files
from ai4hep.data.schema import LAYOUT_VERSION
from ai4hep.data.variables import DERIVED, Variable, check_available, compute
from ai4hep.errors import UserError

HDF5_CACHE_BYTES = 16 * 2**20
# What a model may ask of a batch beyond its declared inputs.
EXTRAS = ("points", "vectors", "z")
# Per-object integer labels a multi-task model may train on (padding and unlabelled objects are -1).
TARGETS = ("origin", "vertex")
OBJECT_KEYS = ("objects", "mask", "points", "vectors", "z", *TARGETS)


class DataConfig(BaseModel):
    """The `data:` block of a training config."""

    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(default_factory=list, description="dataset folders or shard files, split by shard")
    train: list[str] | None = None  # explicit splits instead of fractions of `paths`
    val: list[str] | None = None
    test: list[str] | None = None
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.1, ge=0, lt=1)
    jet_features: list[str] = Field(default_factory=list)
    objects: Literal["consts", "tracks"] = "consts"
    object_features: list[str] = Field(default_factory=list)
    max_objects: int = Field(100, gt=0)
    label: str = "label"
    batch_size: int = Field(256, gt=0)
    memory_mb: float = Field(256.0, gt=0, description="budget for the read buffers of one stream")
    class_weights: Literal["none", "balanced"] = "balanced"
    norm_jets: int = Field(100_000, gt=0, description="training jets used for the normalisation statistics")
    trim: bool = Field(True, description="cut each batch's object axis after its last real object (same outputs)")
    cache: str | None = Field(None, description="folder for uncompressed input features, reused from the 2nd pass")

    @field_validator("jet_features", "object_features")
    @classmethod
    def _parse(cls, specs: list[str]) -> list[str]:
        for s in specs:
            Variable.parse(s)
        return specs

    @property
    def jet_vars(self) -> list[Variable]:
        return [Variable.parse(s) for s in self.jet_features]

    @property
    def object_vars(self) -> list[Variable]:
        return [Variable.parse(s) for s in self.object_features]


@dataclass
class Splits:
    train: list[Path]
    val: list[Path]
    test: list[Path]


def _files(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        out += dataset_files(Path(p))
    return out


def split_files(cfg: DataConfig) -> Splits:
    """Shards for each split: explicit lists, or the last shards of `paths` for test and the ones before for val."""
    if cfg.train is not None:
        if cfg.val is None:
            raise UserError("data.train is given but data.val is not; give both (and optionally data.test)")
        return Splits(_files(cfg.train), _files(cfg.val), _files(cfg.test or []))
    if not cfg.paths:
        raise UserError("the config has no data: set data.paths (or data.train/val), or pass --data PATH")
    files = _files(cfg.paths)
    n = len(files)
    n_test = max(1, round(n * cfg.test_fraction)) if cfg.test_fraction > 0 else 0
    n_val = max(1, round(n * cfg.val_fraction)) if cfg.val_fraction > 0 else 0
    if n - n_test - n_val < 1 or n_val < 1:
        raise UserError(
            f"{n} shard(s) in {', '.join(cfg.paths)} cannot be split by shard into train/val/test; "
            "generate with a smaller --shard-size (at least 3 shards) or give data.train/data.val explicitly"
        )
    return Splits(files[: n - n_test - n_val], files[n - n_test - n_val : n - n_test], files[n - n_test :])


@dataclass
class FileInfo:
    path: Path
    n_jets: int
    card: dict
    content_hash: str
    jet_dtype: np.dtype
    object_dtype: np.dtype | None
    stored_objects: int


def file_info(path: Path, objects: str) -> FileInfo:
    """Header of one shard (attributes and dtypes); reads no arrays."""
    fix = "pass ai4hep dataset files (made by 'ai4hep data generate')"
    try:
        with h5py.File(path, "r") as f:
            if "jets" not in f or "card" not in f.attrs:
                raise UserError(f"{path} is not an ai4hep dataset (no 'jets' or card); {fix}")
            if int(f.attrs.get("layout_version", 0)) > LAYOUT_VERSION:
                raise UserError(f"{path} uses a newer data layout than this ai4hep; upgrade ai4hep")
            obj = f.get(objects, None)
            card = f.attrs["card"]
            return FileInfo(
                path=path,
                n_jets=len(f["jets"]),
                card=json.loads(card.decode() if isinstance(card, bytes) else card),
                content_hash=str(f.attrs.get("content_hash", "")),
                jet_dtype=f["jets"].dtype,
                object_dtype=obj.dtype if obj is not None else None,
                stored_objects=int(obj.shape[1]) if obj is not None and obj.ndim == 2 else 0,
            )
    except UserError:
        raise
    except OSError as exc:
        raise UserError(f"{path} is not a readable HDF5 file ({exc}); {fix}") from None


@dataclass
class Normalisation:
    """Per-variable mean and standard deviation, stored with the model (the same numbers at train and inference)."""

    jet_mean: list[float] = field(default_factory=list)
    jet_std: list[float] = field(default_factory=list)
    object_mean: list[float] = field(default_factory=list)
    object_std: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return self.__dict__.copy()

    @classmethod
    def from_dict(cls, d: dict) -> Normalisation:
        return cls(**d)


class InputSpec:
    """Which variables and extras a model reads, checked against the dataset's fields."""

    def __init__(self, cfg: DataConfig, extras: tuple[str, ...] = (), targets: tuple[str, ...] = ()) -> None:
        unknown = [e for e in (*extras, *targets) if e not in (*EXTRAS, *TARGETS)]
        if unknown:
            raise ValueError(f"unknown batch extras or targets {unknown}")
        self.cfg = cfg
        self.jet_vars = cfg.jet_vars
        self.object_vars = cfg.object_vars
        self.extras = tuple(extras)
        self.targets = tuple(targets)

    @property
    def needs_objects(self) -> bool:
        return bool(self.object_vars) or bool(self.extras) or bool(self.targets)

    def check(self, info: FileInfo) -> None:
        check_available(self.jet_vars, info.jet_dtype, objects=False, where=f"{info.path} (jets)")
        if self.cfg.label not in info.jet_dtype.names:
            raise UserError(f"{info.path} has no label field '{self.cfg.label}'; set data.label to a jets field")
        # pT is read for every batch; the derived object variables also read the jet's energy
        jet_need = {"pt"} | ({"energy"} if any(v.name == "e_rel" for v in self.object_vars) else set())
        absent = sorted(jet_need - set(info.jet_dtype.names))
        if absent:
            raise UserError(
                f"{info.path}: the 'jets' table lacks field(s) {', '.join(repr(a) for a in absent)}, which this "
                "config reads; regenerate the shard with 'ai4hep data generate'"
            )
        if self.needs_objects:
            if info.object_dtype is None:
                raise UserError(
                    f"{info.path} has no '{self.cfg.objects}' array; this model needs per-object inputs "
                    f"(use a dataset with {self.cfg.objects}, or data.objects: consts)"
                )
            where = f"{info.path} ({self.cfg.objects})"
            check_available(self.object_vars, info.object_dtype, objects=True, where=where)
            need = {"valid"} | ({"deta", "dphi"} if "points" in self.extras else set())
            need |= {"px", "py", "pz", "energy"} if "vectors" in self.extras else set()
            need |= {"pt"} if "z" in self.extras else set()
            for v in self.object_vars:  # the stored fields a derived variable is computed from
                if v.name == "pt_rel":
                    need |= {"pt"}
                elif v.name == "dr":
                    need |= {"deta", "dphi"}
                elif v.name == "e_rel" and "energy" not in info.object_dtype.names:
                    need |= {"pt", "eta"}
            missing = sorted(need - set(info.object_dtype.names))
            if missing:
                raise UserError(f"{where} lacks {', '.join(missing)}, which this model needs")
            absent = [t for t in self.targets if t not in info.object_dtype.names]
            if absent:
                raise UserError(
                    f"{where} has no '{absent[0]}' labels for the model's auxiliary task; use a dataset with "
                    "track truth labels ('flavour'), or drop the task from model.params.aux_tasks"
                )

    def object_fields(self, dtype: np.dtype) -> list[str]:
        names = {"valid"}
        for v in self.object_vars:
            names |= {"pt", "energy", "eta", "deta", "dphi"} & set(dtype.names) if v.name in DERIVED else {v.name}
        if "points" in self.extras:
            names |= {"deta", "dphi"}
        if "vectors" in self.extras:
            names |= {"px", "py", "pz", "energy"}
        if "z" in self.extras:
            names |= {"pt"}
        names |= set(self.targets)
        return [n for n in dtype.names if n in names]


def bytes_per_jet(spec: InputSpec, info: FileInfo) -> int:
    """Memory one jet takes while being read and turned into a batch (raw fields, features, extras)."""
    n = spec.cfg.max_objects
    raw = info.jet_dtype.itemsize
    out = 4 * (len(spec.jet_vars) + 4)
    if spec.needs_objects and info.object_dtype is not None:
        raw += info.stored_objects * info.object_dtype.itemsize  # whole rows are read, then reduced
        out += n * (
            4 * len(spec.object_vars) + 1 + 4 * (2 * ("points" in spec.extras) + 4 * ("vectors" in spec.extras))
        )
        out += n * 4 * ("z" in spec.extras) + n * 8 * len(spec.targets)
    return raw + out


class JetStream:
    """Batches over a list of shards; iterate once per epoch (call set_epoch to change the shuffle)."""

    def __init__(
        self,
        files: list[Path],
        spec: InputSpec,
        n_classes: int,
        norm: Normalisation | None = None,
        class_weights: np.ndarray | None = None,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if not files:
            raise UserError("a data split has no shard; give more data or change the split fractions")
        self.files = list(files)
        self.infos = [file_info(f, spec.cfg.objects) for f in self.files]
        for info in self.infos:
            spec.check(info)
        self.spec = spec
        self.n_classes = n_classes
        self.norm = norm
        self.class_weights = class_weights
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.drop_last = drop_last
        budget = int(spec.cfg.memory_mb * 2**20)
        per_jet = max(bytes_per_jet(spec, i) for i in self.infos)
        # Raw chunk, carried-over rows, computed features and one batch can coexist: budget / 4 per buffer.
        self.chunk_jets = max(spec.cfg.batch_size, budget // (4 * per_jet))
        self._cache = FeatureCache(Path(spec.cfg.cache), spec) if spec.cfg.cache else None

    @property
    def n_jets(self) -> int:
        return sum(i.n_jets for i in self.infos)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        b = self.spec.cfg.batch_size
        return self.n_jets // b if self.drop_last else -(-self.n_jets // b)

    def _read(self, f: h5py.File, info: FileInfo, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        jets = f["jets"][start:stop]
        if not self.spec.needs_objects:
            return jets, None
        # Whole rows, then fields and slots in numpy: HDF5's compound-subset conversion is >10x slower than this.
        rows = f[self.spec.cfg.objects][start:stop]
        names = self.spec.object_fields(info.object_dtype)
        n = min(self.spec.cfg.max_objects, info.stored_objects)
        return jets, _select(rows[:, :n], names)

    def _file_order(self) -> list[FileInfo]:
        order = np.arange(len(self.files))
        if self.shuffle:
            np.random.default_rng([self.seed, self.epoch, 0]).shuffle(order)
        return [self.infos[k] for k in order]

    def blocks(self) -> Iterator[tuple[FileInfo, dict[str, np.ndarray]]]:
        """Unnormalised input blocks (from the feature cache when it holds the shard), shuffled inside each block."""
        rng = np.random.default_rng([self.seed, self.epoch, 1])
        cache = self._cache
        for info in self._file_order():
            source = cache.blocks(info, self) if cache is not None else self._computed(info)
            for block in source:
                if self.shuffle:
                    perm = rng.permutation(len(block["label"]))
                    block = {k: v[perm] for k, v in block.items()}
                yield info, block

    def _computed(self, info: FileInfo) -> Iterator[dict[str, np.ndarray]]:
        try:
            with h5py.File(info.path, "r", rdcc_nbytes=HDF5_CACHE_BYTES) as f:
                for start in range(0, info.n_jets, self.chunk_jets):
                    jets, objs = self._read(f, info, start, min(info.n_jets, start + self.chunk_jets))
                    yield self.inputs(info, jets, objs)
        except OSError as exc:
            raise UserError(f"{info.path} is truncated or corrupt ({exc}); regenerate the shard") from None

    def inputs(self, info: FileInfo, jets: np.ndarray, objs: np.ndarray | None) -> dict[str, np.ndarray]:
        """Model inputs of a block of rows before normalisation: transformed, checked for NaN/inf, padded."""
        spec, cfg = self.spec, self.spec.cfg
        out: dict[str, np.ndarray] = {}
        labels = jets[cfg.label].astype(np.int64)
        if len(labels) and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise UserError(
                f"{info.path}: label '{cfg.label}' has values outside 0..{self.n_classes - 1}; "
                "set data.label to the dataset's class label"
            )
        out["label"] = labels
        out["pt"] = jets["pt"].astype(np.float32)
        if spec.jet_vars:
            x = compute(spec.jet_vars, jets)
            _check_finite(x, np.ones(x.shape[:1], bool), spec.jet_vars, info.path)
            out["jet"] = x
        if objs is not None:
            mask = np.zeros((len(jets), cfg.max_objects), dtype=bool)
            n = objs.shape[1]
            mask[:, :n] = objs["valid"]

            def pad(a: np.ndarray) -> np.ndarray:
                full = np.zeros((len(jets), cfg.max_objects, *a.shape[2:]), dtype=np.float32)
                full[:, :n] = a
                return np.where(mask.reshape(*mask.shape, *([1] * (a.ndim - 2))), full, 0.0).astype(np.float32)

            if spec.object_vars:
                x = compute(spec.object_vars, objs, jets)
                _check_finite(x, objs["valid"], spec.object_vars, info.path)
                out["objects"] = pad(x)
            out["mask"] = mask
            if "points" in spec.extras:
                out["points"] = pad(np.stack([objs["deta"], objs["dphi"]], axis=-1))
            if "vectors" in spec.extras:
                out["vectors"] = pad(np.stack([objs[k] for k in ("px", "py", "pz", "energy")], axis=-1))
            if "z" in spec.extras:
                out["z"] = pad(objs["pt"] / np.maximum(jets["pt"][:, None], 1e-8))
            for t in spec.targets:
                labels = np.full((len(jets), cfg.max_objects), -1, dtype=np.int64)
                labels[:, :n] = np.where(objs["valid"], objs[t], -1)
                out[t] = labels
        return out

    def finish(self, block: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Class weights and standardisation (padding stays zero)."""
        out = dict(block)
        w = self.class_weights
        labels = block["label"]
        out["weight"] = w[labels].astype(np.float32) if w is not None else np.ones(len(labels), np.float32)
        if self.norm is not None and "jet" in block:
            mean, std = np.asarray(self.norm.jet_mean, np.float32), np.asarray(self.norm.jet_std, np.float32)
            out["jet"] = (block["jet"] - mean) / std
        if self.norm is not None and "objects" in block:
            mean, std = np.asarray(self.norm.object_mean, np.float32), np.asarray(self.norm.object_std, np.float32)
            out["objects"] = (block["objects"] - mean) / std * block["mask"][..., None]
        return out

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        b = self.spec.cfg.batch_size
        carry: dict[str, np.ndarray] | None = None
        for _, raw in self.blocks():
            block = self.finish(raw)
            if carry is not None:
                block = {k: np.concatenate([carry[k], block[k]]) for k in block}
            n_full = (len(block["label"]) // b) * b
            for s in range(0, n_full, b):
                yield self._trim({k: v[s : s + b] for k, v in block.items()})
            carry = {k: v[n_full:] for k, v in block.items()}
        if carry is not None and len(carry["label"]) and not self.drop_last:
            yield self._trim(carry)

    def _trim(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Cut the object axis after the batch's last real object: every model ignores padding (tested), so the
        outputs are the same and the work scales with the batch's real multiplicity, not max_objects."""
        if not self.spec.cfg.trim or "mask" not in batch:
            return batch
        used = np.flatnonzero(batch["mask"].any(axis=0))
        n = int(used[-1]) + 1 if len(used) else 1
        if n == batch["mask"].shape[1]:
            return batch
        return {k: (v[:, :n] if k in OBJECT_KEYS else v) for k, v in batch.items()}


class FeatureCache:
    """Uncompressed, unnormalised model inputs per shard, keyed by the shard's content hash and the input spec.

    The first pass over a shard computes its inputs from HDF5 (gzip) and writes them here, one .npy per input, to a
    temporary folder renamed when the shard is complete; later passes read row ranges of those files, so each epoch
    after the first skips decompression and feature computation. Reads copy rows out of a memory map that is closed
    straight after, so resident memory stays at one block.
    """

    def __init__(self, root: Path, spec: InputSpec) -> None:
        self.root = root
        key = json.dumps(
            [
                spec.cfg.label,
                [v.label for v in spec.jet_vars],
                [v.label for v in spec.object_vars],
                spec.cfg.objects,
                spec.cfg.max_objects,
                list(spec.extras),
                list(spec.targets),
            ]
        )
        self.spec_key = hashlib.sha256(key.encode()).hexdigest()[:16]
        self._layouts: dict[Path, dict[str, tuple[np.dtype, tuple[int, ...], int]]] = {}

    def folder(self, info: FileInfo) -> Path:
        return self.root / f"{info.path.stem}-{info.content_hash[:16]}-{self.spec_key}"

    def blocks(self, info: FileInfo, stream: JetStream) -> Iterator[dict[str, np.ndarray]]:
        folder = self.folder(info)
        if not (folder / "done").exists():
            yield from self._fill(folder, info, stream)
            return
        arrays = self._layout(folder)
        for start in range(0, info.n_jets, stream.chunk_jets):
            stop = min(info.n_jets, start + stream.chunk_jets)
            yield {k: _read_rows(folder / f"{k}.npy", layout, start, stop) for k, layout in arrays.items()}

    def _layout(self, folder: Path) -> dict[str, tuple[np.dtype, tuple[int, ...], int]]:
        """dtype, shape and data offset of each input's .npy file, read once per shard and kept: opening a memory map
        per input and block cost more than the rows themselves for small shards and batches."""
        if folder not in self._layouts:
            layouts = {}
            for path in sorted(folder.glob("*.npy")):
                with open(path, "rb") as fh:
                    major, _ = np.lib.format.read_magic(fh)
                    read_header = (
                        np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                    )
                    shape, fortran, dtype = read_header(fh)
                    if fortran:  # written by _fill as C order; anything else is not this cache's file
                        raise UserError(f"{path} is not a feature-cache file; delete {folder} and run again")
                    layouts[path.stem] = (dtype, shape, fh.tell())
            self._layouts[folder] = layouts
        return self._layouts[folder]

    def _fill(self, folder: Path, info: FileInfo, stream: JetStream) -> Iterator[dict[str, np.ndarray]]:
        tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        complete = False
        try:
            start = 0
            for block in stream._computed(info):
                n = len(block["label"])
                for k, v in block.items():
                    path = tmp / f"{k}.npy"
                    mode = "r+" if path.exists() else "w+"
                    shape = (info.n_jets, *v.shape[1:])
                    mm = np.lib.format.open_memmap(path, mode=mode, dtype=v.dtype, shape=shape)
                    mm[start : start + n] = v
                    mm.flush()
                    del mm
                start += n
                yield block
            complete = start == info.n_jets
        finally:
            if complete:
                (tmp / "done").write_text(info.content_hash)
                shutil.rmtree(folder, ignore_errors=True)
                os.replace(tmp, folder)
            else:  # stopped early (a partial pass or an error): leave no half-filled cache behind
                shutil.rmtree(tmp, ignore_errors=True)


def _read_rows(path: Path, layout: tuple[np.dtype, tuple[int, ...], int], start: int, stop: int) -> np.ndarray:
    """Rows start:stop of a C-order .npy file, read straight into a new array (resident memory: those rows only)."""
    dtype, shape, offset = layout
    per_row = int(np.prod(shape[1:], dtype=np.int64))
    rows = np.fromfile(
        path, dtype=dtype, count=(stop - start) * per_row, offset=offset + start * per_row * dtype.itemsize
    )
    return rows.reshape(stop - start, *shape[1:])


def _select(rows: np.ndarray, names: list[str]) -> np.ndarray:
    """A compact copy of some fields of a structured array (so the full rows can be freed)."""
    out = np.empty(rows.shape, dtype=np.dtype([(n, rows.dtype[n]) for n in names]))
    for n in names:
        out[n] = rows[n]
    return out


def _check_finite(x: np.ndarray, valid: np.ndarray, variables: list[Variable], path: Path) -> None:
    bad = ~np.isfinite(x) & valid[..., None]
    if bad.any():
        i = int(np.argwhere(bad.reshape(-1, x.shape[-1]).any(axis=0))[0, 0])
        raise UserError(
            f"{path}: input variable '{variables[i].label}' has NaN or inf; regenerate the shard, "
            "or drop the variable (or its transform) from the config"
        )


def compute_normalisation(stream: JetStream, max_jets: int) -> Normalisation:
    """Mean/std over the first `max_jets` training jets (objects: over valid slots only), in one streaming pass."""
    jet, obj = _Moments(len(stream.spec.jet_vars)), _Moments(len(stream.spec.object_vars))
    seen = 0
    for _, block in stream.blocks():
        block = {k: v[: max_jets - seen] for k, v in block.items()}
        if "jet" in block:
            jet.add(block["jet"])
        if "objects" in block:
            obj.add(block["objects"][block["mask"]])
        seen += len(block["label"])
        if seen >= max_jets:
            break
    (jet_mean, jet_std), (object_mean, object_std) = jet.result(), obj.result()
    return Normalisation(jet_mean=jet_mean, jet_std=jet_std, object_mean=object_mean, object_std=object_std)


class _Moments:
    """Running sums for a mean and standard deviation per column (a zero spread becomes 1: nothing to scale)."""

    def __init__(self, width: int) -> None:
        self.total, self.squares, self.n = np.zeros(width), np.zeros(width), 0

    def add(self, rows: np.ndarray) -> None:
        x = rows.astype(np.float64)
        self.total += x.sum(0)
        self.squares += (x**2).sum(0)
        self.n += len(x)

    def result(self) -> tuple[list[float], list[float]]:
        n = max(self.n, 1)
        mean = self.total / n
        std = np.sqrt(np.maximum(self.squares / n - mean**2, 0.0))
        return mean.tolist(), np.where(std > 1e-6, std, 1.0).tolist()


def label_counts(files: list[Path], label: str, n_classes: int) -> np.ndarray:
    """Jets per class, reading only the label column."""
    counts = np.zeros(n_classes, dtype=np.int64)
    for p in files:
        with h5py.File(p, "r") as f:
            labels = f["jets"].fields([label])[...].astype(np.int64)
        counts += np.bincount(labels[(labels >= 0) & (labels < n_classes)], minlength=n_classes)
    return counts


def balanced_weights(counts: np.ndarray) -> np.ndarray:
    """w_c = N / (C n_c): each class carries the same total weight (classes absent from training get weight 0)."""
    n, c = counts.sum(), (counts > 0).sum()
    return np.where(counts > 0, n / np.maximum(c * counts, 1), 0.0)

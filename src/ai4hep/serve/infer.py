"""`ai4hep infer PATHS --url URL --model NAME --out DIR`: a grid job's client of the inference service.

The client needs nothing but the dataset and the server: the model's variables, transforms and normalisation travel
in its Triton model config (`parameters`, written by `ai4hep export triton`), so the jets are prepared exactly as in
training. `--run RUN` supplies them instead for a repository made by hand.

Each input shard gives one output file of the same name in OUT, holding a copy of the shard's `jets` table and, row
for row beside it, every model output. Files are written whole (temp file, then rename) and carry the source shard's
content hash: after an interruption the same command skips the finished shards and redoes at most the one it was in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import yaml

from ai4hep.atomic import atomic_path
from ai4hep.data.inspect import dataset_files
from ai4hep.errors import UserError
from ai4hep.extras import require
from ai4hep.serve.tensors import DATATYPE, NUMPY

CONFIG_KEY = "ai4hep.config"
PREPROCESSING_KEY = "ai4hep.preprocessing"


@dataclass
class Endpoint:
    """One model on one server, over HTTP or gRPC, with tritonclient's two APIs behind one small surface."""

    url: str
    model: str
    version: str = ""
    token: str | None = None

    def __post_init__(self) -> None:
        self.grpc = self.url.startswith("grpc://")
        address = self.url.split("://", 1)[1] if "://" in self.url else self.url
        ssl = self.url.startswith("https://")
        self.headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        try:
            if self.grpc:
                import tritonclient.grpc as client

                self.client = client.InferenceServerClient(address)
            else:
                import tritonclient.http as client

                self.client = client.InferenceServerClient(address, ssl=ssl, connection_timeout=30, network_timeout=300)
        except Exception as exc:
            raise UserError(
                f"bad --url {self.url!r} ({exc}); give host:port, http://host:port or grpc://host:port"
            ) from None
        self.api = client

    def _call(self, what: str, fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except UserError:
            raise
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            raise UserError(f"{what} failed at {self.url}: {msg}") from None

    def check(self) -> None:
        live = self._call("the server liveness check", self.client.is_server_live, headers=self.headers)
        if not live:
            raise UserError(f"the server at {self.url} is not live; start it with 'ai4hep serve --repository DIR'")
        ready = self._call("the model readiness check", self.client.is_model_ready, self.model, self.version,
                           headers=self.headers)  # fmt: skip
        if not ready:
            raise UserError(
                f"model '{self.model}' is not ready at {self.url}; check the name with GET /v2/repository/index "
                "or the server's log"
            )

    def config(self) -> dict:
        cfg = self._call("reading the model config", self.client.get_model_config, self.model, self.version,
                         headers=self.headers, **({"as_json": True} if self.grpc else {}))  # fmt: skip
        return cfg.get("config", cfg)

    def metadata(self) -> dict:
        return self._call("reading the model metadata", self.client.get_model_metadata, self.model, self.version,
                          headers=self.headers, **({"as_json": True} if self.grpc else {}))  # fmt: skip

    def infer(self, feed: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
        inputs = []
        for name, value in feed.items():
            if value.dtype not in DATATYPE:
                raise UserError(f"input '{name}' has dtype {value.dtype}, which the protocol client cannot send")
            tensor = self.api.InferInput(name, list(value.shape), DATATYPE[value.dtype])
            if self.grpc:
                tensor.set_data_from_numpy(value)
            else:
                tensor.set_data_from_numpy(value, binary_data=True)
            inputs.append(tensor)
        wanted = [
            self.api.InferRequestedOutput(n) if self.grpc else self.api.InferRequestedOutput(n, binary_data=True)
            for n in outputs
        ]
        result = self._call("inference", self.client.infer, self.model, inputs, model_version=self.version,
                            outputs=wanted, headers=self.headers)  # fmt: skip
        return {n: result.as_numpy(n) for n in outputs}


def _parameter(config: dict, key: str) -> str | None:
    value = (config.get("parameters") or {}).get(key)
    if isinstance(value, dict):
        return value.get("string_value") or value.get("stringValue")
    return value


def model_recipe(config: dict, run: Path | None) -> tuple[str, dict]:
    """The training config (YAML text) and preprocessing (dict) the model expects its inputs prepared with."""
    if run is not None:
        from ai4hep.run.reader import recipe

        return recipe(run)
    text, pre = _parameter(config, CONFIG_KEY), _parameter(config, PREPROCESSING_KEY)
    if not text or not pre:
        raise UserError(
            f"the model config has no '{CONFIG_KEY}' / '{PREPROCESSING_KEY}' parameters (a repository not made by "
            "'ai4hep export triton'); pass --run RUN with the run the model was exported from"
        )
    return text, json.loads(pre)


class Preparer:
    """Model inputs from a shard, exactly as the training run computed them (variables, transforms, normalisation)."""

    def __init__(self, config_text: str, pre: dict, batch_size: int) -> None:
        from ai4hep.data.loader import InputSpec, Normalisation
        from ai4hep.run.config import parse_config

        cfg = parse_config(yaml.safe_load(config_text), "the model's training config")
        cfg.data.cache = None  # the client reads foreign shards; never write a feature cache beside them
        cfg.data.batch_size = batch_size
        self.spec = InputSpec(cfg.data, extras=tuple(pre.get("extras", ())))
        self.norm = Normalisation.from_dict(pre["normalisation"])
        self.classes: list[str] = pre["classes"]
        self.max_objects = int(pre.get("max_objects") or cfg.data.max_objects)

    def batches(self, shard: Path) -> Iterator[dict[str, np.ndarray]]:
        from ai4hep.data.loader import JetStream

        yield from JetStream([shard], self.spec, len(self.classes), self.norm)


def _source_hash(shard: Path, f: h5py.File) -> str:
    """The shard's content hash (its size and mtime for a file without one): what a finished output must match."""
    return str(f.attrs.get("content_hash", "")) or f"{shard.stat().st_size}:{shard.stat().st_mtime_ns}"


def _finished(target: Path, source_hash: str, model: str) -> bool:
    if not target.is_file():
        return False
    try:
        with h5py.File(target, "r") as f:
            return f.attrs.get("source_hash") == source_hash and f.attrs.get("model") == model
    except OSError:
        return False  # a foreign or broken file: redo it (replaced atomically)


def _stack(parts: list[np.ndarray], n_objects: int) -> np.ndarray:
    """Concatenate per-batch outputs; per-object outputs are trimmed per batch, so pad them to the run's width."""
    if parts[0].ndim < 2 or all(p.shape[1:] == parts[0].shape[1:] for p in parts):
        return np.concatenate(parts)
    width = max(n_objects, *(p.shape[1] for p in parts))
    padded = []
    for p in parts:
        full = np.zeros((p.shape[0], width, *p.shape[2:]), dtype=p.dtype)
        full[:, : p.shape[1]] = p
        padded.append(full)
    return np.concatenate(padded)


def infer(
    paths: list[Path],
    url: str,
    model: str,
    out: Path,
    version: str = "",
    run: Path | None = None,
    batch_size: int = 256,
    token: str | None = None,
    progress: bool = True,
) -> dict:
    """Predictions for every jet of PATHS from the model served at URL, one output file per shard in OUT."""
    require("serve", "'ai4hep infer'")
    from tqdm import tqdm

    if batch_size < 1:
        raise UserError(f"--batch-size must be positive, got {batch_size}")
    shards = [f for p in paths for f in dataset_files(Path(p))]
    names = [s.name for s in shards]
    if len(set(names)) != len(names):
        raise UserError("two input shards share a file name; give one dataset folder per --out folder")
    endpoint = Endpoint(url, model, version, token)
    endpoint.check()
    config, meta = endpoint.config(), endpoint.metadata()
    text, pre = model_recipe(config, run)
    prep = Preparer(text, pre, batch_size)
    input_names = [i["name"] for i in meta["inputs"]]
    output_names = [o["name"] for o in meta["outputs"]]
    dtypes = {i["name"]: NUMPY.get(i["datatype"]) for i in meta["inputs"]}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sizes, hashes = {}, {}
    for s in shards:
        with h5py.File(s, "r") as f:
            if "jets" not in f:
                raise UserError(f"{s} has no 'jets' table; give ai4hep dataset shards ('ai4hep data info' checks one)")
            sizes[s] = len(f["jets"])
            hashes[s] = _source_hash(s, f)
    todo = [s for s in shards if not _finished(out / s.name, hashes[s], model)]
    done_jets = sum(sizes[s] for s in shards if s not in todo)
    bar = tqdm(total=sum(sizes.values()), initial=done_jets, unit="jet", disable=not progress, desc="infer")
    for shard in todo:
        parts: dict[str, list[np.ndarray]] = {n: [] for n in output_names}
        for batch in prep.batches(shard):
            missing = [n for n in input_names if n not in batch]
            if missing:
                raise UserError(f"the model wants inputs {missing} that its training config does not produce")
            feed = {n: np.ascontiguousarray(batch[n], dtype=dtypes[n] or batch[n].dtype) for n in input_names}
            for name, value in endpoint.infer(feed, output_names).items():
                parts[name].append(value)
            bar.update(len(batch["label"]))
        with h5py.File(shard, "r") as f:
            jets = f["jets"][:]
        target = out / shard.name
        with atomic_path(target) as tmp, h5py.File(tmp, "w") as f:
            f.create_dataset("jets", data=jets, compression="gzip")
            group = f.create_group("predictions")
            for name, values in parts.items():
                array = _stack(values, prep.max_objects) if values else np.zeros((0,), np.float32)
                if len(array) != len(jets):
                    raise UserError(f"the server returned {len(array)} rows of '{name}' for {len(jets)} jets")
                group.create_dataset(name, data=array, compression="gzip")
            f.attrs.update(
                {
                    "source": str(shard.resolve()),
                    "source_hash": hashes[shard],
                    "model": model,
                    "model_version": version,
                    "url": url,
                    "classes": json.dumps(prep.classes),
                }
            )
    bar.close()
    skipped = len(shards) - len(todo)
    return {"shards": len(shards), "written": len(todo), "skipped": skipped, "jets": sum(sizes.values())}

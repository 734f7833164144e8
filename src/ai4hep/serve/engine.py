"""What both protocol front ends share: the loaded models, name/version lookup, the token check, readiness, and the
count of refused requests."""

from __future__ import annotations

import asyncio
import hmac
from pathlib import Path

from ai4hep.serve.model import LoadedModel
from ai4hep.serve.repository import NAME_RULE, scan, valid_name
from ai4hep.serve.tensors import InferError, check_axes

SERVER_NAME = "ai4hep"
EXTENSIONS = ["binary_tensor_data", "statistics", "model_configuration", "model_repository"]


def load_repository(
    repository: Path, threads: int = 0, spin: bool = True, follow_links: bool = False
) -> list[LoadedModel]:
    """Every model version the repository's version policies select, with its onnxruntime session."""
    sources = scan(repository, follow_links)
    return [LoadedModel(src, v, path, threads, spin) for src in sources for v, path in src.versions.items()]


class Engine:
    def __init__(self, models: list[LoadedModel], token: str | None = None) -> None:
        self.versions: dict[str, dict[int, LoadedModel]] = {}
        for m in models:
            self.versions.setdefault(m.name, {})[m.version] = m
        self.latest = {name: vs[max(vs)] for name, vs in self.versions.items()}
        self.token = token.encode() if token else None
        self.draining = False
        self.rejected: dict[tuple[str, str], int] = {}  # (protocol, kind) -> requests refused before any model ran

    @property
    def models(self) -> list[LoadedModel]:
        return [m for vs in self.versions.values() for m in vs.values()]

    @property
    def ready(self) -> bool:
        return not self.draining

    def start(self) -> None:
        """Batchers need the running loop: created here, not in __init__."""
        from ai4hep.serve.batcher import Batcher

        for m in self.models:
            if m.config.HasField("dynamic_batching"):
                delay = m.config.dynamic_batching.max_queue_delay_microseconds
                m.batcher = Batcher(m, m.max_batch_size, delay, m.instances, m.idle_dispatch)

    def model(self, name: str, version: str = "") -> LoadedModel:
        versions = self.versions.get(name)
        if versions is None:
            if not valid_name(name):
                raise InferError(f"invalid model name {name!r}: {NAME_RULE}")
            have = ", ".join(sorted(self.versions))
            raise InferError(f"unknown model '{name}'; this server has: {have}", "not_found")
        if not version:
            return self.latest[name]
        if not version.isdigit():
            raise InferError(f"model '{name}': version must be a whole number, got {version!r}")
        model = versions.get(int(version))
        if model is None:
            have = ", ".join(map(str, sorted(versions)))
            raise InferError(f"model '{name}' has no version {version}; it serves version(s) {have}", "not_found")
        return model

    @staticmethod
    async def infer(model: LoadedModel, feed: dict, batch: int, start_ns: int) -> list:
        """All of the model's outputs for one checked request; counted as a success in the model's statistics."""
        check_axes(model.input_map, feed)
        outputs = await model.infer(feed, batch)
        model.stats.request_done(start_ns, batch)
        return outputs

    def authorized(self, header: str | None) -> bool:
        """`Authorization: Bearer TOKEN` (HTTP header or gRPC metadata), compared in constant time."""
        if self.token is None:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self.token)

    def refused(self, protocol: str, kind: str) -> None:
        key = (protocol, kind)
        self.rejected[key] = self.rejected.get(key, 0) + 1

    async def drain(self) -> None:
        """Flush the batchers' queues (no more waiting for company) and let their batches finish; a request that
        still arrives is dispatched at once."""
        self.draining = True
        await asyncio.gather(*(m.batcher.drain() for m in self.models if m.batcher is not None))

    def stop_batchers(self) -> None:
        """After the front ends have closed: nothing can reach a batcher any more."""
        for m in self.models:
            if m.batcher is not None:
                m.batcher.task.cancel()

    def close(self) -> None:
        for m in self.models:
            m.close()

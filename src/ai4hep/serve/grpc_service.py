"""The Open Inference Protocol over gRPC: Triton's `inference.GRPCInferenceService` (the protobuf messages that
tritonclient ships), served by ai4hep's own HTTP/2 layer (grpc_wire.py).

Inputs come as `raw_input_contents` (what tritonclient and CMSSW's SonicTriton send) or as typed `contents`;
outputs always go back as `raw_output_contents`, as Triton does. Errors are gRPC status codes with a clear message.
"""

from __future__ import annotations

import time

from google.protobuf.message import DecodeError
from tritonclient.grpc import service_pb2 as pb

from ai4hep import __version__
from ai4hep.serve.engine import EXTENSIONS, SERVER_NAME, Engine
from ai4hep.serve.grpc_wire import Call, Handler, RpcError, Status
from ai4hep.serve.tensors import (
    CONTENTS,
    InferError,
    check_complete,
    check_input,
    from_buffer,
    from_values,
    output_index,
)

SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
CODES = {
    "invalid": Status.INVALID_ARGUMENT,
    "unauthenticated": Status.UNAUTHENTICATED,
    "not_found": Status.NOT_FOUND,
    "too_large": Status.RESOURCE_EXHAUSTED,
    "unsupported": Status.UNIMPLEMENTED,
    "unavailable": Status.UNAVAILABLE,
    "internal": Status.INTERNAL,
}
NOT_SERVED = (
    "is not served by ai4hep serve, which loads its repository at startup and has no shared-memory, trace, "
    "logging or streaming endpoints"
)


def decode(model, request: pb.ModelInferRequest):
    """(inputs by name, batch size) from raw_input_contents or typed contents."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InferError(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs; send one per input")
    feed, batch = {}, None
    for i, t in enumerate(request.inputs):
        shape = list(t.shape)
        spec, batch = check_input(model, feed, t.name, t.datatype, shape, batch)
        if raw:
            feed[t.name] = from_buffer(spec, shape, raw[i])
        elif spec.datatype in CONTENTS and t.HasField("contents"):
            feed[t.name] = from_values(spec, shape, getattr(t.contents, CONTENTS[spec.datatype]))
        else:
            raise InferError(f"input '{t.name}' has no data: send raw_input_contents or contents")
    check_complete(model, feed)
    return feed, batch or 1


class InferenceService:
    """One coroutine per unary method, named as in the service; each takes (request, call), returns the reply."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _fail(self, exc: InferError) -> RpcError:
        self.engine.refused("grpc", exc.kind)
        return RpcError(CODES[exc.kind], str(exc))

    def _check(self, call: Call) -> None:
        if self.engine.token is not None and not self.engine.authorized(call.metadata.get("authorization")):
            message = "missing or wrong bearer token: send metadata 'authorization: Bearer TOKEN'"
            raise self._fail(InferError(message, "unauthenticated"))

    def _model(self, request, call: Call):
        self._check(call)
        try:
            return self.engine.model(request.name, request.version)
        except InferError as exc:
            raise self._fail(exc) from None

    async def ServerLive(self, request, call):
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request, call):
        return pb.ServerReadyResponse(ready=self.engine.ready)

    async def ModelReady(self, request, call):
        """An unknown model or version is 'not ready', not an error: what Triton answers (checked against a real
        one in tests/test_triton_conformance.py)."""
        self._check(call)
        try:
            self.engine.model(request.name, request.version)
        except InferError as exc:
            if exc.kind != "not_found":
                raise self._fail(exc) from None
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=self.engine.ready)

    async def ServerMetadata(self, request, call):
        self._check(call)
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=__version__, extensions=EXTENSIONS)

    async def ModelMetadata(self, request, call):
        m = self._model(request, call)

        def tensors(specs):
            meta = pb.ModelMetadataResponse.TensorMetadata
            return [meta(name=s.name, datatype=s.datatype, shape=m.metadata_shape(s)) for s in specs]

        return pb.ModelMetadataResponse(
            name=m.name,
            versions=[str(v) for v in sorted(self.engine.versions[m.name])],
            platform=m.config.platform,
            inputs=tensors(m.inputs),
            outputs=tensors(m.outputs),
        )

    async def ModelConfig(self, request, call):
        m = self._model(request, call)
        return pb.ModelConfigResponse(config=m.config)

    async def ModelStatistics(self, request, call):
        self._check(call)
        if request.name:
            m = self._model(request, call)
            models = [m] if request.version else list(self.engine.versions[m.name].values())
        else:
            models = self.engine.models
        return pb.ModelStatisticsResponse(model_stats=[m.stats.to_proto(m.name, m.version) for m in models])

    async def RepositoryIndex(self, request, call):
        self._check(call)
        return pb.RepositoryIndexResponse(
            models=[
                pb.RepositoryIndexResponse.ModelIndex(name=m.name, version=str(m.version), state="READY")
                for m in self.engine.models
            ]
        )

    async def ModelInfer(self, request, call):
        start = time.perf_counter_ns()
        self._check(call)
        try:
            model = self.engine.model(request.model_name, request.model_version)
        except InferError as exc:
            raise self._fail(exc) from None
        try:
            feed, batch = decode(model, request)
            chosen = [output_index(model, o.name) for o in request.outputs] or range(len(model.outputs))
            outputs = await self.engine.infer(model, feed, batch, start)
        except InferError as exc:
            model.stats.request_failed(start)
            raise RpcError(CODES[exc.kind], str(exc)) from None
        reply = pb.ModelInferResponse(model_name=model.name, model_version=str(model.version), id=request.id)
        for i in chosen:
            spec, arr = model.outputs[i], outputs[i]
            reply.outputs.add(name=spec.name, datatype=spec.datatype, shape=arr.shape)
            reply.raw_output_contents.append(arr.tobytes())
        return reply


def _unary(engine: Engine, method, request_type) -> Handler:
    async def handle(message: bytes, call: Call) -> bytes:
        try:
            request = request_type.FromString(message)
        except DecodeError:
            engine.refused("grpc", "invalid")
            message = f"the {request_type.__name__} message is not valid protobuf"
            raise RpcError(Status.INVALID_ARGUMENT, message) from None
        return (await method(request, call)).SerializeToString()

    return handle


def _not_served(service: InferenceService, name: str) -> Handler:
    async def handle(message: bytes, call: Call) -> bytes:
        service._check(call)
        service.engine.refused("grpc", "unsupported")
        raise RpcError(Status.UNIMPLEMENTED, f"{name} {NOT_SERVED}")

    return handle


def routes(engine: Engine) -> dict[str, Handler]:
    """Every method of the service by its path; those ai4hep does not serve answer UNIMPLEMENTED."""
    service = InferenceService(engine)
    table: dict[str, Handler] = {}
    for method in SERVICE.methods:
        impl = getattr(service, method.name, None)
        streaming = method.client_streaming or method.server_streaming
        path = f"/{SERVICE.full_name}/{method.name}"
        if impl is None or streaming:
            table[path] = _not_served(service, method.name)
        else:
            table[path] = _unary(engine, impl, getattr(pb, method.input_type.name))
    return table

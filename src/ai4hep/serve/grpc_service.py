"""The Open Inference Protocol over gRPC: Triton's `inference.GRPCInferenceService` (the generated stubs that
tritonclient ships), served with grpc.aio.

Inputs come as `raw_input_contents` (what tritonclient and CMSSW's SonicTriton send) or as typed `contents`;
outputs always go back as `raw_output_contents`, as Triton does. Errors are gRPC status codes with a clear message.
"""

from __future__ import annotations

import time

import grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc

from ai4hep import __version__
from ai4hep.serve.engine import EXTENSIONS, SERVER_NAME, Engine
from ai4hep.serve.tensors import (
    CONTENTS,
    InferError,
    check_complete,
    check_input,
    from_buffer,
    from_values,
    output_index,
)

CODES = {
    "invalid": grpc.StatusCode.INVALID_ARGUMENT,
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "too_large": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "unsupported": grpc.StatusCode.UNIMPLEMENTED,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "internal": grpc.StatusCode.INTERNAL,
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


class InferenceService(service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def _fail(self, context: grpc.aio.ServicerContext, exc: InferError):
        self.engine.refused("grpc", exc.kind)
        await context.abort(CODES[exc.kind], str(exc))

    async def _check(self, context: grpc.aio.ServicerContext) -> None:
        if self.engine.token is None:
            return
        header = next((v for k, v in context.invocation_metadata() or () if k == "authorization"), None)
        if not self.engine.authorized(header):
            message = "missing or wrong bearer token: send metadata 'authorization: Bearer TOKEN'"
            await self._fail(context, InferError(message, "unauthenticated"))

    async def _model(self, request, context: grpc.aio.ServicerContext):
        await self._check(context)
        try:
            return self.engine.model(request.name, request.version)
        except InferError as exc:
            await self._fail(context, exc)

    async def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=self.engine.ready)

    async def ModelReady(self, request, context):
        """An unknown model or version is 'not ready', not an error: what Triton answers (checked against a real
        one in tests/test_triton_conformance.py)."""
        await self._check(context)
        try:
            self.engine.model(request.name, request.version)
        except InferError as exc:
            if exc.kind != "not_found":
                await self._fail(context, exc)
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=self.engine.ready)

    async def ServerMetadata(self, request, context):
        await self._check(context)
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=__version__, extensions=EXTENSIONS)

    async def ModelMetadata(self, request, context):
        m = await self._model(request, context)

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

    async def ModelConfig(self, request, context):
        m = await self._model(request, context)
        return pb.ModelConfigResponse(config=m.config)

    async def ModelStatistics(self, request, context):
        await self._check(context)
        if request.name:
            m = await self._model(request, context)
            models = [m] if request.version else list(self.engine.versions[m.name].values())
        else:
            models = self.engine.models
        return pb.ModelStatisticsResponse(model_stats=[m.stats.to_proto(m.name, m.version) for m in models])

    async def RepositoryIndex(self, request, context):
        await self._check(context)
        return pb.RepositoryIndexResponse(
            models=[
                pb.RepositoryIndexResponse.ModelIndex(name=m.name, version=str(m.version), state="READY")
                for m in self.engine.models
            ]
        )

    async def ModelInfer(self, request, context):
        start = time.perf_counter_ns()
        if self.engine.token is not None:
            await self._check(context)
        try:
            model = self.engine.model(request.model_name, request.model_version)
        except InferError as exc:
            await self._fail(context, exc)
        try:
            feed, batch = decode(model, request)
            chosen = [output_index(model, o.name) for o in request.outputs] or range(len(model.outputs))
            outputs = await self.engine.infer(model, feed, batch, start)
        except InferError as exc:
            model.stats.request_failed(start)
            await context.abort(CODES[exc.kind], str(exc))
        reply = pb.ModelInferResponse(model_name=model.name, model_version=str(model.version), id=request.id)
        for i in chosen:
            spec, arr = model.outputs[i], outputs[i]
            reply.outputs.add(name=spec.name, datatype=spec.datatype, shape=arr.shape)
            reply.raw_output_contents.append(arr.tobytes())
        return reply

    async def _not_served(self, request, context):
        await self._check(context)
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"this endpoint {NOT_SERVED}")

    RepositoryModelLoad = RepositoryModelUnload = _not_served
    SystemSharedMemoryStatus = SystemSharedMemoryRegister = SystemSharedMemoryUnregister = _not_served
    CudaSharedMemoryStatus = CudaSharedMemoryRegister = CudaSharedMemoryUnregister = _not_served
    TraceSetting = LogSettings = _not_served


def add_service(server: grpc.aio.Server, engine: Engine) -> None:
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceService(engine), server)

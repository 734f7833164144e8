"""The Open Inference Protocol over HTTP/REST (aiohttp), with Triton's binary tensor, statistics, model
configuration and repository-index extensions.

Errors are `{"error": "..."}` with a 4xx status (tritonclient decodes exactly that shape). The infer handler is the
hot path: one body read, one json.loads of the header, zero-copy np.frombuffer views of the binary inputs, one join
of the binary outputs; no logging, no per-request objects beyond those.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np
from aiohttp import web
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from ai4hep import __version__
from ai4hep.serve import metrics
from ai4hep.serve.engine import EXTENSIONS, SERVER_NAME, Engine
from ai4hep.serve.tensors import InferError, check_complete, check_input, from_buffer, from_values, output_index

STATUS = {
    "invalid": 400,
    "unauthenticated": 401,
    "not_found": 404,
    "too_large": 413,
    "unsupported": 501,
    "unavailable": 503,
    "internal": 500,
}
PUBLIC = frozenset(("/v2/health/live", "/v2/health/ready"))  # probes work without the token
HEADER_LENGTH = "Inference-Header-Content-Length"
_INT64 = {3, 4, 6, 16, 18}  # FieldDescriptor types printed as strings by protobuf's JSON mapping


def _ints(descriptor, data: dict) -> dict:
    """protobuf's JSON mapping prints 64-bit integers as strings; Triton prints them as numbers (dims, counts)."""
    for field in descriptor.fields:
        if field.name not in data:
            continue
        value = data[field.name]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            vfield = field.message_type.fields_by_name["value"]
            for k, v in value.items():
                if vfield.message_type is not None:
                    _ints(vfield.message_type, v)
                elif vfield.type in _INT64:
                    value[k] = int(v)
        elif field.message_type is not None:
            for item in value if isinstance(value, list) else [value]:
                _ints(field.message_type, item)
        elif field.type in _INT64:
            data[field.name] = [int(v) for v in value] if isinstance(value, list) else int(value)
    return data


def to_json(message: Message) -> dict:
    data = MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    return _ints(message.DESCRIPTOR, data)


def error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _requested(model, request: dict) -> list[tuple[int, bool]]:
    """(output index, as binary) for each output the request wants; all outputs when it names none."""
    params = request.get("parameters") or {}
    if not isinstance(params, dict):
        raise InferError("'parameters' must be an object")
    default = bool(params.get("binary_data_output", False))
    wanted = request.get("outputs")
    if wanted is None:
        return [(i, default) for i in range(len(model.outputs))]
    if not isinstance(wanted, list):
        raise InferError("'outputs' must be a list of {\"name\": ...} objects")
    chosen = []
    for o in wanted:
        index = output_index(model, o.get("name") if isinstance(o, dict) else None)
        p = o.get("parameters") or {}
        if "classification" in p:
            raise InferError("the classification extension is not supported; request the output tensor", "unsupported")
        chosen.append((index, bool(p.get("binary_data", default))))
    return chosen


def decode(model, body: bytes, header_length: str | None) -> tuple[dict, dict[str, np.ndarray], int]:
    """(request JSON, inputs by name, batch size) from a JSON or binary-extension request body."""
    if header_length is None:
        end = len(body)
    else:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise InferError(f"{HEADER_LENGTH} is {header_length!r} but the body holds {len(body)} bytes")
        end = int(header_length)
    try:
        request = json.loads(body[:end])
    except (ValueError, UnicodeDecodeError) as exc:
        raise InferError(f"malformed JSON in the inference request: {exc}") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise InferError("the inference request must be a JSON object with an 'inputs' list")
    feed: dict[str, np.ndarray] = {}
    batch = None
    offset = end
    for t in request["inputs"]:
        if not isinstance(t, dict):
            raise InferError("each entry of 'inputs' must be an object with name, datatype, shape")
        name, shape = t.get("name"), t.get("shape")
        spec, batch = check_input(model, feed, name, t.get("datatype"), shape, batch)
        params = t.get("parameters") or {}
        size = params.get("binary_data_size") if isinstance(params, dict) else None
        if size is not None:
            if type(size) is not int or size < 0:
                raise InferError(f"input '{name}': binary_data_size must be a non-negative integer")
            if offset + size > len(body):
                raise InferError(
                    f"truncated binary data: input '{name}' needs {size} bytes at offset {offset - end} of the "
                    f"binary part, which holds only {len(body) - end}"
                )
            feed[name] = from_buffer(spec, shape, body, offset, size)
            offset += size
        elif "data" in t:
            feed[name] = from_values(spec, shape, t["data"])
        else:
            raise InferError(f"input '{name}' has neither 'data' nor parameters.binary_data_size")
    if offset != len(body):
        raise InferError(
            f"{len(body) - offset} bytes of binary data follow the inputs; the binary_data_size values do not add up"
        )
    check_complete(model, feed)
    return request, feed, batch or 1


def encode(model, request: dict, outputs: list[np.ndarray], chosen: list[tuple[int, bool]]) -> web.Response:
    entries, blobs = [], []
    for i, binary in chosen:
        spec, arr = model.outputs[i], outputs[i]
        entry = {"name": spec.name, "datatype": spec.datatype, "shape": list(arr.shape)}
        if binary:
            arr = np.ascontiguousarray(arr)
            entry["parameters"] = {"binary_data_size": arr.nbytes}
            blobs.append(arr)
        else:
            entry["data"] = arr.ravel().tolist()
        entries.append(entry)
    reply = {"model_name": model.name, "model_version": str(model.version), "outputs": entries}
    if "id" in request:
        reply["id"] = request["id"]
    header = json.dumps(reply, separators=(",", ":")).encode()
    if not blobs:
        return web.Response(body=header, content_type="application/json")
    return web.Response(
        body=b"".join([header, *blobs]),
        headers={HEADER_LENGTH: str(len(header)), "Content-Type": "application/octet-stream"},
    )


class HttpFrontEnd:
    def __init__(self, engine: Engine, max_request_bytes: int) -> None:
        self.engine = engine
        self.max_request_bytes = max_request_bytes
        self.registry = metrics.registry(engine)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_request_bytes, middlewares=[self._guard])
        r = app.router
        # aiohttp tries routes in order: infer first, as nearly every request is one
        r.add_post("/v2/models/{model}/infer", self.infer)
        r.add_post("/v2/models/{model}/versions/{version}/infer", self.infer)
        r.add_get("/v2/health/live", self.live)
        r.add_get("/v2/health/ready", self.ready)
        r.add_get("/v2", self.server_metadata)
        r.add_get("/v2/models/stats", self.stats)
        r.add_post("/v2/repository/index", self.index)
        r.add_get("/metrics", self.metrics)
        for base in ("/v2/models/{model}", "/v2/models/{model}/versions/{version}"):
            r.add_get(base, self.model_metadata)
            r.add_get(base + "/ready", self.model_ready)
            r.add_get(base + "/config", self.model_config)
            r.add_get(base + "/stats", self.stats)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        token_ok = self.engine.token is None or request.path in PUBLIC
        if not token_ok and not self.engine.authorized(request.headers.get("Authorization")):
            self.engine.refused("http", "unauthenticated")
            return web.json_response(
                {"error": "missing or wrong bearer token: send the header 'Authorization: Bearer TOKEN'"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            return await handler(request)
        except InferError as exc:
            self.engine.refused("http", exc.kind)
            return error(str(exc), STATUS[exc.kind])
        except web.HTTPException as exc:
            self.engine.refused("http", str(exc.status))
            if exc.status == 404:
                return error(f"no endpoint {request.method} {request.path}; see docs/serving.md", 404)
            return error(exc.reason if exc.text is None else exc.text.strip(), exc.status)
        except Exception as exc:  # a bug, not a bad request: keep serving, answer in the protocol's error shape
            logging.getLogger("ai4hep.serve").exception("internal error on %s %s", request.method, request.path)
            return error(f"internal server error ({exc.__class__.__name__}: {exc})", 500)

    async def live(self, request: web.Request) -> web.Response:
        return web.Response()

    async def ready(self, request: web.Request) -> web.Response:
        return web.Response() if self.engine.ready else error("the server is shutting down", 503)

    async def server_metadata(self, request: web.Request) -> web.Response:
        return web.json_response({"name": SERVER_NAME, "version": __version__, "extensions": EXTENSIONS})

    def _model(self, request: web.Request):
        return self.engine.model(request.match_info["model"], request.match_info.get("version", ""))

    async def model_metadata(self, request: web.Request) -> web.Response:
        m = self._model(request)

        def tensors(specs):
            return [{"name": s.name, "datatype": s.datatype, "shape": m.metadata_shape(s)} for s in specs]

        return web.json_response(
            {
                "name": m.name,
                "versions": [str(v) for v in sorted(self.engine.versions[m.name])],
                "platform": m.config.platform,
                "inputs": tensors(m.inputs),
                "outputs": tensors(m.outputs),
            }
        )

    async def model_ready(self, request: web.Request) -> web.Response:
        self._model(request)
        return web.Response() if self.engine.ready else error("the server is shutting down", 503)

    async def model_config(self, request: web.Request) -> web.Response:
        return web.json_response(to_json(self._model(request).config))

    async def stats(self, request: web.Request) -> web.Response:
        from tritonclient.grpc import service_pb2

        if "model" in request.match_info:
            m = self._model(request)
            models = [m] if "version" in request.match_info else list(self.engine.versions[m.name].values())
        else:
            models = self.engine.models
        reply = service_pb2.ModelStatisticsResponse(model_stats=[m.stats.to_proto(m.name, m.version) for m in models])
        return web.json_response(to_json(reply))

    async def index(self, request: web.Request) -> web.Response:
        return web.json_response(
            [{"name": m.name, "version": str(m.version), "state": "READY", "reason": ""} for m in self.engine.models]
        )

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(self.registry), headers={"Content-Type": metrics.CONTENT_TYPE})

    async def infer(self, request: web.Request) -> web.Response:
        start = time.perf_counter_ns()
        model = self._model(request)
        try:
            if (request.content_length or 0) > self.max_request_bytes:
                raise InferError(self._too_large(request.content_length), "too_large")
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise InferError(self._too_large(None), "too_large") from None
            req, feed, batch = decode(model, body, request.headers.get(HEADER_LENGTH))
            chosen = _requested(model, req)
            outputs = await self.engine.infer(model, feed, batch, start)
            return encode(model, req, outputs, chosen)
        except InferError as exc:
            model.stats.request_failed(start)
            return error(str(exc), STATUS[exc.kind])

    def _too_large(self, size: int | None) -> str:
        mb = self.max_request_bytes / 2**20
        got = f" ({size / 2**20:.1f} MiB)" if size else ""
        return (
            f"request body{got} exceeds the server's limit of {mb:g} MiB; send smaller batches or start the server "
            "with a larger --max-request-mb"
        )

"""The Open Inference Protocol over HTTP/REST (on http_wire), with Triton's binary tensor, statistics, model
configuration and repository-index extensions.

Errors are `{"error": "..."}` with a 4xx status (tritonclient decodes exactly that shape). The infer handler is the
hot path: one json.loads of the header, zero-copy np.frombuffer views of the binary inputs, one join of the binary
outputs; no logging, no per-request objects beyond those.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

import numpy as np
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from ai4hep import __version__
from ai4hep.serve import metrics
from ai4hep.serve.engine import EXTENSIONS, SERVER_NAME, Engine
from ai4hep.serve.http_wire import Request, Response, error_response, json_response
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
_HEADER_LENGTH_KEY = HEADER_LENGTH.lower()
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
        if not isinstance(p, dict):
            raise InferError(f"output '{o['name']}': 'parameters' must be an object, got {type(p).__name__}")
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
    except RecursionError:
        raise InferError("malformed JSON in the inference request: nested too deeply") from None
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
        if not isinstance(params, dict):
            raise InferError(f"input '{name}': 'parameters' must be an object, got {type(params).__name__}")
        size = params.get("binary_data_size")
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


def encode(model, request: dict, outputs: list[np.ndarray], chosen: list[tuple[int, bool]]) -> Response:
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
        return Response(200, header, "application/json")
    return Response(200, b"".join([header, *blobs]), "application/octet-stream", ((HEADER_LENGTH, str(len(header))),))


Params = dict[str, str]
Route = Callable[[Request, Params], Awaitable[Response]]


class HttpFrontEnd:
    def __init__(self, engine: Engine, max_request_bytes: int) -> None:
        self.engine = engine
        self.max_request_bytes = max_request_bytes
        self.registry = metrics.registry(engine)
        self.fixed: dict[str, tuple[str, Route]] = {
            "/v2/health/live": ("GET", self.live),
            "/v2/health/ready": ("GET", self.ready),
            "/v2": ("GET", self.server_metadata),
            "/v2/models/stats": ("GET", self.stats),
            "/v2/repository/index": ("POST", self.index),
            "/metrics": ("GET", self.metrics),
        }
        self.per_model: dict[str, tuple[str, Route]] = {
            "": ("GET", self.model_metadata),
            "ready": ("GET", self.model_ready),
            "config": ("GET", self.model_config),
            "stats": ("GET", self.stats),
            "infer": ("POST", self.infer),
        }

    def route(self, path: str) -> tuple[str, Route, Params] | None:
        """(method, handler, path parameters) for a path: the fixed ones, then /v2/models/MODEL[/versions/V][/TAIL].
        Segments are split before they are percent-decoded, so an encoded '/' stays inside a model name (and is
        refused as one)."""
        if path in self.fixed:
            return (*self.fixed[path], {})
        parts = path.split("/")
        if len(parts) < 4 or parts[:3] != ["", "v2", "models"] or not parts[3]:
            return None
        params = {"model": unquote(parts[3])}
        rest = parts[4:]
        if rest[:1] == ["versions"]:
            if len(rest) < 2 or not rest[1]:
                return None
            params["version"] = unquote(rest[1])
            rest = rest[2:]
        if len(rest) > 1 or (rest and rest[0] not in self.per_model) or rest == [""]:
            return None
        return (*self.per_model[rest[0] if rest else ""], params)

    async def handle(self, request: Request) -> Response:
        """Token check (except for the health probes), routing, and the protocol's error shape for every refusal."""
        engine = self.engine
        public = engine.token is None or request.path in PUBLIC
        if not public and not engine.authorized(request.headers.get("authorization")):
            engine.refused("http", "unauthenticated")
            return error_response(
                "missing or wrong bearer token: send the header 'Authorization: Bearer TOKEN'",
                401,
                (("WWW-Authenticate", "Bearer"),),
            )
        found = self.route(request.path)
        if found is None:
            engine.refused("http", "404")
            return error_response(f"no endpoint {request.method} {request.path}; see docs/serving.md", 404)
        method, handler, params = found
        if request.method != method and not (method == "GET" and request.method == "HEAD"):
            engine.refused("http", "405")
            return error_response(
                f"{request.method} is not allowed on {request.path}; use {method}", 405, (("Allow", method),)
            )
        try:
            return await handler(request, params)
        except InferError as exc:
            engine.refused("http", exc.kind)
            return error_response(str(exc), STATUS[exc.kind])

    async def live(self, request: Request, params: Params) -> Response:
        return Response()

    async def ready(self, request: Request, params: Params) -> Response:
        return Response() if self.engine.ready else error_response("the server is shutting down", 503)

    async def server_metadata(self, request: Request, params: Params) -> Response:
        return json_response({"name": SERVER_NAME, "version": __version__, "extensions": EXTENSIONS})

    def _model(self, params: Params):
        return self.engine.model(params["model"], params.get("version", ""))

    async def model_metadata(self, request: Request, params: Params) -> Response:
        m = self._model(params)

        def tensors(specs):
            return [{"name": s.name, "datatype": s.datatype, "shape": m.metadata_shape(s)} for s in specs]

        return json_response(
            {
                "name": m.name,
                "versions": [str(v) for v in sorted(self.engine.versions[m.name])],
                "platform": m.config.platform,
                "inputs": tensors(m.inputs),
                "outputs": tensors(m.outputs),
            }
        )

    async def model_ready(self, request: Request, params: Params) -> Response:
        self._model(params)
        return Response() if self.engine.ready else error_response("the server is shutting down", 503)

    async def model_config(self, request: Request, params: Params) -> Response:
        return json_response(to_json(self._model(params).config))

    async def stats(self, request: Request, params: Params) -> Response:
        from tritonclient.grpc import service_pb2

        if "model" in params:
            m = self._model(params)
            models = [m] if "version" in params else list(self.engine.versions[m.name].values())
        else:
            models = self.engine.models
        reply = service_pb2.ModelStatisticsResponse(model_stats=[m.stats.to_proto(m.name, m.version) for m in models])
        return json_response(to_json(reply))

    async def index(self, request: Request, params: Params) -> Response:
        if request.too_large is not None:
            raise InferError(self._too_large(request.too_large), "too_large")
        return json_response(
            [{"name": m.name, "version": str(m.version), "state": "READY", "reason": ""} for m in self.engine.models]
        )

    async def metrics(self, request: Request, params: Params) -> Response:
        return Response(200, metrics.render(self.registry), metrics.CONTENT_TYPE)

    async def infer(self, request: Request, params: Params) -> Response:
        start = time.perf_counter_ns()
        model = self._model(params)
        try:
            if request.too_large is not None:
                raise InferError(self._too_large(request.too_large), "too_large")
            req, feed, batch = decode(model, request.body, request.headers.get(_HEADER_LENGTH_KEY))
            chosen = _requested(model, req)
            outputs = await self.engine.infer(model, feed, batch, start)
            return encode(model, req, outputs, chosen)
        except InferError as exc:
            model.stats.request_failed(start)
            return error_response(str(exc), STATUS[exc.kind])

    def _too_large(self, size: int | None) -> str:
        mb = self.max_request_bytes / 2**20
        got = f" ({size / 2**20:.1f} MiB)" if size else ""
        return (
            f"request body{got} exceeds the server's limit of {mb:g} MiB; send smaller batches or start the server "
            "with a larger --max-request-mb"
        )

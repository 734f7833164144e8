"""The ceiling row of benchmarks/serving_compare.py: a server that runs no model and does no checking.

It speaks just enough of the Open Inference Protocol for the benchmark's client, with the same layers as `ai4hep
serve` (ai4hep's HTTP/2 layer for gRPC, ai4hep.serve.grpc_wire, and its HTTP/1.1 layer on httptools,
ai4hep.serve.http_wire): health and model ready over HTTP,
and infer over gRPC (raw binary tensors) and HTTP (binary tensor extension). Every infer is answered with precomputed
bytes: the reference outputs of the pool's first `batch` jets, so that the client's check of its first answer passes
(later answers are not the right ones). What it measures is the most any Python server built on these libraries can
reach with this client on this machine: the protocol's own cost, with nothing of a model server's work.

    python benchmarks/peers/fixed_reply.py --http-port 8000 --grpc-port 8001 --pool mlp=POOL.npz:probs ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket

import numpy as np
from tritonclient.grpc import service_pb2 as pb

from ai4hep.serve.grpc_wire import Call, Http2Server
from ai4hep.serve.http_wire import HttpServer, Request, Response


class Replies:
    """Serialized answers per (model, batch size), made on first use from the pool's reference outputs."""

    def __init__(self, pools: dict[str, tuple[np.ndarray, str]]) -> None:
        self.pools = pools
        self.grpc: dict[tuple[str, int], bytes] = {}
        self.http: dict[tuple[str, int], tuple[bytes, int]] = {}

    def _outputs(self, model: str, batch: int) -> tuple[np.ndarray, str]:
        ref, name = self.pools[model]
        return np.ascontiguousarray(ref[np.arange(batch) % len(ref)], dtype=np.float32), name

    def grpc_reply(self, model: str, batch: int) -> bytes:
        key = (model, batch)
        if key not in self.grpc:
            out, name = self._outputs(model, batch)
            reply = pb.ModelInferResponse(model_name=model, model_version="1")
            reply.outputs.add(name=name, datatype="FP32", shape=out.shape)
            reply.raw_output_contents.append(out.tobytes())
            self.grpc[key] = reply.SerializeToString()
        return self.grpc[key]

    def http_reply(self, model: str, batch: int) -> tuple[bytes, int]:
        key = (model, batch)
        if key not in self.http:
            out, name = self._outputs(model, batch)
            data = out.tobytes()
            tensor = {"name": name, "datatype": "FP32", "shape": list(out.shape)}
            header = json.dumps(
                {
                    "model_name": model,
                    "model_version": "1",
                    "outputs": [{**tensor, "parameters": {"binary_data_size": len(data)}}],
                }
            ).encode()
            self.http[key] = (header + data, len(header))
        return self.http[key]


def grpc_routes(replies: Replies):
    async def model_infer(request: bytes, call: Call) -> bytes:
        r = pb.ModelInferRequest.FromString(request)
        return replies.grpc_reply(r.model_name, int(r.inputs[0].shape[0]))

    return {"/inference.GRPCInferenceService/ModelInfer": model_infer}


def http_handler(replies: Replies):
    async def handle(request: Request) -> Response:
        parts = request.path.split("/")  # /v2/health/ready, /v2/models/M/ready, /v2/models/M/infer
        if request.method != "POST" or parts[-1] != "infer":
            return Response()
        size = int(request.headers.get("inference-header-content-length", len(request.body)))
        head = json.loads(request.body[:size])
        data, header_size = replies.http_reply(parts[3], int(head["inputs"][0]["shape"][0]))
        return Response(200, data, "application/octet-stream", (("Inference-Header-Content-Length", str(header_size)),))

    return handle


async def serve(replies: Replies, http_port: int, grpc_port: int) -> None:
    grpc = Http2Server(grpc_routes(replies), 1 << 30)
    await grpc.start(socket.create_server(("127.0.0.1", grpc_port), backlog=1024))
    http = HttpServer(http_handler(replies), 1 << 30)
    await http.start(socket.create_server(("127.0.0.1", http_port), backlog=1024))
    print(f"fixed-reply server: HTTP {http_port}, gRPC {grpc_port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await http.shutdown(1.0)
        await grpc.shutdown(1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--grpc-port", type=int, required=True)
    ap.add_argument("--pool", action="append", default=[], help="MODEL=POOL.npz:OUTPUT (the benchmark's jet pool)")
    args = ap.parse_args()
    pools = {}
    for spec in args.pool:
        model, rest = spec.split("=", 1)
        path, output = rest.rsplit(":", 1)
        with np.load(path) as z:
            pools[model] = (z["__ref__"], output)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(Replies(pools), args.http_port, args.grpc_port))


if __name__ == "__main__":
    main()

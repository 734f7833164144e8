"""`ai4hep export triton` and `ai4hep serve`: a real server process on 127.0.0.1, queried with the official
tritonclient (HTTP and gRPC) and with hand-made malformed requests, on models trained on generated jets."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
import yaml
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2
from tritonclient.utils import InferenceServerException

from ai4hep.cli import main
from ai4hep.run import TrainedRun
from ai4hep.serve.server import serve

ROOT = Path(__file__).resolve().parents[1]
READY = re.compile(r"HTTP http://(\S+):(\d+), gRPC \S+:(\d+);")
TOKEN = "s3cret-token"


def _train(config: str, data: Path, out: Path, params: dict) -> Path:
    cfg = yaml.safe_load((ROOT / "configs" / config).read_text())
    first, second = (str(f) for f in sorted(data.glob("*.h5"))[:2])  # the fixtures hold two shards
    cfg["data"].update(paths=[], train=[first], val=[second], test=[second])
    cfg["data"]["batch_size"] = 64
    cfg["model"]["params"] = params
    cfg["trainer"].update(max_epochs=1, threads=1)
    path = out.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def runs(hlf5_dir: Path, flavour_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("serve-runs")
    return {
        "mlp": _train("hlf5_mlp.yaml", hlf5_dir, tmp / "mlp", {"hidden": [16, 16]}),
        "dips": _train("flavour_dips.yaml", flavour_dir, tmp / "dips", {"phi": [16, 16], "f": [16]}),
    }


@pytest.fixture(scope="module")
def repository(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hlf5_mlp: dynamic batching with a 20 ms window; dips: three inputs (jet, objects, bool mask), no batcher;
    hlf5_mlp and mlp_slow (a hand-edited copy whose window is 5 s, for the drain test) always wait out their window,
    as Triton does; mlp_idle: the 5 s window with idle dispatch left on (the default)."""
    repo = tmp_path_factory.mktemp("serve") / "models"
    export = ["export", "triton", "--repository", str(repo)]
    assert main([*export, str(runs["mlp"]), "--name", "hlf5_mlp", "--max-queue-delay-us", "20000"]) == 0
    assert main([*export, str(runs["dips"]), "--name", "dips", "--no-dynamic-batching"]) == 0
    exported = (repo / "hlf5_mlp" / "config.pbtxt").read_text()
    slow = exported.replace("max_queue_delay_microseconds: 20000", "max_queue_delay_microseconds: 5000000")
    always_wait = 'parameters { key: "ai4hep.idle_dispatch" value { string_value: "false" } }\n'
    for name, text in (("mlp_slow", slow + always_wait), ("mlp_idle", slow), ("hlf5_mlp", exported + always_wait)):
        if name != "hlf5_mlp":
            shutil.copytree(repo / "hlf5_mlp", repo / name)
        (repo / name / "config.pbtxt").write_text(text.replace('name: "hlf5_mlp"', f'name: "{name}"'))
    return repo


class Server:
    """`python -m ai4hep.cli serve` on free ports of 127.0.0.1."""

    def __init__(self, repo: Path, *extra: str, env: dict | None = None) -> None:
        cmd = [sys.executable, "-m", "ai4hep.cli", "serve", "--repository", str(repo)]
        cmd += ["--http-port", "0", "--grpc-port", "0", "--threads", "1", *extra]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}
        )
        self.log = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1.0)
            if ready:
                line = self.proc.stdout.readline()
                self.log.append(line)
                if m := READY.search(line):
                    self.host, self.http_port, self.grpc_port = m.group(1), int(m.group(2)), int(m.group(3))
                    self.http = f"{self.host}:{self.http_port}"
                    self.grpc = f"{self.host}:{self.grpc_port}"
                    return
            if self.proc.poll() is not None:
                break
        self.proc.kill()
        raise AssertionError("server did not start: " + "".join(self.log) + self.proc.stdout.read())

    def stop(self, signal_it: bool = True) -> str:
        if signal_it and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        return "".join(self.log) + out


@pytest.fixture(scope="module")
def server(repository: Path):
    s = Server(repository, "--max-request-mb", "1")
    yield s
    out = s.stop()
    assert s.proc.returncode == 0, out


def _inputs(run: Path, n: int, objects: int | None = None) -> dict[str, np.ndarray]:
    """n real test jets as the model's inputs (optionally cut to `objects` objects per jet)."""
    tagger = TrainedRun(run)
    batch = next(iter(tagger.stream(tagger.test_files())))
    feed = {k: np.ascontiguousarray(batch[k][:n]) for k in tagger.model.inputs}
    if objects is not None:
        feed = {k: np.ascontiguousarray(v[:, :objects]) if k in ("objects", "mask") else v for k, v in feed.items()}
    return feed


def _reference(repo: Path, name: str, feed: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(str(repo / name / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(["probs"], feed)[0]


def _http_inputs(feed: dict[str, np.ndarray], binary: bool = True) -> list:
    out = []
    for name, arr in feed.items():
        t = thttp.InferInput(name, list(arr.shape), "BOOL" if arr.dtype == bool else "FP32")
        t.set_data_from_numpy(arr, binary_data=binary)
        out.append(t)
    return out


def _grpc_inputs(feed: dict[str, np.ndarray]) -> list:
    out = []
    for name, arr in feed.items():
        t = tgrpc.InferInput(name, list(arr.shape), "BOOL" if arr.dtype == bool else "FP32")
        t.set_data_from_numpy(arr)
        out.append(t)
    return out


def _raw(server: Server, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(server.http, timeout=30)
    conn.request(method, path, body, headers or {})
    reply = conn.getresponse()
    status, data = reply.status, reply.read()
    conn.close()
    return status, json.loads(data) if data else {}


def _stats(client, name: str) -> dict:
    return client.get_inference_statistics(name)["model_stats"][0]


def test_export_writes_a_triton_repository(repository: Path, runs: dict[str, Path]) -> None:
    config = text_format.Parse((repository / "dips" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.name == "dips" and config.platform == "onnxruntime_onnx" and config.max_batch_size == 1024
    dims = {t.name: (model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in config.input}
    assert list(dims) == list(TrainedRun(runs["dips"]).model.inputs) == ["jet", "objects", "mask"]
    assert dims["jet"] == ("TYPE_FP32", [2]) and dims["mask"] == ("TYPE_BOOL", [-1])
    assert dims["objects"][0] == "TYPE_FP32" and dims["objects"][1][0] == -1 and dims["objects"][1][1] > 0
    assert not config.HasField("dynamic_batching")
    mlp = text_format.Parse((repository / "hlf5_mlp" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert mlp.dynamic_batching.max_queue_delay_microseconds == 20000 and list(mlp.input[0].dims) == [16]
    assert sorted(p.name for p in (repository / "dips").rglob("*")) == ["1", "config.pbtxt", "model.onnx"]
    # exporting over an existing version is refused (nothing overwritten)
    assert main(["export", "triton", str(runs["dips"]), "--repository", str(repository), "--name", "dips"]) == 2


def test_health_metadata_and_config(server: Server) -> None:
    h, g = thttp.InferenceServerClient(server.http), tgrpc.InferenceServerClient(server.grpc)
    assert h.is_server_live() and h.is_server_ready() and g.is_server_live() and g.is_server_ready()
    assert h.is_model_ready("dips") and g.is_model_ready("dips", "1") and not h.is_model_ready("nope")
    assert not g.is_model_ready("nope") and not g.is_model_ready("dips", "7")  # Triton: not ready, no error
    assert h.get_server_metadata()["name"] == "ai4hep"
    assert "binary_tensor_data" in g.get_server_metadata().extensions
    meta = h.get_model_metadata("dips")
    assert meta["versions"] == ["1"] and meta["platform"] == "onnxruntime_onnx"
    shapes = {t["name"]: (t["datatype"], t["shape"]) for t in meta["inputs"]}
    assert shapes["jet"] == ("FP32", [-1, 2]) and shapes["mask"] == ("BOOL", [-1, -1])
    assert shapes["objects"][1][:2] == [-1, -1] and meta["outputs"][0]["shape"] == [-1, 3]
    gmeta = g.get_model_metadata("dips")
    assert [(t.name, t.datatype, list(t.shape)) for t in gmeta.inputs] == [
        (t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]
    ]
    config = h.get_model_config("hlf5_mlp")  # dims as numbers, as Triton prints them
    assert config["max_batch_size"] == 1024 and config["input"][0]["dims"] == [16]
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 20000
    gconfig = g.get_model_config("hlf5_mlp").config  # what CMSSW's SonicTriton reads
    assert gconfig.max_batch_size == 1024 and gconfig.input[0].name == config["input"][0]["name"]


def test_infer_matches_onnxruntime(server: Server, repository: Path, runs: dict[str, Path]) -> None:
    h, g = thttp.InferenceServerClient(server.http), tgrpc.InferenceServerClient(server.grpc)
    for name, run in (("dips", runs["dips"]), ("hlf5_mlp", runs["mlp"])):
        feed = _inputs(run, 5)
        want = _reference(repository, name, feed)
        assert want.shape[0] == 5
        got = {
            "http binary": h.infer(name, _http_inputs(feed)).as_numpy("probs"),
            "http json": h.infer(
                name, _http_inputs(feed, binary=False), outputs=[thttp.InferRequestedOutput("probs", binary_data=False)]
            ).as_numpy("probs"),
            "grpc": g.infer(name, _grpc_inputs(feed)).as_numpy("probs"),
        }
        for how, arr in got.items():
            np.testing.assert_allclose(arr, want, rtol=1e-5, atol=1e-6, err_msg=f"{name} over {how}")
    # the mask first (unaligned float data after it in the body), and a different object count
    feed = _inputs(runs["dips"], 3, objects=7)
    reordered = {k: feed[k] for k in ("mask", "jet", "objects")}
    got = h.infer("dips", _http_inputs(reordered), model_version="1").as_numpy("probs")
    np.testing.assert_allclose(got, _reference(repository, "dips", feed), rtol=1e-5, atol=1e-6)


def test_statistics_and_metrics_count_requests(server: Server, runs: dict[str, Path]) -> None:
    h, g = thttp.InferenceServerClient(server.http), tgrpc.InferenceServerClient(server.grpc)
    before = _stats(h, "dips")
    feed = _inputs(runs["dips"], 4)
    for _ in range(3):
        h.infer("dips", _http_inputs(feed))
    g.infer("dips", _grpc_inputs(feed))
    after = _stats(h, "dips")
    assert after["inference_stats"]["success"]["count"] - before["inference_stats"]["success"]["count"] == 4
    assert after["inference_count"] - before["inference_count"] == 16
    assert after["execution_count"] - before["execution_count"] == 4  # no batcher: one run per request
    gstats = g.get_inference_statistics("dips").model_stats[0]
    assert gstats.inference_count == after["inference_count"]
    assert len(h.get_inference_statistics()["model_stats"]) == 4  # every model
    conn = http.client.HTTPConnection(server.http, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    line = re.search(r'^ai4hep_inference_request_success_total\{model="dips",version="1"\} (\S+)$', text, re.M)
    assert line and float(line.group(1)) == after["inference_stats"]["success"]["count"]
    assert 'ai4hep_inference_batch_size_bucket{le="4.0",model="dips",version="1"}' in text
    assert "ai4hep_inference_request_duration_seconds_count" in text


def test_dynamic_batcher_runs_concurrent_requests_together(server: Server, repository: Path, runs) -> None:
    g = tgrpc.InferenceServerClient(server.grpc)
    feed = _inputs(runs["mlp"], 16)
    want = _reference(repository, "hlf5_mlp", feed)
    before = g.get_inference_statistics("hlf5_mlp").model_stats[0]
    results: dict[int, np.ndarray] = {}
    done = threading.Semaphore(0)

    def callback(i: int):
        def cb(result, error):
            results[i] = error if error else result.as_numpy("probs")
            done.release()

        return cb

    for i in range(16):
        g.async_infer("hlf5_mlp", _grpc_inputs({"jet": feed["jet"][i : i + 1]}), callback(i))
    for _ in range(16):
        assert done.acquire(timeout=30)
    for i in range(16):
        assert isinstance(results[i], np.ndarray), results[i]
        np.testing.assert_allclose(results[i][0], want[i], rtol=1e-5, atol=1e-6)
    after = g.get_inference_statistics("hlf5_mlp").model_stats[0]
    executions = after.execution_count - before.execution_count
    assert after.inference_count - before.inference_count == 16
    assert executions < 16, "16 concurrent requests inside a 20 ms window were run one by one"
    assert max(b.batch_size for b in after.batch_stats) > 1


def test_a_lone_client_does_not_wait_for_the_batch_window(server: Server, repository: Path, runs) -> None:
    """mlp_idle waits up to 5 s for company, but a client sending one request after another can have none: its
    requests run at once (idle dispatch). The model's statistics say how long each waited in the queue."""
    g = tgrpc.InferenceServerClient(server.grpc)
    feed = _inputs(runs["mlp"], 4)
    want = _reference(repository, "mlp_idle", feed)
    for i in range(4):
        got = g.infer("mlp_idle", _grpc_inputs({"jet": feed["jet"][i : i + 1]})).as_numpy("probs")
        np.testing.assert_allclose(got[0], want[i], rtol=1e-5, atol=1e-6)
    stats = g.get_inference_statistics("mlp_idle").model_stats[0]
    assert stats.inference_count == 4 and stats.execution_count == 4
    queued_s = stats.inference_stats.queue.ns / 1e9
    assert queued_s < 1.0, f"4 sequential requests waited {queued_s:.1f} s in total for a 5 s window"


def test_idle_dispatch_still_batches_requests_that_arrive_together(repository: Path, runs) -> None:
    """Two requests submitted together to an idle model (5 s window, batches of 2): the first yields once before
    running alone, sees the second arrive, and both run as one batch; a request after that is no longer alone
    either (concurrency is remembered for a second), so it waits for company."""
    from ai4hep.serve.batcher import Batcher
    from ai4hep.serve.engine import load_repository

    model = next(m for m in load_repository(repository, threads=1) if m.name == "mlp_idle")
    feed = _inputs(runs["mlp"], 3)["jet"]
    want = _reference(repository, "mlp_idle", {"jet": feed})

    async def scenario() -> list:
        batcher = Batcher(model, 2, 5_000_000, 1, idle_dispatch=True)
        try:
            pair = await asyncio.gather(*(batcher.submit({"jet": feed[i : i + 1]}, 1) for i in range(2)))
            late = asyncio.ensure_future(batcher.submit({"jet": feed[2:3]}, 1))
            await asyncio.sleep(0.2)
            assert not late.done(), "a request within a second of an overlap ran at once"
            batcher.flushing = True  # as the drain does: dispatch without waiting
            batcher.wake.set()
            return [*pair, await late]
        finally:
            batcher.task.cancel()

    try:
        got = asyncio.run(scenario())
    finally:
        model.close()
    for i, out in enumerate(got):
        np.testing.assert_allclose(out[0][0], want[i], rtol=1e-5, atol=1e-6)
    assert model.stats.execution_count == 2 and sorted(model.stats.batches) == [1, 2]


def test_malformed_requests_get_4xx_and_the_server_keeps_serving(server: Server, runs: dict[str, Path]) -> None:
    h, g = thttp.InferenceServerClient(server.http), tgrpc.InferenceServerClient(server.grpc)
    feed = _inputs(runs["dips"], 2, objects=6)
    fails_before = _stats(h, "dips")["inference_stats"]["fail"]["count"]

    def valid() -> None:
        assert h.infer("dips", _http_inputs(feed)).as_numpy("probs").shape == (2, 3)
        assert g.infer("dips", _grpc_inputs(feed)).as_numpy("probs").shape == (2, 3)

    header = {
        "inputs": [
            {
                "name": n,
                "datatype": "BOOL" if a.dtype == bool else "FP32",
                "shape": list(a.shape),
                "parameters": {"binary_data_size": a.nbytes},
            }
            for n, a in feed.items()
        ]
    }
    head = json.dumps(header).encode()
    data = b"".join(a.tobytes() for a in feed.values())
    length = {"Inference-Header-Content-Length": str(len(head))}
    cases = {
        "malformed JSON": ("/v2/models/dips/infer", b'{"inputs": [', {}, 400, "malformed JSON"),
        "truncated binary data": ("/v2/models/dips/infer", head + data[:-9], length, 400, "truncated binary data"),
        "extra binary data": ("/v2/models/dips/infer", head + data + b"\0", length, 400, "do not add up"),
        "unknown model": ("/v2/models/nope/infer", head + data, length, 404, "unknown model 'nope'"),
        "unknown version": ("/v2/models/dips/versions/9/infer", head + data, length, 404, "no version 9"),
        "bad version": ("/v2/models/dips/versions/x/infer", head + data, length, 400, "whole number"),
        "oversized": ("/v2/models/dips/infer", b"x" * (2 << 20), {}, 413, "--max-request-mb"),
        "no such endpoint": ("/v2/models/dips/nothing", b"", {}, 404, "no endpoint"),
    }
    for what, (path, body, headers, status, message) in cases.items():
        got, reply = _raw(server, "POST", path, body, headers)
        assert (got, message in reply.get("error", "")) == (status, True), (what, got, reply)
        valid()
    # through tritonclient: wrong datatype, wrong shape, inconsistent object axis, oversized
    wrong = {
        "wrong dtype": [thttp.InferInput("jet", [2, 2], "FP64")],
        "wrong shape": [thttp.InferInput("jet", [2, 3], "FP32")],
    }
    wrong["wrong dtype"][0].set_data_from_numpy(feed["jet"].astype(np.float64))
    wrong["wrong shape"][0].set_data_from_numpy(np.zeros((2, 3), np.float32))
    for what, inputs in wrong.items():
        with pytest.raises(InferenceServerException, match="input 'jet'") as err:
            h.infer("dips", inputs)
        assert err.value.status() == "400", what
        valid()
    skew = {**feed, "mask": feed["mask"][:, :5]}
    with pytest.raises(InferenceServerException, match="agree on axis"):
        h.infer("dips", _http_inputs(skew))
    big = {"jet": np.zeros((1000, 2), np.float32), "objects": np.zeros((1000, 40, 11), np.float32)}
    big["mask"] = np.ones((1000, 40), bool)
    with pytest.raises(InferenceServerException, match="exceeds the server's limit") as err:
        h.infer("dips", _http_inputs(big))
    assert err.value.status() == "413"
    valid()
    grpc_cases = {
        "INVALID_ARGUMENT": ("dips", [tgrpc.InferInput("jet", [2, 2], "FP64")]),
        "NOT_FOUND": ("nope", _grpc_inputs(feed)),
        "RESOURCE_EXHAUSTED": ("dips", _grpc_inputs(big)),
    }
    grpc_cases["INVALID_ARGUMENT"][1][0].set_data_from_numpy(feed["jet"].astype(np.float64))
    for code, (name, inputs) in grpc_cases.items():
        with pytest.raises(InferenceServerException) as err:
            g.infer(name, inputs)
        assert err.value.status() == f"StatusCode.{code}", err.value
        valid()
    fails = _stats(h, "dips")["inference_stats"]["fail"]["count"] - fails_before
    assert fails >= 8  # requests that named the model: counted as its failures


def _read_reply(sock: socket.socket, buffer: bytearray, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response from a raw socket; `buffer` keeps what arrived beyond it."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-response: {bytes(buffer)!r}"
        buffer += chunk
    end = buffer.index(b"\r\n\r\n")
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    size = 0 if head_only else int(headers.get("content-length", "0"))
    while len(buffer) < end + 4 + size:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        buffer += chunk
    body = bytes(buffer[end + 4 : end + 4 + size])
    del buffer[: end + 4 + size]
    return int(lines[0].split()[1]), headers, body


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_http_layer_pipelining_continue_chunked_compressed_and_refusals(server: Server, runs: dict[str, Path]) -> None:
    """The HTTP/1.1 layer (http_wire.py) on raw sockets: pipelined requests answered in order, Expect: 100-continue,
    chunked and gzip/deflate bodies, HEAD, and each refusal with its status, the server serving on."""
    feed = _inputs(runs["dips"], 2, objects=6)
    h = thttp.InferenceServerClient(server.http)
    want = h.infer("dips", _http_inputs(feed)).as_numpy("probs")
    tensors = [
        {"name": n, "datatype": "BOOL" if a.dtype == bool else "FP32", "shape": list(a.shape)} for n, a in feed.items()
    ]
    for t, a in zip(tensors, feed.values(), strict=True):
        t["parameters"] = {"binary_data_size": a.nbytes}
    head = json.dumps({"inputs": tensors, "outputs": [{"name": "probs", "parameters": {"binary_data": True}}]})
    body = head.encode() + b"".join(a.tobytes() for a in feed.values())

    def infer(length: int | None, *extra: str, path: str = "/v2/models/dips/infer") -> bytes:
        lines = [f"POST {path} HTTP/1.1", "Host: x", f"Inference-Header-Content-Length: {len(head)}", *extra]
        lines += [] if length is None else [f"Content-Length: {length}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def probs(reply: tuple[int, dict, bytes]) -> np.ndarray:
        status, headers, data = reply
        assert status == 200, data
        return np.frombuffer(data[int(headers["inference-header-content-length"]) :], np.float32).reshape(2, 3)

    def connect() -> tuple[socket.socket, bytearray]:
        return socket.create_connection((server.host, server.http_port), timeout=30), bytearray()

    def refused(reply: tuple[int, dict, bytes], status: int, message: str) -> None:
        assert reply[0] == status and message in json.loads(reply[2])["error"], reply

    sock, buf = connect()
    ready = b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n"
    sock.sendall(infer(len(body)) + body + ready + infer(len(body)) + body)  # three requests in one write
    np.testing.assert_allclose(probs(_read_reply(sock, buf)), want, rtol=1e-6)
    assert _read_reply(sock, buf)[0] == 200
    np.testing.assert_allclose(probs(_read_reply(sock, buf)), want, rtol=1e-6)
    sock.sendall(infer(len(body), "Expect: 100-continue"))
    assert _read_reply(sock, buf)[0] == 100
    sock.sendall(body)
    np.testing.assert_allclose(probs(_read_reply(sock, buf)), want, rtol=1e-6)
    cut = len(body) // 2
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:cut], body[cut:])) + b"0\r\n\r\n"
    sock.sendall(infer(None, "Transfer-Encoding: chunked") + chunked)
    np.testing.assert_allclose(probs(_read_reply(sock, buf)), want, rtol=1e-6)
    sock.sendall(b"HEAD /v2 HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = _read_reply(sock, buf, head_only=True)
    assert status == 200 and int(headers["content-length"]) > 0
    # refusals that keep the connection: wrong method, too large (chunked, or once inflated), unknown or broken
    # compression
    sock.sendall(b"GET /v2/models/dips/infer HTTP/1.1\r\nHost: x\r\n\r\n")
    refused(_read_reply(sock, buf), 405, "use POST")
    sock.sendall(b"POST /v2/health/live HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    refused(_read_reply(sock, buf), 405, "use GET")
    piece = b"x" * (512 << 10)
    sock.sendall(infer(None, "Transfer-Encoding: chunked") + (b"%x\r\n%s\r\n" % (len(piece), piece)) * 3 + b"0\r\n\r\n")
    refused(_read_reply(sock, buf), 413, "--max-request-mb")
    bomb = gzip.compress(b"\0" * (3 << 20))
    sock.sendall(infer(len(bomb), "Content-Encoding: gzip") + bomb)
    refused(_read_reply(sock, buf), 413, "--max-request-mb")
    sock.sendall(infer(len(body), "Content-Encoding: br") + body)
    refused(_read_reply(sock, buf), 415, "gzip, deflate or identity")
    sock.sendall(infer(len(body), "Content-Encoding: gzip") + body)
    refused(_read_reply(sock, buf), 400, "not valid gzip")
    sock.sendall(infer(len(body)) + body)
    np.testing.assert_allclose(probs(_read_reply(sock, buf)), want, rtol=1e-6)
    sock.close()
    # refusals that close the connection: too large with Expect (answered before the body), bad HTTP, headers beyond
    # 64 KiB
    closing = {
        "expect": (infer(2 << 20, "Expect: 100-continue"), 413, "--max-request-mb"),
        "http": (b"GET /v2 HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400, "malformed HTTP request"),
        "headers": (b"GET /v2 HTTP/1.1\r\nX-Big: " + b"y" * (70 << 10) + b"\r\n\r\n", 431, "64 KiB"),
    }
    for what, (data, status, message) in closing.items():
        sock, buf = connect()
        sock.sendall(data)
        reply = _read_reply(sock, buf)
        refused(reply, status, message)
        assert reply[1].get("connection") == "close" and _closed(sock), what
        sock.close()
    # tritonclient's own request compression
    for algorithm in ("gzip", "deflate"):
        out = h.infer("dips", _http_inputs(feed), request_compression_algorithm=algorithm).as_numpy("probs")
        np.testing.assert_allclose(out, want, rtol=1e-6, err_msg=algorithm)


def _mean_model(path: Path, per_object: bool = False) -> None:
    """An ONNX model that averages its objects without looking at the mask: cutting padding changes its output;
    with `per_object`, it also returns its mask (an output with one entry per object)."""
    from onnx import TensorProto, helper, save

    objects = helper.make_tensor_value_info("objects", TensorProto.FLOAT, ["batch", "n_objects", 2])
    mask = helper.make_tensor_value_info("mask", TensorProto.BOOL, ["batch", "n_objects"])
    probs = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 2])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [helper.make_node("ReduceMean", ["objects", "axes"], ["probs"], keepdims=0)]
    outputs = [probs]
    if per_object:
        nodes.append(helper.make_node("Identity", ["mask"], ["echo"]))
        outputs.append(helper.make_tensor_value_info("echo", TensorProto.BOOL, ["batch", "n_objects"]))
    graph = helper.make_graph(nodes, "mean", [objects, mask], outputs, initializer=[axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    path.parent.mkdir(parents=True)
    save(model, str(path))


def test_padding_is_cut_to_the_longest_jet_where_outputs_allow(repository: Path, runs, tmp_path: Path, capsys) -> None:
    """ai4hep.trim_padding (written by the export for models with a mask): a batch is cut after the last object any
    of its jets holds, with the same outputs; a model whose outputs depend on the padding is served uncut, with a
    warning; a parameter that names no mask is one clear error."""
    from ai4hep.errors import UserError
    from ai4hep.serve.engine import load_repository
    from ai4hep.serve.padding import TRIM_KEY, trimmable

    config = text_format.Parse((repository / "dips" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.parameters[TRIM_KEY].string_value == "mask"
    dips = next(m for m in load_repository(repository) if m.name == "dips")
    assert dips.trim is not None and sorted(dips.trim.cut) == [("mask", (1,)), ("objects", (1,))]
    feed = _inputs(runs["dips"], 64)
    counts = feed["mask"].sum(axis=1)
    padded = np.flatnonzero(counts < counts.max())  # jets shorter than the batch's longest, which sets its width
    padded = padded[np.argsort(-counts[padded], kind="stable")[:5]]
    feed = {k: np.ascontiguousarray(v[padded]) for k, v in feed.items()}
    longest = int(feed["mask"].sum(axis=1).max())
    assert len(padded) == 5 and longest < feed["mask"].shape[1], "the test jets should carry padding"
    cut = dips.trim.apply(feed)
    assert cut["objects"].shape[1] == cut["mask"].shape[1] == longest and cut["jet"] is feed["jet"]
    full = dips.session.run(["probs"], feed)[0]
    np.testing.assert_allclose(dips.session.run(["probs"], cut)[0], full, rtol=1e-5, atol=1e-6)
    empty = {**feed, "mask": np.zeros_like(feed["mask"])}
    assert dips.trim.apply(empty)["objects"].shape[1] == 1
    # the dynamic batcher keys requests by length bucket: a short jet is not batched with (and cut to) a long one
    assert dips.trim.bucket(feed) == -(-longest // 16)
    assert dips.trim.bucket({**feed, "mask": feed["mask"][:, :5]}) == 1

    repo = tmp_path / "repo"
    _mean_model(repo / "mean" / "1" / "model.onnx")
    (repo / "mean" / "config.pbtxt").write_text(
        f'name: "mean"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n'
        f'parameters {{ key: "{TRIM_KEY}" value {{ string_value: "mask" }} }}\n'
    )
    capsys.readouterr()
    (mean,) = load_repository(repo)
    assert mean.trim is None and "served uncut" in capsys.readouterr().err
    (repo / "mean" / "config.pbtxt").write_text(
        (repo / "mean" / "config.pbtxt").read_text().replace('string_value: "mask"', 'string_value: "objects"')
    )
    with pytest.raises(UserError, match="not a BOOL input"):
        load_repository(repo)
    assert trimmable(repo / "mean" / "1" / "model.onnx")
    shutil.rmtree(repo / "mean" / "1")
    _mean_model(repo / "mean" / "1" / "model.onnx", per_object=True)
    assert not trimmable(repo / "mean" / "1" / "model.onnx")  # the export leaves such models uncut
    (repo / "mean" / "config.pbtxt").write_text(
        (repo / "mean" / "config.pbtxt").read_text().replace('string_value: "objects"', 'string_value: "mask"')
    )
    with pytest.raises(UserError, match="one entry per object"):
        load_repository(repo)


def test_object_count_is_capped_at_the_exports_max_objects(server: Server, repository: Path, runs) -> None:
    """The export carries the run's preprocessing into config.pbtxt; its max_objects (40 for the DIPS config) caps
    the objects per jet a request may send: one more is 400 / INVALID_ARGUMENT, before the model runs."""
    config = text_format.Parse((repository / "dips" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    cap = json.loads(config.parameters["ai4hep.preprocessing"].string_value)["max_objects"]
    feed = _inputs(runs["dips"], 2)
    h, g = thttp.InferenceServerClient(server.http), tgrpc.InferenceServerClient(server.grpc)
    pad = cap + 1 - feed["objects"].shape[1]
    assert pad > 0
    over = {
        **feed,
        "objects": np.pad(feed["objects"], ((0, 0), (0, pad), (0, 0))),
        "mask": np.pad(feed["mask"], ((0, 0), (0, pad))),
    }
    for client, inputs, code in ((h, _http_inputs, "400"), (g, _grpc_inputs, "StatusCode.INVALID_ARGUMENT")):
        with pytest.raises(
            InferenceServerException, match=f"takes at most {cap} .the max_objects it was trained"
        ) as err:
            client.infer("dips", inputs(over))
        assert err.value.status() == code
        assert client.infer("dips", inputs(feed)).as_numpy("probs").shape == (2, 3)


def test_model_names_cannot_escape_the_repository(server: Server, repository: Path) -> None:
    h, g = thttp.InferenceServerClient(server.http), tgrpc.InferenceServerClient(server.grpc)
    outside = repository.parent / "outside"  # a valid model folder next to the repository
    shutil.copytree(repository / "dips", outside, dirs_exist_ok=True)
    for path in ("/v2/models/..%2Foutside/config", "/v2/models/%2E%2E/config", "/v2/models/..%2F..%2Fetc%2Fpasswd"):
        status, reply = _raw(server, "GET", path)
        assert status == 400 and "invalid model name" in reply["error"], (path, status, reply)
    for bad in ("../outside", "..", "a/b", ".hidden"):
        # tritonclient leaves '/' unescaped in the URL: such paths match no endpoint at all
        with pytest.raises(InferenceServerException, match=r"invalid model name|no endpoint"):
            h.get_model_config(bad)
        with pytest.raises(InferenceServerException) as err:
            g.get_model_config(bad)
        assert err.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert h.is_model_ready("dips")


def test_bearer_token(repository: Path, runs: dict[str, Path]) -> None:
    s = Server(repository, env={"AI4HEP_SERVE_TOKEN": TOKEN})
    try:
        feed = _inputs(runs["dips"], 2)
        good, bad = {"Authorization": f"Bearer {TOKEN}"}, {"Authorization": "Bearer wrong"}
        h = thttp.InferenceServerClient(s.http)
        assert h.is_server_live() and h.is_server_ready()  # probes need no token
        for headers in (None, bad):
            with pytest.raises(InferenceServerException, match="bearer token") as err:
                h.infer("dips", _http_inputs(feed), headers=headers)
            assert err.value.status() == "401"
            with pytest.raises(InferenceServerException, match="bearer token"):
                h.get_model_metadata("dips", headers=headers)
        assert _raw(s, "GET", "/metrics")[0] == 401
        assert h.infer("dips", _http_inputs(feed), headers=good).as_numpy("probs").shape == (2, 3)
        g = tgrpc.InferenceServerClient(s.grpc)
        assert g.is_server_live()
        with pytest.raises(InferenceServerException) as err:
            g.infer("dips", _grpc_inputs(feed), headers={"authorization": "Bearer wrong"})
        assert err.value.status() == "StatusCode.UNAUTHENTICATED"
        with pytest.raises(InferenceServerException) as err:
            g.get_model_config("dips")
        assert err.value.status() == "StatusCode.UNAUTHENTICATED"
        gheaders = {"authorization": f"Bearer {TOKEN}"}
        assert g.infer("dips", _grpc_inputs(feed), headers=gheaders).as_numpy("probs").shape == (2, 3)
    finally:
        assert "stopped" in s.stop()


def test_sigterm_drains_in_flight_requests(repository: Path, runs: dict[str, Path]) -> None:
    """mlp_slow's batcher would hold lone requests for 5 s: SIGTERM arrives while two wait in it; draining dispatches
    them at once, both complete, and the process exits 0."""
    s = Server(repository)
    feed = {"jet": _inputs(runs["mlp"], 3)["jet"]}
    want = _reference(repository, "mlp_slow", feed)
    results = {}

    def http_request() -> None:
        results["http"] = thttp.InferenceServerClient(s.http).infer("mlp_slow", _http_inputs(feed)).as_numpy("probs")

    def grpc_request() -> None:
        results["grpc"] = tgrpc.InferenceServerClient(s.grpc).infer("mlp_slow", _grpc_inputs(feed)).as_numpy("probs")

    threads = [threading.Thread(target=f) for f in (http_request, grpc_request)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    assert not results, "the requests finished before the batcher's window"
    start = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(timeout=30)
    assert time.monotonic() - start < 3, "the queued requests were not dispatched at once"
    out = s.stop(signal_it=False)
    assert s.proc.returncode == 0, out
    for how in ("http", "grpc"):
        np.testing.assert_allclose(results[how], want, rtol=1e-5, atol=1e-6, err_msg=how)
    assert "draining" in out and "stopped" in out and "without waiting" not in out
    with pytest.raises(OSError), socket.create_connection((s.host, s.http_port), timeout=2):
        pass


def test_bad_repository_is_one_clear_line(tmp_path: Path, repository: Path, capsys) -> None:
    def fails(repo: Path, expect: str) -> None:
        assert main(["serve", "--repository", str(repo), "--http-port", "0", "--grpc-port", "0"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("ai4hep: error:") and expect in err, err

    fails(tmp_path / "missing", "is not a folder")
    repo = tmp_path / "repo"
    shutil.copytree(repository / "dips", repo / "dips")
    (repo / "dips" / "config.pbtxt").write_text("name: dips\nmax_batch_size: [")
    fails(repo, "not a valid model config")
    shutil.rmtree(repo / "dips")
    shutil.copytree(repository / "dips", repo / "bad name")
    fails(repo, "model folder 'bad name'")
    shutil.rmtree(repo / "bad name")
    shutil.copytree(repository / "dips", repo / "dips")
    shutil.rmtree(repo / "dips" / "1")
    fails(repo, "holds no version folder")
    shutil.rmtree(repo / "dips")
    shutil.copytree(repository / "mlp_idle", repo / "mlp_idle")
    config = repo / "mlp_idle" / "config.pbtxt"
    config.write_text(config.read_text() + 'parameters { key: "ai4hep.idle_dispatch" value { string_value: "yes" } }')
    fails(repo, "parameter ai4hep.idle_dispatch must be")
    shutil.rmtree(repo / "mlp_idle")
    shutil.copytree(repository / "dips", repo / "dips")
    shutil.rmtree(repo / "dips" / "1")
    # a non-loopback address is announced before anything else happens
    with pytest.raises(Exception, match="no version folder"):
        serve(repo, host="0.0.0.0")
    assert "warning: listening on 0.0.0.0" in capsys.readouterr().err
    assert main(["export", "triton", str(tmp_path), "--repository", str(repo), "--name", "../x"]) == 2
    assert "pass --name" in capsys.readouterr().err


def test_grpc_accepts_typed_contents(server: Server, repository: Path, runs) -> None:
    """Inputs as typed InferTensorContents (another client's way) give the same result as raw bytes."""
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    feed = _inputs(runs["dips"], 2)
    request = service_pb2.ModelInferRequest(model_name="dips")
    for name, arr in feed.items():
        t = request.inputs.add(name=name, datatype="BOOL" if arr.dtype == bool else "FP32", shape=arr.shape)
        if arr.dtype == bool:
            t.contents.bool_contents.extend(arr.ravel().tolist())
        else:
            t.contents.fp32_contents.extend(arr.ravel().tolist())
    with grpc.insecure_channel(server.grpc) as channel:
        reply = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    got = np.frombuffer(reply.raw_output_contents[0], np.float32).reshape(list(reply.outputs[0].shape))
    np.testing.assert_allclose(got, _reference(repository, "dips", feed), rtol=1e-5, atol=1e-6)


# `ai4hep infer`: the batch client of the service.


def _predictions(out: Path) -> dict[str, dict]:
    import h5py

    found = {}
    for f in sorted(out.glob("*.h5")):
        with h5py.File(f, "r") as h:
            found[f.name] = {
                "jets": h["jets"][:],
                "probs": h["predictions/probs"][:],
                "hash": h.attrs["source_hash"],
                "mtime": f.stat().st_mtime_ns,
            }
    return found


def _trained_probs(run: Path, shard: Path) -> np.ndarray:
    tagger = TrainedRun(run)
    return np.concatenate([tagger.outputs(b)["probs"] for b in tagger.stream([shard])])


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_infer_writes_predictions_beside_the_jets(server: Server, runs, hlf5_dir: Path, tmp_path: Path, protocol):
    import h5py

    url = f"http://{server.http}" if protocol == "http" else f"grpc://{server.grpc}"
    out = tmp_path / "pred"
    args = ["infer", str(hlf5_dir), "--url", url, "--model", "hlf5_mlp", "--out", str(out), "--batch-size", "32"]
    assert main(args) == 0
    found = _predictions(out)
    shards = sorted(hlf5_dir.glob("*.h5"))
    assert sorted(found) == [s.name for s in shards]
    for shard in shards:
        with h5py.File(shard, "r") as h:
            jets = h["jets"][:]
        got = found[shard.name]
        assert np.array_equal(got["jets"], jets)  # the jets, row for row, beside their predictions
        np.testing.assert_allclose(got["probs"], _trained_probs(runs["mlp"], shard), atol=1e-5)
        assert np.allclose(got["probs"].sum(1), 1, atol=1e-5)


def test_infer_serves_object_models_from_the_model_config_alone(server: Server, runs, flavour_dir: Path, tmp_path):
    """No --run: the variables, transforms and normalisation come from the served model's config parameters."""
    out = tmp_path / "pred"
    url = f"grpc://{server.grpc}"
    assert main(["infer", str(flavour_dir), "--url", url, "--model", "dips", "--out", str(out)]) == 0
    found = _predictions(out)
    for shard in sorted(flavour_dir.glob("*.h5")):
        np.testing.assert_allclose(found[shard.name]["probs"], _trained_probs(runs["dips"], shard), atol=1e-5)


def test_infer_resumes_after_an_interruption(server: Server, hlf5_shards: Path, tmp_path: Path, monkeypatch) -> None:
    from ai4hep.serve import infer as client

    url, out = f"http://{server.http}", tmp_path / "pred"
    args = ["infer", str(hlf5_shards), "--url", url, "--model", "hlf5_mlp", "--out", str(out), "--batch-size", "20"]
    calls = {"n": 0}
    real = client.Endpoint.infer

    def interrupted(self, feed, outputs):  # Ctrl-C in the middle of the third shard (50 jets, 3 requests each)
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return real(self, feed, outputs)

    monkeypatch.setattr(client.Endpoint, "infer", interrupted)
    assert main(args) == 130
    first = _predictions(out)
    assert len(first) == 2 and not [p for p in out.iterdir() if p.name.startswith(".")]  # nothing half-written
    monkeypatch.setattr(client.Endpoint, "infer", real)
    assert main(args) == 0
    second = _predictions(out)
    assert len(second) == len(list(hlf5_shards.glob("*.h5")))
    for name, old in first.items():  # finished shards were not redone
        assert second[name]["mtime"] == old["mtime"]
    fresh = tmp_path / "fresh"
    assert main([*args[:-3], str(fresh), "--batch-size", "20"]) == 0
    for name, pred in _predictions(fresh).items():
        np.testing.assert_array_equal(second[name]["probs"], pred["probs"])


def test_infer_bad_input_is_one_clear_line(server: Server, hlf5_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "pred"
    base = ["infer", str(hlf5_dir), "--out", str(out)]
    cases = [
        ([*base, "--url", f"http://{server.http}", "--model", "nope"], "model 'nope'"),
        ([*base, "--url", "127.0.0.1:1", "--model", "hlf5_mlp"], "127.0.0.1:1"),
        (["infer", str(tmp_path / "missing"), "--out", str(out), "--url", server.http, "--model", "hlf5_mlp"],
         "no such file"),
    ]  # fmt: skip
    for args, words in cases:
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and words in err, err
    assert not out.exists() or not list(out.glob("*.h5"))

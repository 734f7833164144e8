"""`ai4hep serve` under attack (issue 27): each test attacks a real server process on 127.0.0.1, then checks that
a well-behaved client (the official tritonclient) is still served and that the server's resident memory (VmRSS in
/proc/PID/status) stays within a stated budget. The models are small hand-made ONNX graphs, so the tests train
nothing. Timeouts are set small on the server and waited for generously here: the machine may be loaded.

Budgets (growth of the server's RSS over its own baseline, measured after start-up and a first request): each one is
several times what the limit allows, and well below what the same attack cost before the limits (docs/serving.md,
Hardening, has the numbers).
"""

from __future__ import annotations

import http.client
import json
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from hpack import Decoder, Encoder
from tritonclient.utils import InferenceServerException

from ai4hep.cli import main

READY = re.compile(r"HTTP http://(\S+):(\d+), gRPC \S+:(\d+);")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
INFER_PATH = "/inference.GRPCInferenceService/ModelInfer"
MiB = 1 << 20

OBJECTS_BUDGET = 100 * MiB  # 12,000 objects: the pair matrix alone would be 576 MB
HTTP_BODIES_BUDGET = 100 * MiB  # 10 x 24 MiB unfinished bodies against a 48 MiB total budget
GRPC_STREAMS_BUDGET = 64 * MiB  # 48 x 8 MiB unfinished messages against an 8 MiB per-connection budget
PING_FLOOD_BUDGET = 32 * MiB  # up to 64 MiB of PINGs from a client that reads nothing
CONNECTIONS_BUDGET = 64 * MiB  # 300 idle connections


# -- models and server


def _mlp(path: Path) -> None:
    """jet [batch, 16] -> probs [batch, 2]: a matrix product, so NaN and infinities come through."""
    from onnx import TensorProto, helper, numpy_helper, save

    weights = numpy_helper.from_array(np.linspace(-1, 1, 32, dtype=np.float32).reshape(16, 2), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["jet", "w"], ["probs"])],
        "mlp",
        [helper.make_tensor_value_info("jet", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 2])],
        initializer=[weights],
    )
    _save(helper, save, graph, path)


def _pairs(path: Path, metadata: dict[str, str] | None = None) -> None:
    """objects [batch, objects, 4] and mask [batch, objects] -> probs [batch, 2], through the objects x objects
    matrix of pairwise products (as ParticleNet's kNN and ParT's pair features are): memory grows with the square
    of the object count."""
    from onnx import TensorProto, helper, save

    def const(name: str, values: list[int]):
        return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)

    nodes = [
        helper.make_node("Cast", ["mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["m", "axis2"], ["m3"]),
        helper.make_node("Mul", ["objects", "m3"], ["x"]),
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["x", "xt"], ["pairs"]),
        helper.make_node("ReduceMean", ["pairs", "axes12"], ["r"], keepdims=1),
        helper.make_node("Reshape", ["r", "shape"], ["r2"]),
        helper.make_node("Concat", ["r2", "r2"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "pairs",
        [
            helper.make_tensor_value_info("objects", TensorProto.FLOAT, ["batch", "objects", 4]),
            helper.make_tensor_value_info("mask", TensorProto.BOOL, ["batch", "objects"]),
        ],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 2])],
        initializer=[const("axis2", [2]), const("axes12", [1, 2]), const("shape", [-1, 1])],
    )
    _save(helper, save, graph, path, metadata)


def _save(helper, save, graph, path: Path, metadata: dict[str, str] | None = None) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    path.parent.mkdir(parents=True, exist_ok=True)
    save(model, str(path))


def _config(name: str, parameters: dict[str, str] | None = None, max_batch_size: int = 64) -> str:
    text = f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: {max_batch_size}\n'
    for key, value in (parameters or {}).items():
        text += f"parameters {{ key: {json.dumps(key)} value {{ string_value: {json.dumps(value)} }} }}\n"
    return text


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mlp; pairs (max_objects 64 from the export's preprocessing parameter); pairs_meta (32, from the ONNX file's
    metadata alone); pairs_override (preprocessing says 64, ai4hep.max_objects raises it to 100)."""
    root = tmp_path_factory.mktemp("hardening") / "models"
    _mlp(root / "mlp" / "1" / "model.onnx")
    (root / "mlp" / "config.pbtxt").write_text(_config("mlp"))
    pre = json.dumps({"max_objects": 64, "classes": ["a", "b"]})
    _pairs(root / "pairs" / "1" / "model.onnx")
    (root / "pairs" / "config.pbtxt").write_text(_config("pairs", {"ai4hep.preprocessing": pre}, 8))
    _pairs(root / "pairs_meta" / "1" / "model.onnx", {"ai4hep.preprocessing": json.dumps({"max_objects": 32})})
    (root / "pairs_meta" / "config.pbtxt").write_text(_config("pairs_meta", max_batch_size=8))
    _pairs(root / "pairs_override" / "1" / "model.onnx")
    override = {"ai4hep.preprocessing": pre, "ai4hep.max_objects": "100"}
    (root / "pairs_override" / "config.pbtxt").write_text(_config("pairs_override", override, 8))
    return root


class Server:
    """`python -m ai4hep.cli serve` on free ports of 127.0.0.1, optionally under a lower file limit."""

    def __init__(self, repo: Path, *extra: str, nofile: int | None = None) -> None:
        cmd = [sys.executable, "-m", "ai4hep.cli", "serve", "--repository", str(repo)]
        cmd += ["--http-port", "0", "--grpc-port", "0", "--threads", "1", *extra]

        def limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=limit
        )  # fmt: skip
        self.log: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1.0)
            if ready:
                line = self.proc.stdout.readline()
                self.log.append(line)
                if m := READY.search(line):
                    self.host, self.http_port, self.grpc_port = m.group(1), int(m.group(2)), int(m.group(3))
                    self.http, self.grpc = f"{self.host}:{self.http_port}", f"{self.host}:{self.grpc_port}"
                    self._drain = threading.Thread(target=self._read, daemon=True)
                    self._drain.start()
                    return
            if self.proc.poll() is not None:
                break
        self.proc.kill()
        raise AssertionError("server did not start: " + "".join(self.log) + self.proc.stdout.read())

    def _read(self) -> None:  # keeps the pipe drained, so that a chatty server never blocks on it
        for line in self.proc.stdout:
            self.log.append(line)

    def rss(self) -> int:
        """The server process's resident memory in bytes (VmRSS)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._drain.join(timeout=10)
        return "".join(self.log)

    def well_behaved(self, timeout: float = 30.0) -> None:
        """tritonclient over both protocols, on new connections: the mlp answers correctly."""
        jet = np.linspace(0, 1, 32, dtype=np.float32).reshape(2, 16)
        want = jet @ np.linspace(-1, 1, 32, dtype=np.float32).reshape(16, 2)
        h = thttp.InferenceServerClient(self.http, connection_timeout=timeout, network_timeout=timeout)
        hin = thttp.InferInput("jet", [2, 16], "FP32")
        hin.set_data_from_numpy(jet)
        np.testing.assert_allclose(h.infer("mlp", [hin]).as_numpy("probs"), want, rtol=1e-5)
        h.close()
        g = tgrpc.InferenceServerClient(self.grpc)
        gin = tgrpc.InferInput("jet", [2, 16], "FP32")
        gin.set_data_from_numpy(jet)
        np.testing.assert_allclose(g.infer("mlp", [gin], client_timeout=timeout).as_numpy("probs"), want, rtol=1e-5)
        g.close()


def _baseline(server: Server) -> int:
    server.well_behaved()
    time.sleep(0.5)
    return server.rss()


def _growth(server: Server, base: int, settle: float = 1.0) -> int:
    """How much the server's RSS grew over `base`; printed, so that `pytest -rP` shows it against the budget."""
    time.sleep(settle)
    grown = server.rss() - base
    print(f"server RSS: {base / MiB:.0f} MiB at the start, +{grown / MiB:.1f} MiB under the attack")
    return grown


# -- raw clients


def frame(kind: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + sid.to_bytes(4, "big") + payload


def grpc_block(encoder: Encoder, path: str = INFER_PATH) -> bytes:
    return encoder.encode(
        [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "x"),
         ("content-type", "application/grpc"), ("te", "trailers")]
    )  # fmt: skip


class H2:
    """A raw HTTP/2 client that keeps to the server's flow-control windows, as a compliant attacker would: a reader
    thread follows the server's SETTINGS and WINDOW_UPDATE frames and collects the rest."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.encoder, self.decoder = Encoder(), Decoder()
        self.cond = threading.Condition()
        self.conn_window, self.initial, self.settings_seen, self.closed = 65535, 65535, False, False
        self.windows: dict[int, int] = {}
        self.frames: list[tuple[int, int, int, bytes]] = []
        self.sock.sendall(PREFACE + frame(4, 0, 0))
        threading.Thread(target=self._reader, daemon=True).start()
        with self.cond:
            assert self.cond.wait_for(lambda: self.settings_seen or self.closed, 30), "no SETTINGS from the server"

    def _reader(self) -> None:
        buf = b""
        try:
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    break
                buf += chunk
                while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
                    n = int.from_bytes(buf[:3], "big")
                    kind, flags, sid, payload = buf[3], buf[4], int.from_bytes(buf[5:9], "big"), buf[9 : 9 + n]
                    buf = buf[9 + n :]
                    self._frame(kind, flags, sid, payload)
        except OSError:
            pass
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def _frame(self, kind: int, flags: int, sid: int, payload: bytes) -> None:
        with self.cond:
            if kind == 4 and not flags & 1:
                for i in range(0, len(payload), 6):
                    if int.from_bytes(payload[i : i + 2], "big") == 4:
                        value = int.from_bytes(payload[i + 2 : i + 6], "big")
                        for s in self.windows:
                            self.windows[s] += value - self.initial
                        self.initial = value
                self.settings_seen = True
                self.sock.sendall(frame(4, 1, 0))
            elif kind == 8:
                step = int.from_bytes(payload, "big") & 0x7FFFFFFF
                if sid == 0:
                    self.conn_window += step
                elif sid in self.windows:
                    self.windows[sid] += step
            else:
                if kind == 1:
                    payload = dict(self.decoder.decode(payload))
                self.frames.append((kind, flags, sid, payload))
            self.cond.notify_all()

    def open(self, sid: int, path: str = INFER_PATH) -> None:
        with self.cond:
            self.windows[sid] = self.initial
        self.sock.sendall(frame(1, 0x4, sid, grpc_block(self.encoder, path)))

    def send_allowed(self, sid: int, data: memoryview, end: bool = False) -> int:
        """Send as much of `data` as the windows allow now (in frames of 64 KiB); the bytes sent."""
        with self.cond:
            n = min(len(data), self.conn_window, self.windows[sid], 64 * 1024)
            if n <= 0:
                return 0
            self.conn_window -= n
            self.windows[sid] -= n
        last = end and n == len(data)
        self.sock.sendall(frame(0, 1 if last else 0, sid, bytes(data[:n])))
        return n

    def reply(self, sid: int, timeout: float = 30) -> dict:
        """The stream's last header block (its trailers) once it ends."""

        def ended() -> bool:
            return self.closed or any(s == sid and (k == 3 or (f & 1 and k in (0, 1))) for k, f, s, _ in self.frames)

        with self.cond:
            assert self.cond.wait_for(ended, timeout), f"stream {sid} did not end"
            blocks = [p for k, _, s, p in self.frames if s == sid and k == 1]
        return blocks[-1] if blocks else {}


def _message(size: int) -> bytes:
    return b"\x00" + size.to_bytes(4, "big")


def _http_infer(jet: list, extra: dict | None = None) -> bytes:
    request = {"inputs": [{"name": "jet", "datatype": "FP32", "shape": [1, 16], "data": jet}]}
    request.update(extra or {})
    return json.dumps(request).encode()


def _post(server: Server, path: str, body: bytes, timeout: float = 30) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(server.http, timeout=timeout)
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    reply = conn.getresponse()
    status, data = reply.status, reply.read()
    conn.close()
    return status, json.loads(data) if data else {}


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection within `seconds` (what it sends first is read and dropped)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if sock.recv(1 << 16) == b"":
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False


def _read_http(sock: socket.socket, buf: bytearray, timeout: float = 30) -> tuple[int, dict, bytes]:
    sock.settimeout(timeout)
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a full answer: {bytes(buf)!r}"
        buf += chunk
    end = buf.index(b"\r\n\r\n")
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    size = int(headers.get("content-length", "0"))
    while len(buf) < end + 4 + size:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        buf += chunk
    body = bytes(buf[end + 4 : end + 4 + size])
    del buf[: end + 4 + size]
    return int(lines[0].split()[1]), headers, body


# -- item 2: server resources


def test_object_count_is_capped_at_the_models_max_objects(repo: Path) -> None:
    """One jet with 12,000 objects (192 KB) makes a pair-matrix model allocate 576 MB: refused with 400 /
    INVALID_ARGUMENT and one clear message, for each source of the cap, and the memory stays put."""
    s = Server(repo)
    try:
        base = _baseline(s)
        h, g = thttp.InferenceServerClient(s.http, network_timeout=60), tgrpc.InferenceServerClient(s.grpc)

        def inputs(module, n: int) -> list:
            objects = module.InferInput("objects", [1, n, 4], "FP32")
            objects.set_data_from_numpy(np.ones((1, n, 4), np.float32))
            mask = module.InferInput("mask", [1, n], "BOOL")
            mask.set_data_from_numpy(np.ones((1, n), bool))
            return [objects, mask]

        for model, cap in (("pairs", 64), ("pairs_meta", 32), ("pairs_override", 100)):
            assert h.infer(model, inputs(thttp, cap)).as_numpy("probs").shape == (1, 2)
            assert g.infer(model, inputs(tgrpc, cap)).as_numpy("probs").shape == (1, 2)
            for n in (cap + 1, 12_000):
                with pytest.raises(InferenceServerException, match=f"takes at most {cap}") as err:
                    h.infer(model, inputs(thttp, n))
                assert err.value.status() == "400", err.value
                assert f"has {n} objects" in str(err.value)
                with pytest.raises(InferenceServerException, match=f"takes at most {cap}") as err:
                    g.infer(model, inputs(tgrpc, n))
                assert err.value.status() == "StatusCode.INVALID_ARGUMENT"
        assert "ai4hep.max_objects" in str(err.value)  # the message says how to change the cap
        grown = _growth(s, base)
        assert grown < OBJECTS_BUDGET, f"RSS grew by {grown / MiB:.0f} MiB"
        s.well_behaved()
    finally:
        out = s.stop()
    assert "Traceback" not in out, out


def test_idle_slow_and_surplus_connections_are_closed(repo: Path) -> None:
    """Under a 256-file limit, 300 silent connections (both ports) would leave no descriptor for a real client:
    the connection cap (the file limit less 96) closes the longest idle one for each new one, so tritonclient is
    served at once. Silent connections close at the header timeout, a half-sent head or body gets a 408 at the
    header or body timeout, and a kept-alive connection closes at the idle timeout."""
    s = Server(repo, "--header-timeout", "2", "--body-timeout", "2", "--idle-timeout", "5", nofile=256)
    idle: list[socket.socket] = []
    try:
        base = _baseline(s)
        for i in range(300):
            idle.append(socket.create_connection((s.host, s.http_port if i % 2 else s.grpc_port), timeout=30))
        s.well_behaved(timeout=20)
        slow_head = socket.create_connection((s.host, s.http_port), timeout=30)
        slow_head.sendall(b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\n")
        slow_body = socket.create_connection((s.host, s.http_port), timeout=30)
        slow_body.sendall(b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        kept = socket.create_connection((s.host, s.http_port), timeout=30)
        kept.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
        kept_buf = bytearray()
        assert _read_http(kept, kept_buf)[0] == 200
        h2 = H2(s.grpc_port)  # a gRPC connection that sends its preface, one call, then nothing
        h2.open(1, "/inference.GRPCInferenceService/ServerLive")
        h2.send_allowed(1, memoryview(_message(0)), end=True)
        assert h2.reply(1).get("grpc-status") == "0"
        for sock, what in ((slow_head, "headers"), (slow_body, "body")):
            status, headers, body = _read_http(sock, bytearray(), timeout=30)
            assert status == 408 and headers.get("connection") == "close", (what, status, body)
            assert f"request {'line and headers' if what == 'headers' else 'body'} did not arrive" in body.decode()
            assert _closed_within(sock, 30), what
        assert _closed_within(kept, 30), "a kept-alive connection outlived the idle timeout"
        with h2.cond:
            assert h2.cond.wait_for(lambda: h2.closed, 30), "an idle gRPC connection outlived the idle timeout"
            assert any(k == 7 for k, _, _, _ in h2.frames), "no GOAWAY before closing an idle gRPC connection"
        deadline = time.monotonic() + 30
        for sock in idle:
            assert _closed_within(sock, max(0.1, deadline - time.monotonic())), "a silent connection stayed open"
        grown = _growth(s, base)
        assert grown < CONNECTIONS_BUDGET, f"RSS grew by {grown / MiB:.0f} MiB"
        s.well_behaved()
    finally:
        for sock in idle:
            sock.close()
        out = s.stop()
    assert "Traceback" not in out and "out of system resource" not in out, out


def test_unfinished_http_bodies_are_held_to_the_byte_budget(repo: Path) -> None:
    """Ten connections each send 24 MiB of a 24 MiB body but its last byte: with a 48 MiB total budget the server
    reads two of them and leaves the rest unread (TCP back-pressure). A small request still gets through, and once
    the attackers are gone a 20 MiB body is admitted again."""
    s = Server(repo, "--max-request-mb", "24", "--max-inflight-mb", "48", "--body-timeout", "120")
    attackers: list[socket.socket] = []
    try:
        base = _baseline(s)
        size = 24 * MiB
        body = memoryview(b"x" * size)
        head = f"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode()

        def attack() -> None:
            sock = socket.create_connection((s.host, s.http_port), timeout=30)
            attackers.append(sock)
            sock.settimeout(4)
            try:
                sock.sendall(head)
                sock.sendall(body[:-1])
            except TimeoutError:
                pass  # the server stopped reading: what is left stays here

        threads = [threading.Thread(target=attack) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        grown = _growth(s, base, settle=2.0)
        assert grown < HTTP_BODIES_BUDGET, f"RSS grew by {grown / MiB:.0f} MiB with 10 unfinished 24 MiB bodies"
        s.well_behaved()
        status, reply = _post(s, "/v2/models/mlp/infer", _http_infer([0.5] * 16))
        assert status == 200 and len(reply["outputs"][0]["data"]) == 2, reply
        for sock in attackers:
            sock.close()
        status, _ = _post(s, "/v2/repository/index", b"x" * (20 * MiB), timeout=60)
        assert status == 200  # the attackers' share came back when they left
    finally:
        for sock in attackers:
            sock.close()
        out = s.stop()
    assert "Traceback" not in out, out


def test_unfinished_grpc_messages_are_held_to_the_byte_budget(repo: Path) -> None:
    """One HTTP/2 connection opens 48 calls and sends each 8 MiB message but its last byte, as far as the server's
    flow-control windows allow: only one message (the per-connection budget) gets more than its first 64 KiB of
    window. A well-behaved client is served meanwhile."""
    s = Server(repo, "--max-request-mb", "8", "--max-inflight-mb", "64", "--body-timeout", "120")
    try:
        base = _baseline(s)
        c = H2(s.grpc_port)
        size = 8 * MiB
        data = memoryview(_message(size) + b"\x00" * (size - 1))  # the message but its last byte
        left = {}
        for i in range(48):
            sid = 1 + 2 * i
            c.open(sid)
            left[sid] = data
        quiet_since = time.monotonic()
        while left and time.monotonic() - quiet_since < 2.0:
            progress = False
            for sid in list(left):
                n = c.send_allowed(sid, left[sid])
                if n:
                    progress = True
                    left[sid] = left[sid][n:]
                    if not left[sid]:
                        del left[sid]
            if progress:
                quiet_since = time.monotonic()
            else:
                time.sleep(0.05)
        assert not c.closed, c.frames
        sent = sum(len(data) - len(rest) for rest in left.values()) + len(data) * (48 - len(left))
        grown = _growth(s, base, settle=2.0)
        assert grown < GRPC_STREAMS_BUDGET, f"RSS grew by {grown / MiB:.0f} MiB ({sent / MiB:.0f} MiB sent)"
        s.well_behaved()
        c.sock.close()
    finally:
        out = s.stop()
    assert "Traceback" not in out, out


def test_a_client_that_reads_nothing_cannot_queue_endless_ping_acks(repo: Path) -> None:
    """PINGs from a client that reads none of the acks (a small receive buffer, never read): once the server's
    writes back up, at most 1,000 more control frames are queued, then the connection is cut (as nghttp2 does,
    CVE-2019-9512). The server's memory stays put and other clients are served."""
    s = Server(repo)
    try:
        base = _baseline(s)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(30)
        sock.connect((s.host, s.grpc_port))
        sock.sendall(PREFACE + frame(4, 0, 0))
        batch = frame(6, 0, 0, b"12345678") * 4096  # 68 KiB of PINGs
        sent, cut = 0, False
        try:
            while sent < 64 * MiB:
                sock.sendall(batch)
                sent += len(batch)
        except OSError:
            cut = True
        grown = _growth(s, base)
        sock.close()
        assert cut, f"{sent / MiB:.0f} MiB of PINGs were taken from a client that reads nothing"
        assert grown < PING_FLOOD_BUDGET, f"RSS grew by {grown / MiB:.0f} MiB"
        s.well_behaved()
    finally:
        out = s.stop()
    assert "Traceback" not in out, out


# -- item 3: refusals that were 500s, the NaN rule, a half-closed pipelining client


def test_malformed_json_gets_400_not_500(repo: Path) -> None:
    """Each of these used to be a 500 with a traceback in the log (RecursionError, AttributeError, TypeError)."""
    s = Server(repo)
    try:
        jet = [0.5] * 16
        deep = 100_000
        listed = {"name": "jet", "datatype": "FP32", "shape": [1, 16], "data": jet, "parameters": [1]}
        cases = {
            "100,000-deep nesting": (b'{"inputs": ' + b"[" * deep + b"]" * deep + b"}", "nested too deeply"),
            "output parameters as a list": (
                _http_infer(jet, {"outputs": [{"name": "probs", "parameters": ["binary_data"]}]}),
                "'parameters' must be an object",
            ),
            "output parameters as a string": (
                _http_infer(jet, {"outputs": [{"name": "probs", "parameters": "binary"}]}),
                "'parameters' must be an object",
            ),
            "output name as a list": (_http_infer(jet, {"outputs": [{"name": ["probs"]}]}), "output names are strings"),
            "input parameters as a list": (json.dumps({"inputs": [listed]}).encode(), "'parameters' must be an object"),
        }
        for name, what in ((["jet"], "list"), ({"jet": 1}, "dict")):
            body = {"inputs": [{"name": name, "datatype": "FP32", "shape": [1, 16], "data": jet}]}
            cases[f"input name as a {what}"] = (json.dumps(body).encode(), "input names are strings")
        for what, (body, message) in cases.items():
            status, reply = _post(s, "/v2/models/mlp/infer", body)
            assert status == 400 and message in reply.get("error", ""), (what, status, reply)
        s.well_behaved()
    finally:
        out = s.stop()
    assert "Traceback" not in out and "internal error" not in out, out


def test_nan_and_infinity_in_json_data_follow_the_stated_rule(repo: Path) -> None:
    """FP32 JSON data takes NaN, Infinity and -Infinity (as binary data can carry them), and the outputs they make
    come back as JSON's NaN / Infinity; a finite value beyond FP32's range is refused, not made infinite."""
    s = Server(repo)
    try:
        jet = [0.0] * 16
        for text in ("NaN", "Infinity", "-Infinity"):
            body = _http_infer(jet).replace(b"0.0]", text.encode() + b"]", 1)  # the last value
            status, reply = _post(s, "/v2/models/mlp/infer", body)
            assert status == 200, (text, reply)
            out = np.asarray(reply["outputs"][0]["data"], np.float64)
            assert not np.isfinite(out).any(), (text, out)  # the last weight row is nonzero: NaN or infinite
        for too_big in ("1e39", "-3.5e38"):
            body = _http_infer(jet).replace(b"0.0]", too_big.encode() + b"]", 1)
            status, reply = _post(s, "/v2/models/mlp/infer", body)
            assert status == 400 and "beyond the range of FP32" in reply["error"], reply
        s.well_behaved()
    finally:
        out = s.stop()
    assert "Traceback" not in out, out


def test_a_half_closed_client_gets_every_pipelined_answer(repo: Path) -> None:
    """Several pipelined HTTP/1.1 requests, then shutdown of the client's write side: every answer still comes,
    then the server closes. The same for a gRPC call followed by a half-close."""
    s = Server(repo)
    try:
        body = _http_infer([0.25] * 16)
        infer = f"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        ready = b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n"
        for _ in range(3):  # the race between the last request and the end of input, tried a few times
            sock = socket.create_connection((s.host, s.http_port), timeout=30)
            sock.sendall(infer + body + ready + infer + body + ready + infer + body)
            sock.shutdown(socket.SHUT_WR)
            buf = bytearray()
            statuses = [_read_http(sock, buf)[0] for _ in range(5)]
            assert statuses == [200] * 5
            assert _closed_within(sock, 30)
            sock.close()
        c = H2(s.grpc_port)
        c.open(1)
        c.sock.sendall(frame(0, 1, 1, _message(0)))
        c.sock.shutdown(socket.SHUT_WR)
        assert c.reply(1).get("grpc-status") == "3"  # an empty ModelInferRequest names no model: answered
        s.well_behaved()
    finally:
        out = s.stop()
    assert "Traceback" not in out, out


# -- item 5: links out of the repository


def test_model_folders_linked_from_outside_the_repository_are_refused(repo: Path, tmp_path: Path) -> None:
    """A model folder (or a model file) that links outside the repository is one clear error line (exit code 2)
    unless --follow-links; a link within the repository is fine."""
    from ai4hep.errors import UserError
    from ai4hep.serve.engine import load_repository

    outside = tmp_path / "elsewhere" / "mlp"
    shutil.copytree(repo / "mlp", outside)
    (outside / "config.pbtxt").write_text(_config("linked"))
    models = tmp_path / "models"
    models.mkdir()
    (models / "linked").symlink_to(outside, target_is_directory=True)

    cmd = [sys.executable, "-m", "ai4hep.cli", "serve", "--repository", str(models), "--http-port", "0"]
    cmd += ["--grpc-port", "0"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    err = run.stderr.strip()
    assert run.returncode == 2 and err.count("\n") == 0, (run.returncode, run.stdout, err)
    assert "outside the model repository" in err and "--follow-links" in err and str(outside) in err, err
    assert [m.name for m in load_repository(models, follow_links=True)] == ["linked"]

    (models / "linked").unlink()  # a model folder of its own whose model file links outside
    shutil.copytree(outside, models / "linked")
    (models / "linked" / "1" / "model.onnx").unlink()
    (models / "linked" / "1" / "model.onnx").symlink_to(outside / "1" / "model.onnx")
    with pytest.raises(UserError, match=r"model\.onnx links to .*, outside the model repository"):
        load_repository(models)
    assert [m.name for m in load_repository(models, follow_links=True)] == ["linked"]

    (models / "linked" / "1" / "model.onnx").unlink()  # links within the repository are followed
    (models / ".store").mkdir()
    shutil.copy(outside / "1" / "model.onnx", models / ".store" / "mlp.onnx")
    (models / "linked" / "1" / "model.onnx").symlink_to(models / ".store" / "mlp.onnx")
    assert [m.name for m in load_repository(models)] == ["linked"]


def test_limits_options_are_checked(repo: Path, capsys) -> None:
    base = ["serve", "--repository", str(repo), "--http-port", "0", "--grpc-port", "0"]
    for extra, words in (
        (["--max-connection-mb", "8"], "--max-connection-mb 8 is below --max-request-mb 64"),
        (["--max-inflight-mb", "1", "--max-request-mb", "2"], "--max-inflight-mb 1 is below"),
        (["--header-timeout", "0"], "--header-timeout must be positive"),
        (["--max-connections", "0"], "--max-connections must be at least 1"),
    ):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and words in err, err

"""ai4hep's HTTP/2 layer for gRPC (ai4hep.serve.grpc_wire) on its own: raw frames for what a well-behaved client
never sends, and grpcio's own client for what real clients do (large messages both ways, compression, many calls
at once, error details, the graceful drain). The inference service on top is tested with tritonclient in
test_serve.py."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import time
from urllib.parse import unquote

import grpc
import pytest
from hpack import Decoder, Encoder

from ai4hep.serve.grpc_wire import MAX_STREAMS, STREAM_WINDOW, Call, Http2Server, RpcError, Status
from ai4hep.serve.limits import Limits, Registry

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
LIMIT = 4 * 2**20
MESSAGE = "no such thing: 100% ünknown"


async def echo(message: bytes, call: Call) -> bytes:
    return message * int(call.metadata.get("x-repeat", "1"))


async def fail(message: bytes, call: Call) -> bytes:
    raise RpcError(Status.NOT_FOUND, MESSAGE)


async def boom(message: bytes, call: Call) -> bytes:
    raise ValueError("a bug")


async def slow(message: bytes, call: Call) -> bytes:
    await asyncio.sleep(0.5)
    return b"done"


ROUTES = {"/t.S/Echo": echo, "/t.S/Fail": fail, "/t.S/Boom": boom, "/t.S/Slow": slow}


class Running:
    """An Http2Server on its own event loop thread, as `ai4hep serve` runs it."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        sock = socket.create_server(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.refusals: list[str] = []

        async def start() -> Http2Server:
            server = Http2Server(ROUTES, LIMIT, self.refusals.append, "t.S", registry)
            await server.start(sock)
            return server

        self.server = self.run(start())

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.run(self.server.shutdown(1.0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def running():
    r = Running()
    yield r
    r.close()


def frame(kind: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + sid.to_bytes(4, "big") + payload


def message(body: bytes) -> bytes:
    return b"\x00" + len(body).to_bytes(4, "big") + body


class Raw:
    """A client that writes frames by hand and reads the server's back, one stream at a time."""

    def __init__(self, port: int, settings: tuple[tuple[int, int], ...] = ()) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.encoder, self.decoder, self.buf = Encoder(), Decoder(), b""
        payload = b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in settings)
        self.sock.sendall(PREFACE + frame(4, 0, 0, payload))

    def block(self, path: str, *extra: tuple[str, str], content_type: str = "application/grpc") -> bytes:
        headers = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "x")]
        return self.encoder.encode([*headers, ("content-type", content_type), ("te", "trailers"), *extra])

    def call(self, sid: int, path: str, body: bytes, *extra: tuple[str, str], **kw) -> None:
        self.sock.sendall(frame(1, 0x4, sid, self.block(path, *extra, **kw)) + frame(0, 0x1, sid, body))

    def read(self) -> tuple[int, int, int, bytes]:
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        n = int.from_bytes(self.buf[:3], "big")
        kind, flags, sid = self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big")
        payload, self.buf = self.buf[9 : 9 + n], self.buf[9 + n :]
        return kind, flags, sid, payload

    def response(self, sid: int, until_data: int | None = None) -> dict:
        """Frames of stream `sid` until it ends (or until `until_data` bytes of DATA came)."""
        got: dict = {"blocks": [], "data": b"", "rst": None}
        while True:
            kind, flags, s, payload = self.read()
            if kind == 1:
                headers = dict(self.decoder.decode(payload))  # every block, to keep the HPACK table in step
                if s == sid:
                    got["blocks"].append(headers)
            if s != sid:
                continue
            if kind == 0:
                got["data"] += payload
            if kind == 3:
                got["rst"] = int.from_bytes(payload, "big")
            ended = kind == 3 or (flags & 0x1 and kind in (0, 1))
            if ended or (until_data is not None and len(got["data"]) >= until_data):
                got["status"] = got["blocks"][-1].get("grpc-status") if got["blocks"] else None
                got["message"] = unquote(got["blocks"][-1].get("grpc-message", "")) if got["blocks"] else ""
                return got

    def silent(self, seconds: float) -> bool:
        if self.buf:
            return False
        self.sock.settimeout(seconds)
        try:
            return not self.sock.recv(1 << 16, socket.MSG_PEEK)
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(10)


def test_frames_flow_control_and_refusals_on_raw_sockets(running: Running) -> None:
    c = Raw(running.port, settings=((4, 10),))  # the client's stream windows: 10 bytes
    body = b"x" * 30
    block = c.block("/t.S/Echo")
    padded = bytes((3,)) + b"\x00\x00\x00\x00\x10" + block[:5] + b"\x00" * 3  # PADDED | PRIORITY, then CONTINUATION
    c.sock.sendall(frame(1, 0x8 | 0x20, 1, padded) + frame(9, 0x4, 1, block[5:]))
    c.sock.sendall(frame(0, 0x8 | 0x1, 1, bytes((4,)) + message(body) + b"\x00" * 4))
    first = c.response(1, until_data=10)
    assert first["blocks"][0][":status"] == "200" and len(first["data"]) == 10
    assert c.silent(0.3), "the reply must wait for the client's stream window"
    c.sock.sendall(frame(8, 0, 1, (1000).to_bytes(4, "big")))
    rest = c.response(1)
    assert first["data"] + rest["data"] == message(body) and rest["status"] == "0"
    c.sock.sendall(frame(4, 0, 0, (4).to_bytes(2, "big") + (65535).to_bytes(4, "big")))  # windows back to the default

    c.sock.sendall(frame(6, 0, 0, b"12345678"))
    while (f := c.read())[0] != 6:
        pass
    assert f[1] == 0x1 and f[3] == b"12345678"

    def refused(sid: int, path: str, data: bytes, status: Status, text: str, **kw) -> None:
        c.call(sid, path, data, **kw)
        got = c.response(sid)
        assert got["status"] == str(int(status)) and text in got["message"], got

    refused(3, "/t.S/Nope", message(b""), Status.UNIMPLEMENTED, "unknown method '/t.S/Nope'; this server has t.S")
    refused(5, "/t.S/Echo", message(b"abc")[:-1], Status.INVALID_ARGUMENT, "truncated gRPC message")
    refused(7, "/t.S/Echo", message(b"a") + message(b"b"), Status.INVALID_ARGUMENT, "more than one message")
    refused(9, "/t.S/Echo", b"", Status.INVALID_ARGUMENT, "carries no gRPC message")
    refused(11, "/t.S/Fail", message(b""), Status.NOT_FOUND, MESSAGE)  # percent-encoded on the wire, decoded here
    refused(13, "/t.S/Boom", message(b""), Status.INTERNAL, "internal error: ValueError: a bug")
    refused(15, "/t.S/Echo", b"\x01" + message(b"zz")[1:], Status.INVALID_ARGUMENT, "without grpc-encoding")
    c.call(17, "/t.S/Echo", message(b"q"), content_type="text/plain")
    assert c.response(17)["blocks"][0][":status"] == "415"

    # A reset stream is dropped; an oversized one is answered at once and reset; the connection serves on.
    c.sock.sendall(frame(1, 0x4, 19, c.block("/t.S/Echo")) + frame(0, 0, 19, message(b"abc")[:4]))
    c.sock.sendall(frame(3, 0, 19, (8).to_bytes(4, "big")))
    c.sock.sendall(frame(1, 0x4, 21, c.block("/t.S/Echo")) + frame(0, 0, 21, (LIMIT + 1).to_bytes(5, "big")))
    c.sock.sendall(frame(0, 0, 21, b"\x00" * 2**20) * 4 + frame(0, 0x1, 21, b"\x00" * 7))
    big = c.response(21)
    assert big["status"] == str(int(Status.RESOURCE_EXHAUSTED)) and f"{LIMIT}-byte limit" in big["message"]
    c.sock.sendall(frame(8, 0, 0, (10**6).to_bytes(4, "big")))  # the connection window, for what follows
    refused(23, "/t.S/Echo", b"\x01" + message(gzip.compress(b"hi"))[1:], Status.INVALID_ARGUMENT, "without")
    c.call(25, "/t.S/Echo", b"\x01" + message(gzip.compress(b"hi"))[1:], ("grpc-encoding", "gzip"))
    assert c.response(25)["data"] == message(b"hi")
    assert "too_large" in running.refusals and "unsupported" in running.refusals

    # Connection errors: a GOAWAY naming the problem, then the connection closes.
    for bad, code, text in [
        ((2**21).to_bytes(3, "big") + b"\x00\x00" + (1).to_bytes(4, "big"), 0x6, b"limit"),  # a frame header alone
        (frame(1, 0x4, 2, b"\x82"), 0x1, b"client streams are odd"),
        (frame(1, 0x4, 1, b"\xff\xff\xff\xff\x0f"), 0x9, b"cannot be decoded"),
    ]:
        d = Raw(running.port)
        d.sock.sendall(bad)
        while (f := d.read())[0] != 7:
            pass
        assert int.from_bytes(f[3][4:8], "big") == code and text in f[3][8:], f
        with pytest.raises(ConnectionError):
            while True:
                d.read()

    http1 = socket.create_connection(("127.0.0.1", running.port), timeout=10)
    http1.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"400 Bad Request" in http1.recv(4096)
    c.call(27, "/t.S/Echo", message(b"still serving"))
    assert c.response(27)["data"] == message(b"still serving")


def test_reset_calls_count_against_the_stream_limit_until_their_handlers_return(running: Running) -> None:
    """A client that opens calls and resets them at once (the 'rapid reset' attack) cannot start more handlers
    than the limit of concurrent streams."""
    c = Raw(running.port)
    for i in range(MAX_STREAMS):
        c.call(1 + 2 * i, "/t.S/Slow", message(b""))
        c.sock.sendall(frame(3, 0, 1 + 2 * i, (8).to_bytes(4, "big")))
    refused = 1 + 2 * MAX_STREAMS
    c.call(refused, "/t.S/Echo", message(b"x"))
    assert c.response(refused)["rst"] == 0x7  # REFUSED_STREAM: 128 handlers still run
    time.sleep(0.8)
    c.call(refused + 2, "/t.S/Echo", message(b"x"))
    assert c.response(refused + 2)["data"] == message(b"x")


def test_grpcio_client_large_compressed_and_concurrent_calls(running: Running) -> None:
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    with grpc.insecure_channel(f"127.0.0.1:{running.port}", options=options) as channel:
        call = channel.unary_unary("/t.S/Echo")
        payload = bytes(range(256)) * (3 * 2**12)  # 3 MiB up, 6 MiB back: both sides' windows fill and refill
        assert call(payload, metadata=[("x-repeat", "2")], timeout=30) == payload * 2
        assert call(b"squeeze me" * 1000, compression=grpc.Compression.Gzip, timeout=30) == b"squeeze me" * 1000
        futures = [call.future(str(i).encode() * 100, timeout=30) for i in range(50)]
        assert [f.result() for f in futures] == [str(i).encode() * 100 for i in range(50)]
        with pytest.raises(grpc.RpcError) as err:
            channel.unary_unary("/t.S/Fail")(b"", timeout=30)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND and err.value.details() == MESSAGE
        with pytest.raises(grpc.RpcError) as err:
            call(b"\x00" * (LIMIT + 10), timeout=30)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert call(b"after", timeout=30) == b"after"


def test_shutdown_finishes_open_calls_and_refuses_new_ones() -> None:
    r = Running()
    with grpc.insecure_channel(f"127.0.0.1:{r.port}") as channel:
        pending = channel.unary_unary("/t.S/Slow").future(b"", timeout=30)
        time.sleep(0.2)  # the call is in the handler
        r.close()
        assert pending.result() == b"done"
    with grpc.insecure_channel(f"127.0.0.1:{r.port}") as channel, pytest.raises(grpc.RpcError) as err:
        channel.unary_unary("/t.S/Echo")(b"", timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_large_message_gets_its_window_once_the_byte_budget_has_room() -> None:
    """Each call may send its first 64 KiB; its size prefix asks the byte budget for the whole message. With room
    for one 3 MiB message per connection, the first call gets the window for the rest at once, the second only
    once the first is answered. A client that sends beyond a window is cut off with FLOW_CONTROL_ERROR."""
    r = Running(Registry(Limits(connection_bytes=3 * 2**20 + 5, total_bytes=16 * 2**20)))
    try:
        c = Raw(r.port, settings=((4, 2**31 - 1),))  # the client's own windows: wide open for the echoes
        c.sock.sendall(frame(8, 0, 0, (2**31 - 1 - 65535).to_bytes(4, "big")))
        data = message(bytes(range(256)) * (3 * 2**12))
        for sid in (1, 3):
            c.sock.sendall(frame(1, 0x4, sid, c.block("/t.S/Echo")) + frame(0, 0, sid, data[:STREAM_WINDOW]))

        def window_update(sid: int) -> int:
            while (f := c.read())[0] != 8 or f[2] != sid:
                pass
            return int.from_bytes(f[3], "big")

        def rest(sid: int) -> None:  # the message after its first window, in frames of at most 1 MiB
            tail = data[STREAM_WINDOW:]
            pieces = [tail[i : i + 2**20] for i in range(0, len(tail), 2**20)]
            c.sock.sendall(b"".join(frame(0, 0x1 if p is pieces[-1] else 0, sid, p) for p in pieces))

        def frames_within(seconds: float) -> list:
            got, deadline = [], time.monotonic() + seconds
            c.sock.settimeout(0.1)
            while time.monotonic() < deadline:
                try:
                    got.append(c.read())
                except TimeoutError:
                    continue
            c.sock.settimeout(10)
            return got

        assert window_update(1) == len(data) - STREAM_WINDOW
        later = frames_within(0.5)
        assert not [f for f in later if f[0] == 8 and f[2] == 3], (
            "the second call got a window while the first holds the budget"
        )
        rest(1)
        assert window_update(3) == len(data) - STREAM_WINDOW  # the first call's echo went before this
        rest(3)
        assert c.response(3)["data"] == data

        d = Raw(r.port)
        d.sock.sendall(frame(1, 0x4, 1, d.block("/t.S/Echo")) + frame(0, 0, 1, message(b"\0" * 2**17)))
        while (f := d.read())[0] != 7:
            pass
        assert int.from_bytes(f[3][4:8], "big") == 0x3 and b"flow-control window" in f[3][8:], f
    finally:
        r.close()

"""gRPC's wire: HTTP/2 with prior knowledge (h2c) on an asyncio protocol, for unary calls.

Why not grpc.aio: its Python layer costs more per call than the MLP's whole request. With one tritonclient.grpc
client sending batch-1 requests, a grpc.aio server answering precomputed bytes reached 1,546-1,584 requests/s and
this layer 3,527-4,182 (2-core Xeon, 2026-12-02). HPACK is decoded by the `hpack` package. A header block made only
of indexed fields leaves the decoder's table as it is, so its decoding is kept and looked up when the same bytes come
again, which is what a client's repeated calls send. Responses are encoded from the static table alone.

Covered: flow control both ways (replies wait for the client's windows), CONTINUATION, padding, PING, RST_STREAM,
SETTINGS, GOAWAY (graceful drain), a concurrent-stream limit, a 64 KiB header list limit, gzip and deflate messages.
Not covered: streaming methods (answered UNIMPLEMENTED by the service), TLS, server push, priorities (ignored, as RFC
9113 allows), grpc-timeout (ignored: a call runs to its end).

Limits (ai4hep.serve.limits). Each stream may send its first 64 KiB (HTTP/2's default window); its message's size
prefix then asks the byte budget for the whole message, and only once the budget grants it does the stream get the
window for the rest. The connection's window always covers every stream's window, so that a granted stream can never
be blocked by others that wait (no flow-control deadlock). A client that does not read while it keeps sending PING
or SETTINGS frames (whose acks would queue without bound, CVE-2019-9512) is cut off after MAX_CONTROL_FRAMES of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import traceback
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum
from urllib.parse import quote

from hpack import Decoder, HPACKError

from ai4hep.serve.limits import Account, Registry, WriteWatch, listen

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
FRAME_SIZE_ERROR, REFUSED_STREAM, COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 0x6, 0x7, 0x9, 0xB
MAX_WINDOW = 2**31 - 1
FRAME_LIMIT = 1 << 20  # our SETTINGS_MAX_FRAME_SIZE: large request bodies in few frames
MAX_STREAMS = 128
MAX_HEADER_BYTES = 64 * 1024
STREAM_WINDOW = 65535  # a stream's receive window before the byte budget grants its message (HTTP/2's default)
LAG = 1 << 20  # the connection window runs up to this far ahead of what the streams' windows need
CONNECTION_WINDOW = MAX_STREAMS * STREAM_WINDOW + LAG


class Status(IntEnum):
    OK = 0
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    RESOURCE_EXHAUSTED = 8
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16


REFUSAL_KINDS = {Status.UNIMPLEMENTED: "unsupported", Status.RESOURCE_EXHAUSTED: "too_large"}  # else "invalid"


class RpcError(Exception):
    """Ends a call with a non-OK status; the message reaches the client as grpc-message."""

    def __init__(self, status: Status, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.status, self.http_status = status, http_status


@dataclass
class Call:
    path: str
    metadata: dict[str, str]  # the request's headers other than the pseudo-headers, names in lower case


Handler = Callable[[bytes, Call], Awaitable[bytes]]


class _ConnectionError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def frame(kind: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + sid.to_bytes(4, "big") + payload


# What the server sends first: its SETTINGS, and the connection's receive window opened to cover every stream's.
SERVER_PREFACE = frame(
    SETTINGS,
    0,
    0,
    b"".join(
        k.to_bytes(2, "big") + v.to_bytes(4, "big")
        for k, v in ((3, MAX_STREAMS), (4, STREAM_WINDOW), (5, FRAME_LIMIT), (6, MAX_HEADER_BYTES))
    ),
) + frame(WINDOW_UPDATE, 0, 0, (CONNECTION_WINDOW - 65535).to_bytes(4, "big"))


def _string(value: bytes) -> bytes:
    n = len(value)  # HPACK integer, 7-bit prefix, no Huffman
    if n < 127:
        return bytes((n,)) + value
    out, n = bytearray((127,)), n - 127
    while n >= 128:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out) + bytes((n,)) + value


def _literal(name: bytes, value: bytes) -> bytes:
    return b"\x00" + _string(name) + _string(value)  # literal without indexing, new name


# :status 200 (static index 8); content-type (static index 31) application/grpc, without indexing
REPLY_HEADERS = b"\x88" + b"\x0f\x10" + _string(b"application/grpc")
OK_TRAILERS = _literal(b"grpc-status", b"0")


def status_block(status: Status, message: str, http_status: int = 200) -> bytes:
    """A trailers-only response's header block (or the trailers after a reply)."""
    head = b"\x88" if http_status == 200 else b"\x08\x03" + str(http_status).encode()  # :status, indexed name 8
    return (
        head
        + b"\x0f\x10"
        + _string(b"application/grpc")
        + _literal(b"grpc-status", str(int(status)).encode())
        + _literal(b"grpc-message", quote(message, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~").encode())
    )


def _only_indexed(block: bytes) -> bool:
    """Whether a header block is made only of indexed fields (each leaves the HPACK table unchanged)."""
    i, n = 0, len(block)
    while i < n:
        b = block[i]
        if not b & 0x80:
            return False
        i += 1
        if b & 0x7F == 0x7F:
            while i < n and block[i] & 0x80:
                i += 1
            i += 1
    return True


def _inflate(data: bytes, encoding: str, limit: int) -> bytes:
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}.get(encoding)
    if wbits is None:
        message = f"grpc-encoding {encoding!r} is not supported; send identity, gzip or deflate"
        raise RpcError(Status.UNIMPLEMENTED, message)
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise RpcError(Status.INVALID_ARGUMENT, f"the request message is not valid {encoding} data") from None
    if len(out) > limit:
        raise RpcError(Status.RESOURCE_EXHAUSTED, f"the request message inflates beyond the {limit}-byte limit")
    return out


class _Stream:
    __slots__ = ("chunks", "headers", "need", "reserved", "sid", "size", "start", "ticket", "window")

    def __init__(self, sid: int, headers: list[tuple[bytes, bytes]], now: float) -> None:
        self.sid, self.headers, self.chunks, self.size = sid, headers, [], 0
        self.window = STREAM_WINDOW  # what the client may still send on it
        self.need: int | None = None  # the message's size with its 5-byte prefix, once the prefix has come
        self.reserved = 0  # budget bytes it holds
        self.ticket: list | None = None  # its place in the budget's queue while it waits
        self.start = now  # its body's clock (restarted when the budget grants it)


class Http2Connection(asyncio.Protocol):
    def __init__(self, server: Http2Server) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.registry = server.registry
        self.limits = server.registry.limits
        self.budget = server.registry.budget
        self.account = Account(self.limits.connection_bytes)
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.preface = False
        self.decoder = Decoder(max_header_list_size=MAX_HEADER_BYTES)
        self.decoded: dict[bytes, list[tuple[bytes, bytes]]] = {}
        self.receiving: dict[int, _Stream] = {}
        self.open: set[int] = set()  # streams not yet answered in full
        self.running: set[int] = set()  # streams whose handler has not returned
        self.cancelled: set[int] = set()  # of those, the ones the client reset: they still count against the limit
        self.paused = False  # the transport's buffer is full: replies wait
        self.sending: dict[int, list] = {}  # sid -> [reply bytes left, trailers block]
        self.windows: dict[int, int] = {}  # send window per open stream
        self.window, self.initial_window, self.max_frame = 65535, 65535, 16384
        self.recv_window = CONNECTION_WINDOW  # what the client may still send on the connection (after our preface)
        self.credit = LAG  # recv_window less what the streams' windows (and those of streams yet to open) may take
        self.queued_control = 0  # control frames queued while the client reads nothing
        self.last_sid = 0
        self.continuation: list | None = None  # [sid, flags, fragments, size]
        self.closing = False
        self.out: list[bytes] = []
        now = self.loop.time()
        self.born = self.idle_mark = self.last_read = self.head_mark = now
        self.watch = WriteWatch(now)

    # -- transport callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if not self.registry.admit(self):
            self.server.refused("unavailable")
            message = f"the server holds its limit of {self.limits.max_connections} connections; try again later"
            goaway = frame(GOAWAY, 0, 0, bytes(4) + ENHANCE_YOUR_CALM.to_bytes(4, "big") + message.encode())
            transport.write(SERVER_PREFACE + goaway)
            transport.close()
            self.transport = None
            return
        self.server.connections.add(self)
        with contextlib.suppress(OSError, AttributeError):
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.queued_control = 0
        self._pump()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        for stream in self.receiving.values():
            self.budget.cancel(stream.ticket)
            self.budget.release(self.account, stream.reserved)
        self.receiving.clear()
        self.registry.forget(self)
        self.server.connections.discard(self)
        self.server.changed()

    def eof_received(self) -> bool:
        """The client shut down its write side: answer its open calls, then close."""
        self.closing = True
        self._close_when_idle()
        return True

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        self.buf += data
        self.last_read = self.loop.time()
        try:
            self._frames()
        except _ConnectionError as exc:
            self._fail(exc.code, str(exc))
        self._flush()

    # -- reading
    def _frames(self) -> None:
        buf = self.buf
        pos = 0
        if not self.preface:
            if len(buf) < len(PREFACE):
                if not PREFACE.startswith(bytes(buf)):
                    self._not_http2()
                return
            if buf[: len(PREFACE)] != PREFACE:
                self._not_http2()
                return
            self.preface, pos = True, len(PREFACE)
            self.out.append(SERVER_PREFACE)  # only now, so that an HTTP/1.1 client on this port reads a plain 400
        end = len(buf)
        while end - pos >= 9 and self.transport is not None:
            length = int.from_bytes(buf[pos : pos + 3], "big")
            if length > FRAME_LIMIT:
                raise _ConnectionError(FRAME_SIZE_ERROR, f"a {length}-byte frame is over the {FRAME_LIMIT}-byte limit")
            if end - pos - 9 < length:
                break
            kind, flags = buf[pos + 3], buf[pos + 4]
            sid = int.from_bytes(buf[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
            payload = bytes(buf[pos + 9 : pos + 9 + length])
            pos += 9 + length
            self._frame(kind, flags, sid, payload)
        del buf[:pos]
        self._top_up()

    def _frame(self, kind: int, flags: int, sid: int, payload: bytes) -> None:
        if self.continuation is not None and (kind != CONTINUATION or sid != self.continuation[0]):
            raise _ConnectionError(PROTOCOL_ERROR, "a header block was interrupted before its END_HEADERS")
        if kind == DATA:
            self._data(flags, sid, payload)
        elif kind == HEADERS:
            if sid == 0 or sid % 2 == 0:
                raise _ConnectionError(PROTOCOL_ERROR, f"HEADERS on stream {sid}; client streams are odd")
            fragment = self._unpad(flags, payload)
            if flags & PRIORITY_FLAG:
                fragment = fragment[5:]
            if flags & END_HEADERS:
                self._headers(sid, flags, fragment)
            else:
                self.continuation = [sid, flags, [fragment], len(fragment)]
                self.head_mark = self.loop.time()
        elif kind == CONTINUATION:
            if self.continuation is None:
                raise _ConnectionError(PROTOCOL_ERROR, "CONTINUATION without a header block to continue")
            c = self.continuation
            c[2].append(payload)
            c[3] += len(payload)
            if c[3] > MAX_HEADER_BYTES:
                raise _ConnectionError(ENHANCE_YOUR_CALM, f"a header block over {MAX_HEADER_BYTES} bytes")
            if flags & END_HEADERS:
                self.continuation = None
                self._headers(c[0], c[1], b"".join(c[2]))
        elif kind == SETTINGS:
            self._settings(flags, sid, payload)
        elif kind == WINDOW_UPDATE:
            if len(payload) != 4:
                raise _ConnectionError(FRAME_SIZE_ERROR, "a WINDOW_UPDATE frame must carry 4 bytes")
            step = int.from_bytes(payload, "big") & 0x7FFFFFFF
            if sid == 0:
                self.window += step
                if self.window > MAX_WINDOW:
                    raise _ConnectionError(FLOW_CONTROL_ERROR, "the connection's send window grew beyond 2^31-1")
            elif sid in self.windows:
                self.windows[sid] += step
            self._pump()
        elif kind == PING:
            if len(payload) != 8 or sid != 0:
                raise _ConnectionError(FRAME_SIZE_ERROR, "a PING frame must carry 8 bytes on stream 0")
            if not flags & ACK:
                self._control()
                self.out.append(frame(PING, ACK, 0, payload))
        elif kind == RST_STREAM:
            stream = self.receiving.pop(sid, None)
            if stream is not None:
                self._drop(stream)
            self.sending.pop(sid, None)
            if sid in self.running:
                self.cancelled.add(sid)  # the handler runs on; its reply is dropped
            self._finished(sid)
        elif kind == GOAWAY:
            self.closing = True
            self._close_when_idle()
        elif kind == PUSH_PROMISE:
            raise _ConnectionError(PROTOCOL_ERROR, "a client must not send PUSH_PROMISE")
        # PRIORITY and unknown frame types are ignored, as RFC 9113 allows.

    @staticmethod
    def _unpad(flags: int, payload: bytes) -> bytes:
        if not flags & PADDED:
            return payload
        if not payload or payload[0] >= len(payload):
            raise _ConnectionError(PROTOCOL_ERROR, "a frame's padding is longer than the frame")
        return payload[1 : len(payload) - payload[0]]

    def _settings(self, flags: int, sid: int, payload: bytes) -> None:
        if sid != 0:
            raise _ConnectionError(PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & ACK:
            return
        if len(payload) % 6:
            raise _ConnectionError(FRAME_SIZE_ERROR, "a SETTINGS frame's length is not a multiple of 6")
        for i in range(0, len(payload), 6):
            key, value = int.from_bytes(payload[i : i + 2], "big"), int.from_bytes(payload[i + 2 : i + 6], "big")
            if key == 4:
                if value > MAX_WINDOW:
                    raise _ConnectionError(FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE beyond 2^31-1")
                for s in self.windows:
                    self.windows[s] += value - self.initial_window
                self.initial_window = value
            elif key == 5:
                if not 16384 <= value <= 2**24 - 1:
                    raise _ConnectionError(PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE outside 16384..2^24-1")
                self.max_frame = value
        self._control()
        self.out.append(frame(SETTINGS, ACK, 0))
        self._pump()

    def _decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        headers = self.decoded.get(block)
        if headers is not None:
            return headers
        try:
            headers = self.decoder.decode(block, raw=True)
        except HPACKError as exc:
            raise _ConnectionError(COMPRESSION_ERROR, f"the header block cannot be decoded ({exc})") from None
        if _only_indexed(block):
            if len(self.decoded) < 64:
                self.decoded[block] = headers
        else:
            self.decoded.clear()  # the table may have changed, and with it what indices mean
        return headers

    def _headers(self, sid: int, flags: int, block: bytes) -> None:
        headers = self._decode(block)  # always decoded: the HPACK table must follow every block
        stream = self.receiving.get(sid)
        if stream is not None:  # trailers after the request message
            if not flags & END_STREAM:
                raise _ConnectionError(PROTOCOL_ERROR, "a second header block that does not end the stream")
            self._complete(stream)
            return
        if sid <= self.last_sid:
            return  # a stream this side has already answered and reset (RFC 9113 5.1: ignored)
        self.last_sid = sid
        if self.closing or len(self.open) + len(self.cancelled) >= MAX_STREAMS:
            self._control()
            self.out.append(frame(RST_STREAM, 0, sid, REFUSED_STREAM.to_bytes(4, "big")))
            return
        stream = _Stream(sid, headers, self.loop.time())
        self.receiving[sid] = stream
        self.open.add(sid)
        self.windows[sid] = self.initial_window
        if flags & END_STREAM:
            self._complete(stream)

    def _data(self, flags: int, sid: int, payload: bytes) -> None:
        if sid == 0:
            raise _ConnectionError(PROTOCOL_ERROR, "DATA on stream 0")
        n = len(payload)
        self.recv_window -= n
        if self.recv_window < 0:
            raise _ConnectionError(FLOW_CONTROL_ERROR, "DATA beyond the connection's flow-control window")
        stream = self.receiving.get(sid)
        if stream is None:
            if sid > self.last_sid:
                raise _ConnectionError(PROTOCOL_ERROR, f"DATA on stream {sid}, which was never opened")
            self.credit -= n  # a stream already answered (or reset): its data is dropped, the window counts it
            return
        stream.window -= n
        if stream.window < 0:
            raise _ConnectionError(FLOW_CONTROL_ERROR, f"DATA beyond stream {sid}'s flow-control window")
        body = self._unpad(flags, payload)
        stream.size += len(body)
        stream.chunks.append(body)
        if stream.need is None and stream.size >= 5:
            head = stream.chunks[0] if len(stream.chunks[0]) >= 5 else b"".join(stream.chunks)
            stream.need = 5 + int.from_bytes(head[1:5], "big")
            limit = self.server.max_message_bytes
            if stream.need > limit + 5:
                # Answered before the message arrives (RFC 9113 8.1), then the client is asked to stop sending.
                del self.receiving[sid]
                self._drop(stream)
                self.server.refused("too_large")
                message = f"the request message is over the {limit}-byte limit; send smaller batches"
                self._control()
                self._reply_status(sid, Status.RESOURCE_EXHAUSTED, message)
                self.out.append(frame(RST_STREAM, 0, sid, NO_ERROR.to_bytes(4, "big")))
                return
            self._reserve(stream)
        if flags & END_STREAM:
            self._complete(stream)

    def _reserve(self, stream: _Stream) -> None:
        """Ask the byte budget for the stream's whole message: a message that fits its first window is counted at
        once (it can be sent whatever the server says); a larger one waits for its grant before it gets more window."""
        need = stream.need
        if need <= stream.size + stream.window:
            self.budget.force(self.account, need)
            stream.reserved = need
        elif self.budget.take(self.account, need):
            self._grant(stream)
        else:
            ticket = self.budget.wait(self.account, need, lambda: self._granted(stream.sid, need))
            if not stream.reserved:  # not granted on the spot
                stream.ticket = ticket

    def _granted(self, sid: int, need: int) -> None:
        """The budget's grant for a stream that waited (it may come while another connection runs)."""
        stream = self.receiving.get(sid)
        if stream is None or stream.need != need:
            self.budget.release(self.account, need)
            return
        stream.ticket = None
        self._grant(stream)
        self._flush()

    def _grant(self, stream: _Stream) -> None:
        stream.reserved = stream.need
        stream.start = self.loop.time()
        extra = stream.need - stream.size - stream.window
        if extra > 0 and self.transport is not None:
            stream.window += extra
            self.out.append(frame(WINDOW_UPDATE, 0, stream.sid, extra.to_bytes(4, "big")))
            step = min(extra, MAX_WINDOW - self.recv_window)  # the connection's window grows with it
            if step > 0:
                self.recv_window += step
                self.out.append(frame(WINDOW_UPDATE, 0, 0, step.to_bytes(4, "big")))

    def _drop(self, stream: _Stream) -> None:
        """A stream that leaves `receiving`: its budget share back (unless it travels on with its message), and
        the connection window it may no longer use accounted."""
        self.budget.cancel(stream.ticket)
        stream.ticket = None
        self.budget.release(self.account, stream.reserved)
        stream.reserved = 0
        self.credit -= STREAM_WINDOW - stream.window

    def _top_up(self) -> None:
        if self.credit < LAG // 2 and self.transport is not None:
            step = min(LAG - self.credit, MAX_WINDOW - self.recv_window)
            if step > 0:
                self.recv_window += step
                self.credit += step
                self.out.append(frame(WINDOW_UPDATE, 0, 0, step.to_bytes(4, "big")))

    def _control(self) -> None:
        """Count a control frame the client made the server queue while it reads nothing (a flood)."""
        if self.paused:
            self.queued_control += 1
            if self.queued_control > self.limits.max_control_frames:
                self.server.refused("flood")
                raise _ConnectionError(
                    ENHANCE_YOUR_CALM,
                    f"over {self.limits.max_control_frames} control frames queued for a client that reads nothing",
                )

    def _complete(self, stream: _Stream) -> None:
        sid = stream.sid
        del self.receiving[sid]
        if stream.ticket is not None:  # ended before its grant (a truncated message): what came is in memory
            self.budget.cancel(stream.ticket)
            stream.ticket = None
            self.budget.force(self.account, stream.size)
            stream.reserved = stream.size
        held, stream.reserved = stream.reserved, 0
        self._drop(stream)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in stream.headers}
        try:
            handler, call, message = self._request(headers, b"".join(stream.chunks))
        except RpcError as exc:
            self.budget.release(self.account, held)
            self.server.refused(REFUSAL_KINDS.get(exc.status, "invalid"))
            self._control()
            self._reply_status(sid, exc.status, str(exc), exc.http_status)
            return
        stream.chunks = []
        self.running.add(sid)
        self.loop.create_task(self._run(sid, handler, message, call, held))

    def _request(self, headers: dict[str, str], body: bytes) -> tuple[Handler, Call, bytes]:
        if headers.get(":method") != "POST":
            raise RpcError(Status.UNIMPLEMENTED, f"gRPC calls are POST requests, not {headers.get(':method')!r}", 405)
        if not headers.get("content-type", "").startswith("application/grpc"):
            raise RpcError(Status.UNIMPLEMENTED, "gRPC requests need content-type application/grpc", 415)
        path = headers.get(":path", "")
        handler = self.server.routes.get(path)
        if handler is None:
            raise RpcError(Status.UNIMPLEMENTED, f"unknown method {path!r}; this server has {self.server.service}")
        if len(body) < 5:
            raise RpcError(Status.INVALID_ARGUMENT, "the request carries no gRPC message")
        flag, size = body[0], int.from_bytes(body[1:5], "big")
        if size + 5 > len(body):
            message = f"truncated gRPC message: {size} bytes announced, {len(body) - 5} sent"
            raise RpcError(Status.INVALID_ARGUMENT, message)
        if size + 5 < len(body):
            raise RpcError(Status.INVALID_ARGUMENT, "more than one message for a unary method; send one per call")
        message = body[5:]
        if flag == 1:
            encoding = headers.get("grpc-encoding", "identity")
            if encoding == "identity":
                raise RpcError(Status.INVALID_ARGUMENT, "a compressed message without grpc-encoding; name it")
            message = _inflate(message, encoding, self.server.max_message_bytes)
        elif flag != 0:
            raise RpcError(Status.INVALID_ARGUMENT, f"gRPC message flag {flag}; it must be 0 or 1")
        metadata = {k: v for k, v in headers.items() if not k.startswith(":")}
        return handler, Call(path, metadata), message

    async def _run(self, sid: int, handler: Handler, message: bytes, call: Call, held: int = 0) -> None:
        self.server.inflight += 1
        try:
            reply = await handler(message, call)
        except RpcError as exc:
            self._reply_status(sid, exc.status, str(exc))
        except Exception as exc:  # a bug must end the call, not the connection
            traceback.print_exc(file=sys.stderr)
            self._reply_status(sid, Status.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")
        else:
            if sid not in self.cancelled and self.transport is not None:
                self.out.append(frame(HEADERS, END_HEADERS, sid, REPLY_HEADERS))
                self.sending[sid] = [memoryview(b"\x00" + len(reply).to_bytes(4, "big") + reply), OK_TRAILERS]
                self._pump()
        finally:
            del message
            self.budget.release(self.account, held)
            self.server.inflight -= 1
            self.running.discard(sid)
            self.cancelled.discard(sid)
            self.idle_mark = self.loop.time()
            self._flush()
            self.server.changed()

    # -- writing
    def _reply_status(self, sid: int, status: Status, message: str, http_status: int = 200) -> None:
        if sid in self.cancelled or self.transport is None:
            return
        self.out.append(frame(HEADERS, END_HEADERS | END_STREAM, sid, status_block(status, message, http_status)))
        self._finished(sid)

    def _pump(self) -> None:
        """Send what replies the client's windows allow; a reply's trailers follow its last byte."""
        if self.paused:
            return
        for sid in list(self.sending):
            rest, trailers = self.sending[sid]
            while rest:
                n = min(len(rest), self.window, self.windows[sid], self.max_frame)
                if n <= 0:
                    break
                self.out.append(frame(DATA, 0, sid, rest[:n]))
                rest = rest[n:]
                self.window -= n
                self.windows[sid] -= n
            if rest:
                self.sending[sid][0] = rest
            else:
                del self.sending[sid]
                self.out.append(frame(HEADERS, END_HEADERS | END_STREAM, sid, trailers))
                self._finished(sid)

    def _finished(self, sid: int) -> None:
        self.open.discard(sid)
        self.windows.pop(sid, None)
        self.idle_mark = self.loop.time()
        self._close_when_idle()

    def _flush(self) -> None:
        if self.out and self.transport is not None:
            self.transport.write(b"".join(self.out))
        self.out.clear()

    def _close_when_idle(self) -> None:
        if self.closing and not self.open and self.transport is not None:
            self._flush()
            self.transport.close()

    def goaway(self) -> None:
        """Refuse new streams, finish the open ones, then close (the graceful drain)."""
        if self.transport is None:
            return
        self.out.append(frame(GOAWAY, 0, 0, self.last_sid.to_bytes(4, "big") + NO_ERROR.to_bytes(4, "big")))
        self.closing = True
        self._flush()
        self._close_when_idle()

    def _fail(self, code: int, message: str) -> None:
        payload = self.last_sid.to_bytes(4, "big") + code.to_bytes(4, "big") + message.encode()
        self.out.append(frame(GOAWAY, 0, 0, payload))
        self._flush()
        if self.transport is not None:
            if self.paused:  # the client reads nothing: do not wait to flush to it
                self.transport.abort()
            else:
                self.transport.close()
            self.transport = None

    # -- limits (ai4hep.serve.limits): the registry's sweep calls these
    def idle_since(self) -> float | None:
        if self.open or self.running or self.receiving or self.continuation is not None:
            return None
        return self.idle_mark

    def evict(self) -> None:
        """Closed to make room for a new connection (it was the longest idle one)."""
        if self.transport is None:
            return
        if self.preface:
            self.goaway()
        elif self.transport is not None:
            self.transport.close()
            self.transport = None

    def sweep(self, now: float) -> None:
        limits, transport = self.limits, self.transport
        if transport is None:
            return
        if self.watch.stalled(transport, now, limits.idle_timeout) or (
            self.sending and limits.idle_timeout and now - self.last_read > limits.idle_timeout
        ):  # the client reads nothing, or opens no window for its replies
            transport.abort()
            self.transport = None
            return
        header = limits.header_timeout
        if not self.preface:
            if header and now - self.born > header:
                transport.close()
                self.transport = None
            return
        if self.continuation is not None and header and now - self.head_mark > header:
            self._fail(ENHANCE_YOUR_CALM, f"a header block was not completed within {header:g} s")
            return
        body = limits.body_timeout
        if body:
            for stream in [s for s in self.receiving.values() if s.ticket is None and now - s.start > body]:
                del self.receiving[stream.sid]
                self._drop(stream)
                message = (
                    f"the request message did not arrive in full within {body:g} s (the server's --body-timeout; "
                    f"{stream.size} bytes came)"
                )
                self._reply_status(stream.sid, Status.DEADLINE_EXCEEDED, message)
                self.out.append(frame(RST_STREAM, 0, stream.sid, NO_ERROR.to_bytes(4, "big")))
            self._top_up()
        if limits.idle_timeout and self.idle_since() is not None and now - self.idle_mark > limits.idle_timeout:
            self.goaway()
        self._flush()

    def _not_http2(self) -> None:
        if self.transport is None:
            return
        text = b"this port speaks gRPC (HTTP/2 with prior knowledge); send REST requests to the HTTP port\n"
        head = (
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(text)}\r\nConnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + text)
        self.transport.close()
        self.transport = None


class Http2Server:
    """Serves `routes` (gRPC method path -> handler) on a listening socket until shut down."""

    def __init__(
        self,
        routes: dict[str, Handler],
        max_message_bytes: int,
        refused: Callable[[str], None] = lambda kind: None,
        service: str = "",
        registry: Registry | None = None,
    ) -> None:
        self.routes, self.max_message_bytes, self.refused = routes, max_message_bytes, refused
        self.registry = registry or Registry()
        self.service = service or "no methods"
        self.connections: set[Http2Connection] = set()
        self.inflight = 0
        self._server: asyncio.base_events.Server | None = None
        self._idle = asyncio.Event()

    async def start(self, sock: socket.socket) -> None:
        self.registry.start()
        self._server = await listen(lambda: Http2Connection(self), sock)

    def changed(self) -> None:
        if not self.connections and self.inflight == 0:
            self._idle.set()

    async def shutdown(self, timeout: float) -> None:
        """GOAWAY to every connection; wait (up to `timeout`) for their open calls to end."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.goaway()
        self._idle.clear()
        self.changed()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        self.abort()
        self.registry.stop()

    def abort(self) -> None:
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()

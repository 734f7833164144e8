"""HTTP/1.1 on an asyncio protocol, with httptools (the llhttp parser) reading the bytes.

Why not a web framework: at batch 1 the framework's request and response machinery cost more than the model. aiohttp
spent ~140 us of event-loop CPU per request on it (this layer ~80 us), more than decoding, running and encoding the
MLP together (docs/serving.md). This module does only what the inference protocol needs: requests with a body of known
length or chunked, keep-alive and pipelining (answers in request order), `Expect: 100-continue`, gzip/deflate request
bodies, and one bounded buffer per connection. A handler gets a whole `Request` and returns a whole `Response`.

Limits: the request line and headers together at most MAX_HEAD_BYTES (431 beyond), the body at most `max_body`
bytes, after decompression too. An oversized body is read and dropped, then the handler answers it (with
`Request.too_large` set, so that it can say which limit and count it), and the connection stays usable; with
`Expect: 100-continue` the answer comes before the body and the connection closes. Malformed HTTP gets a 400 and
the connection closes. The timeouts, the connection cap and the budget of body bytes in flight are those of
ai4hep.serve.limits: a body that does not fit the budget is not read (the connection stops being read) until it
does. A client that shuts down its write side after sending requests still gets all their answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

import httptools

from ai4hep.serve.limits import SMALL, Account, Registry, WriteWatch, listen

MAX_HEAD_BYTES = 64 * 1024
PIPELINE_DEPTH = 16  # queued requests per connection before it stops reading
_REASONS = {s.value: s.phrase for s in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}

log = logging.getLogger("ai4hep.serve")


@dataclass(slots=True)
class Request:
    method: str
    path: str  # without the query string, still percent-encoded: the router splits it first, then decodes each part
    headers: dict[str, str]  # names in lower case; repeated headers joined with ", "
    body: bytes
    too_large: int | None = None  # the body's size in bytes (or a lower bound) when it exceeded the limit; body empty


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def json_response(data: object, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(status, json.dumps(data).encode(), "application/json", headers)


def error_response(message: str, status: int, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """The protocol's error shape, {"error": "..."}, which tritonclient decodes."""
    return json_response({"error": message}, status, headers)


Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class HttpServer:
    """The listening socket and its connections; `shutdown` drains them."""

    handler: Handler
    max_body: int
    refused: Callable[[str], None] = lambda kind: None  # counts what the protocol layer refuses itself
    registry: Registry = field(default_factory=Registry)  # limits, budget and connection cap (shared with gRPC)
    connections: set[_Connection] = field(default_factory=set)
    draining: bool = False
    _server: asyncio.AbstractServer | None = None
    _all_closed: asyncio.Event | None = None

    async def start(self, sock) -> None:
        self.registry.start()
        self._server = await listen(lambda: _Connection(self), sock)

    def abort(self) -> None:
        """Cut every connection, answered or not: the end of the drain timeout, or a second signal."""
        for conn in list(self.connections):
            conn.transport.abort()

    def forget(self, conn: _Connection) -> None:
        self.connections.discard(conn)
        if not self.connections and self._all_closed is not None:
            self._all_closed.set()

    async def shutdown(self, timeout: float) -> None:
        """Stop listening, close idle connections, let busy ones answer what they hold (up to `timeout` s), then
        cut what is left."""
        self.draining = True
        if self._server is not None:
            self._server.close()
        self._all_closed = asyncio.Event()
        for conn in list(self.connections):
            conn.close_if_idle()
        if self.connections:
            try:
                await asyncio.wait_for(self._all_closed.wait(), timeout)
            except TimeoutError:
                self.abort()
        if self._server is not None:
            await self._server.wait_closed()
        self.registry.stop()


class _Connection(asyncio.Protocol):
    """One client connection: the parser's callbacks fill a request, complete requests queue up, one task answers
    them in order."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.registry = server.registry
        self.limits = server.registry.limits
        self.budget = server.registry.budget
        self.account = Account(self.limits.connection_bytes)
        self.parser = httptools.HttpRequestParser(self)
        # (request or ready-made response, keep-alive, body bytes it holds in the budget)
        self.queue: deque[tuple[Request | Response, bool, int]] = deque()
        self.busy = False  # self.task is answering the queue
        self.task: asyncio.Task | None = None
        self.in_message = False  # between a request's first byte and its last
        self.head_done = False  # the current request's headers are complete
        self.stopped = False  # no more input is read: closing after the queued answers
        self.eof = False  # the client shut down its write side
        self.paused = False  # PIPELINE_DEPTH requests wait: not read further
        self.waiting: list | None = None  # the budget ticket of a body that waits to be read
        self.reading = True  # the transport is being read
        self.reserved = 0  # budget bytes held by the current request's body
        self.continue_pending = False  # 100 Continue, sent once the body may be read
        self.requests = 0
        self.mark = self.loop.time()  # when the current phase (idle, head, body) began
        self.watch = WriteWatch(self.mark)
        self.writable: asyncio.Event | None = None  # set while the transport's buffer is low (made on first pause)
        self._start_message()

    # asyncio.Protocol

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        if not self.registry.admit(self):
            self.stopped = True
            self.server.refused("503")
            message = f"the server holds its limit of {self.limits.max_connections} connections; try again later"
            self._write(error_response(message, 503), close=True, head_only=False)
            transport.close()
            return
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.stopped = True
        for _, _, reserved in self.queue:
            self.budget.release(self.account, reserved)
        self.queue.clear()
        self._drop_body()
        self.resume_writing()
        self.registry.forget(self)
        self.server.forget(self)

    def eof_received(self) -> bool:
        """The client shut down its write side (it may still read): answer every complete request, then close. An
        unfinished request is dropped."""
        self.eof = self.stopped = True
        self._drop_body()
        if not self.busy:
            self.transport.close()
        return True  # keep the transport open for the answers

    def pause_writing(self) -> None:
        """The client is not reading its answers: stop answering (and, once the queue fills, reading) until it does."""
        if self.writable is None:
            self.writable = asyncio.Event()
        self.writable.clear()

    def resume_writing(self) -> None:
        if self.writable is not None:
            self.writable.set()

    def data_received(self, data: bytes) -> None:
        if self.stopped:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, "protocol upgrades are not supported; send plain HTTP/1.1 requests")
        except httptools.HttpParserError as exc:
            self._refuse(400, f"malformed HTTP request ({exc}); send HTTP/1.1 with Content-Length or chunked bodies")

    # httptools callbacks (they must not raise: the parser would report an error of its own)

    def _start_message(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.size = 0
        self.head_bytes = 0
        self.too_large: int | None = None

    def on_message_begin(self) -> None:
        self.in_message = True
        self.head_done = False
        self.requests += 1
        self.mark = self.loop.time()
        self._start_message()

    def on_url(self, url: bytes) -> None:
        self.url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._count_head(len(name) + len(value) + 4):
            key, text = name.decode("latin-1").lower(), value.decode("latin-1")
            self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def _count_head(self, size: int) -> bool:
        """False, and the connection refused, once the request line and headers pass MAX_HEAD_BYTES: checked as
        they arrive, so that endless headers cannot fill the memory."""
        self.head_bytes += size
        if self.head_bytes <= MAX_HEAD_BYTES:
            return True
        if not self.stopped:
            self._refuse(431, f"the request line and headers exceed {MAX_HEAD_BYTES // 1024} KiB; send fewer headers")
        return False

    def on_headers_complete(self) -> None:
        if self.stopped:
            return
        self.head_done = True
        self.mark = self.loop.time()
        headers = self.headers
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.server.max_body:
            self.too_large = int(length)
        expect = headers.get("expect", "").lower() == "100-continue"
        if self.too_large is not None:
            if expect:  # answer now, without the body; the client may not send it at all
                self._enqueue(self._request(b""), keep_alive=False)
                self.stopped = True
            return  # the body is read and dropped: it holds no memory
        if length.isdigit():
            need = int(length)
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            need = self.server.max_body  # unknown length: the most it may be (settled when it is complete)
        else:
            need = 0
        if need <= SMALL:
            self.budget.force(self.account, need)
            self.reserved = need
        elif self.budget.take(self.account, need):
            self.reserved = need
        else:  # not read until the budget has room: the client waits on TCP back-pressure
            ticket = self.budget.wait(self.account, need, lambda: self._granted(need))
            if not self.reserved:
                self.waiting = ticket
                self.continue_pending = expect
                self._set_reading()
                return
        if expect:
            self.transport.write(_CONTINUE)

    def _granted(self, need: int) -> None:
        self.waiting = None
        self.reserved = need
        self.mark = self.loop.time()  # the body's clock starts once it may be read
        if self.continue_pending:
            self.continue_pending = False
            if not self.transport.is_closing():
                self.transport.write(_CONTINUE)
        self._set_reading()

    def on_body(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.too_large is not None:
            return
        if self.size > self.server.max_body:  # chunked, or longer than its Content-Length said: dropped from here
            self.too_large, self.chunks = self.size, []
            return
        self.chunks.append(chunk)

    def on_message_complete(self) -> None:
        self.in_message = False
        if self.stopped:
            return
        body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks = []
        if self.waiting is not None:  # the whole body came in the same read that made it wait: it is in memory
            self.budget.cancel(self.waiting)
            self.waiting = None
            self._set_reading()
        encoding = self.headers.get("content-encoding", "identity").lower()
        keep_alive = self.parser.should_keep_alive()
        if encoding != "identity" and body and self.too_large is None:
            inflated = self._decompress(body, encoding)
            if isinstance(inflated, Response):
                self._settle(0)
                self._enqueue(inflated, keep_alive)
                return
            body = inflated
        held = self._settle(len(body))
        self._enqueue(self._request(body), keep_alive, held)

    def _settle(self, size: int) -> int:
        """The current body's budget share, set to the bytes it actually holds; returned, and the body's own
        share handed to the queued request."""
        if size > self.reserved:
            self.budget.force(self.account, size - self.reserved)
        else:
            self.budget.release(self.account, self.reserved - size)
        self.reserved = 0
        return size

    def _drop_body(self) -> None:
        """Give back what the current, unfinished body holds."""
        self.budget.cancel(self.waiting)
        self.waiting = None
        self.budget.release(self.account, self.reserved)
        self.reserved = 0
        self.chunks = []

    # answering

    def _request(self, body: bytes) -> Request:
        url = httptools.parse_url(self.url)
        method = self.parser.get_method().decode("latin-1")
        return Request(method, url.path.decode("latin-1"), self.headers, body, self.too_large)

    def _decompress(self, body: bytes, encoding: str) -> bytes | Response:
        """The inflated body, or the refusal to queue in its place (the request was read whole: the connection
        stays usable)."""
        wbits = _WBITS.get(encoding)
        if wbits is None:
            self.server.refused("415")
            return error_response(
                f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or identity", 415
            )
        out = None
        for bits in (wbits, -15) if encoding == "deflate" else (wbits,):  # deflate: also raw, as some clients send
            try:
                out = zlib.decompressobj(bits).decompress(body, self.server.max_body + 1)
                break
            except zlib.error:
                continue
        if out is None:
            self.server.refused("400")
            return error_response(f"the request body is not valid {encoding} data; check the client's compression", 400)
        if len(out) > self.server.max_body:
            self.too_large = len(out)
            return b""
        return out

    def _set_reading(self) -> None:
        """Read the socket unless PIPELINE_DEPTH requests wait or a body waits for the byte budget."""
        want = not (self.paused or self.waiting is not None)
        if want == self.reading or self.transport.is_closing():
            return
        self.reading = want
        if want:
            self.mark = self.loop.time()  # time not read does not count against the client's timeouts
            self.transport.resume_reading()
        else:
            self.transport.pause_reading()

    def _enqueue(self, item: Request | Response, keep_alive: bool, held: int = 0) -> None:
        self.queue.append((item, keep_alive, held))
        if len(self.queue) >= PIPELINE_DEPTH and not self.paused:
            self.paused = True
            self._set_reading()
        if not self.busy:
            self.busy = True
            self.task = self.loop.create_task(self._answer())  # held: the loop keeps weak refs

    async def _answer(self) -> None:
        while self.queue:
            if self.writable is not None and not self.writable.is_set():
                await self.writable.wait()
                if not self.queue:
                    break
            item, keep_alive, held = self.queue.popleft()
            if isinstance(item, Response):
                response, head_only = item, False
            else:
                head_only = item.method == "HEAD"
                try:
                    response = await self.server.handler(item)
                except Exception as exc:  # a bug, not a bad request: answer in the protocol's shape, keep serving
                    log.exception("internal error on %s %s", item.method, item.path)
                    response = error_response(f"internal server error ({exc.__class__.__name__}: {exc})", 500)
                finally:
                    self.budget.release(self.account, held)
                item.body = b""  # the request is answered: its body is no longer held here
            if self.paused and len(self.queue) < PIPELINE_DEPTH // 2:
                self.paused = False
                self._set_reading()
            last = (
                not keep_alive
                or (self.server.draining and not self.queue and not self.in_message)
                or (self.eof and not self.queue)
            )
            self._write(response, close=last, head_only=head_only)
            if last:
                for _, _, reserved in self.queue:
                    self.budget.release(self.account, reserved)
                self.queue.clear()
                self.stopped = True
                self.transport.close()
                break
        self.busy = False
        self.mark = self.loop.time()  # idle from here
        if self.stopped and not self.transport.is_closing():
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        """A protocol-level error: answered after what is already queued, then the connection closes."""
        self.server.refused(str(status))
        self.stopped = True
        self._drop_body()
        if self.busy:
            self.queue.append((error_response(message, status), False, 0))
            return
        self._write(error_response(message, status), close=True, head_only=False)
        self.transport.close()

    def close_if_idle(self) -> None:
        if not self.busy and not self.in_message:
            self.stopped = True
            self.transport.close()

    # limits (ai4hep.serve.limits): the registry's sweep calls these

    def idle_since(self) -> float | None:
        if self.busy or self.in_message or self.queue:
            return None
        return self.mark

    def evict(self) -> None:
        """Closed to make room for a new connection (it was the longest idle one)."""
        self.stopped = True
        if self.transport.get_write_buffer_size():
            self.transport.abort()
        else:
            self.transport.close()

    def sweep(self, now: float) -> None:
        limits = self.limits
        if self.watch.stalled(self.transport, now, limits.idle_timeout):
            self.stopped = True  # the client has read nothing of its answers for idle_timeout
            self.transport.abort()
            return
        if self.stopped or not self.reading:
            return  # closing, or not read by the server's own choice: no client timeout runs
        if self.in_message:
            if not self.head_done:
                if limits.header_timeout and now - self.mark > limits.header_timeout:
                    self._refuse(
                        408,
                        f"the request line and headers did not arrive within {limits.header_timeout:g} s "
                        "(the server's --header-timeout)",
                    )
            elif limits.body_timeout and now - self.mark > limits.body_timeout:
                self._refuse(
                    408,
                    f"the request body did not arrive in full within {limits.body_timeout:g} s (the server's "
                    f"--body-timeout; {self.size} bytes came)",
                )
        elif not self.busy and not self.queue:
            limit = limits.header_timeout if self.requests == 0 else limits.idle_timeout
            if limit and now - self.mark > limit:
                self.stopped = True  # a silent new connection, or a kept-alive one idle too long
                self.transport.close()

    def _write(self, r: Response, close: bool, head_only: bool) -> None:
        if self.transport.is_closing():
            return
        lines = [
            f"HTTP/1.1 {r.status} {_REASONS.get(r.status, 'Unknown')}\r\n"
            f"Content-Type: {r.content_type}\r\nContent-Length: {len(r.body)}\r\n"
        ]
        lines.extend(f"{k}: {v}\r\n" for k, v in r.headers)
        if close:
            lines.append("Connection: close\r\n")
        head = ("".join(lines) + "\r\n").encode("latin-1")
        if head_only or not r.body:
            self.transport.write(head)
        elif len(r.body) < 1 << 16:
            self.transport.write(head + r.body)
        else:  # no copy of a large body; the transport sends what it can and buffers the rest
            self.transport.write(head)
            self.transport.write(r.body)

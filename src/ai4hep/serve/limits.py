"""Limits that protect the server from its clients, shared by the HTTP/1.1 (http_wire) and HTTP/2 (grpc_wire)
layers: timeouts, a cap on connections, and a budget of request bytes in flight with read back-pressure.

- **Timeouts.** A request's line and headers (an HTTP/2 connection's preface, a header block) must arrive within
  `header_timeout` of their first byte, and a fresh connection must start its first request within it. A body (a
  gRPC message) must arrive in full within `body_timeout` of the moment the server starts reading it. A connection
  with nothing in flight is closed after `idle_timeout` (gRPC: GOAWAY first), and so is one whose client has read
  nothing of its answers for that long. One sweep a fraction of a second apart checks every connection, so the
  request path only stores a timestamp.
- **Connections.** At most `max_connections`, over both ports together (by default a little below the process's
  file limit). A new connection beyond it closes the one that has been idle longest; when none is idle, the new one
  is refused (HTTP 503, gRPC GOAWAY) and closed.
- **Bytes in flight.** A request body is counted from the moment the server reads it until its handler has
  returned: at most `connection_bytes` per connection and `total_bytes` over all connections. A body whose bytes
  do not fit is not read: on HTTP the connection stops being read (TCP back-pressure) until they fit; on gRPC the
  stream gets no flow-control window beyond the first 64 KiB. Waiting bodies are admitted first come, first
  served. Small bodies (at most SMALL bytes: a stream's first window) are never held back, so a flood of big ones
  does not starve batch-1 clients; they are bounded by the connection cap instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

SMALL = 65535  # bodies up to this size are admitted at once (HTTP/2's default stream window)
ACCEPT_BURST = 8  # connections accepted per wake-up of a listening socket (asyncio's default: 100)
LISTEN_BACKLOG = 1024  # the kernel's queue of connections not yet accepted
# File descriptors kept below the soft limit: the process's own (~12: stdio, epoll, listening sockets, onnxruntime's
# cache), and the connections accepted in the three loop turns from an accept to the close of the idle connection
# the cap evicts for it (3 turns x 2 listening sockets x ACCEPT_BURST = 48), with room to spare.
FD_RESERVE = 96
MAX_CONTROL_FRAMES = 1000  # control frames queued to a client that does not read (nghttp2's outbound-ack limit)


def default_max_connections() -> int:
    """A little below the soft file limit (each connection is a file descriptor), at most 4096."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 4096
    return max(8, min(4096, soft - FD_RESERVE if soft > 2 * FD_RESERVE else soft // 2))


@dataclass
class Limits:
    header_timeout: float = 30.0
    body_timeout: float = 60.0
    idle_timeout: float = 300.0  # 0: never
    max_connections: int = field(default_factory=default_max_connections)
    connection_bytes: int = 64 << 20
    total_bytes: int = 256 << 20
    max_control_frames: int = MAX_CONTROL_FRAMES

    @property
    def tick(self) -> float:
        """How often the sweep runs: a quarter of the shortest timeout, between 50 ms and 1 s."""
        shortest = min(t for t in (self.header_timeout, self.body_timeout, self.idle_timeout, 4.0) if t > 0)
        return min(1.0, max(0.05, shortest / 4))


class Account:
    """One connection's share of the byte budget."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0


class Budget:
    """Request bytes in flight, per connection and in total. `take` admits bytes that fit; `wait` queues a grant
    (first come, first served, except that one connection's own limit holds back only that connection); `force`
    counts bytes that are already in memory; `release` gives them back and admits what waits."""

    def __init__(self, total: int) -> None:
        self.total, self.used = total, 0
        self.waiters: deque[list] = deque()  # [account, bytes, grant callback or None once cancelled]

    def fits(self, account: Account, n: int) -> bool:
        return account.used + n <= account.limit and self.used + n <= self.total

    def take(self, account: Account, n: int) -> bool:
        if self.waiters or not self.fits(account, n):
            return False
        account.used += n
        self.used += n
        return True

    def force(self, account: Account, n: int) -> None:
        account.used += n
        self.used += n

    def wait(self, account: Account, n: int, grant: Callable[[], None]) -> list:
        """Queue a request for n bytes; `grant` runs once they are taken. Returns a ticket for `cancel`."""
        ticket = [account, n, grant]
        self.waiters.append(ticket)
        self._admit()
        return ticket

    def cancel(self, ticket: list | None) -> None:
        if ticket is not None and ticket[2] is not None:
            ticket[2] = None
            self._admit()

    def release(self, account: Account, n: int) -> None:
        if n:
            account.used -= n
            self.used -= n
            if self.waiters:
                self._admit()

    def _admit(self) -> None:
        granted = []
        for ticket in list(self.waiters):
            account, n, grant = ticket
            if grant is None:
                self.waiters.remove(ticket)
                continue
            if self.used + n > self.total:
                break  # first come, first served: nothing after it overtakes it on the total
            if account.used + n > account.limit:
                continue  # held back by its own connection only
            account.used += n
            self.used += n
            ticket[2] = None
            self.waiters.remove(ticket)
            granted.append(grant)
        for grant in granted:
            grant()


async def listen(factory, sock):
    """asyncio's server on a listening socket, accepting at most ACCEPT_BURST connections per wake-up: asyncio
    opens each accepted connection two loop turns later, and only then can the cap close an idle one (whose
    descriptor goes a turn after that), so bursts of 100 (asyncio's default) could run the process out of file
    descriptors first."""
    server = await asyncio.get_running_loop().create_server(factory, sock=sock, backlog=ACCEPT_BURST)
    sock.listen(LISTEN_BACKLOG)  # the burst is asyncio's accept loop; the kernel's queue stays long
    return server


class Registry:
    """Every open connection of both layers, for the connection cap and the timeout sweep. A connection offers
    `idle_since()` (loop time it became idle, None while busy), `evict()` (close it, as idle) and `sweep(now)`
    (enforce its timeouts)."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.budget = Budget(self.limits.total_bytes)
        self.connections: set = set()
        self.users = 0
        self._task: asyncio.Task | None = None

    def admit(self, conn) -> bool:
        """Whether a new connection may stay: under the cap, or once the longest idle one is closed."""
        if len(self.connections) >= self.limits.max_connections:
            idle = [(since, c) for c in self.connections if (since := c.idle_since()) is not None]
            if not idle:
                return False
            oldest = min(idle, key=lambda entry: entry[0])[1]
            self.connections.discard(oldest)
            oldest.evict()
        self.connections.add(conn)
        return True

    def forget(self, conn) -> None:
        self.connections.discard(conn)

    def start(self) -> None:
        """Start the sweep (once, however many layers share this registry)."""
        self.users += 1
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._sweep())

    def stop(self) -> None:
        self.users -= 1
        if self.users <= 0 and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.limits.tick)
            now = loop.time()
            for conn in list(self.connections):
                with contextlib.suppress(Exception):  # one connection's trouble must not stop the sweep
                    conn.sweep(now)


class WriteWatch:
    """Whether a transport's write buffer has stopped draining: the client reads nothing of what it is sent."""

    __slots__ = ("mark", "size")

    def __init__(self, now: float) -> None:
        self.size, self.mark = 0, now

    def stalled(self, transport, now: float, limit: float) -> bool:
        size = transport.get_write_buffer_size()
        if size == 0 or size < self.size:
            self.mark = now
        self.size = size
        return limit > 0 and size > 0 and now - self.mark > limit

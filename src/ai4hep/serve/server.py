"""`ai4hep serve`: both front ends in one asyncio process, and a graceful stop.

SIGTERM or Ctrl-C: readiness turns false, the listening sockets close, the batchers dispatch what they hold without
waiting for company, and in-flight requests finish (up to the drain timeout) before the process exits 0. A second
signal stops without waiting. Both front ends share one ai4hep.serve.limits.Registry: the timeouts, the connection cap
and the byte budget hold over both ports together.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from ai4hep.errors import UserError
from ai4hep.extras import require
from ai4hep.serve.engine import Engine, load_repository
from ai4hep.serve.limits import Limits, default_max_connections


def is_loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        raise UserError(f"cannot resolve --host {host!r}; give an address such as 127.0.0.1") from None
    return all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def _listen(host: str, port: int, option: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=1024)
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise UserError(f"cannot listen on {host}:{port} ({why}); choose another {option}") from None


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _serve(
    engine: Engine,
    host: str,
    http_port: int,
    grpc_port: int,
    max_request_bytes: int,
    drain_timeout: float,
    echo: Callable[[str], None],
    limits: Limits | None = None,
) -> None:
    from ai4hep.serve.grpc_service import SERVICE, routes
    from ai4hep.serve.grpc_wire import Http2Server
    from ai4hep.serve.http import HttpFrontEnd
    from ai4hep.serve.http_wire import HttpServer
    from ai4hep.serve.limits import Registry

    loop = asyncio.get_running_loop()
    registry = Registry(limits)
    engine.start()
    http_sock = _listen(host, http_port, "--http-port")
    grpc_sock = _listen(host, grpc_port, "--grpc-port")
    front = HttpFrontEnd(engine, max_request_bytes)
    http = HttpServer(front.handle, max_request_bytes, lambda kind: engine.refused("http", kind), registry)
    await http.start(http_sock)
    http_bound = http_sock.getsockname()[1]
    grpc = Http2Server(
        routes(engine), max_request_bytes, lambda kind: engine.refused("grpc", kind), SERVICE.full_name, registry
    )
    await grpc.start(grpc_sock)
    grpc_bound = grpc_sock.getsockname()[1]

    stop, force = asyncio.Event(), asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    names = ", ".join(f"{m.name} v{m.version}" for m in engine.models)
    echo(
        f"ai4hep serve: {len(engine.models)} model(s) ready ({names}); HTTP http://{_address(host, http_bound)}, "
        f"gRPC {_address(host, grpc_bound)}; SIGTERM or Ctrl-C drains and stops"
    )
    await stop.wait()
    echo(f"ai4hep serve: draining (up to {drain_timeout:g} s; signal again to stop at once)")
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, force.set)
    engine.draining = True
    drain = asyncio.gather(grpc.shutdown(drain_timeout), http.shutdown(drain_timeout), engine.drain())
    forced = loop.create_task(force.wait())
    await asyncio.wait([drain, forced], return_when=asyncio.FIRST_COMPLETED)
    if force.is_set():
        drain.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await drain
        grpc.abort()
        http.abort()
    forced.cancel()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    engine.stop_batchers()
    echo("ai4hep serve: stopped" + (" without waiting for in-flight requests" if force.is_set() else ""))


def serve(
    repository: Path,
    host: str = "127.0.0.1",
    http_port: int = 8000,
    grpc_port: int = 8001,
    token: str | None = None,
    max_request_mb: float = 64.0,
    threads: int = 0,
    drain_timeout: float = 30.0,
    echo: Callable[[str], None] = print,
    spin: bool = True,
    header_timeout: float = 30.0,
    body_timeout: float = 60.0,
    idle_timeout: float = 300.0,
    max_connections: int | None = None,
    max_connection_mb: float | None = None,
    max_inflight_mb: float = 256.0,
    follow_links: bool = False,
) -> None:
    """Load the repository, serve until SIGTERM / Ctrl-C, drain, return."""
    require("serve", "'ai4hep serve'")
    for name, port in (("--http-port", http_port), ("--grpc-port", grpc_port)):
        if not 0 <= port <= 65535:
            raise UserError(f"{name} {port} is not a port number (0-65535; 0 picks a free port)")
    if max_request_mb <= 0:
        raise UserError("--max-request-mb must be positive")
    limits = _limits(
        max_request_mb, header_timeout, body_timeout, idle_timeout, max_connections, max_connection_mb, max_inflight_mb
    )
    if not is_loopback(host):
        print(
            f"ai4hep serve: warning: listening on {host} lets every host that reaches this machine query the models"
            + ("" if token else "; set --token (or AI4HEP_SERVE_TOKEN) to require a bearer token"),
            file=sys.stderr,
            flush=True,
        )
    engine = Engine(load_repository(Path(repository), threads, spin, follow_links), token)
    try:
        max_request = int(max_request_mb * 2**20)
        asyncio.run(_serve(engine, host, http_port, grpc_port, max_request, drain_timeout, echo, limits))
    finally:
        engine.close()


def _limits(
    max_request_mb: float,
    header_timeout: float,
    body_timeout: float,
    idle_timeout: float,
    max_connections: int | None,
    max_connection_mb: float | None,
    max_inflight_mb: float,
) -> Limits:
    """The server's limits from its options, checked (see ai4hep.serve.limits and docs/serving.md, Hardening)."""
    for name, value in (("--header-timeout", header_timeout), ("--body-timeout", body_timeout)):
        if value <= 0:
            raise UserError(f"{name} must be positive (seconds)")
    if idle_timeout < 0:
        raise UserError("--idle-timeout must be >= 0 (seconds; 0: idle connections are kept)")
    if max_connections is not None and max_connections < 1:
        raise UserError("--max-connections must be at least 1")
    connection_mb = max_request_mb if max_connection_mb is None else max_connection_mb
    for name, value in (("--max-connection-mb", connection_mb), ("--max-inflight-mb", max_inflight_mb)):
        if value < max_request_mb:
            raise UserError(f"{name} {value:g} is below --max-request-mb {max_request_mb:g}; a request must fit it")
    return Limits(
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        idle_timeout=idle_timeout,
        max_connections=max_connections or default_max_connections(),
        connection_bytes=int(connection_mb * 2**20) + 5,  # + a gRPC message's 5-byte prefix
        total_bytes=int(max_inflight_mb * 2**20) + 5,
    )

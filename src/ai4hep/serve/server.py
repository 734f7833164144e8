"""`ai4hep serve`: both front ends in one asyncio process, and a graceful stop.

SIGTERM or Ctrl-C: readiness turns false, the listening sockets close, the batchers dispatch what they hold without
waiting for company, and in-flight requests finish (up to the drain timeout) before the process exits 0. A second
signal stops without waiting.
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
) -> None:
    from ai4hep.serve.grpc_service import SERVICE, routes
    from ai4hep.serve.grpc_wire import Http2Server
    from ai4hep.serve.http import HttpFrontEnd
    from ai4hep.serve.http_wire import HttpServer

    loop = asyncio.get_running_loop()
    engine.start()
    http_sock = _listen(host, http_port, "--http-port")
    grpc_sock = _listen(host, grpc_port, "--grpc-port")
    front = HttpFrontEnd(engine, max_request_bytes)
    http = HttpServer(front.handle, max_request_bytes, lambda kind: engine.refused("http", kind))
    await http.start(http_sock)
    http_bound = http_sock.getsockname()[1]
    grpc = Http2Server(routes(engine), max_request_bytes, lambda kind: engine.refused("grpc", kind), SERVICE.full_name)
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
) -> None:
    """Load the repository, serve until SIGTERM / Ctrl-C, drain, return."""
    require("serve", "'ai4hep serve'")
    for name, port in (("--http-port", http_port), ("--grpc-port", grpc_port)):
        if not 0 <= port <= 65535:
            raise UserError(f"{name} {port} is not a port number (0-65535; 0 picks a free port)")
    if max_request_mb <= 0:
        raise UserError("--max-request-mb must be positive")
    if not is_loopback(host):
        print(
            f"ai4hep serve: warning: listening on {host} lets every host that reaches this machine query the models"
            + ("" if token else "; set --token (or AI4HEP_SERVE_TOKEN) to require a bearer token"),
            file=sys.stderr,
            flush=True,
        )
    engine = Engine(load_repository(Path(repository), threads, spin), token)
    try:
        asyncio.run(_serve(engine, host, http_port, grpc_port, int(max_request_mb * 2**20), drain_timeout, echo))
    finally:
        engine.close()

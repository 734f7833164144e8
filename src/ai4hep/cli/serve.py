"""`ai4hep serve` (a Triton-compatible server over a model repository) and `ai4hep infer` (its batch client)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ai4hep.extras import require


def serve_cmd(
    repository: Path = typer.Option(..., "--repository", help="Model repository (see 'ai4hep export triton')."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    http_port: int = typer.Option(8000, "--http-port", help="HTTP/REST port (0: a free one)."),
    grpc_port: int = typer.Option(8001, "--grpc-port", help="gRPC port (0: a free one)."),
    token: str = typer.Option(None, "--token", envvar="AI4HEP_SERVE_TOKEN", help="Require 'Bearer TOKEN'."),
    max_request_mb: float = typer.Option(64.0, "--max-request-mb", help="Largest request body accepted."),
    threads: int = typer.Option(0, "--threads", min=0, help="onnxruntime intra-op threads (0: one per core)."),
    drain_timeout: float = typer.Option(30.0, "--drain-timeout", min=0.0, help="Seconds to finish in-flight work."),
    spin: bool = typer.Option(True, "--spin/--no-spin", help="Let idle onnxruntime threads spin (its default)."),
    header_timeout: float = typer.Option(30.0, "--header-timeout", help="Seconds for a request's line and headers."),
    body_timeout: float = typer.Option(60.0, "--body-timeout", help="Seconds for a request body, once it is read."),
    idle_timeout: float = typer.Option(300.0, "--idle-timeout", help="Close connections idle this long (0: never)."),
    max_connections: int = typer.Option(
        None, "--max-connections", help="Open connections, both ports (default: the file limit less 96, at most 4096)."
    ),
    max_connection_mb: float = typer.Option(
        None, "--max-connection-mb", help="Request bytes in flight per connection (default: --max-request-mb)."
    ),
    max_inflight_mb: float = typer.Option(256.0, "--max-inflight-mb", help="Request bytes in flight in total."),
    follow_links: bool = typer.Option(
        False, "--follow-links", help="Serve model folders or files linked from outside the repository."
    ),
) -> None:
    """Serve ONNX models over the Open Inference Protocol (Triton/KServe v2), HTTP and gRPC, until SIGTERM."""
    require("serve", "'ai4hep serve'")
    from ai4hep.serve.server import serve

    serve(
        repository,
        host,
        http_port,
        grpc_port,
        token,
        max_request_mb,
        threads,
        drain_timeout,
        _echo_flush,
        spin,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        max_connection_mb=max_connection_mb,
        max_inflight_mb=max_inflight_mb,
        follow_links=follow_links,
    )


def _echo_flush(line: str) -> None:
    typer.echo(line)
    sys.stdout.flush()


def infer_cmd(
    paths: list[Path] = typer.Argument(..., help="Dataset folders or shard files."),
    url: str = typer.Option(..., "--url", help="Server: host:port or http://host:port (HTTP), grpc://host:port."),
    model: str = typer.Option(..., "--model", help="Model name in the server's repository."),
    out: Path = typer.Option(..., "--out", help="Folder for the predictions (one file per shard, same name)."),
    version: str = typer.Option("", "--version", help="Model version (default: the server's choice)."),
    run: Path = typer.Option(None, "--run", help="Run dir with the preprocessing, if the model config lacks it."),
    batch_size: int = typer.Option(256, "--batch-size", help="Jets per request."),
    token: str = typer.Option(None, "--token", envvar="AI4HEP_SERVE_TOKEN", help="Bearer token of the server."),
) -> None:
    """Batch inference of HDF5 datasets through a Triton-compatible server; resumes after an interruption."""
    require("serve", "'ai4hep infer'")
    from ai4hep.serve.infer import infer

    r = infer(list(paths), url, model, out, version, run, batch_size, token)
    done = f"{r['written']} written, {r['skipped']} already done"
    typer.echo(f"{r['jets']} jets in {r['shards']} shard(s): {done} -> {out}")

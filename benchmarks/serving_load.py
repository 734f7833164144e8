"""The load generator of benchmarks/serving_compare.py: one client code path (tritonclient) for every server.

A cell is one server, protocol, model, batch size and number of clients. Clients are forked processes, each with its
own connection (threads around `session.run` for in-process onnxruntime). Each prepares its requests from the jet pool,
checks the server's first answer against in-process onnxruntime, warms up, waits for the others at a barrier, then
sends requests back to back for the cell's duration (and at least min_requests), timing each one.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import threading
import time
from dataclasses import dataclass, field

import numpy as np

CHECK_TOLERANCE = 1e-4
DTYPES = {
    np.dtype(np.float32): "FP32",
    np.dtype(np.float64): "FP64",
    np.dtype(np.int64): "INT64",
    np.dtype(np.int32): "INT32",
    np.dtype(np.bool_): "BOOL",
}


@dataclass
class Cell:
    """One measurement: a server (and protocol) under one model, batch size and number of clients."""

    server: str
    model: str  # the served model's name (ai4hep: also the dynamic-batching variants)
    protocol: str
    encoding: str
    batch: int
    clients: int
    url: str = ""
    output: str = "probs"  # the output every answer is checked on (the model's first)
    pool: str = ""  # .npz of the jets and their reference outputs
    duration: float = 10.0
    warmup: float = 2.0
    min_requests: int = 2


@dataclass
class Result:
    cell: Cell
    requests_per_s: float = 0.0
    jets_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    requests: int = 0
    error: str = ""
    extra: dict = field(default_factory=dict)


def _requests(cell: Cell, pool: dict[str, np.ndarray]) -> list[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Distinct request payloads (jets taken in order, wrapping around the pool) and their reference outputs."""
    n = len(pool["__ref__"])
    count = max(1, min(64, n // cell.batch))
    out = []
    for k in range(count):
        idx = np.arange(k * cell.batch, (k + 1) * cell.batch) % n
        out.append(
            (
                {name: np.ascontiguousarray(a[idx]) for name, a in pool.items() if name != "__ref__"},
                pool["__ref__"][idx],
            )
        )
    return out


def _caller(cell: Cell, session=None):
    """(prepare(feed) -> request, call(request) -> first output) for the cell's protocol."""
    if cell.protocol == "in-process":
        name = session.get_outputs()[0].name
        return (lambda feed: feed), (lambda feed: session.run([name], feed)[0])
    if cell.protocol == "grpc":
        import tritonclient.grpc as tc

        client = tc.InferenceServerClient(cell.url)
    else:
        import tritonclient.http as tc

        client = tc.InferenceServerClient(cell.url, connection_timeout=60, network_timeout=600)
    binary = cell.encoding == "binary"
    output = cell.output

    def prepare(feed: dict[str, np.ndarray]):
        inputs = []
        for name, array in feed.items():
            x = tc.InferInput(name, list(array.shape), DTYPES[array.dtype])
            if cell.protocol == "grpc":
                x.set_data_from_numpy(array)
            else:
                x.set_data_from_numpy(array, binary_data=binary)
            inputs.append(x)
        if cell.protocol == "grpc":
            outputs = [tc.InferRequestedOutput(output)]
        else:
            outputs = [tc.InferRequestedOutput(output, binary_data=binary)]
        return inputs, outputs

    def call(request):
        inputs, outputs = request
        return client.infer(cell.model, inputs, outputs=outputs).as_numpy(output)

    return prepare, call


def measure(cell: Cell, barrier, session=None) -> dict:
    """One client: prepare, warm up (checking the first answer), wait for the others, then time requests."""
    with np.load(cell.pool) as z:
        pool = {k: z[k] for k in z.files}
    prepare, call = _caller(cell, session)
    requests = [(prepare(feed), ref) for feed, ref in _requests(cell, pool)]
    deadline = time.monotonic() + 60
    while True:  # the server may still be opening this protocol's port
        try:
            got = call(requests[0][0])
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    diff = float(np.abs(np.asarray(got, np.float64) - requests[0][1]).max())
    if not diff <= CHECK_TOLERANCE:
        raise RuntimeError(f"answer differs from in-process onnxruntime by {diff:.2e}")
    start, k = time.perf_counter(), 1
    while time.perf_counter() - start < cell.warmup:
        call(requests[k % len(requests)][0])
        k += 1
    barrier.wait()
    lat, ends = [], []
    t0 = time.perf_counter()  # CLOCK_MONOTONIC: the same clock in every client process
    while True:
        t = time.perf_counter()
        if t - t0 >= cell.duration and len(lat) >= cell.min_requests:
            break
        call(requests[k % len(requests)][0])
        ends.append(time.perf_counter())
        lat.append(ends[-1] - t)
        k += 1
    return {"latencies": lat, "ends": ends, "t0": t0, "max_diff": diff}


def _client_process(cell: Cell, barrier, queue) -> None:
    try:
        queue.put(measure(cell, barrier))
    except Exception as exc:
        with contextlib.suppress(Exception):
            barrier.abort()
        queue.put({"error": f"{exc.__class__.__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"})


def throughput(starts: list[float], ends: list[list[float]]) -> float:
    """All answers over the time from the common start to the last answer. Each client stops at its first answer
    after the duration, so the tail with fewer clients is at most one latency long. (Per-client rates, summed, would
    overstate it when requests queue: the client served first would count at the unqueued rate.)"""
    return sum(len(e) for e in ends) / (max(e[-1] for e in ends) - min(starts))


def run_cell(cell: Cell, session=None) -> Result:
    results: list[dict] = []
    if cell.protocol == "in-process":
        barrier = threading.Barrier(cell.clients)
        lock = threading.Lock()

        def work() -> None:
            try:
                r = measure(cell, barrier, session)
            except Exception as exc:
                barrier.abort()
                r = {"error": f"{exc.__class__.__name__}: {exc}"}
            with lock:
                results.append(r)

        threads = [threading.Thread(target=work) for _ in range(cell.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        ctx = mp.get_context("fork")
        barrier, queue = ctx.Barrier(cell.clients), ctx.Queue()
        procs = [ctx.Process(target=_client_process, args=(cell, barrier, queue)) for _ in range(cell.clients)]
        for p in procs:
            p.start()
        wait = cell.duration + 900  # a client that died without reporting must not hang the benchmark
        results = [queue.get(timeout=wait) for _ in procs]
        for p in procs:
            p.join()
    errors = [r["error"] for r in results if "error" in r and "BrokenBarrierError" not in r["error"]]
    errors = errors or [r["error"] for r in results if "error" in r]
    if errors:
        return Result(cell, error=errors[0])
    lat = np.concatenate([r["latencies"] for r in results]) * 1e3
    rate = throughput([r["t0"] for r in results], [r["ends"] for r in results])
    return Result(
        cell,
        requests_per_s=rate,
        jets_per_s=rate * cell.batch,
        p50_ms=float(np.percentile(lat, 50)),
        p99_ms=float(np.percentile(lat, 99)),
        requests=len(lat),
        extra={"max_abs_diff": max(r["max_diff"] for r in results)},
    )

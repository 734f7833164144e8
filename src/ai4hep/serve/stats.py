"""Per-model statistics: plain integers updated on the event-loop thread (no locks on the hot path).

The same numbers feed Triton's statistics extension (ModelStatistics, /v2/models/.../stats) and the Prometheus
metrics, which read them only when scraped.
"""

from __future__ import annotations

import time
from bisect import bisect_left

LATENCY_BOUNDS = (1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BOUNDS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class Histogram:
    """Bucket counts for Prometheus (upper bounds, `le` semantics); `observe` is a bisect and two additions."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, int]]:
        out, total = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), total))
        return out


class Duration:
    __slots__ = ("count", "ns")

    def __init__(self) -> None:
        self.count = 0
        self.ns = 0

    def add(self, ns: int, count: int = 1) -> None:
        self.count += count
        self.ns += ns


class ModelStats:
    """What Triton's InferStatistics holds, plus latency, queue and batch-size histograms."""

    def __init__(self) -> None:
        self.success = Duration()
        self.fail = Duration()
        self.queue = Duration()
        self.compute_input = Duration()
        self.compute_infer = Duration()
        self.compute_output = Duration()
        self.inference_count = 0  # batch items served
        self.execution_count = 0  # session.run calls
        self.last_inference_ms = 0
        self.batches: dict[int, list[int]] = {}  # batch size -> [executions, input ns, infer ns, output ns]
        self.latency = Histogram(LATENCY_BOUNDS)
        self.queue_time = Histogram(LATENCY_BOUNDS)
        self.batch_size = Histogram(BATCH_BOUNDS)

    def request_done(self, start_ns: int, items: int) -> None:
        ns = time.perf_counter_ns() - start_ns
        self.success.add(ns)
        self.inference_count += items
        self.last_inference_ms = time.time_ns() // 1_000_000
        self.latency.observe(ns * 1e-9)

    def request_failed(self, start_ns: int) -> None:
        self.fail.add(time.perf_counter_ns() - start_ns)

    def queued(self, ns: int) -> None:
        self.queue.add(ns)
        self.queue_time.observe(ns * 1e-9)

    def executed(self, batch: int, requests: int, input_ns: int, infer_ns: int, output_ns: int) -> None:
        """One session.run over `batch` items from `requests` requests."""
        self.execution_count += 1
        self.compute_input.add(input_ns, requests)
        self.compute_infer.add(infer_ns, requests)
        self.compute_output.add(output_ns, requests)
        row = self.batches.get(batch)
        if row is None:
            row = self.batches[batch] = [0, 0, 0, 0]
        row[0] += 1
        row[1] += input_ns
        row[2] += infer_ns
        row[3] += output_ns
        self.batch_size.observe(batch)

    def to_proto(self, name: str, version: int):
        """Triton's ModelStatistics message (the HTTP statistics endpoint prints the same message as JSON)."""
        from tritonclient.grpc import service_pb2 as pb

        def dur(d: Duration | tuple[int, int]) -> pb.StatisticDuration:
            count, ns = (d.count, d.ns) if isinstance(d, Duration) else d
            return pb.StatisticDuration(count=count, ns=ns)

        return pb.ModelStatistics(
            name=name,
            version=str(version),
            last_inference=self.last_inference_ms,
            inference_count=self.inference_count,
            execution_count=self.execution_count,
            inference_stats=pb.InferStatistics(
                success=dur(self.success),
                fail=dur(self.fail),
                queue=dur(self.queue),
                compute_input=dur(self.compute_input),
                compute_infer=dur(self.compute_infer),
                compute_output=dur(self.compute_output),
            ),
            batch_stats=[
                pb.InferBatchStatistics(
                    batch_size=size,
                    compute_input=dur((n, a)),
                    compute_infer=dur((n, b)),
                    compute_output=dur((n, c)),
                )
                for size, (n, a, b, c) in sorted(self.batches.items())
            ],
        )

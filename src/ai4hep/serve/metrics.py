"""Prometheus metrics at /metrics, read from the per-model statistics when scraped (nothing on the hot path).

Names follow Triton's `nv_inference_*` metrics with an `ai4hep_` prefix, one series per model and version.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from ai4hep.serve.engine import Engine

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class EngineCollector:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self):
        labels = ["model", "version"]
        counters = {
            "success": ("ai4hep_inference_request_success", "Successful inference requests"),
            "failure": ("ai4hep_inference_request_failure", "Failed inference requests for a served model"),
            "count": ("ai4hep_inference_count", "Inferences served (batch items)"),
            "exec": ("ai4hep_inference_exec_count", "Model executions (fewer than requests when batching)"),
        }
        fams = {k: CounterMetricFamily(name, doc, labels=labels) for k, (name, doc) in counters.items()}
        latency = HistogramMetricFamily(
            "ai4hep_inference_request_duration_seconds", "Time from request decoded to outputs ready", labels=labels
        )
        queue = HistogramMetricFamily(
            "ai4hep_inference_queue_duration_seconds", "Time waiting in the dynamic batcher", labels=labels
        )
        batch = HistogramMetricFamily("ai4hep_inference_batch_size", "Batch size of each execution", labels=labels)
        for m in self.engine.models:
            s, lv = m.stats, [m.name, str(m.version)]
            fams["success"].add_metric(lv, s.success.count)
            fams["failure"].add_metric(lv, s.fail.count)
            fams["count"].add_metric(lv, s.inference_count)
            fams["exec"].add_metric(lv, s.execution_count)
            latency.add_metric(lv, s.latency.cumulative(), s.latency.sum)
            queue.add_metric(lv, s.queue_time.cumulative(), s.queue_time.sum)
            batch.add_metric(lv, s.batch_size.cumulative(), s.batch_size.sum)
        yield from fams.values()
        yield from (latency, queue, batch)
        refused = CounterMetricFamily(
            "ai4hep_requests_refused",
            "Requests refused before reaching a model (bad name, token, size, route)",
            labels=["protocol", "reason"],
        )
        for (protocol, kind), n in sorted(self.engine.rejected.items()):
            refused.add_metric([protocol, kind], n)
        yield refused
        ready = GaugeMetricFamily("ai4hep_server_ready", "1 while serving, 0 while draining")
        ready.add_metric([], 1.0 if self.engine.ready else 0.0)
        yield ready


def registry(engine: Engine) -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(EngineCollector(engine))
    ProcessCollector(registry=reg)
    return reg


def render(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)

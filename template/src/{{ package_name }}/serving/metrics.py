"""Prometheus metrics of the service, in a registry of its own (one per app).

Cumulative counts are counters (`*_total`: use `rate()`/`increase()`); levels are gauges.
Every metric with an `endpoint` label takes the route's path (`PREDICT`, `PREDICT_BATCH`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
# `endpoint` label values: the routes' paths.
PREDICT = "/predict"
PREDICT_BATCH = "/predict/batch"


class LogCounts(Protocol):
    """What the prediction log counts (serving.store.PredictionLog)."""

    errors: int
    dropped: int
    rejected: int

    def pending(self) -> int: ...


class _LogCollector(Collector):
    """The prediction log's own counts, read at scrape time."""

    def __init__(self, log: LogCounts) -> None:
        self.log = log

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "prediction_log_queue",
            "Predictions waiting to be written to the prediction log.",
            value=self.log.pending(),
        )
        yield CounterMetricFamily(
            "prediction_log_write_failures",
            "Failed writes to the prediction log (each is retried).",
            value=self.log.errors,
        )
        yield CounterMetricFamily(
            "prediction_log_dropped",
            "Predictions given up on (buffer full, or down at shutdown), set aside.",
            value=self.log.dropped,
        )
        yield CounterMetricFamily(
            "prediction_log_rejected",
            "Predictions the database refused, set aside in the dead-letter file.",
            value=self.log.rejected,
        )


class ServiceMetrics:
    """Requests, latency and predictions per variant and model version."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "prediction_requests",
            "Prediction requests by endpoint, variant, model version and outcome.",
            ["endpoint", "variant", "model_version", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "prediction_latency_seconds",
            "Time to answer a prediction request, by endpoint and variant.",
            ["endpoint", "variant", "model_version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "predictions",
            "Predictions served (a batch counts each row), by variant and model version.",
            ["variant", "model_version"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "rejected_requests",
            "Requests refused before prediction, by endpoint and HTTP status.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.clipped = Counter(
            "predictions_clipped",
            "Predictions held to the target's declared range, by variant and model version.",
            ["variant", "model_version"],
            registry=self.registry,
        )
        self.model_loaded = Gauge(
            "model_loaded",
            "1 for each loaded model, by variant and version.",
            ["variant", "model_version"],
            registry=self.registry,
        )

    def watch_log(self, log: LogCounts) -> None:
        """Expose the prediction log's queue and counts (once per registry)."""
        self.registry.register(_LogCollector(log))

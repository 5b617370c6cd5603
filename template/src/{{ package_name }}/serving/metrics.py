"""Prometheus metrics of the service, in a registry of its own (one per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


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
            "Predictions served (a batch counts each trip), by variant and model version.",
            ["variant", "model_version"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "rejected_requests",
            "Requests refused before prediction, by endpoint and HTTP status.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.log_queue = Gauge(
            "prediction_log_queue",
            "Predictions waiting to be written to the prediction log.",
            registry=self.registry,
        )
        self.log_errors = Gauge(
            "prediction_log_write_failures",
            "Failed writes to the prediction log since start (each is retried).",
            registry=self.registry,
        )
        self.log_dropped = Gauge(
            "prediction_log_dropped",
            "Predictions given up on by the prediction log (buffer full, or down at shutdown).",
            registry=self.registry,
        )
        self.log_duplicates = Gauge(
            "prediction_log_duplicate_ids",
            "Predictions not logged because their request id was already logged.",
            registry=self.registry,
        )
        self.model_loaded = Gauge(
            "model_loaded",
            "1 for each loaded model, by variant and version.",
            ["variant", "model_version"],
            registry=self.registry,
        )

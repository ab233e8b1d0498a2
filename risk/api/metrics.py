"""Prometheus metrics of the API (``/metrics``): request counts and latencies, rows predicted, and gauges of the
deployed version read at scrape time. Under gunicorn the workers share a prometheus-client multiprocess folder."""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from risk.api.records import latest_scores, model_age_seconds
from risk.config import Settings
from risk.versions import current_version, read_record

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The prometheus-client multiprocess folder (set by gunicorn.conf.py when there are several workers)."""
    return os.environ.get(MULTIPROC_ENV) or None


class DeploymentCollector:
    """Gauges read at scrape time: deployed version, its F1 and age, and the latest scores in the store."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def collect(self) -> Iterator[GaugeMetricFamily]:
        version = current_version(self._settings)
        info = GaugeMetricFamily("risk_deployed_model_info", "The deployed model version (value 1)", labels=["version"])
        if version is None:
            yield info
            return
        info.add_metric([version], 1)
        yield info
        try:
            record = read_record(self._settings, version)
        except Exception:  # noqa: BLE001 - an unreadable record must not break the scrape
            return
        yield GaugeMetricFamily("risk_deployed_model_f1", "F1 of the deployed model on the test data", value=record.f1)
        age = model_age_seconds(record)
        if age is not None:
            yield GaugeMetricFamily(
                "risk_deployed_model_age_seconds", "Seconds since the version was deployed", value=age
            )
        latest = GaugeMetricFamily(
            "risk_latest_f1",
            "The latest F1 in the score history, by kind (test: a "
            "trained model on the test data; batch: the deployed model on new data)",
            labels=["kind"],
        )
        for kind, f1 in latest_scores(self._settings).items():
            latest.add_metric([kind], f1)
        yield latest


class ApiMetrics:
    """Request counts and latencies per endpoint and rows predicted, in a registry of this app's own."""

    def __init__(self, settings: Settings) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "risk_api_requests",
            "HTTP requests answered, by endpoint, method and status",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "risk_api_request_duration_seconds",
            "Time to answer a request, by endpoint",
            ["endpoint"],
            registry=self.registry,
        )
        self.predictions = Counter(
            "risk_api_predictions", "Rows predicted, by model version", ["model_version"], registry=self.registry
        )
        self.deployment = DeploymentCollector(settings)
        if multiprocess_dir() is None:
            self.registry.register(self.deployment)

    def exposition(self) -> bytes:
        """The Prometheus text; summed over all gunicorn workers in multiprocess mode."""
        if multiprocess_dir() is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(self.deployment)
        return generate_latest(registry)

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

"""Prometheus metrics: what an operator on call needs to see (prometheus-client, one registry).

Recorded where the facts are: the runner times Terraform steps, the run gate counts runs in
flight and waiting, the handlers time reconciles and track each object's phase. Served by
`__main__` on LLMAPP_METRICS_PORT. Label values are bounded (steps, outcomes, phases, reasons):
never object names, which would grow without limit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

# Reconciles take from milliseconds (nothing to do) to tens of minutes (a first apply on AWS).
_RECONCILE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)
_STEP_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)

RECONCILE_SECONDS = Histogram(
    "llmapp_reconcile_duration_seconds", "Time of one reconcile pass (create/update/resume/delete).",
    ["handler", "outcome"], buckets=_RECONCILE_BUCKETS, registry=REGISTRY)
TERRAFORM_STEP_SECONDS = Histogram(
    "llmapp_terraform_step_duration_seconds", "Time of one terraform process, by step and outcome.",
    ["step", "outcome"], buckets=_STEP_BUCKETS, registry=REGISTRY)
RUNS_IN_FLIGHT = Gauge(
    "llmapp_terraform_runs_in_flight", "Objects running Terraform now (bounded by LLMAPP_MAX_CONCURRENT_RUNS).",
    registry=REGISTRY)
RUNS_QUEUED = Gauge(
    "llmapp_terraform_runs_queued", "Objects waiting for a Terraform slot.", registry=REGISTRY)
DRIFT_CHECKS = Counter(
    "llmapp_drift_checks_total", "Drift checks (plan without apply), by result: drifted or clean.", ["result"],
    registry=REGISTRY)
GITHUB_SYNC_FAILURES = Counter(
    "llmapp_github_sync_failures_total", "Failed GitHub environment syncs, by reason.", ["reason"],
    registry=REGISTRY)


class PhaseTracker(Collector):
    """`llmapp_objects{phase=...}`: how many LLMApps are in each phase, as this replica last saw them."""

    def __init__(self) -> None:
        self._phases: dict[str, str] = {}
        self._lock = threading.Lock()

    def set(self, uid: str, phase: str) -> None:
        with self._lock:
            self._phases[uid] = phase

    def forget(self, uid: str) -> None:
        with self._lock:
            self._phases.pop(uid, None)

    def counts(self) -> dict[str, int]:
        with self._lock:
            phases = list(self._phases.values())
        return {phase: phases.count(phase) for phase in sorted(set(phases))}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("llmapp_objects", "LLMApps by phase.", labels=["phase"])
        for phase, count in self.counts().items():
            family.add_metric([phase], count)
        yield family


PHASES = PhaseTracker()
REGISTRY.register(PHASES)


def serve_metrics(port: int, address: str = "0.0.0.0") -> Any:
    """Expose the registry over HTTP in a background thread (prometheus-client's own server);
    returns the server, whose `shutdown()` stops it."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=address, registry=REGISTRY)
    return server

"""Prometheus metrics: what an operator on call needs to see (prometheus-client, one registry).

Recorded where the facts are: the runner times Terraform steps, the run gate counts runs in
flight and waiting, the object's worker times every pass (change, retry, recheck, resync, drift,
teardown) and counts the failed ones, the publisher tracks each object's phase. Served by
`__main__` on LLMAPP_METRICS_PORT. Label values are bounded (steps, outcomes, triggers, phases,
reasons): never object names or uids, which would grow without limit.

One outcome vocabulary for the passes: `outcome_label` (conditions.Outcome in snake_case).
"""

from __future__ import annotations

import importlib.metadata
import platform
import re
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


def label(value: str) -> str:
    """CamelCase to snake_case, for label values: 'AwaitingApproval' -> 'awaiting_approval'."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(value)).lower()


ERROR = "error"
"""The outcome of a pass that raised (a bug: logged with its traceback, retried)."""
DELETED = "deleted"
"""The outcome of a teardown that finished (its conditions.Outcome stays Deleting)."""
INTERNAL_ERROR_REASON = "InternalError"
"""`llmapp_reconcile_errors_total`'s reason for a pass that raised instead of returning a result
(the reason its status shows too: engine/worker.internal_error)."""


def outcome_label(outcome: str | None, *, finished_teardown: bool = False) -> str:
    """The one outcome vocabulary of the pass metrics and of the per-pass log line: the pass's
    conditions.Outcome in snake_case (applied, unchanged, in_progress, retrying, stalled, suspended,
    deleting, awaiting_approval); `deleted` for a teardown that finished, `error` (None) for a pass
    that raised. (obs is the bottom layer: it takes the Outcome as the string it is.)"""
    if outcome is None:
        return ERROR
    if finished_teardown:
        return DELETED
    return label(outcome)


RECONCILE_SECONDS = Histogram(
    "llmapp_reconcile_duration_seconds",
    "Time of one pass of an object's worker, by handler (reconcile, teardown), trigger and outcome.",
    ["handler", "trigger", "outcome"], buckets=_RECONCILE_BUCKETS, registry=REGISTRY)
RECONCILE_ERRORS = Counter(
    "llmapp_reconcile_errors_total",
    "Failed passes (a real failure or a Stalled object, not waiting for the app), by condition reason.",
    ["reason"], registry=REGISTRY)
TERRAFORM_STEP_SECONDS = Histogram(
    "llmapp_terraform_step_duration_seconds", "Time of one terraform process, by step and outcome.",
    ["step", "outcome"], buckets=_STEP_BUCKETS, registry=REGISTRY)
RUNS_IN_FLIGHT = Gauge(
    "llmapp_terraform_runs_in_flight", "Objects running Terraform now (bounded by LLMAPP_MAX_CONCURRENT_RUNS).",
    registry=REGISTRY)
RUNS_QUEUED = Gauge(
    "llmapp_terraform_runs_queued", "Objects waiting for a Terraform slot.", registry=REGISTRY)
DRIFT_CHECKS_RUNNING = Gauge(
    "llmapp_drift_checks_running", "Drift plans running now (bounded by LLMAPP_DRIFT_CONCURRENCY).",
    registry=REGISTRY)
DRIFT_CHECKS_WAITING = Gauge(
    "llmapp_drift_checks_waiting", "Drift checks due and waiting for a run slot (spec changes go first).",
    registry=REGISTRY)
RUN_SLOT_WAIT_SECONDS = Histogram(
    "llmapp_run_slot_wait_seconds", "How long a pass waited for a Terraform run slot, by kind: change or drift.",
    ["kind"], buckets=(0.01, 0.1, 1, 5, 15, 60, 300, 900, 3600), registry=REGISTRY)
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


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class BuildInfo(Collector):
    """`llmapp_build_info{version, python, kopf, terraform} 1`. Versions from package metadata, read
    once; the terraform version only once something has learnt it (`set_terraform`): no process
    is started to find it out, so it reads `unknown` until then."""

    def __init__(self) -> None:
        self.labels = {"version": _version("llmapp-operator"), "python": platform.python_version(),
                       "kopf": _version("kopf"), "terraform": "unknown"}

    def set_terraform(self, version: str) -> None:
        self.labels = {**self.labels, "terraform": version or "unknown"}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = self.labels
        family = GaugeMetricFamily("llmapp_build_info", "The operator's build: always 1, the versions are labels.",
                                   labels=list(labels))
        family.add_metric(list(labels.values()), 1)
        yield family


BUILD_INFO = BuildInfo()
REGISTRY.register(BUILD_INFO)


def serve_metrics(port: int, address: str = "0.0.0.0") -> Any:
    """Expose the registry over HTTP in a background thread (prometheus-client's own server);
    returns the server, whose `shutdown()` stops it."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=address, registry=REGISTRY)
    return server

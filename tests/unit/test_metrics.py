"""Prometheus metrics (obs/metrics.py): one outcome vocabulary, every pass of the worker timed with
its trigger, failed passes counted by reason, the build info, and the README's table true."""

from __future__ import annotations

import asyncio
import platform
import re
from typing import Any

from prometheus_client import CollectorRegistry

from llmapp_operator.api.conditions import Outcome, Report
from llmapp_operator.api.errors import PermanentError, TransientError, Waiting
from llmapp_operator.engine.worker import Reason, Scheduler, trigger_of
from llmapp_operator.obs import metrics
from tests.conftest import REPO
from tests.unit.test_worker import SETTINGS, Outcome_, Publisher, Recorder, body, deleting, ok, settle

OUTCOMES = {"applied", "unchanged", "in_progress", "retrying", "stalled", "suspended", "deleting",
            "awaiting_approval", "deleted", "error"}
TRIGGERS = {"observed", "spec_changed", "requested", "retry", "recheck", "waiting", "resync", "drift", "delete"}


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def passes(handler: str, trigger: str, outcome: str) -> float:
    return sample("llmapp_reconcile_duration_seconds_count", handler=handler, trigger=trigger, outcome=outcome)


def test_one_lowercase_outcome_vocabulary_derived_from_the_outcomes() -> None:
    assert {metrics.outcome_label(outcome) for outcome in Outcome} | {metrics.DELETED, metrics.ERROR} == OUTCOMES
    assert metrics.outcome_label(Outcome.AWAITING_APPROVAL) == "awaiting_approval"
    assert metrics.outcome_label(Outcome.IN_PROGRESS) == "in_progress"
    assert metrics.outcome_label(Outcome.DELETING, finished_teardown=True) == "deleted"
    assert metrics.outcome_label(None) == "error"
    assert {trigger_of(frozenset({reason})) for reason in Reason} == TRIGGERS
    # Folded reasons: the one that matters most names the pass.
    assert trigger_of(frozenset({Reason.RESYNC, Reason.SPEC})) == "spec_changed"
    assert trigger_of(frozenset({Reason.RETRY, Reason.DRIFT})) == "drift"


async def test_every_kind_of_pass_is_timed_with_its_trigger_and_failures_are_counted_by_reason() -> None:
    """Change, waiting recheck, retry, stalled recheck, resync, drift and teardown passes all land
    in the one histogram; a wait is not an error, a transient failure and a Stalled pass are."""
    def waiting(generation: int) -> Outcome_:
        return Outcome_(Report(Outcome.RETRYING, "RollingOut", "rolling", generation),
                        error=Waiting("rolling", reason="RollingOut", delay=0.02))

    def locked(generation: int) -> Outcome_:
        return Outcome_(Report(Outcome.RETRYING, "MetricsStateLocked", "locked", generation),
                        error=TransientError("locked", reason="MetricsStateLocked"))

    def stalled(generation: int) -> Outcome_:
        return Outcome_(Report(Outcome.STALLED, "MetricsAccessDenied", "denied", generation),
                        error=PermanentError("denied", reason="MetricsAccessDenied"))

    def unchanged(generation: int) -> Outcome_:
        return Outcome_(Report(Outcome.UNCHANGED, "UpToDate", "nothing to do", generation))

    before = {key: passes(*key) for key in [
        ("reconcile", "observed", "retrying"), ("reconcile", "waiting", "retrying"),
        ("reconcile", "retry", "stalled"), ("reconcile", "recheck", "applied"),
        ("reconcile", "resync", "unchanged"), ("reconcile", "drift", "unchanged"),
        ("teardown", "delete", "deleted")]}
    errors_before = {reason: sample("llmapp_reconcile_errors_total", reason=reason)
                     for reason in ("MetricsStateLocked", "MetricsAccessDenied", "RollingOut")}
    recorder = Recorder([waiting, locked, stalled, ok] + [unchanged] * 50)
    settings = SETTINGS.updated(retry_base_seconds=0.02, retry_max_seconds=0.05, stalled_recheck_seconds=0.02,
                                resync_seconds=0.3)
    scheduler = Scheduler(settings, recorder.run, recorder.teardown, Publisher())
    scheduler.observe({**body(1), "spec": {"driftDetection": {"interval": "1s"}}})
    await settle(recorder, 6, timeout=5)                  # ... ok, then the resync and the drift check
    for _ in range(200):
        if Reason.DRIFT in {r for reasons, _ in recorder.calls for r in reasons}:
            break
        await asyncio.sleep(0.01)
    gone = deleting(1)
    scheduler.observe(gone)
    await asyncio.wait_for(scheduler.teardown(gone), 2)
    await scheduler.stop(1)

    grown = {key: passes(*key) - value for key, value in before.items()}
    assert grown[("reconcile", "observed", "retrying")] == 1      # the first look, waiting for the rollout
    assert grown[("reconcile", "waiting", "retrying")] == 1       # its recheck failed to lock
    assert grown[("reconcile", "retry", "stalled")] == 1
    assert grown[("reconcile", "recheck", "applied")] == 1
    assert grown[("reconcile", "resync", "unchanged")] >= 1
    assert grown[("reconcile", "drift", "unchanged")] >= 1
    assert grown[("teardown", "delete", "deleted")] == 1
    errors = {reason: sample("llmapp_reconcile_errors_total", reason=reason) - value
              for reason, value in errors_before.items()}
    assert errors == {"MetricsStateLocked": 1, "MetricsAccessDenied": 1, "RollingOut": 0}


async def test_a_pass_that_raises_is_timed_as_error_and_counted_with_the_reason_its_status_shows() -> None:
    async def broken(*_: Any) -> Any:
        raise RuntimeError("a bug")

    recorder, publisher = Recorder(), Publisher()
    reason = metrics.INTERNAL_ERROR_REASON
    before = (passes("reconcile", "observed", "error"), sample("llmapp_reconcile_errors_total", reason=reason))
    scheduler = Scheduler(SETTINGS.updated(retry_base_seconds=30), broken, recorder.teardown, publisher)
    scheduler.observe(body(1))
    for _ in range(200):
        if scheduler.passes and scheduler.objects["u1"].running is None:
            break
        await asyncio.sleep(0.01)
    await scheduler.stop(1)
    assert passes("reconcile", "observed", "error") - before[0] == 1
    assert sample("llmapp_reconcile_errors_total", reason=reason) - before[1] == 1
    assert [final.report.reason for final in publisher.finals] == [reason]


def test_build_info_is_one_with_the_versions_as_labels() -> None:
    import importlib.metadata

    labels = {"version": importlib.metadata.version("llmapp-operator"), "python": platform.python_version(),
              "kopf": importlib.metadata.version("kopf"), "terraform": "unknown"}
    assert sample("llmapp_build_info", **labels) == 1
    registry = CollectorRegistry()
    info = metrics.BuildInfo()
    registry.register(info)
    info.set_terraform("1.11.4")
    assert registry.get_sample_value("llmapp_build_info", {**labels, "terraform": "1.11.4"}) == 1


def documented_metrics() -> dict[str, dict[str, set[str]]]:
    """The README's metric table: metric -> label -> the values it lists (empty: not listed)."""
    text = (REPO / "README.md").read_text()
    table = text.split("| metric | labels | |", 1)[1].split("\n\n", 1)[0]
    documented: dict[str, dict[str, set[str]]] = {}
    for row in table.strip().splitlines()[1:]:
        names_cell, labels_cell = row.split("|")[1:3]
        labels: dict[str, set[str]] = {}
        for match in re.finditer(r"(\w+)(?: \(([^)]*)\))?", labels_cell.replace("—", "")):
            labels[match.group(1)] = {v.strip() for v in (match.group(2) or "").split(",")
                                      if v.strip() and v.strip() != "…"}
        for name in re.findall(r"`(llmapp_\w+)`", names_cell):
            documented[name] = labels
    return documented


def label_names(name: str) -> set[str]:
    collector: Any = metrics.REGISTRY._names_to_collectors[name]   # no public lookup by name
    if hasattr(collector, "_labelnames"):
        return set(collector._labelnames)
    if collector is metrics.PHASES:
        collector = metrics.PhaseTracker()
        collector.set("u", "Ready")
    return {label for family in collector.collect() for s in family.samples for label in s.labels}


def test_every_documented_metric_exists_with_the_documented_labels() -> None:
    documented = documented_metrics()
    assert {"llmapp_reconcile_duration_seconds", "llmapp_reconcile_errors_total", "llmapp_build_info",
            "llmapp_objects", "llmapp_terraform_runs_queued"} <= set(documented)
    for name, labels in documented.items():
        assert label_names(name) == set(labels), name
    # Where the table lists the values of the pass labels, it lists exactly the vocabulary.
    reconcile = documented["llmapp_reconcile_duration_seconds"]
    assert reconcile["outcome"] == OUTCOMES and reconcile["trigger"] == TRIGGERS
    # And every metric of the registry is documented.
    served = {name for name in metrics.REGISTRY._names_to_collectors
              if not name.endswith(("_created", "_bucket", "_count", "_sum"))}
    assert {name.removesuffix("_total") for name in served} == {
        name.removesuffix("_total") for name in documented}

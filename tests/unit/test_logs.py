"""Logs: JSON lines with the object's identity from Kopf's k8s_ref, secrets redacted, Kopf's
per-event success lines dropped, and the worker's one line per pass when something changed (a wait
at INFO, a real failure at WARNING, an idle pass at DEBUG)."""

from __future__ import annotations

import io
import json
import logging
import pathlib
from collections.abc import Callable
from typing import Any

import kopf
import pytest

from llmapp_operator.api.conditions import Outcome, Report
from llmapp_operator.api.errors import PermanentError, TransientError, Waiting
from llmapp_operator.engine.worker import Scheduler
from llmapp_operator.obs.logs import JsonFormatter, log_handler, setup_logging
from llmapp_operator.obs.redaction import REDACTOR
from tests.unit.test_worker import SETTINGS, Outcome_, Publisher, Recorder, body, deleting, ok, settle


def test_json_line_carries_object_identity_and_step() -> None:
    record = logging.LogRecord("kopf.objects", logging.ERROR, __file__, 1, "Handler %s failed", ("x",), None)
    record.k8s_ref = {"namespace": "team-a", "name": "rags", "uid": "u-1", "apiVersion": "llmops.dev/v1alpha1"}
    record.generation, record.step = 3, "apply"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "Handler x failed" and line["level"] == "ERROR" and line["logger"] == "kopf.objects"
    assert (line["namespace"], line["name"], line["uid"], line["generation"], line["step"]) == (
        "team-a", "rags", "u-1", 3, "apply")
    assert line["time"].endswith("+00:00")


def test_setup_logging_json_redacts_registered_secrets() -> None:
    secret = "json-log-secret-9c2e77"
    REDACTOR.register([secret])
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        setup_logging("INFO", "json")
        stream = io.StringIO()
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        logging.getLogger("llmapp_operator").info("token is %s", secret, extra={"k8s_ref": {"name": "rags"}})
        line = json.loads(stream.getvalue().strip())
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    assert secret not in json.dumps(line)
    assert line["message"] == "token is ***" and line["name"] == "rags"


# -- Kopf's noise ------------------------------------------------------------------------------

KOPF_SOURCE = pathlib.Path(kopf.__file__).parent / "_core"


def test_the_filtered_texts_are_the_ones_kopf_writes() -> None:
    """The filter matches Kopf's literal lines: if an upgrade rewords them, this fails first."""
    execution = (KOPF_SOURCE / "actions" / "execution.py").read_text()
    handlers = (KOPF_SOURCE / "intents" / "handlers.py").read_text()
    assert 'logger.info(f"{handler} succeeded.")' in execution
    assert 'return f"Handler {self.id!r}"' in execution
    assert 'return f"Timer {self.id!r}"' in handlers
    assert 'logger.error(f"{handler} failed temporarily: {str(e) or repr(e)}")' in execution


def kopf_record(message: str, level: int = logging.INFO, name: str = "kopf.objects") -> logging.LogRecord:
    record = logging.LogRecord(name, level, __file__, 1, message, None, None)
    record.k8s_ref = {"namespace": "team-a", "name": "rags"}
    return record


def test_kopf_noise_is_dropped_and_everything_else_kept() -> None:
    stream = io.StringIO()
    handler = log_handler("text", stream)
    for message in ("Handler 'observe' succeeded.", "Timer 'drift' succeeded.", "Handler 'delete' succeeded."):
        handler.handle(kopf_record(message))
    kept = [kopf_record("Handler 'delete' failed temporarily: StateLocked", logging.ERROR),
            kopf_record("Deletion is processed: 1 succeeded; 0 failed."),
            kopf_record("Activity 'startup' succeeded.", name="kopf.activities.startup"),
            kopf_record("Handler 'observe' succeeded.", logging.WARNING),   # never above INFO
            kopf_record("Handler 'observe' succeeded.", name="llmapp_operator")]   # not Kopf's
    for record in kept:
        handler.handle(record)
    lines = stream.getvalue().splitlines()
    assert len(lines) == len(kept)
    assert "Handler 'delete' failed temporarily: StateLocked" in lines[0] and "ERROR" in lines[0]
    assert not any("Timer" in line for line in lines)


def test_setup_logging_installs_the_noise_filter() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        setup_logging("INFO", "text")
        stream = io.StringIO()
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        logging.getLogger("kopf.objects").info("Handler 'observe' succeeded.")
        logging.getLogger("kopf.objects").error("Handler 'delete' failed permanently: boom")
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    assert "succeeded" not in stream.getvalue() and "failed permanently: boom" in stream.getvalue()


# -- the worker's per-pass line ----------------------------------------------------------------

def waiting(reason: str) -> Callable[[int], Outcome_]:
    def result(generation: int) -> Outcome_:
        return Outcome_(Report(Outcome.RETRYING, reason, f"{reason} detail", generation, step="rollout"),
                        error=Waiting(f"{reason} detail", reason=reason, delay=0.02))
    return result


def unchanged(generation: int) -> Outcome_:
    return Outcome_(Report(Outcome.UNCHANGED, "UpToDate", "infrastructure matches the spec", generation))


def transient(generation: int) -> Outcome_:
    return Outcome_(Report(Outcome.RETRYING, "StateLocked", "the state is locked", generation, step="plan"),
                    error=TransientError("the state is locked", reason="StateLocked"))


def stalled(generation: int) -> Outcome_:
    return Outcome_(Report(Outcome.STALLED, "AccessDenied", "denied", generation, step="apply"),
                    error=PermanentError("denied", reason="AccessDenied"))


async def run_passes(results: list[Callable[[int], Outcome_]], count: int, caplog: pytest.LogCaptureFixture,
                     then: dict[str, Any] | None = None, **settings: Any) -> list[logging.LogRecord]:
    """`count` passes from the first look at the object (and one more for `then`, a later body)."""
    caplog.set_level(logging.DEBUG, logger="llmapp_operator.worker")
    recorder = Recorder(results)
    scheduler = Scheduler(SETTINGS.updated(retry_base_seconds=0.02, retry_max_seconds=0.05, **settings),
                          recorder.run, recorder.teardown, Publisher())
    scheduler.observe(body(1))
    await settle(recorder, count, timeout=5)
    if then is not None:
        scheduler.observe(then)
        count += 1
        await settle(recorder, count, timeout=5)
    await scheduler.stop(1)
    return [r for r in caplog.records if r.name == "llmapp_operator.worker"][:count]


async def test_waiting_is_info_and_an_unchanged_pass_only_debug(caplog: pytest.LogCaptureFixture) -> None:
    records = await run_passes([waiting("WaitingForImage"), waiting("WaitingForImage"), waiting("RollingOut"), ok]
                               + [unchanged] * 50, 6, caplog, resync_seconds=0.02)
    levels = [(r.levelname, r.reason, r.trigger) for r in records]  # type: ignore[attr-defined]
    assert levels == [
        ("INFO", "WaitingForImage", "observed"),
        ("DEBUG", "WaitingForImage", "waiting"),      # the same wait, looked at again
        ("INFO", "RollingOut", "waiting"),
        ("INFO", "Applied", "waiting"),
        ("DEBUG", "UpToDate", "resync"),              # an idle resync says nothing at INFO
        ("DEBUG", "UpToDate", "resync"),
    ]
    first = records[0]
    assert first.getMessage().startswith("ns/a generation 1: Applying (WaitingForImage): WaitingForImage detail")
    assert "[outcome retrying, trigger observed, " in first.getMessage()
    assert first.k8s_ref == {"namespace": "ns", "name": "a", "uid": "u1"}  # type: ignore[attr-defined]
    assert (first.generation, first.phase, first.outcome, first.step) == (  # type: ignore[attr-defined]
        1, "Applying", "retrying", "rollout")
    assert isinstance(first.duration_seconds, float)  # type: ignore[attr-defined]


async def test_a_real_failure_is_a_warning_once_per_reason(caplog: pytest.LogCaptureFixture) -> None:
    records = await run_passes([transient, transient, stalled, ok, ok], 4, caplog, then=body(2),
                               stalled_recheck_seconds=0.02)
    assert [(r.levelname, r.reason) for r in records] == [  # type: ignore[attr-defined]
        ("WARNING", "StateLocked"), ("DEBUG", "StateLocked"), ("WARNING", "AccessDenied"),
        ("INFO", "Applied"), ("INFO", "Applied")]     # generation 2 applied: always told, Terraform changed something
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)


async def test_a_teardown_is_one_line_and_json_carries_the_pass_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="llmapp_operator.worker")
    recorder = Recorder()
    scheduler = Scheduler(SETTINGS, recorder.run, recorder.teardown, Publisher())
    await scheduler.teardown(deleting(1))
    (record,) = [r for r in caplog.records if r.name == "llmapp_operator.worker"]
    assert record.levelname == "INFO" and record.getMessage().startswith("ns/a generation 1: Deleting (Destroyed)")
    line = json.loads(JsonFormatter().format(record))
    assert {key: line[key] for key in ("namespace", "name", "uid", "phase", "reason", "outcome", "trigger")} == {
        "namespace": "ns", "name": "a", "uid": "u1", "phase": "Deleting", "reason": "Destroyed",
        "outcome": "deleted", "trigger": "delete"}
    assert line["duration_seconds"] >= 0

"""The per-object worker (engine/worker.py): one pass at a time, requests folded, backoff that
counts real failures, a spec change that ends a backoff, a teardown that waits for the running pass."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from llmapp_operator.api.conditions import Outcome, Report
from llmapp_operator.api.errors import PermanentError, TransientError, Waiting
from llmapp_operator.config import Settings
from llmapp_operator.engine.worker import REQUEST_ANNOTATION, Reason, Scheduler, jitter

SETTINGS = Settings().updated(retry_base_seconds=0.05, retry_max_seconds=0.2, progress_delay_seconds=0.0,
                   resync_seconds=0, stalled_recheck_seconds=30)


@dataclass
class Outcome_:
    report: Report
    error: Any = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def transient(self) -> bool:
        return isinstance(self.error, TransientError)


def ok(generation: int) -> Outcome_:
    return Outcome_(Report(Outcome.APPLIED, "Applied", "applied", generation))


class Recorder:
    """Fake passes: each records its reasons and holds until released, if asked to."""

    def __init__(self, results: list[Callable[[int], Outcome_]] | None = None) -> None:
        self.calls: list[tuple[frozenset[Reason], int]] = []
        self.running = 0
        self.most = 0
        self.gate: asyncio.Event | None = None
        self.results = list(results or [])
        self.teardowns: list[int] = []
        self.teardown_result: Outcome_ | None = None

    async def run(self, body: Mapping[str, Any], reasons: frozenset[Reason],
                  progress: Callable[[Report], Awaitable[None]]) -> Outcome_:
        self.running += 1
        self.most = max(self.most, self.running)
        generation = int(body["metadata"]["generation"])
        self.calls.append((reasons, generation))
        try:
            if self.gate is not None:
                await self.gate.wait()
            return (self.results.pop(0) if self.results else ok)(generation)
        finally:
            self.running -= 1

    async def teardown(self, body: Mapping[str, Any]) -> Outcome_:
        self.running += 1
        self.most = max(self.most, self.running)
        self.teardowns.append(int(body["metadata"]["generation"]))
        self.running -= 1
        return self.teardown_result or Outcome_(Report(Outcome.DELETING, "Destroyed", "gone", 1))


class Publisher:
    def __init__(self) -> None:
        self.finals: list[Outcome_] = []

    async def status(self, body: Mapping[str, Any], result: Any, *, final: bool) -> Mapping[str, Any] | None:
        if final:
            self.finals.append(result)
        return None

    async def forget(self, body: Mapping[str, Any]) -> None:
        return None


def body(generation: int = 1, **annotations: str) -> dict[str, Any]:
    return {"metadata": {"uid": "u1", "namespace": "ns", "name": "a", "generation": generation,
                         "annotations": dict(annotations)}, "spec": {"driftDetection": {"interval": "0"}}}


def deleting(generation: int = 1) -> dict[str, Any]:
    obj = body(generation)
    obj["metadata"]["deletionTimestamp"] = "2026-12-01T10:00:00Z"
    return obj


async def with_a_pass_running() -> tuple[Recorder, Scheduler]:
    """A scheduler whose first pass for the object has started and waits on `recorder.gate`."""
    recorder = Recorder()
    scheduler = Scheduler(SETTINGS, recorder.run, recorder.teardown, Publisher())
    recorder.gate = asyncio.Event()
    scheduler.observe(body(1))
    await asyncio.sleep(0.05)
    return recorder, scheduler


async def settle(recorder: Recorder, calls: int, timeout: float = 2.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if len(recorder.calls) >= calls and recorder.running == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(recorder.calls)} passes, expected {calls}")


async def test_requests_during_a_pass_fold_into_one_next_pass_never_a_second_concurrent_one() -> None:
    recorder, scheduler = await with_a_pass_running()
    for generation in (2, 3, 4):                  # three spec changes while the first pass runs
        scheduler.observe(body(generation))
    scheduler.observe(body(4, **{REQUEST_ANNOTATION: "now"}))
    recorder.gate.set()
    await settle(recorder, 2)
    await asyncio.sleep(0.1)
    assert recorder.most == 1 and scheduler.concurrent_max == 1
    assert [generation for _, generation in recorder.calls] == [1, 4]    # folded, the latest body
    assert recorder.calls[1][0] == {Reason.SPEC, Reason.REQUESTED}
    await scheduler.stop(1)


async def test_backoff_counts_real_failures_and_a_spec_fix_acts_at_once() -> None:
    def failing(generation: int) -> Outcome_:
        return Outcome_(Report(Outcome.RETRYING, "TerraformFailed", "no", generation),
                        error=TransientError("no", reason="TerraformFailed"))

    def waiting(generation: int) -> Outcome_:
        return Outcome_(Report(Outcome.RETRYING, "WaitingForImage", "wait", generation),
                        error=Waiting("wait", reason="WaitingForImage", delay=0.05))

    recorder, publisher = Recorder([waiting, waiting, failing, failing]), Publisher()
    slow = SETTINGS.updated(retry_base_seconds=0.05, retry_max_seconds=60)
    scheduler = Scheduler(slow, recorder.run, recorder.teardown, publisher)
    scheduler.observe(body(1))
    await settle(recorder, 4, timeout=3)
    state = scheduler.objects["u1"]
    assert state.failures == 2            # the two waits did not count
    assert Reason.RETRY in state.due      # the next retry waits 0.1 s (2nd failure), not 0.4 s
    scheduler.observe(body(2))            # the fix arrives during the backoff
    await settle(recorder, 5)
    assert recorder.calls[-1] == (frozenset({Reason.SPEC}), 2)
    assert scheduler.objects["u1"].failures == 0
    await scheduler.stop(1)


async def test_a_failed_drift_check_is_retried_as_a_drift_check() -> None:
    """With unchanged inputs a plain pass skips Terraform: the retry of a drift check that could
    not plan must plan again, or the check would be reported done without having run."""
    def locked(generation: int) -> Outcome_:
        return Outcome_(Report(Outcome.RETRYING, "StateLocked", "locked", generation),
                        error=TransientError("locked", reason="StateLocked"))

    recorder, publisher = Recorder([ok, locked]), Publisher()
    drifting = SETTINGS.updated(retry_base_seconds=0.05)
    scheduler = Scheduler(drifting, recorder.run, recorder.teardown, publisher)
    scheduler.observe({**body(1), "spec": {"driftDetection": {"interval": "1s"}}})
    await settle(recorder, 3, timeout=4)
    assert [reasons for reasons, _ in recorder.calls] == [
        {Reason.OBSERVED}, {Reason.DRIFT}, {Reason.RETRY, Reason.DRIFT}]
    await scheduler.stop(1)


async def test_a_stalled_object_is_rechecked_slowly_and_at_once_on_the_annotation() -> None:
    def stalled(generation: int) -> Outcome_:
        return Outcome_(Report(Outcome.STALLED, "AccessDenied", "denied", generation),
                        error=PermanentError("denied", reason="AccessDenied"))

    recorder, publisher = Recorder([stalled]), Publisher()
    scheduler = Scheduler(SETTINGS, recorder.run, recorder.teardown, publisher)
    scheduler.observe(body(1))
    await settle(recorder, 1)
    state = scheduler.objects["u1"]
    loop = asyncio.get_running_loop()
    assert 30 <= state.due[Reason.RECHECK] - loop.time() <= 33.5   # slow, jittered
    scheduler.observe(body(1))                                      # an unrelated event: nothing
    await asyncio.sleep(0.05)
    assert len(recorder.calls) == 1
    scheduler.observe(body(1, **{REQUEST_ANNOTATION: "2026-12-01T10:00:00Z"}))   # the IAM fix is in: look again
    await settle(recorder, 2)
    assert recorder.calls[-1][0] == {Reason.REQUESTED} and Reason.RECHECK not in state.due
    await scheduler.stop(1)


async def test_the_teardown_waits_for_the_running_pass_and_the_object_goes_only_when_it_succeeds() -> None:
    recorder, scheduler = await with_a_pass_running()
    gone = deleting(2)
    scheduler.observe(gone)
    teardown = asyncio.create_task(scheduler.teardown(gone))
    await asyncio.sleep(0.05)
    assert recorder.teardowns == [] and not teardown.done()    # the apply is still running
    recorder.gate.set()
    result = await asyncio.wait_for(teardown, 2)
    assert result.report.reason == "Destroyed" and recorder.most == 1
    assert [generation for _, generation in recorder.calls] == [1]   # no pass after the deletion began
    assert "u1" not in scheduler.objects


async def test_a_failed_teardown_keeps_the_object_and_a_retry_runs_it_again() -> None:
    recorder, publisher = Recorder(), Publisher()
    recorder.teardown_result = Outcome_(Report(Outcome.DELETING, "TerraformFailed", "no", 1),
                                        error=TransientError("no", reason="TerraformFailed"))
    scheduler = Scheduler(SETTINGS, recorder.run, recorder.teardown, publisher)
    gone = deleting(1)
    first = await scheduler.teardown(gone)
    assert first.error is not None and "u1" in scheduler.objects
    recorder.teardown_result = None
    second = await scheduler.teardown(gone)
    assert second.error is None and recorder.teardowns == [1, 1]


async def test_stop_cancels_a_pass_that_outlives_the_grace() -> None:
    recorder, scheduler = await with_a_pass_running()   # the gate is never set: a step that does not finish
    await asyncio.wait_for(scheduler.stop(0.1), 2)
    assert recorder.running == 0
    task = scheduler.objects["u1"].task
    assert task is not None and task.done()


def test_jitter_spreads_objects_and_is_fixed_per_object() -> None:
    values = {uid: jitter(uid, "drift") for uid in (f"uid-{n}" for n in range(200))}
    assert all(0 <= value < 0.1 for value in values.values())
    assert len({round(value, 3) for value in values.values()}) > 60   # of at most 100 (3 decimals)
    assert jitter("uid-1", "drift") == jitter("uid-1", "drift") != jitter("uid-1", "resync")


# -- an unexpected exception: said in status, a Warning Event and the log, redacted; retried -------------
UNEXPECTED_SECRET = "pw-" + "internal-error-fixture-0042"


def raising(generation: int) -> Outcome_:
    raise KeyError(f"answer without 'Items' for request {{'SecretString': '{UNEXPECTED_SECRET}'}}")


async def test_an_unexpected_exception_becomes_an_internal_error_redacted_and_retried(
        caplog: pytest.LogCaptureFixture) -> None:
    from llmapp_operator.obs.redaction import REDACTOR

    REDACTOR.register([UNEXPECTED_SECRET])   # as the operator does with every value it reads from a Secret
    recorder, publisher = Recorder([raising]), Publisher()
    slow = SETTINGS.updated(retry_base_seconds=30, retry_max_seconds=60)
    scheduler = Scheduler(slow, recorder.run, recorder.teardown, publisher)
    with caplog.at_level(logging.ERROR, logger="llmapp_operator.worker"):
        scheduler.observe(body(1))
        await settle(recorder, 1)
        await asyncio.sleep(0.05)
    (result,) = publisher.finals
    assert result.report.reason == "InternalError" and result.report.outcome is Outcome.RETRYING
    assert result.error is not None and result.transient   # the publisher posts a Warning for an error
    assert result.report.message.startswith("unexpected KeyError: ") and "\n" not in result.report.message
    assert result.fields["lastError"] == result.report.message
    assert UNEXPECTED_SECRET not in result.report.message
    state = scheduler.objects["u1"]
    assert state.failures == 1 and Reason.RETRY in state.due and state.handled_generation == 1
    assert "pass of ns/a failed unexpectedly" in caplog.text and "Traceback" in caplog.text
    assert "answer without 'Items'" in caplog.text and UNEXPECTED_SECRET not in caplog.text
    scheduler.observe(body(2))   # a fix acts at once, as after any failure
    await settle(recorder, 2)
    assert recorder.calls[-1] == (frozenset({Reason.SPEC}), 2) and publisher.finals[-1].report.reason == "Applied"
    await scheduler.stop(1)


async def test_an_unexpected_teardown_exception_is_published_and_still_raised() -> None:
    recorder, publisher = Recorder(), Publisher()

    async def teardown(body: Mapping[str, Any]) -> Outcome_:
        raise RuntimeError("boom")

    scheduler = Scheduler(SETTINGS, recorder.run, teardown, publisher)
    with pytest.raises(RuntimeError):
        await scheduler.teardown(deleting(1))
    (result,) = publisher.finals
    assert result.report.outcome is Outcome.DELETING and result.report.reason == "InternalError"
    assert result.report.message.startswith("unexpected RuntimeError: boom") and "u1" in scheduler.objects


def test_the_first_check_after_a_start_spreads_over_the_whole_interval_later_ones_an_interval_apart() -> None:
    from llmapp_operator.engine.worker import ObjectState, _period

    firsts = []
    for n in range(500):
        state = ObjectState(uid=f"uid-{n}", body={})
        firsts.append(_period(state, Reason.RESYNC, 600))
        assert 600 <= _period(state, Reason.RESYNC, 600) < 660          # then a period apart
        assert 60 <= _period(state, Reason.DRIFT, 3600) < 3600          # each kind has its own first
    assert all(60 <= first < 600 for first in firsts)
    # Spread, not bunched in the last tenth: every 54 s bucket of [60, 600) holds some of them.
    assert {int((first - 60) // 54) for first in firsts} == set(range(10))


async def test_a_restart_schedules_resyncs_across_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = SETTINGS.updated(resync_seconds=100)
    scheduler = Scheduler(settings, Recorder().run, Recorder().teardown, Publisher())
    loop = asyncio.get_running_loop()
    for n in range(50):
        obj = body(1)
        obj["metadata"]["uid"] = f"u-{n}"
        scheduler.observe(obj)
    await asyncio.sleep(0.1)
    due = sorted(state.due[Reason.RESYNC] - loop.time() for state in scheduler.objects.values())
    assert len(due) == 50 and due[0] < 40 and due[-1] > 70 and all(9 < d < 101 for d in due)
    await scheduler.stop(1)


async def test_an_idle_object_has_no_task_only_a_timer_that_starts_its_next_pass() -> None:
    recorder = Recorder()
    scheduler = Scheduler(SETTINGS.updated(resync_seconds=0.3), recorder.run, recorder.teardown, Publisher())
    scheduler.observe(body(1))
    await settle(recorder, 1)
    await asyncio.sleep(0.01)
    state = scheduler.objects["u1"]
    assert state.task is None and state.timer is not None          # idle: no coroutine, no frames
    await settle(recorder, 2)
    assert recorder.calls[1][0] == {Reason.RESYNC}                 # the timer ran the resync
    scheduler.observe(body(2))                                     # a request starts it at once
    await settle(recorder, 3)
    assert recorder.calls[2][0] == {Reason.SPEC}
    await scheduler.stop(1)
    assert state.timer is None                                     # stopped: nothing fires later


async def test_a_status_write_that_failed_is_retried_soon_not_at_the_next_resync() -> None:
    class FlakyPublisher(Publisher):
        def __init__(self) -> None:
            super().__init__()
            self.failures = 1

        async def status(self, body: Mapping[str, Any], result: Any, *, final: bool) -> Mapping[str, Any] | None:
            if final and self.failures:
                self.failures -= 1
                raise TransientError("the API server timed out", reason="StatusNotWritten")
            return await super().status(body, result, final=final)

    recorder, publisher = Recorder(), FlakyPublisher()
    scheduler = Scheduler(SETTINGS.updated(resync_seconds=600), recorder.run, recorder.teardown, publisher)
    scheduler.observe(body(1))
    await settle(recorder, 2, timeout=2.0)    # retried after the backoff (0.05 s here), not in 60-600 s
    assert recorder.calls[1][0] == {Reason.RETRY} and len(publisher.finals) == 1
    await scheduler.stop(1)

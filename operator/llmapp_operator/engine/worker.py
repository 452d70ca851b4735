"""One serialised worker per object: every kind of pass goes through it, one at a time.

Kopf runs change handlers, timers and daemons in tasks of their own, side by side: a drift timer
could plan while a spec change applies, and two passes could write status in any order. Here
nothing runs Terraform but the object's worker. Kopf's handlers only *request* a pass with a
reason (`Scheduler.observe` for every watch event, `Scheduler.teardown` for the deletion), and the
worker drains its requests one pass at a time, like a Flux controller's work queue:

- a new generation or a changed `llmops.dev/reconcile-requested-at` annotation asks at once, and
  ends any backoff;
- a pass schedules what comes after it: a retry with exponential backoff after a real failure
  (waiting for the app or a held plan does not count), a slow re-check after a Stalled one, the
  secret resync and the drift check of a Ready object at their (jittered) intervals;
- the deletion waits for the running pass, then tears down; the finalizer goes only when it
  succeeded;
- the worker is the only writer of the object's status (progress included), and never lowers
  `observedGeneration`.

No kopf here: the handlers in kopf_app/ feed it, and a `Publisher` port writes status and Events.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from llmapp_operator.api import conditions
from llmapp_operator.api.conditions import Outcome, Report
from llmapp_operator.api.errors import INTERNAL_ERROR, TransientError, Waiting
from llmapp_operator.config import Settings
from llmapp_operator.obs import metrics
from llmapp_operator.obs.redaction import REDACTOR, RedactingFilter, Redactor, shorten
from llmapp_operator.runners.gate import PREEMPT, Preempted

log = logging.getLogger("llmapp_operator.worker")
# The worker logs unexpected exceptions with their tracebacks: redacted here whatever the handler.
log.addFilter(RedactingFilter())
REQUEST_ANNOTATION = "llmops.dev/reconcile-requested-at"


class Reason(StrEnum):
    """Why a pass runs (several may be folded into one pass)."""

    OBSERVED = "Observed"        # first seen since the operator started (created or resumed)
    SPEC = "SpecChanged"         # a new generation
    REQUESTED = "Requested"      # the reconcile-requested-at annotation changed
    RETRY = "Retry"              # backoff after a transient failure
    RECHECK = "Recheck"          # a Stalled object, looked at again
    WAITING = "Waiting"          # the app is not healthy yet / a Job is running
    RESYNC = "Resync"            # re-read Secrets (rotation)
    DRIFT = "Drift"              # plan without apply
    DELETE = "Delete"


PassResult = Any   # engine.reconcile.Result (kept loose here: the worker only reads report and error)


class Publisher(Protocol):
    """Where a pass's outcome goes: the status subresource and Events (kopf_app implements it)."""

    async def status(self, body: Mapping[str, Any], result: PassResult, *, final: bool) -> Mapping[str, Any] | None:
        """Write the status for `result`; return the object as the API server now has it."""

    async def forget(self, body: Mapping[str, Any]) -> None:
        """The object is gone: drop what is kept about it (metrics)."""


PassFn = Callable[[Mapping[str, Any], frozenset[Reason], Callable[[Report], Awaitable[None]]],
                  Awaitable[PassResult]]
"""(latest body, why, progress hook) -> the pass's Result."""
TeardownFn = Callable[[Mapping[str, Any]], Awaitable[PassResult]]


def spread(uid: str, salt: str) -> float:
    """A fraction in [0, 1] fixed per object: where in a period its first check falls."""
    return int(hashlib.sha256(f"{uid}/{salt}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def jitter(uid: str, salt: str) -> float:
    """A tenth of `spread`: objects created together spread out by up to 10 %."""
    return spread(uid, salt) * 0.1


def backoff(failures: int, settings: Settings, hint: float | None = None) -> float:
    """Exponential with jitter from the first real failure; a server-given delay wins when larger."""
    delay = min(settings.retry_base_seconds * (2 ** min(max(failures - 1, 0), 16)), settings.retry_max_seconds)
    delay *= random.uniform(0.8, 1.2)
    return float(max(delay, hint or 0.0))


@dataclass
class ObjectState:
    uid: str
    body: Mapping[str, Any]
    timer: asyncio.TimerHandle | None = None   # an idle object's next due reason (no task while idle)
    reasons: set[Reason] = field(default_factory=set)
    due: dict[Reason, float] = field(default_factory=dict)      # reason -> monotonic time
    handled_generation: int | None = None
    handled_request: str | None = None
    failures: int = 0
    redo: frozenset[Reason] = frozenset()   # what a retry must do again (a failed drift check plans again)
    deletes: list[asyncio.Future[PassResult]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    running: Reason | None = None
    gone: bool = False
    logged: tuple[str, str] | None = None   # (phase, reason) of the last pass: its log line says what changed
    periodic: set[Reason] = field(default_factory=set)   # resync/drift periods already running here
    preempt: asyncio.Event | None = None   # while a pass runs: set, a drift check waiting for a slot gives way

    @property
    def generation(self) -> int:
        return int((self.body.get("metadata") or {}).get("generation") or 0)

    @property
    def request_stamp(self) -> str | None:
        annotations = (self.body.get("metadata") or {}).get("annotations") or {}
        value = annotations.get(REQUEST_ANNOTATION)
        return str(value) if value is not None else None


class Scheduler:
    """The per-object workers of one operator process."""

    def __init__(self, settings: Settings, run_pass: PassFn, run_teardown: TeardownFn, publisher: Publisher,
                 *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._pass, self._teardown, self._publisher = run_pass, run_teardown, publisher
        self._clock = clock
        self.objects: dict[str, ObjectState] = {}
        self._stopping = False
        self.passes = 0                         # for tests and benchmarks
        self.concurrent_max = 0                 # the most passes of one object at once (must stay 1)
        # Every worker starts from one context, taken once (in the first watch event's handler):
        # Kopf keeps each event's cause, body, patch and logger in context variables, and a task
        # keeps its context as long as it lives. One shared copy holds one event's, not every
        # object's; it still has what Kopf's event poster needs (kopf.event()).
        self._context: contextvars.Context | None = None

    # -- what Kopf's handlers call -------------------------------------------------------------
    def observe(self, body: Mapping[str, Any], *, deleted: bool = False) -> None:
        """Every watch event of every object: keep the latest body, and ask for a pass when the
        object is new here, its generation moved, or the request annotation changed."""
        uid = str((body.get("metadata") or {}).get("uid") or "")
        if not uid:
            return
        body = kept(body)
        state = self.objects.get(uid)
        if deleted:
            if state is not None:
                state.gone = True
                self._ensure_worker(state)   # a running pass finishes first; then it is forgotten
            return
        if state is None:
            state = self.objects[uid] = ObjectState(uid=uid, body=body)
            self._request(state, Reason.OBSERVED)
        else:
            state.body = body
        if (body.get("metadata") or {}).get("deletionTimestamp"):
            return   # the deletion handler asks for the teardown
        if state.handled_generation is not None and state.generation != state.handled_generation:
            self._request(state, Reason.SPEC)
        if state.request_stamp != state.handled_request and state.handled_generation is not None:
            self._request(state, Reason.REQUESTED)
        self._ensure_worker(state)

    async def teardown(self, body: Mapping[str, Any]) -> PassResult:
        """Ask for the teardown and wait for it (after any pass that is running)."""
        uid = str(body["metadata"]["uid"])
        body = kept(body)
        state = self.objects.get(uid)
        if state is None:
            state = self.objects[uid] = ObjectState(uid=uid, body=body)
        else:
            state.body = body
        future: asyncio.Future[PassResult] = asyncio.get_running_loop().create_future()
        state.deletes.append(future)
        self._request(state, Reason.DELETE)
        self._ensure_worker(state)
        return await asyncio.shield(future)

    async def stop(self, grace: float) -> None:
        """Let running passes finish within `grace` seconds, then cancel them (the runners stop
        Terraform cleanly: SIGTERM to its process group, SIGKILL after the kill grace)."""
        self._stopping = True
        tasks = [s.task for s in self.objects.values() if s.task is not None and not s.task.done()]
        for state in self.objects.values():
            if state.timer is not None:
                state.timer.cancel()
                state.timer = None
        if not tasks:
            return
        try:
            _, pending = await asyncio.wait(tasks, timeout=grace)
        finally:   # also when this wait is cancelled: no worker may outlive the operator
            for task in tasks:
                if not task.done():
                    task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task

    # -- the worker ----------------------------------------------------------------------------
    def _request(self, state: ObjectState, reason: Reason) -> None:
        state.reasons.add(reason)
        if reason in (Reason.SPEC, Reason.REQUESTED, Reason.DELETE, Reason.OBSERVED):
            state.due.pop(Reason.RETRY, None)     # acts at once: a fix during a long backoff
            state.due.pop(Reason.RECHECK, None)
            if state.running is Reason.DRIFT and state.preempt is not None:
                state.preempt.set()               # a drift check still queued for a slot gives way
        self._ensure_worker(state)

    def poke(self, uid: str) -> None:
        """Look at the object's due reasons now (benchmarks and tests move a due time forward)."""
        state = self.objects.get(uid)
        if state is not None:
            self._ensure_worker(state)

    def _ensure_worker(self, state: ObjectState) -> None:
        """Start the object's worker unless it runs. A running one picks up new reasons after
        its pass; an idle object has no task at all, only a timer for its next due reason."""
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        if self._stopping:
            return
        if state.task is None or state.task.done():
            if self._context is None:
                self._context = contextvars.copy_context()
            state.task = asyncio.create_task(self._work(state), name=f"llmapp-worker-{state.uid}",
                                             context=self._context.copy())

    async def _work(self, state: ObjectState) -> None:
        while not self._stopping and not state.gone:
            self._collect_due(state)
            if not state.reasons:
                break
            reasons = frozenset(state.reasons)
            state.reasons.clear()
            if Reason.DELETE in reasons or (state.body.get("metadata") or {}).get("deletionTimestamp"):
                if not state.deletes:
                    break   # deleting, but the deletion handler has not asked (yet): passes stop here
                if await self._delete_pass(state):
                    return
                continue
            await self._converge_pass(state, reasons)
        if state.gone:   # deleted, or moved to another shard: what is kept about it goes too
            self.objects.pop(state.uid, None)
            await self._publisher.forget(state.body)
            return
        self._park(state)
        state.task = None   # a finished task keeps its context and frames: let them go

    def _park(self, state: ObjectState) -> None:
        """Nothing to do now: the task ends, and one timer starts the worker when the next reason
        comes due. Thousands of Ready objects then cost a timer each, not a sleeping task with
        its frames, futures and context (memory per object at 10,000 objects)."""
        if self._stopping or not state.due or self.objects.get(state.uid) is not state:
            return
        delay = max(min(state.due.values()) - self._clock(), 0.0)
        state.timer = asyncio.get_running_loop().call_later(delay, self._ensure_worker, state)

    def _collect_due(self, state: ObjectState) -> None:
        now = self._clock()
        for reason, at in list(state.due.items()):
            if at <= now:
                del state.due[reason]
                state.reasons.add(reason)
                if reason is Reason.RETRY:
                    state.reasons.update(state.redo)

    async def _converge_pass(self, state: ObjectState, reasons: frozenset[Reason]) -> None:
        body = state.body
        generation, stamp = state.generation, state.request_stamp
        self._begin(state, Reason.DRIFT if Reason.DRIFT in reasons else next(iter(reasons)))
        progress = DelayedProgress(lambda report: self._publish(state, _ProgressResult(report), final=False),
                                   self.settings.progress_delay_seconds)
        started = time.monotonic()
        raised = False
        # Made per pass (an idle object keeps none); the gate finds it in this task's context.
        state.preempt = asyncio.Event()
        token = PREEMPT.set(state.preempt)
        try:
            result = await self._pass(body, reasons, progress)
        except Preempted:   # the drift check had not started: fold it into the change that came
            state.reasons.update(reasons)
            return
        except Exception as exc:   # a bug, not a failure mode: keep the worker, say it, retry with backoff
            log.exception("pass of %s failed unexpectedly", _ref(body))
            self._observe(state, "reconcile", reasons, None, started)
            result, raised = internal_error(exc, generation), True
        finally:
            await progress.close()
            state.running, state.preempt = None, None
            PREEMPT.reset(token)
        state.handled_generation, state.handled_request = generation, stamp
        if not raised:
            self._observe(state, "reconcile", reasons, result, started)
        # Scheduled before the status write: a write that fails sets a retry, which must stand (the
        # schedule clears retries; done after, it left the object unwritten until its resync).
        self._schedule(state, result, reasons)
        await self._publish(state, result, final=True)
        # What arrived while the pass ran (its events found no handled generation to compare with).
        if state.generation != generation:
            self._request(state, Reason.SPEC)
        if state.request_stamp != stamp:
            self._request(state, Reason.REQUESTED)

    async def _delete_pass(self, state: ObjectState) -> bool:
        """Teardown; True when done (the finalizer may go)."""
        self._begin(state, Reason.DELETE)
        generation = state.generation
        await self._publish(state, _ProgressResult(Report(Outcome.DELETING, "Deleting", "tearing down", generation)),
                            final=False)
        started = time.monotonic()
        try:
            result = await self._teardown(state.body)
        except Exception as exc:
            log.exception("teardown of %s failed unexpectedly", _ref(state.body))
            result = exc
        finally:
            state.running = None
        self._observe(state, "teardown", frozenset({Reason.DELETE}),
                      None if isinstance(result, Exception) else result, started)
        if not isinstance(result, Exception):
            await self._publish(state, result, final=True)   # Deleting and why; or the last Event
        else:   # status and a Warning say it too; the deletion handler still gets the exception
            await self._publish(state, internal_error(result, generation, deleting=True), final=True)
        waiters, state.deletes = state.deletes, []
        for future in waiters:
            if not future.done():
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        done = not isinstance(result, Exception) and getattr(result, "error", None) is None
        if done:
            await self._publisher.forget(state.body)
            self.objects.pop(state.uid, None)
        return done

    def _begin(self, state: ObjectState, reason: Reason) -> None:
        self.concurrent_max = max(self.concurrent_max, 2 if state.running is not None else 1)
        state.running = reason
        self.passes += 1

    def _observe(self, state: ObjectState, handler: str, reasons: frozenset[Reason], result: PassResult | None,
                 started: float) -> None:
        """Every pass, whatever asked for it: its duration and outcome, a failed one counted by
        reason, and one log line when the object's phase or reason moved (or Terraform applied).
        Waiting for the app is INFO, a real failure WARNING; an unchanged pass (an idle resync, a
        recheck still waiting) only DEBUG. `result` None: the pass raised (logged already)."""
        seconds = time.monotonic() - started
        trigger = trigger_of(reasons)
        report: Report | None = getattr(result, "report", None)
        error = getattr(result, "error", None)
        if report is None:
            metrics.RECONCILE_SECONDS.labels(handler=handler, trigger=trigger, outcome=metrics.ERROR).observe(seconds)
            metrics.RECONCILE_ERRORS.labels(reason=metrics.INTERNAL_ERROR_REASON).inc()
            state.logged = None   # the next pass that returns says where the object stands
            return
        outcome = metrics.outcome_label(report.outcome,
                                        finished_teardown=handler == "teardown" and error is None)
        metrics.RECONCILE_SECONDS.labels(handler=handler, trigger=trigger, outcome=outcome).observe(seconds)
        failing = failed(result)
        if failing:
            metrics.RECONCILE_ERRORS.labels(reason=report.reason).inc()
        phase = conditions.phase_for(report).value
        key = (phase, report.reason)
        if report.outcome is Outcome.UNCHANGED and state.logged is not None and state.logged[0] == phase:
            key = state.logged   # nothing ran: Ready keeps the story of the last apply (as conditions.derive)
        changed = key != state.logged or report.outcome is Outcome.APPLIED
        state.logged = key
        level = (logging.WARNING if failing else logging.INFO) if changed else logging.DEBUG
        meta = state.body.get("metadata") or {}
        log.log(level, "%s generation %s: %s (%s): %s [outcome %s, trigger %s, %.2fs]", _ref(state.body),
                report.generation, phase, report.reason, report.message, outcome, trigger, seconds,
                extra={"k8s_ref": {"namespace": meta.get("namespace"), "name": meta.get("name"), "uid": state.uid},
                       "generation": report.generation, "step": report.step, "outcome": outcome, "phase": phase,
                       "reason": report.reason, "trigger": trigger, "duration_seconds": round(seconds, 3)})

    async def _publish(self, state: ObjectState, result: PassResult, *, final: bool) -> None:
        try:
            fresh = await self._publisher.status(state.body, result, final=final)
        except Exception as exc:   # a status write that failed is retried with the next pass
            log.warning("status of %s not written: %s", _ref(state.body), type(exc).__name__)
            if final:
                state.due[Reason.RETRY] = self._clock() + backoff(max(state.failures, 1), self.settings)
            return
        if fresh is not None:
            state.body = kept(fresh)   # the next pass starts from what it wrote, not from a late watch event

    def _schedule(self, state: ObjectState, result: PassResult, reasons: frozenset[Reason] = frozenset()) -> None:
        """What comes after a pass: retry, re-check, health recheck, resync, drift."""
        report: Report = result.report
        error = result.error
        now, uid = self._clock(), state.uid
        for reason in (Reason.RETRY, Reason.RECHECK, Reason.WAITING):
            state.due.pop(reason, None)
        # A retry redoes what failed: a drift check that could not plan plans again (otherwise a
        # retry with unchanged inputs would skip Terraform and report the check done).
        state.redo = reasons & {Reason.DRIFT} if error is not None else frozenset()
        if isinstance(error, Waiting):
            state.due[Reason.WAITING] = now + (error.delay or self.settings.retry_base_seconds)
        elif error is not None and getattr(result, "transient", False):
            state.failures += 1
            state.due[Reason.RETRY] = now + backoff(state.failures, self.settings, getattr(error, "delay", None))
        elif report.outcome is Outcome.STALLED:
            state.failures = 0
            state.due[Reason.RECHECK] = now + self.settings.stalled_recheck_seconds * (1 + jitter(uid, "recheck"))
        else:
            state.failures = 0
        ready = report.outcome in (Outcome.APPLIED, Outcome.UNCHANGED)
        if not ready:
            state.due.pop(Reason.RESYNC, None)
            state.due.pop(Reason.DRIFT, None)
            return
        if Reason.RESYNC not in state.due and self.settings.resync_seconds > 0:
            state.due[Reason.RESYNC] = now + _period(state, Reason.RESYNC, self.settings.resync_seconds)
        interval = _drift_interval(state.body)
        if interval > 0 and (Reason.DRIFT not in state.due or report.drift is not None):
            state.due[Reason.DRIFT] = now + _period(state, Reason.DRIFT, interval)
        elif interval <= 0:
            state.due.pop(Reason.DRIFT, None)


class DelayedProgress:
    """Long steps show up while they run (Planning, Applying); fast ones cost no write.

    A step's write waits `delay` seconds: the next step replaces a write still waiting, and
    `close()` drops it when the pass ends first. A write already on the wire is awaited, never
    abandoned: it must not land after (and overwrite) the pass's final status.
    """

    def __init__(self, write: Callable[[Report], Coroutine[Any, Any, None]], delay: float) -> None:
        self._write, self._delay = write, delay
        self._waiting: asyncio.Task[None] | None = None
        self._writing: asyncio.Task[None] | None = None

    async def __call__(self, report: Report) -> None:
        await self.close()
        self._waiting = asyncio.create_task(self._write_later(report))

    async def close(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()
            self._waiting = None
        if self._writing is not None:
            await self._writing
            self._writing = None

    async def _write_later(self, report: Report) -> None:
        await asyncio.sleep(self._delay)
        self._writing = asyncio.create_task(self._write(report))   # shielded from close()'s cancel
        self._waiting = None


@dataclass(frozen=True)
class InternalErrorResult:
    """What a pass that raised instead of returning a result publishes: Reconciling/Ready=False
    with reason InternalError, the redacted one-line message in `lastError`, a Warning Event."""

    report: Report
    error: TransientError
    fields: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def transient(self) -> bool:
        return True


def internal_error(exc: BaseException, generation: int, *, deleting: bool = False,
                   redactor: Redactor = REDACTOR) -> InternalErrorResult:
    """An unexpected exception as a result. Retrying, not Stalled: a bug is often tripped by a
    passing state (an answer's shape, a race), and the worker's backoff keeps the loop cold; the
    type name and the redacted text on one line, the traceback only in the log."""
    text = " ".join(redactor.redact(str(exc)).split())   # redacted before the lines are joined
    message = shorten(redactor.redact(f"unexpected {type(exc).__name__}{': ' + text if text else ''}"), 400)
    message += " (an operator bug: the operator log has the traceback)"
    outcome = Outcome.DELETING if deleting else Outcome.RETRYING
    return InternalErrorResult(Report(outcome, INTERNAL_ERROR, message, generation),
                               TransientError(message, reason=INTERNAL_ERROR), {"lastError": message})


@dataclass(frozen=True)
class _ProgressResult:
    """A progress write: the report of a step that runs now, no fields of its own."""

    report: Report
    fields: Mapping[str, Any] = field(default_factory=dict)
    error: None = None


def kept(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The object as a worker keeps it between passes: without `metadata.managedFields`, which no
    pass reads and which is often the largest part of a body (memory per object, at 10,000)."""
    meta = body.get("metadata")
    if not isinstance(meta, Mapping) or "managedFields" not in meta:
        return body
    return {**body, "metadata": {key: value for key, value in meta.items() if key != "managedFields"}}


def _period(state: ObjectState, reason: Reason, interval: float) -> float:
    """Seconds until the next resync or drift check. The first one after this process saw the
    object falls anywhere in [0.1, 1) of the interval (fixed per object): after a restart, or when
    thousands of objects were created together, the checks spread over the whole interval instead
    of all coming due in its last tenth. Later ones follow an interval (+ up to 10 %) apart."""
    if reason in state.periodic:
        return interval * (1 + jitter(state.uid, reason.value))
    state.periodic.add(reason)
    return interval * (0.1 + 0.9 * spread(state.uid, reason.value))


def _drift_interval(body: Mapping[str, Any]) -> int:
    from llmapp_operator.api.spec import parse_duration

    interval = str(((body.get("spec") or {}).get("driftDetection") or {}).get("interval") or "1h")
    try:
        return 0 if interval == "0" else parse_duration(interval)
    except ValueError:
        return 0


def _ref(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def phase_of(result: PassResult) -> str:
    return conditions.phase_for(result.report).value


def failed(result: PassResult) -> bool:
    """A real failure: an error that is not waiting for the app, or a Stalled object."""
    error = getattr(result, "error", None)
    return (error is not None and not isinstance(error, Waiting)) or result.report.outcome is Outcome.STALLED


_TRIGGER_ORDER = (Reason.DELETE, Reason.SPEC, Reason.REQUESTED, Reason.OBSERVED, Reason.DRIFT, Reason.RETRY,
                  Reason.RECHECK, Reason.WAITING, Reason.RESYNC)


def trigger_of(reasons: frozenset[Reason]) -> str:
    """The metrics' and logs' `trigger`: the reason that matters most of those folded into a pass
    (a spec change over a resync), snake_cased: observed, spec_changed, requested, retry, recheck,
    waiting, resync, drift, delete."""
    return metrics.label(next((r for r in _TRIGGER_ORDER if r in reasons), Reason.OBSERVED).value)

"""Thin Kopf handlers: the only module that knows kopf.

Parse the object, call reconcile, write the status once, post an Event when the phase changes,
and tell Kopf how to retry: transient errors -> kopf.TemporaryError with backoff; permanent
errors -> a Stalled condition and a normal return (no retry until the spec changes).
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import logging
import os
import random
import time
from typing import Any

import kopf

from llmapp_operator import FINALIZER, GROUP, PLURAL, VERSION
from llmapp_operator.api import conditions
from llmapp_operator.api.conditions import Outcome, Report
from llmapp_operator.api.errors import Waiting
from llmapp_operator.api.spec import InvalidSpec, LLMApp
from llmapp_operator.config import Settings
from llmapp_operator.engine import reconcile
from llmapp_operator.engine.reconcile import Deps, Previous, Result
from llmapp_operator.kopf_app.diffbase import DigestDiffBaseStorage
from llmapp_operator.obs import metrics

ANNOTATION_PREFIX = "llmops.dev"
registry = kopf.OperatorRegistry()
log = logging.getLogger("llmapp_operator")


def configure_kopf(settings: kopf.OperatorSettings, operator: Settings) -> None:
    """Deliberate Kopf settings: our finalizer, our annotations, clean status, quiet Events."""
    settings.persistence.finalizer = FINALIZER
    # Kopf's handler progress and diff-base live in our own annotations, so nothing Kopf-internal
    # lands in `status` (the schema would prune it) or in the user's view of the object.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    # A digest, not the whole spec: the annotation must stay small whatever the spec's size.
    settings.persistence.diffbase_storage = DigestDiffBaseStorage(prefix=ANNOTATION_PREFIX)
    # We post our own short Events on phase changes; Kopf's per-log-line Events are noise.
    settings.posting.level = logging.CRITICAL
    settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.queueing.idle_timeout = 0.5
    # Our own retry delays apply; this only bounds Kopf's own API-call retries.
    settings.networking.error_backoffs = [1, 2, 5, 10]


def backoff(retry: int, operator: Settings, hint: float | None = None) -> float:
    """Exponential with jitter; a server-given delay (rate limit reset) wins when larger."""
    delay = min(operator.retry_base_seconds * (2 ** min(retry, 16)), operator.retry_max_seconds)
    delay *= random.uniform(0.8, 1.2)
    return float(max(delay, hint or 0.0))


def _deps(memo: Any) -> Deps:
    deps = memo.get("deps")
    if not isinstance(deps, Deps):
        raise kopf.PermanentError("operator dependencies are not configured (memo.deps)")
    return deps


def _apply_result(body: kopf.Body, patch: kopf.Patch, previous: Previous, result: Result,
                  deps: Deps) -> None:
    status = reconcile.status_patch(previous, result, deps.clock())
    patch.setdefault("status", {}).update(status)
    _post_event(body, previous, result)
    metrics.PHASES.set(str(body.metadata.uid), conditions.phase_for(result.report).value)
    log.info("%s/%s generation %s: %s (%s)", body.metadata.namespace, body.metadata.name,
             result.report.generation, result.report.reason, result.report.outcome.value,
             extra={"k8s_ref": {"namespace": body.metadata.namespace, "name": body.metadata.name,
                                "uid": body.metadata.uid},
                    "generation": result.report.generation, "step": result.report.step,
                    "outcome": result.report.outcome.value})


def _post_event(body: kopf.Body, previous: Previous, result: Result) -> None:
    """One Event per phase change, plus one per new failure reason: short and secret-free."""
    report = result.report
    phase = conditions.phase_for(report).value
    failing = (result.error is not None and not isinstance(result.error, Waiting)) or report.outcome is Outcome.STALLED
    old_reason = next((c.get("reason") for c in previous.conditions if c.get("type") == "Ready"), None)
    applied = report.outcome is Outcome.APPLIED  # progress Events came before: close the story
    news = report.reason != old_reason and (failing or isinstance(result.error, Waiting))
    drifted = report.drift is not None and report.drift[0] and not conditions.is_true(previous.conditions,
                                                                                     conditions.DRIFTED)
    if drifted and report.drift is not None:
        kopf.event(body, type="Warning", reason="DriftDetected", message=report.drift[1][:1024])
    if phase == previous.phase and not applied and not news:
        return
    kopf.event(
        body,
        type="Warning" if failing else "Normal",
        reason=report.reason if failing else phase,
        message=report.message[:1024],
    )


class ProgressWriter:
    """Long Terraform steps show up in `kubectl get` while they run (Planning, Applying).

    A step's write waits `progress_delay_seconds`: the next step replaces a write still waiting,
    and `close()` drops it when the reconcile ends first, so a fast reconcile costs no extra
    writes. A write already on the wire is awaited, never abandoned: it must not land after (and
    overwrite) the final status Kopf writes.
    """

    def __init__(self, body: kopf.Body, previous: Previous, deps: Deps) -> None:
        self._body, self._previous, self._deps = body, previous, deps
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
        await asyncio.sleep(self._deps.settings.progress_delay_seconds)
        self._writing = asyncio.create_task(self._write(report))  # shielded from close()'s cancel
        self._waiting = None

    async def _write(self, report: Report) -> None:
        namespace, name = str(self._body.metadata.namespace), str(self._body.metadata.name)
        phase = conditions.phase_for(report).value
        status = {"phase": phase,
                  "conditions": conditions.derive(self._previous.conditions, report, self._deps.clock())}
        try:
            await asyncio.to_thread(_patch_status, namespace, name, status)
        except Exception as exc:  # progress is informative; the final write is what counts
            log.warning("progress status write failed for %s/%s: %s", namespace, name,
                        self._deps.redactor.redact(str(exc))[:200])
        kopf.event(self._body, type="Normal", reason=phase, message=report.message[:1024])


def _patch_status(namespace: str, name: str, status: dict[str, Any]) -> None:
    import kubernetes  # the client is configured by Kopf's login (login_via_client)

    api = kubernetes.client.CustomObjectsApi()
    api.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name, {"status": status}, _request_timeout=10
    )


@kopf.on.login(registry=registry)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster ServiceAccount first, then the kubeconfig. It also configures the kubernetes
    client library, which the operator uses to read Secrets and to write progress."""
    return kopf.login_via_client(**kwargs)


@kopf.on.startup(registry=registry)
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    deps = _deps(memo)
    configure_kopf(settings, deps.settings)


@kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
@kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec", registry=registry)
async def reconcile_llmapp(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int,
                           **_: Any) -> None:
    deps = _deps(memo)
    previous = Previous.from_status(body.get("status"))
    generation = int(body.metadata.get("generation") or 0)
    try:
        app = LLMApp.from_body(body)
    except InvalidSpec as exc:
        result = Result(Report(Outcome.STALLED, "InvalidSpec", str(exc), generation),
                        {"lastError": str(exc)})
        _apply_result(body, patch, previous, result, deps)
        return  # Stalled: nothing to retry until the spec changes
    progress = ProgressWriter(body, previous, deps)
    started = time.monotonic()
    try:
        result = await reconcile.converge(app, deps, previous, progress)
    finally:
        await progress.close()
    metrics.RECONCILE_SECONDS.labels(handler="reconcile", outcome=result.report.outcome.value).observe(
        time.monotonic() - started)
    _apply_result(body, patch, previous, result, deps)
    if isinstance(result.error, Waiting):   # not a failure: look again after the recheck delay, no backoff
        raise kopf.TemporaryError(result.report.message, delay=result.error.delay or deps.settings.retry_base_seconds)
    if result.transient:
        assert result.error is not None
        raise kopf.TemporaryError(result.report.message,
                                  delay=backoff(retry, deps.settings, getattr(result.error, "delay", None)))


RESYNC_SECONDS = float(os.environ.get("LLMAPP_RESYNC_SECONDS", "600"))
"""How often Ready objects re-read their Secrets: Kopf does not watch Secrets, so a rotated value
is noticed here (new Secrets Manager version + service rollout, GitHub secret re-sealed)."""


@kopf.timer(GROUP, VERSION, PLURAL, registry=registry, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
async def resync_secrets(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    deps = _deps(memo)
    previous = Previous.from_status(body.get("status"))
    if body.metadata.get("deletionTimestamp") or not conditions.is_true(previous.conditions, conditions.READY):
        return  # only settled objects: failing ones retry through their own backoff
    try:
        app = LLMApp.from_body(body)
    except InvalidSpec:
        return
    if app.spec.suspend or not (app.spec.app.secrets or app.spec.github.token_secret_ref):
        return  # nothing outside the spec to re-check
    # Equal inputs start no Terraform process: this pass only re-syncs secrets and GitHub.
    result = await reconcile.converge(app, deps, previous)
    _apply_result(body, patch, previous, result, deps)


DRIFT_TICK_SECONDS = float(os.environ.get("LLMAPP_DRIFT_TICK_SECONDS", "60"))
"""How often each object's drift timer wakes; the check itself runs at spec.driftDetection.interval."""


@kopf.timer(GROUP, VERSION, PLURAL, registry=registry, interval=DRIFT_TICK_SECONDS, initial_delay=DRIFT_TICK_SECONDS)
async def detect_drift(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """Plan without applying when the object's drift check is due (jittered per object, and bound
    by the same global concurrency gate as every other Terraform run)."""
    deps = _deps(memo)
    previous = Previous.from_status(body.get("status"))
    if body.metadata.get("deletionTimestamp") or not conditions.is_true(previous.conditions, conditions.READY):
        return  # only settled objects; pending, failing and held ones have their own loop
    try:
        app = LLMApp.from_body(body)
    except InvalidSpec:
        return
    interval = app.spec.drift_detection.interval_seconds
    since = previous.drift_checked_at or conditions.transition_time(previous.conditions, conditions.READY)
    if app.spec.suspend or not drift_due(since, interval, str(body.metadata.uid), time.time()):
        return
    result = await reconcile.converge(app, deps, previous, drift_check=True)
    if result.report.drift is not None:
        remediated = result.report.outcome is Outcome.APPLIED
        metrics.DRIFT_CHECKS.labels(result="drifted" if result.report.drift[0]
                                    else "remediated" if remediated else "clean").inc()
    _apply_result(body, patch, previous, result, deps)


def drift_due(since: str | None, interval: int, uid: str, now: float) -> bool:
    """Due `interval` (+ up to 10 % jitter, fixed per object) after the last check or apply, so a
    thousand objects created together do not all plan in the same minute."""
    if interval <= 0:
        return False
    if not since:
        return True
    try:
        last = datetime.datetime.strptime(since, reconcile.TIME_FORMAT).replace(tzinfo=datetime.UTC).timestamp()
    except ValueError:
        return True
    jitter = (int(hashlib.sha256(uid.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF) * 0.1 * interval
    return now >= last + interval + jitter


@kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
async def teardown_llmapp(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int,
                          **_: Any) -> None:
    deps = _deps(memo)
    previous = Previous.from_status(body.get("status"))
    generation = int(body.metadata.get("generation") or 0)
    try:
        app = LLMApp.from_body(body)
    except InvalidSpec as exc:
        if previous.last_attempted_digest is None and previous.last_applied_digest is None:
            metrics.PHASES.forget(str(body.metadata.uid))
            return  # never applied: nothing to destroy, let the finalizer go
        message = (f"cannot destroy with an invalid spec ({exc}); fix the spec or set "
                   "spec.deletionPolicy: Orphan to keep the AWS resources")
        result = Result(Report(Outcome.DELETING, "InvalidSpec", message, generation),
                        {"lastError": message}, error=None)
        _apply_result(body, patch, previous, result, deps)
        raise kopf.TemporaryError(message, delay=deps.settings.retry_max_seconds) from None
    if previous.phase != conditions.Phase.DELETING.value:
        kopf.event(body, type="Normal", reason="Deleting",
                   message=f"deletionPolicy {app.spec.deletion_policy.value}: tearing down")
    started = time.monotonic()
    result = await reconcile.teardown(app, deps, previous)
    metrics.RECONCILE_SECONDS.labels(handler="teardown", outcome="ok" if result.error is None else "error").observe(
        time.monotonic() - started)
    if result.error is None:
        metrics.PHASES.forget(str(body.metadata.uid))
        kopf.event(body, type="Normal", reason=result.report.reason, message=result.report.message)
        return  # done: Kopf removes the finalizer; nothing left to write status to
    _apply_result(body, patch, previous, result, deps)
    hint = getattr(result.error, "delay", None)
    raise kopf.TemporaryError(result.report.message, delay=backoff(retry, deps.settings, hint))

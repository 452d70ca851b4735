"""The only module that knows kopf: it feeds the per-object workers and publishes what they did.

Kopf's handlers do no reconciling themselves. Every watch event goes to the Scheduler
(engine/worker.py), which keeps the object's latest body and asks its worker for a pass when the
object is new here, its generation moved or the reconcile-requested-at annotation changed; the
deletion handler asks for the teardown and waits for it, so Kopf releases the finalizer only once
the teardown succeeded. No Kopf timers: the worker schedules retries, re-checks, resyncs and drift
checks itself, so two passes of one object never run at once.

The Publisher writes each pass's status once (progress writes by the same writer, never after the
final one), posts one Event per phase change and per new failure reason, and a Warning for
everything a pass had to leave behind.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import kopf

from llmapp_operator import FINALIZER, GROUP, PLURAL, VERSION
from llmapp_operator.api import conditions, shards
from llmapp_operator.api.conditions import Outcome
from llmapp_operator.api.errors import Waiting
from llmapp_operator.config import Settings
from llmapp_operator.engine import passes
from llmapp_operator.engine.reconcile import Deps, Previous, status_patch
from llmapp_operator.engine.teardown import deletion_policy
from llmapp_operator.engine.worker import REQUEST_ANNOTATION, Scheduler, backoff
from llmapp_operator.kopf_app.diffbase import DigestDiffBaseStorage
from llmapp_operator.kube.shards import ShardLabels
from llmapp_operator.kube.status import StatusClient
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
    # On SIGTERM Kopf's handler tasks (a deletion handler waiting for its teardown) get as long as
    # the workers do; the chart keeps the pod's terminationGracePeriodSeconds above the sum.
    settings.queueing.exit_timeout = operator.shutdown_grace_seconds + operator.kill_grace_seconds + 5
    # Our own retry delays apply; this only bounds Kopf's own API-call retries.
    settings.networking.error_backoffs = [1, 2, 5, 10]
    # A shard watches only its own objects, filtered by the API server (api/shards.py).
    if operator.shards > 1 and operator.shard_by == "uid":
        settings.watching.shard_selectors[GROUP, PLURAL] = shards.uid_range_selector(operator.shard, operator.shards)
    selector = shards.label_selector(operator.shard, operator.shards) if operator.shard_by == "label" else None
    if selector is not None:
        settings.watching.label_selectors[GROUP, PLURAL] = selector


def _deps(memo: Any) -> Deps:
    deps = memo.get("deps")
    if not isinstance(deps, Deps):
        raise kopf.PermanentError("operator dependencies are not configured (memo.deps)")
    return deps


def _scheduler(memo: Any) -> Scheduler:
    scheduler = memo.get("scheduler")
    if not isinstance(scheduler, Scheduler):
        raise kopf.PermanentError("the operator's scheduler is not running")
    return scheduler


class KopfPublisher:
    """Status through the status subresource, Events through Kopf's poster, metrics."""

    def __init__(self, deps: Deps, client: StatusClient | None = None) -> None:
        self.deps = deps
        self.client = client or StatusClient()

    async def status(self, body: Mapping[str, Any], result: Any, *, final: bool) -> Mapping[str, Any] | None:
        meta = body.get("metadata") or {}
        current = dict(body.get("status") or {})
        previous = Previous.from_status(current)
        report = result.report
        if report.generation < int(current.get("observedGeneration") or 0):
            return None   # never written backwards (a pass can only be older after a takeover)
        if final and report.outcome is Outcome.DELETING and result.error is None:
            self._event(body, "Normal", report.reason, report.message)   # done: the object goes now
            self._left_behind(body, result.warnings)
            return None
        if final:
            patch = status_patch(previous, result, self.deps.clock())
            requested = (meta.get("annotations") or {}).get(REQUEST_ANNOTATION)
            if requested is not None:
                patch["handledRequest"] = str(requested)   # what `kubectl llmapp reconcile --wait` waits for
        else:
            message = report.message
            if report.outcome is Outcome.DELETING:
                message = f"deletionPolicy {deletion_policy(body).value}: tearing down"
                report = conditions.Report(report.outcome, report.reason, message, report.generation)
            patch = {"phase": conditions.phase_for(report).value,
                     "conditions": conditions.derive(previous.conditions, report, self.deps.clock())}
        # Events are queued before the status write: whoever sees the new status finds its Events too.
        if final:
            self._final_events(body, previous, result)
        elif conditions.phase_for(report).value != previous.phase:
            self._event(body, "Normal", conditions.phase_for(report).value, report.message)
        fresh: Mapping[str, Any] | None = None
        if any(current.get(key) != value for key, value in patch.items()):
            fresh = await self.client.patch_status(str(meta.get("namespace")), str(meta.get("name")), patch)
        if final:
            # The pass's log line is the worker's (engine/worker.py): one when the phase or reason moved.
            metrics.PHASES.set(str(meta.get("uid")), conditions.phase_for(report).value)
        return fresh

    async def forget(self, body: Mapping[str, Any]) -> None:
        metrics.PHASES.forget(str((body.get("metadata") or {}).get("uid")))

    def _final_events(self, body: Mapping[str, Any], previous: Previous, result: Any) -> None:
        """One Event per phase change, plus one per new failure reason: short and secret-free."""
        report = result.report
        phase = conditions.phase_for(report).value
        failing = (result.error is not None and not isinstance(result.error, Waiting)) or \
            report.outcome is Outcome.STALLED
        old_reason = next((c.get("reason") for c in previous.conditions if c.get("type") == conditions.READY), None)
        applied = report.outcome is Outcome.APPLIED  # progress Events came before: close the story
        news = report.reason != old_reason and (failing or isinstance(result.error, Waiting))
        drifted = report.drift is not None and report.drift[0] and not conditions.is_true(
            previous.conditions, conditions.DRIFTED)
        if drifted and report.drift is not None:
            self._event(body, "Warning", "DriftDetected", report.drift[1])
        self._left_behind(body, result.warnings)
        if phase == previous.phase and not applied and not news:
            return
        self._event(body, "Warning" if failing else "Normal", report.reason if failing else phase, report.message)

    def _left_behind(self, body: Mapping[str, Any], warnings: Sequence[str]) -> None:
        """What a pass could not clean up: a Warning Event, and the log (an Event cannot be posted
        into a namespace that is terminating, and the log is where it stays)."""
        meta = body.get("metadata") or {}
        for warning in warnings:
            log.warning("%s/%s: %s", meta.get("namespace"), meta.get("name"), warning)
            self._event(body, "Warning", "LeftBehind", warning)

    @staticmethod
    def _event(body: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
        kopf.event(kopf.Body(dict(body)), type=kind, reason=reason, message=message[:1024])  # type: ignore[arg-type]


@kopf.on.login(registry=registry)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster ServiceAccount first, then the kubeconfig. It also configures the kubernetes
    client library, which the operator uses to read Secrets and to write status."""
    return kopf.login_via_client(**kwargs)


@kopf.on.startup(registry=registry)
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    deps = _deps(memo)
    configure_kopf(settings, deps.settings)
    memo["shard_labels"] = ShardLabels()
    memo["scheduler"] = Scheduler(deps.settings, functools.partial(passes.run_pass, deps),
                                  functools.partial(passes.run_teardown, deps), KopfPublisher(deps))


@kopf.on.cleanup(registry=registry)
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    """SIGTERM: running passes finish their step (or stop Terraform cleanly) within the grace."""
    scheduler = memo.get("scheduler")
    if isinstance(scheduler, Scheduler):
        await scheduler.stop(_deps(memo).settings.shutdown_grace_seconds)


@kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
async def observe(event: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
    """Every watch event (the initial listing too): the worker decides whether a pass is due."""
    raw = event.get("object")
    if not isinstance(raw, Mapping):
        return
    deleted = event.get("type") == "DELETED"
    scheduler = _scheduler(memo)
    if not deleted and await _handed_to_its_shard(raw, scheduler, _deps(memo).settings, memo):
        return   # its shard's watch sees it now (ours tells us DELETED): nothing for us to do
    scheduler.observe(raw, deleted=deleted)


async def _handed_to_its_shard(body: Mapping[str, Any], scheduler: Scheduler, settings: Settings,
                               memo: Any) -> bool:
    """The default shard labels an unlabelled object it has not handled yet with the shard of its
    uid range (a metadata write: no generation, no pass here). One it has handled stays until a
    user moves it; one being deleted stays where its teardown runs."""
    meta = body.get("metadata") or {}
    uid = str(meta.get("uid") or "")
    if not (settings.shard_assign and settings.shard_by == "label" and settings.shard == 0) \
            or uid in scheduler.objects or meta.get("deletionTimestamp"):
        return False
    target = shards.assignment(meta.get("labels"), uid, settings.shards)
    if target is None:
        return False
    labels: ShardLabels = memo["shard_labels"]
    try:
        moved = await labels.assign(str(meta.get("namespace")), str(meta.get("name")), uid, target)
    except Exception as exc:   # the API server unreachable (TransientError): this shard keeps the object
        log.warning("%s/%s: not handed to shard %s (%s); this shard handles it", meta.get("namespace"),
                    meta.get("name"), target, type(exc).__name__)
        return False
    if moved:
        log.info("%s/%s: handed to shard %s (label %s)", meta.get("namespace"), meta.get("name"), target,
                 shards.SHARD_LABEL)
    return moved


@kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
async def delete(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    """Wait for the teardown (after any pass in progress); Kopf removes the finalizer on success.

    No exception of ours reaches Kopf as it is: Kopf would keep its text in the object's
    progress annotation and log it unredacted. The worker has logged it (redacted, with its
    traceback); Kopf gets a TemporaryError that names only its type."""
    deps = _deps(memo)
    try:
        result = await _scheduler(memo).teardown(dict(body))
    except Exception as exc:
        raise kopf.TemporaryError(f"the teardown failed unexpectedly ({type(exc).__name__}): see the operator log",
                                  delay=backoff(retry + 1, deps.settings)) from None
    if result.error is not None:
        raise kopf.TemporaryError(result.report.message,
                                  delay=backoff(retry + 1, deps.settings, getattr(result.error, "delay", None)))

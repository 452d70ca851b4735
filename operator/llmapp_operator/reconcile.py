"""The reconcile and teardown logic, in one fixed order. Imports no kopf.

converge(): suspended? -> render (pure) -> digest unchanged? stop -> state backend -> init ->
plan -> apply -> outputs. teardown(): Orphan? stop -> state backend -> init -> destroy.
Both return a Result: the report that conditions.py turns into conditions, the status fields to
write, and the error (if any) that tells the handler how to retry.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import conditions
from .aws import StateBackend
from .conditions import Outcome, Report
from .config import Settings
from .errors import PermanentError, ReconcileError, TransientError
from .model import DeletionPolicy, InvalidSpec, LLMApp
from .modules import load_module
from .redaction import REDACTOR, Redactor, shorten
from .terraform import Outputs, PlanSummary, RunGate, Runner
from .workspace import Workspace, render

ProgressHook = Callable[[Report], Awaitable[None]]


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _no_progress(report: Report) -> None:
    return None


@dataclass
class Deps:
    """Everything reconcile talks to, built once at operator start-up (no hidden globals)."""

    settings: Settings
    runner: Runner
    backend: StateBackend
    gate: RunGate
    redactor: Redactor = REDACTOR
    clock: Callable[[], str] = utc_now


@dataclass(frozen=True)
class Previous:
    """The parts of the current status that the next pass depends on."""

    conditions: tuple[Mapping[str, Any], ...] = ()
    phase: str | None = None
    last_applied_digest: str | None = None
    last_attempted_digest: str | None = None

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> Previous:
        status = status or {}
        return cls(
            conditions=tuple(status.get("conditions") or ()),
            phase=status.get("phase"),
            last_applied_digest=status.get("lastAppliedDigest"),
            last_attempted_digest=status.get("lastAttemptedDigest"),
        )


@dataclass(frozen=True)
class Result:
    report: Report
    fields: Mapping[str, Any] = field(default_factory=dict)
    error: ReconcileError | None = None

    @property
    def transient(self) -> bool:
        return isinstance(self.error, TransientError)


def status_patch(previous: Previous, result: Result, now: str) -> dict[str, Any]:
    """The single status write of a pass: phase + derived conditions + the pass's own fields."""
    report = result.report
    patch: dict[str, Any] = {
        "phase": conditions.phase_for(report).value,
        "observedGeneration": report.generation,
        "conditions": conditions.derive(previous.conditions, report, now),
    }
    patch.update(result.fields)
    return patch


def failed(report_base: Report, exc: ReconcileError, redactor: Redactor, **fields: Any) -> Result:
    message = shorten(redactor.redact(exc.message))
    outcome = Outcome.RETRYING if isinstance(exc, TransientError) else Outcome.STALLED
    report = Report(
        outcome=outcome if report_base.outcome is not Outcome.DELETING else Outcome.DELETING,
        reason=exc.reason,
        message=message,
        generation=report_base.generation,
        infra_applied=report_base.infra_applied,
        step=report_base.step,
    )
    return Result(report=report, fields={"lastError": message, **fields}, error=exc)


def _workspace(app: LLMApp, deps: Deps) -> Workspace:
    module = load_module(app.spec.terraform.module, deps.settings.modules)
    try:
        return render(app, deps.settings, module)
    except InvalidSpec as exc:
        raise PermanentError(str(exc), reason="InvalidSpec") from None


def plan_fields(plan: PlanSummary) -> dict[str, Any]:
    return {"add": plan.add, "change": plan.change, "destroy": plan.destroy, "replace": plan.replace}


def url_from(outputs: Outputs) -> str | None:
    url = outputs.get("url")
    if isinstance(url, str) and url:
        return url
    dns = outputs.get("alb_dns")
    return f"http://{dns}" if isinstance(dns, str) and dns else None


async def converge(
    app: LLMApp, deps: Deps, previous: Previous, progress: ProgressHook = _no_progress
) -> Result:
    generation = app.ref.generation
    if app.spec.suspend:
        return Result(Report(Outcome.SUSPENDED, "Suspended",
                             "spec.suspend is true: no Terraform runs until it is false", generation))

    step = "render"
    base = Report(Outcome.RETRYING, "", "", generation, step=step)
    try:
        ws = _workspace(app, deps)
    except ReconcileError as exc:
        return failed(base, exc, deps.redactor)

    if ws.digest == previous.last_applied_digest:
        return Result(
            Report(Outcome.UNCHANGED, "UpToDate", "infrastructure matches the spec", generation,
                   infra_applied=True),
            {"lastAttemptedDigest": ws.digest, "lastError": None},
        )

    attempted = {"lastAttemptedDigest": ws.digest}
    try:
        async with deps.gate.slot():
            step = "backend"
            await deps.backend.ensure(ws.backend)
            step = "plan"
            await progress(Report(Outcome.IN_PROGRESS, "Planning", "terraform init and plan",
                                  generation, step=step))
            await deps.runner.init(ws)
            plan = await deps.runner.plan(ws)
            step = "apply"
            await progress(Report(Outcome.IN_PROGRESS, "Applying",
                                  f"terraform apply: {plan.add} to add, {plan.change} to change, "
                                  f"{plan.destroy} to destroy", generation, step=step))
            outputs = await deps.runner.apply(ws, plan)
    except ReconcileError as exc:
        return failed(Report(Outcome.RETRYING, "", "", generation, infra_applied=False, step=step),
                      exc, deps.redactor, **attempted)

    message = (f"applied: {plan.add} added, {plan.change} changed, {plan.destroy} destroyed"
               if plan.has_changes else "applied: no changes")
    return Result(
        Report(Outcome.APPLIED, "Applied", message, generation, infra_applied=True),
        {
            **attempted,
            "lastAppliedDigest": ws.digest,
            "url": url_from(outputs),
            "outputs": outputs,
            "plan": plan_fields(plan),
            "lastError": None,
        },
    )


async def teardown(app: LLMApp, deps: Deps, previous: Previous) -> Result:
    """Destroy what converge built; the handler releases the finalizer only when error is None."""
    generation = app.ref.generation
    if app.spec.deletion_policy is DeletionPolicy.ORPHAN:
        return Result(Report(Outcome.DELETING, "Orphaned",
                             "deletionPolicy is Orphan: AWS resources and state are kept", generation))
    if previous.last_attempted_digest is None and previous.last_applied_digest is None:
        return Result(Report(Outcome.DELETING, "NothingToDestroy",
                             "no Terraform run ever started for this object", generation))

    step = "render"
    base = Report(Outcome.DELETING, "", "", generation, step=step)
    try:
        ws = _workspace(app, deps)
        async with deps.gate.slot():
            step = "backend"
            await deps.backend.ensure(ws.backend)
            step = "destroy"
            await deps.runner.init(ws)
            await deps.runner.destroy(ws)
    except ReconcileError as exc:
        return failed(Report(Outcome.DELETING, "", "", generation, step=step), exc, deps.redactor)
    del base
    return Result(Report(Outcome.DELETING, "Destroyed", "terraform destroy succeeded", generation,
                         infra_applied=False))

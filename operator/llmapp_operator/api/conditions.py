"""Conditions, phases and the one rule set that derives them from what a reconcile did.

kstatus semantics (understood by `kubectl wait`, Argo CD and Flux): `Ready` is the summary,
`Reconciling` is True while work is under way, `Stalled` is True when progress needs a human.
`lastTransitionTime` only moves when a condition's status changes. Pure: no I/O, `now` is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    PENDING = "Pending"
    PLANNING = "Planning"
    AWAITING_APPROVAL = "AwaitingApproval"
    APPLYING = "Applying"
    READY = "Ready"
    FAILED = "Failed"
    DELETING = "Deleting"
    SUSPENDED = "Suspended"


READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
INFRA_APPLIED = "InfraApplied"
GITHUB_SYNCED = "GitHubSynced"
DEPLOYED = "Deployed"
APP_HEALTHY = "AppHealthy"
PLAN_PENDING = "PlanPending"
DRIFTED = "Drifted"
CERTIFICATE_ISSUED = "CertificateIssued"

CONDITION_ORDER = (READY, RECONCILING, STALLED, INFRA_APPLIED, GITHUB_SYNCED, DEPLOYED, APP_HEALTHY, PLAN_PENDING,
                   DRIFTED, CERTIFICATE_ISSUED)
NO_DOMAIN = (True, "NoDomain", "")
"""Report.certificate for a spec without spec.domain: CertificateIssued is dropped."""


class Outcome(StrEnum):
    """What one pass of the reconcile loop ended with."""

    APPLIED = "Applied"          # infrastructure converged (and glue synced where configured)
    UNCHANGED = "Unchanged"      # digest equal to the last applied one: nothing ran
    IN_PROGRESS = "InProgress"   # a step is running now
    RETRYING = "Retrying"        # a transient failure; the loop retries with backoff
    STALLED = "Stalled"          # a permanent failure; waits for a spec change
    SUSPENDED = "Suspended"
    DELETING = "Deleting"        # teardown running or retrying
    AWAITING_APPROVAL = "AwaitingApproval"   # a saved plan waits for spec.approvePlan


@dataclass(frozen=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str
    observed_generation: int
    last_transition_time: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "observedGeneration": self.observed_generation,
            "lastTransitionTime": self.last_transition_time,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Condition:
        return cls(
            type=str(data.get("type", "")),
            status=str(data.get("status", "Unknown")),
            reason=str(data.get("reason", "")),
            message=str(data.get("message", "")),
            observed_generation=int(data.get("observedGeneration") or 0),
            last_transition_time=str(data.get("lastTransitionTime", "")),
        )


@dataclass(frozen=True)
class Report:
    """The facts a reconcile pass hands to `derive`; everything here is already redacted."""

    outcome: Outcome
    reason: str
    message: str
    generation: int
    infra_applied: bool | None = None      # None: unknown / untouched this pass
    github_synced: bool | None = None      # None: GitHub glue not configured
    step: str | None = None                # the step that failed or runs (init, plan, apply…)
    deployed: tuple[bool, str, str] | None = None     # (runs what it should, reason, message); None: not looked at
    app_health: tuple[bool, str, str] | None = None   # (healthy, reason, message); None: not checked
    plan_pending: bool | None = None       # None: no plan made this pass
    drift: tuple[bool, str] | None = None  # (drifted, summary); None: no drift check this pass
    certificate: tuple[bool, str, str] | None = None  # spec.domain's certificate (issued, reason, message);
    # None: not looked at this pass; NO_DOMAIN: the spec has no domain


PHASE_BY_OUTCOME = {
    Outcome.APPLIED: Phase.READY,
    Outcome.UNCHANGED: Phase.READY,
    Outcome.STALLED: Phase.FAILED,
    Outcome.SUSPENDED: Phase.SUSPENDED,
    Outcome.DELETING: Phase.DELETING,
    Outcome.AWAITING_APPROVAL: Phase.AWAITING_APPROVAL,
}


def phase_for(report: Report) -> Phase:
    if report.outcome in PHASE_BY_OUTCOME:
        return PHASE_BY_OUTCOME[report.outcome]
    if report.step == "plan" or report.step == "init":
        return Phase.PLANNING
    if report.step in {"apply", "output", "github", "rollout"}:
        return Phase.APPLYING
    return Phase.PENDING   # also: infrastructure applied, waiting for the app to become healthy


def _ready(report: Report) -> tuple[str, str, str]:
    if report.outcome in (Outcome.APPLIED, Outcome.UNCHANGED):
        return "True", report.reason, report.message
    if report.outcome is Outcome.SUSPENDED:
        return "False", "Suspended", "reconciliation is suspended (spec.suspend: true)"
    return "False", report.reason, report.message


def derive(
    previous: Iterable[Mapping[str, Any]] | None, report: Report, now: str
) -> list[dict[str, Any]]:
    """The full condition list after this pass, with transition times carried over."""
    old = {cond.type: cond for cond in map(Condition.from_dict, previous or ())}
    # A plan held for approval is not done: kstatus (Flux `wait`, kstatus in CI) reads an object
    # with neither Reconciling nor Stalled as Current, so it stays Reconciling until approved.
    working = report.outcome in (Outcome.IN_PROGRESS, Outcome.RETRYING, Outcome.DELETING,
                                 Outcome.AWAITING_APPROVAL)
    ready = _ready(report)
    before_ready = old.get(READY)
    if report.outcome is Outcome.UNCHANGED and before_ready is not None and before_ready.status == "True":
        # Nothing happened: keep the story of the last apply, so a resync writes nothing new.
        ready = ("True", before_ready.reason, before_ready.message)
    wanted: dict[str, tuple[str, str, str]] = {
        READY: ready,
        RECONCILING: ("True", report.reason, report.message) if working
        else ("False", "Idle", "no reconciliation in progress"),
        STALLED: ("True", report.reason, report.message) if report.outcome is Outcome.STALLED
        else ("False", "Progressing", "not stalled"),
    }
    infra = _tristate(report.infra_applied, old.get(INFRA_APPLIED))
    if infra is not None:
        wanted[INFRA_APPLIED] = (
            ("True", "Applied", "terraform apply succeeded") if infra
            else ("False", report.reason, report.message)
        )
    github = _tristate(report.github_synced, old.get(GITHUB_SYNCED))
    if github is not None:
        wanted[GITHUB_SYNCED] = (
            ("True", "Synced", "GitHub environment is in sync") if github
            else ("False", report.reason, report.message)
        )

    if report.deployed is not None:
        ok, reason, message = report.deployed
        wanted[DEPLOYED] = ("True" if ok else "False", reason, message)
    if report.app_health is not None:
        healthy, reason, message = report.app_health
        wanted[APP_HEALTHY] = ("True" if healthy else "False", reason, message)
    if report.plan_pending is not None:
        wanted[PLAN_PENDING] = (("True", report.reason, report.message) if report.plan_pending
                                else ("False", "NoPlanPending", "no plan waits for approval"))
    if report.drift is not None:
        drifted, summary = report.drift
        wanted[DRIFTED] = ("True", "DriftDetected", summary) if drifted else ("False", "NoDrift", summary)
    if report.certificate is not None and report.certificate != NO_DOMAIN:
        issued, reason, message = report.certificate
        wanted[CERTIFICATE_ISSUED] = ("True" if issued else "False", reason, message)
    for cond_type in (DEPLOYED, APP_HEALTHY, PLAN_PENDING, DRIFTED, CERTIFICATE_ISSUED):
        if cond_type == CERTIFICATE_ISSUED and report.certificate == NO_DOMAIN:
            continue
        kept = old.get(cond_type)
        if cond_type not in wanted and kept is not None:   # not looked at this pass: unchanged
            wanted[cond_type] = (kept.status, kept.reason, kept.message)

    result = []
    for cond_type in CONDITION_ORDER:
        if cond_type not in wanted:
            continue
        status, reason, message = wanted[cond_type]
        before = old.get(cond_type)
        moved = before is None or before.status != status or not before.last_transition_time
        result.append(
            Condition(
                type=cond_type,
                status=status,
                reason=reason,
                message=message,
                observed_generation=report.generation,
                last_transition_time=now if moved else before.last_transition_time,  # type: ignore[union-attr]
            ).as_dict()
        )
    return result


def _tristate(value: bool | None, before: Condition | None) -> bool | None:
    """A pass that did not touch a part keeps what the previous pass found out about it."""
    if value is not None:
        return value
    if before is None:
        return None
    return before.status == "True"


def is_true(conditions: Sequence[Mapping[str, Any]] | None, cond_type: str) -> bool:
    return any(c.get("type") == cond_type and c.get("status") == "True" for c in conditions or ())


def transition_time(conditions: Sequence[Mapping[str, Any]] | None, cond_type: str) -> str | None:
    return next((str(c.get("lastTransitionTime")) for c in conditions or () if c.get("type") == cond_type), None)

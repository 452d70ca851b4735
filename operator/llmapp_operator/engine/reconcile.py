"""The converge pass, in one fixed order. Imports no kopf.

converge(): suspended? -> app secrets to Secrets Manager -> render (pure) -> digest unchanged?
skip Terraform -> state backend -> init -> plan -> review -> the applied record's intent -> apply ->
outputs -> GitHub glue (moving from an old target first) -> app health.
It returns a Result: the report that conditions.py turns into conditions, the status fields to
write, the error (if any) that tells the worker how to retry, and warnings to tell as Events.
The teardown is engine/teardown.py.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, Protocol

from llmapp_operator.api import conditions
from llmapp_operator.api.conditions import Outcome, Report
from llmapp_operator.api.errors import PermanentError, ReconcileError, TransientError, Waiting
from llmapp_operator.api.record import AppliedRecord, BackendRecord, GitHubRecord
from llmapp_operator.api.spec import GitHubSecret, InvalidSpec, LLMApp, SecretValue
from llmapp_operator.api.tenancy import Grant, TenantPolicy, grant
from llmapp_operator.api.workspace import Workspace, render, scaling_tasks, with_running_image
from llmapp_operator.cloud.certificates import CertificateState
from llmapp_operator.cloud.sign_in import OidcAction, RuleView
from llmapp_operator.config import Settings
from llmapp_operator.engine import certificate, sign_in
from llmapp_operator.engine.rollout import RolloutResult, ServiceControl, roll_out, running_image
from llmapp_operator.github.sync import DesiredGitHubState, GitHubSyncRecord, GitHubTarget, require_allowed_host
from llmapp_operator.kube.secrets import SecretReader
from llmapp_operator.kube.tenants import TenantSource, policies_of
from llmapp_operator.obs import metrics
from llmapp_operator.obs.redaction import REDACTOR, Redactor, shorten
from llmapp_operator.review.cost import read_price_override
from llmapp_operator.runners.base import Outputs, PlanSummary, Runner
from llmapp_operator.runners.gate import RunGate
from llmapp_operator.runners.modules import load_module

ProgressHook = Callable[[Report], Awaitable[None]]


TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"   # Kubernetes timestamps, as in conditions' lastTransitionTime


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime(TIME_FORMAT)


async def _no_progress(report: Report) -> None:
    return None


class StateBackendPort(Protocol):
    async def ensure(self, backend: Any) -> None: ...


class AppSecretsPort(Protocol):
    async def sync(self, region: str, owner: dict[str, str], values: dict[str, str]) -> tuple[dict[str, str], bool]: ...
    async def delete_all(self, region: str, owner: dict[str, str]) -> None: ...
    async def roll_service(self, region: str, cluster: str, service: str) -> None: ...


class HealthVerdict(Protocol):
    @property
    def healthy(self) -> bool: ...
    @property
    def reason(self) -> str: ...
    @property
    def message(self) -> str: ...


class HealthCheck(Protocol):
    """app_health.check_app_health, as a dependency tests can replace or turn off."""

    async def __call__(self, region: str, cluster: str, service: str, *, endpoint_url: str | None = None,
                       url: str | None = None, probe_path: str | None = None) -> HealthVerdict: ...


class GitHubPort(Protocol):
    """github_sync's module-level functions, as a dependency tests can see through."""

    async def sync(self, target: Any, desired: Any, previous: Any) -> Any: ...
    async def remove(self, target: Any, record: Any) -> None: ...


class RecordPort(Protocol):
    """The applied record beside the state (cloud/state.py RecordStore)."""

    async def read(self, backend: Any) -> AppliedRecord | None: ...
    async def write(self, backend: Any, record: AppliedRecord) -> None: ...
    async def delete(self, backend: Any) -> None: ...
    async def state_exists(self, backend: Any) -> bool: ...
    async def delete_plans(self, backend: Any) -> int: ...


@dataclass
class Deps:
    """Everything reconcile talks to, built once at operator start-up (no hidden globals)."""

    settings: Settings
    runner: Runner
    backend: StateBackendPort
    gate: RunGate
    secrets: SecretReader | None = None
    app_secrets: AppSecretsPort | None = None
    github: GitHubPort | None = None
    redactor: Redactor = REDACTOR
    clock: Callable[[], str] = utc_now
    job_runner: Runner | None = None
    health: HealthCheck | None = None
    records: RecordPort | None = None
    tenants: TenantSource | None = None
    """The platform's tenant policies; None: the single-tenant default from the settings."""
    service: ServiceControl | None = None
    """The ECS service's task count and revision (cloud.ecs_service); None: left alone (the sandbox)."""
    certificates: CertificatePort | None = None
    """spec.domain's certificate as ACM sees it (cloud.certificates); None: never asked."""
    sign_in: SignInPort | None = None
    """The ALB's OIDC sign-in rule (cloud.sign_in); None: left as the stack made it (503)."""

    async def policy_for(self, namespace: str) -> TenantPolicy:
        if self.tenants is not None:
            return await self.tenants.policy_for(namespace)
        return policies_of(self.settings).select(namespace, {})

    def runner_for(self, app: LLMApp) -> Runner:
        """spec.terraform.runner, else the operator's default: `local` or Kubernetes Jobs."""
        if (app.spec.terraform.runner or self.settings.default_runner) != "job":
            return self.runner
        if self.job_runner is None:
            raise PermanentError("spec.terraform.runner is job, but this operator runs without the job runner",
                                 reason="JobRunnerUnavailable")
        return self.job_runner


class SignInPort(Protocol):
    """cloud.sign_in.AlbSignIn, as a dependency tests point at moto."""

    async def observe(self, region: str, rule_arn: str) -> RuleView: ...
    async def set_up(self, region: str, rule_arn: str, action: OidcAction, client_secret: str,
                     target_group_arn: str) -> None: ...


class CertificatePort(Protocol):
    """cloud.certificates.AcmCertificates, as a dependency tests point at moto."""

    async def state(self, region: str, domain: str, owner: Mapping[str, str]) -> CertificateState: ...


@dataclass(frozen=True)
class Previous:
    """The parts of the current status that the next pass depends on."""

    conditions: tuple[Mapping[str, Any], ...] = ()
    phase: str | None = None
    last_applied_digest: str | None = None
    last_attempted_digest: str | None = None
    outputs: Mapping[str, Any] = field(default_factory=dict)
    github: Mapping[str, Any] | None = None
    app_secrets: tuple[str, ...] = ()
    plan: Mapping[str, Any] = field(default_factory=dict)
    drift_checked_at: str | None = None
    state: str | None = None
    rollout: Mapping[str, Any] = field(default_factory=dict)
    sign_in: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> Previous:
        status = status or {}
        return cls(
            conditions=tuple(status.get("conditions") or ()),
            phase=status.get("phase"),
            last_applied_digest=status.get("lastAppliedDigest"),
            last_attempted_digest=status.get("lastAttemptedDigest"),
            outputs=dict(status.get("outputs") or {}),
            github=status.get("github") or None,
            app_secrets=tuple(status.get("appSecrets") or ()),
            plan=dict(status.get("plan") or {}),
            drift_checked_at=(status.get("drift") or {}).get("checkedAt"),
            state=status.get("state"),
            rollout=dict(status.get("rollout") or {}),
            sign_in=dict(status.get("signIn") or {}),
        )


@dataclass(frozen=True)
class Result:
    report: Report
    fields: Mapping[str, Any] = field(default_factory=dict)
    error: ReconcileError | None = None
    warnings: tuple[str, ...] = ()
    """Told as Warning Events: what the pass had to leave (a GitHub cleanup it could not do)."""

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


def failed(app: LLMApp, exc: ReconcileError, redactor: Redactor, *, step: str, deleting: bool = False,
           infra_applied: bool | None = None, github_synced: bool | None = None,
           deployed: tuple[bool, str, str] | None = None, **fields: Any) -> Result:
    message = shorten(redactor.redact(exc.message))
    outcome = Outcome.RETRYING if isinstance(exc, TransientError) else Outcome.STALLED
    if deleting:
        outcome = Outcome.DELETING  # a failing teardown stays in Deleting and keeps retrying
    report = Report(outcome=outcome, reason=exc.reason, message=message, generation=app.ref.generation,
                    infra_applied=infra_applied, github_synced=github_synced, step=step, deployed=deployed)
    return Result(report=report, fields={**fields, "lastError": message}, error=exc)


async def grant_of(app: LLMApp, deps: Deps) -> Grant:
    """What the tenant policy of the object's namespace allows it: checked before anything runs."""
    policy = await deps.policy_for(app.ref.namespace)
    module = load_module(app.spec.terraform.module, deps.settings.modules)
    return grant(policy, app, tuple(module.variables))


def workspace_of(app: LLMApp, deps: Deps, grant: Grant, secret_arns: Mapping[str, str] | None = None) -> Workspace:
    module = load_module(app.spec.terraform.module, deps.settings.modules)
    try:
        prices = read_price_override(str(deps.settings.price_table)) if deps.settings.price_table else None
    except ValueError as exc:
        raise PermanentError(f"LLMAPP_PRICE_TABLE is unusable: {exc}", reason="PriceTableUnreadable") from None
    try:
        return render(app, deps.settings, module, grant, secret_arns=secret_arns, price_override=prices)
    except InvalidSpec as exc:
        raise PermanentError(str(exc), reason="InvalidSpec") from None


HELD_PLAN_RESOURCES = 100   # status.plan.resources of a held plan: what `kubectl llmapp plan show` lists


def plan_fields(plan: PlanSummary, digest: str, *, pending: bool) -> dict[str, Any]:
    """status.plan: the counts, the id to approve, and the inputs the plan was made from."""
    return {"add": plan.add, "change": plan.change, "destroy": plan.destroy, "replace": plan.replace,
            "id": plan.plan_id, "pending": pending, "digest": digest}


def url_from(outputs: Outputs) -> str | None:
    url = outputs.get("url")
    if isinstance(url, str) and url:
        return url
    dns = outputs.get("alb_dns")
    return f"http://{dns}" if isinstance(dns, str) and dns else None


def owner_of(app: LLMApp) -> dict[str, str]:
    return {"namespace": app.ref.namespace, "name": app.ref.name, "uid": app.ref.uid}


def github_variables(outputs: Mapping[str, Any], names: Mapping[str, str],
                     extra: Mapping[str, str]) -> dict[str, str]:
    """Environment variables for the app's CI/CD: mapped outputs plus spec.github.variables (pure)."""
    variables = {name: str(outputs[output]) for name, output in names.items()
                 if outputs.get(output) not in (None, "")}
    variables.update(extra)
    return dict(sorted(variables.items()))


async def read_secret_values(app: LLMApp, deps: Deps, refs: Sequence[SecretValue | GitHubSecret]
                             ) -> dict[str, str]:
    if deps.secrets is None:
        raise PermanentError("this operator cannot read Kubernetes Secrets", reason="SecretsUnavailable")
    values = {}
    for item in refs:
        ref = item.value_from.secret_key_ref
        values[item.name] = await deps.secrets.read(app.ref.namespace, ref.name, ref.key, reader=app.ref.name)
    return values


async def _app_secret_arns(app: LLMApp, deps: Deps, previous: Previous) -> tuple[dict[str, str], bool]:
    if not app.spec.app.secrets and not previous.app_secrets:
        return {}, False  # none wanted, none handed off before: no AWS call on the resync path
    if deps.app_secrets is None:
        if app.spec.app.secrets:
            raise PermanentError("spec.app.secrets needs the Secrets Manager hand-off, which is off",
                                 reason="SecretsUnavailable")
        return {}, False
    values = await read_secret_values(app, deps, app.spec.app.secrets)
    return await deps.app_secrets.sync(app.spec.aws.region, owner_of(app), values)


async def _record_intent(app: LLMApp, deps: Deps, ws: Workspace, secret_arns: Mapping[str, str]
                         ) -> AppliedRecord | None:
    """Write what this apply is about to do before it starts: a teardown after a crash (or without
    status) then knows there is something to destroy, and how."""
    if deps.records is None:
        return None
    current = await deps.records.read(ws.backend)
    record = AppliedRecord(
        namespace=app.ref.namespace, name=app.ref.name, uid=app.ref.uid, module=ws.module.name,
        module_digest=ws.module.digest,
        backend=BackendRecord(bucket=ws.backend.bucket, key=ws.backend.key, region=ws.backend.region,
                              dynamodb_table=ws.backend.dynamodb_table),
        region=app.spec.aws.region, tfvars=dict(ws.tfvars), attempted_digest=ws.digest,
        applied_digest=current.applied_digest if current else "", outputs=current.outputs if current else {},
        app_secrets=tuple(sorted(secret_arns)),
        github=current.github if current else None, updated_at=deps.clock())
    await deps.records.write(ws.backend, record)
    return record


async def _applied_but_not_told(deps: Deps, ws: Workspace) -> Outputs | None:
    """The outputs of an apply of exactly these inputs that the status does not show; None when
    the record says otherwise (or predates outputs in records)."""
    if deps.records is None:
        return None
    record = await deps.records.read(ws.backend)
    if record is None or record.applied_digest != ws.digest or not record.outputs:
        return None
    return dict(record.outputs)


async def converge(
    app: LLMApp, deps: Deps, previous: Previous, progress: ProgressHook = _no_progress, *, drift_check: bool = False,
    background: bool = False,
) -> Result:
    """One pass, with spec.domain's certificate around it (engine/certificate.py): while ACM has not
    issued it, the pass asks ACM instead of running Terraform again."""
    domain = app.spec.domain
    if domain is None:
        result = await _converge(app, deps, previous, progress, drift_check=drift_check, background=background)
        return _with_certificate(result, conditions.NO_DOMAIN)
    owner = {"llmops.dev/namespace": app.ref.namespace, "llmops.dev/name": app.ref.name}
    if deps.certificates is not None and not drift_check and certificate.waiting_for_certificate(
            previous.conditions, app.ref.generation):
        try:
            state = await deps.certificates.state(app.spec.aws.region, domain.name, owner)
        except ReconcileError as exc:
            return failed(app, exc, deps.redactor, step="certificate", infra_applied=False)
        if state.pending:
            return _certificate_pending(app, deps, state, {})
    result = await _converge(app, deps, previous, progress, drift_check=drift_check, background=background)
    if result.error is not None and result.report.step == "apply" and deps.certificates is not None:
        # The stack's apply waits for validation only so long: ask ACM why it failed.
        try:
            state = await deps.certificates.state(app.spec.aws.region, domain.name, owner)
        except ReconcileError:
            return result   # the apply's own error says more than "cannot ask ACM"
        if state.pending:
            return _certificate_pending(app, deps, state, dict(result.fields))
        if state.failed:
            message = certificate.failed_message(domain, state)
            stalled = failed(app, PermanentError(message, reason=certificate.FAILED_REASON), deps.redactor,
                             step="certificate", infra_applied=False, **{k: v for k, v in result.fields.items()
                                                                        if k != "lastError"})
            return _with_certificate(stalled, (False, "ValidationFailed", stalled.report.message))
    if result.report.infra_applied:
        return _with_certificate(result, certificate.issued(domain))
    return result


def _with_certificate(result: Result, state: tuple[bool, str, str]) -> Result:
    return replace(result, report=replace(result.report, certificate=state))


def _certificate_pending(app: LLMApp, deps: Deps, state: CertificateState, fields: dict[str, Any]) -> Result:
    assert app.spec.domain is not None
    recheck = deps.settings.certificate_recheck_seconds
    message = shorten(certificate.pending_message(app.spec.domain, state, recheck))
    report = Report(Outcome.RETRYING, certificate.PENDING_REASON, message, app.ref.generation, infra_applied=False,
                    step="certificate", certificate=(False, "PendingValidation", message))
    return Result(report, {**fields, "lastError": message},
                  error=Waiting(message, reason=certificate.PENDING_REASON, delay=recheck))


async def _converge(
    app: LLMApp, deps: Deps, previous: Previous, progress: ProgressHook = _no_progress, *, drift_check: bool = False,
    background: bool = False,
) -> Result:
    """One pass of the infrastructure and what follows it. `drift_check`: plan even though the
    inputs are unchanged, to find changes made outside the operator (applied only with
    spec.driftDetection.autoRemediate). `background`: nobody is waiting for this pass (a scheduled
    drift check): its run takes a drift slot."""
    generation = app.ref.generation
    if app.spec.suspend:
        return Result(Report(Outcome.SUSPENDED, "Suspended",
                             "spec.suspend is true: no Terraform runs until it is false", generation))

    step = "policy"
    try:
        granted = await grant_of(app, deps)
        step = "secrets"
        secret_arns, rotated = await _app_secret_arns(app, deps, previous)
        step = "render"
        ws = workspace_of(app, deps, granted, secret_arns)
        require_same_state(previous.state, ws.backend.location, granted.policy)
    except ReconcileError as exc:
        return failed(app, exc, deps.redactor, step=step)

    fields: dict[str, Any] = {"lastAttemptedDigest": ws.digest, "lastError": None,
                              "appSecrets": sorted(secret_arns) or None, "state": ws.backend.location}
    approved = approved_plan(app, previous, ws.digest)
    drift: tuple[bool, str] | None = None
    plan: PlanSummary | None = None
    recovered = None
    if ws.digest != previous.last_applied_digest and approved is None and not drift_check:
        try:
            recovered = await _applied_but_not_told(deps, ws)
        except ReconcileError as exc:
            return failed(app, exc, deps.redactor, step="record", **fields)
    if ws.digest == previous.last_applied_digest and approved is None and not drift_check:
        outputs: Outputs = dict(previous.outputs)
        message = "infrastructure matches the spec"
    elif recovered is not None:
        # These very inputs were applied, but the status write that would have said so was lost
        # (an API server timeout, a restart): no second plan and apply, the record's outputs.
        outputs = recovered
        message = "applied already: the applied record has these inputs applied (that apply's status was never written)"
        fields.update(lastAppliedDigest=ws.digest, url=url_from(outputs), outputs=outputs)
    else:
        try:
            runner = deps.runner_for(app)
            # A scheduled drift check takes a slot of the drift share; spec changes get freed slots first.
            async with deps.gate.slot(drift=drift_check and background and approved is None):
                step = "backend"
                await deps.backend.ensure(ws.backend)
                step = "plan"
                await progress(Report(Outcome.IN_PROGRESS, "Planning", "terraform init and plan",
                                      generation, step=step))
                await runner.init(ws)
                if approved is None:
                    ws = await _with_running_image(app, deps, previous, ws)
                plan = approved or await runner.plan(ws)
                if approved is None:
                    fields.update(review_fields(plan))
                    check_policy(plan)
                    check_cost_ceiling(plan, granted)
                    if drift_check:
                        drift = drift_found(plan)
                        drifted = [f"{address}: {action}" for address, action in plan.resources[:20]]
                        fields["drift"] = {"checkedAt": deps.clock(), "resources": drifted}
                        if not plan.has_changes or not app.spec.drift_detection.auto_remediate:
                            return Result(Report(Outcome.UNCHANGED, "UpToDate", "infrastructure matches the spec",
                                                 generation, infra_applied=True, drift=drift),
                                          {"drift": fields["drift"]})
                    held = hold_reasons(app, plan)
                    if plan.has_changes and held:
                        await runner.keep(ws, plan)
                        return awaiting_approval(app, plan, ws.digest, held, fields)
                step = "record"
                record = await _record_intent(app, deps, ws, secret_arns)
                step = "apply"
                await progress(Report(Outcome.IN_PROGRESS, "Applying",
                                      f"terraform apply: {plan.add} to add, {plan.change} to change, "
                                      f"{plan.destroy} to destroy", generation, step=step))
                outputs = await runner.apply(ws, plan)
                step = "record"
                if record is not None and deps.records is not None:
                    await deps.records.write(ws.backend, record.model_copy(update={
                        "applied_digest": ws.digest, "outputs": dict(outputs), "updated_at": deps.clock()}))
        except ReconcileError as exc:
            if approved is not None and exc.reason == "StalePlan":
                # The state moved on since the plan was approved: that plan can never apply.
                exc = TransientError(f"the approved plan {approved.plan_id} is stale (the state changed since); "
                                     "planning again", reason="StalePlan")
                fields["plan"] = {**previous.plan, "pending": False}
            return failed(app, exc, deps.redactor, step=step, infra_applied=False, **fields)
        message = (f"applied: {plan.add} added, {plan.change} changed, {plan.destroy} destroyed"
                   if plan.has_changes else "applied: no changes")
        if drift is not None and drift[0]:
            message = f"drift remediated: {drift[1]}"
            drift = (False, f"remediated: {drift[1]}")
        fields.update(lastAppliedDigest=ws.digest, url=url_from(outputs), outputs=outputs,
                      plan=plan_fields(plan, ws.digest, pending=False))

    try:
        if rotated and deps.app_secrets is not None and outputs.get("ecs_service_name"):
            step = "rollout"
            # Same ARNs, new secret versions: ECS reads secrets at task start, so roll the tasks.
            await deps.app_secrets.roll_service(app.spec.aws.region, str(outputs.get("ecs_cluster_name")),
                                                str(outputs["ecs_service_name"]))
            message += "; app secrets rotated, service redeployed"
        step = "rollout"
        # A recovered apply counts as just applied: the pass that made it may have stopped before
        # deploying Terraform's revision (a restart between apply and rollout).
        rolled = await _roll_out(app, deps, previous, outputs, applied_now=plan is not None or recovered is not None)
        if rolled is not None:
            fields["rollout"] = rolled.status
        step = "sign-in"
        signed = await _sync_sign_in(app, deps, previous, outputs)
        if signed is not None:
            fields["signIn"] = signed
        # The GitHub environment before the rollout's verdict: a pipeline's first deploy needs its names.
        step = "github"
        github_status, moved = await _sync_github(app, deps, previous, outputs, ws)
        step = "health"
        deployed = rolled.deployed if rolled is not None else None
        health = await _app_health(app, deps, outputs) if deployed is None or deployed[0] else None
    except ReconcileError as exc:
        if step == "github":
            metrics.GITHUB_SYNC_FAILURES.labels(reason=exc.reason).inc()
        return failed(app, exc, deps.redactor, step=step, infra_applied=True,
                      github_synced=False if step == "github" else None, **fields)
    if github_status is not None:
        fields["github"] = github_status
    warnings = tuple(moved)
    synced = True if github_status is not None else None
    plan_pending = False if plan is not None else None
    if rolled is not None and rolled.error is not None:
        if rolled.replan:
            fields.pop("lastAppliedDigest", None)   # the CD deployed meanwhile: plan again with its image
        return failed(app, rolled.error, deps.redactor, step="rollout", infra_applied=True, github_synced=synced,
                      deployed=rolled.deployed, **fields)
    if deployed is not None and not deployed[0]:
        # WaitingForImage (no tasks until it is pushed) or RollingOut: looked at again, not retried.
        _, reason, detail = deployed
        waiting = Waiting(detail, reason=reason, delay=deps.settings.app_health_recheck_seconds)
        report = Report(Outcome.RETRYING, reason, detail, generation, infra_applied=True, github_synced=synced,
                        step="image" if reason == "WaitingForImage" else "rollout", deployed=deployed,
                        plan_pending=plan_pending, drift=drift)
        return Result(report, fields, error=waiting, warnings=warnings)
    if health is not None and not health[0]:
        healthy, reason, detail = health
        waiting = Waiting(detail, reason=reason, delay=deps.settings.app_health_recheck_seconds)
        report = Report(Outcome.RETRYING, reason, detail, generation, infra_applied=True, github_synced=synced,
                        step="health", deployed=deployed, app_health=health, plan_pending=plan_pending,
                        drift=drift)
        return Result(report, fields, error=waiting, warnings=warnings)
    applied = plan is not None or recovered is not None
    outcome = Outcome.APPLIED if applied else Outcome.UNCHANGED
    reason = "Applied" if applied else "UpToDate"
    return Result(Report(outcome, reason, message, generation, infra_applied=True, github_synced=synced,
                         deployed=deployed, app_health=health, plan_pending=plan_pending, drift=drift), fields,
                  warnings=warnings)


# -- approval and guardrails (pure) ---------------------------------------------------------------

def approved_plan(app: LLMApp, previous: Previous, digest: str) -> PlanSummary | None:
    """The pending plan spec.approvePlan names, if it was made from exactly these inputs."""
    pending = previous.plan
    if (app.spec.approve_plan in ("auto", "manual") or not pending.get("pending")
            or pending.get("id") != app.spec.approve_plan or pending.get("digest") != digest):
        return None
    return PlanSummary(has_changes=True, add=int(pending.get("add", 0)), change=int(pending.get("change", 0)),
                       destroy=int(pending.get("destroy", 0)), replace=int(pending.get("replace", 0)),
                       plan_id=str(pending["id"]))


class Hold(NamedTuple):
    reason: str   # the condition reason: ApprovalRequired, DestructiveChange, CostLimitExceeded
    text: str


def hold_reasons(app: LLMApp, plan: PlanSummary) -> list[Hold]:
    """Why this plan must wait for a human: approval mode, a destructive change, the cost limit."""
    reasons = []
    if app.spec.approve_plan != "auto":
        reasons.append(Hold("ApprovalRequired", "spec.approvePlan is not auto: every plan waits for approval"))
    review = plan.review
    if review is not None and review.destructive and not app.spec.terraform.allow_destructive_changes:
        shown = ", ".join(review.destructive[:5]) + (" …" if len(review.destructive) > 5 else "")
        reasons.append(Hold("DestructiveChange", f"destroys or replaces protected resources ({shown}); "
                            "spec.terraform.allowDestructiveChanges is false"))
    limit = app.spec.terraform.max_monthly_cost
    if review is not None and review.monthly_cost is not None and limit is not None and review.monthly_cost > limit:
        reasons.append(Hold("CostLimitExceeded", f"monthly cost estimate {review.monthly_cost:.2f} {review.currency} "
                            f"is above spec.terraform.maxMonthlyCost {limit:.2f}"))
    return reasons


def require_same_state(recorded: str | None, resolved: str, policy: str) -> None:
    """The state stays where the object's first run put it: a policy edit that moves it would
    otherwise plan a second stack in an empty state (and a teardown would find nothing to destroy)."""
    if recorded and recorded != resolved:
        raise PermanentError(f"tenant policy {policy!r} now puts this object's state at {resolved}, but it lives at "
                             f"{recorded}: move the state there first (or restore the policy's backend)",
                             reason="BackendChanged")


def check_cost_ceiling(plan: PlanSummary, granted: Grant) -> None:
    """The platform's ceiling is not the tenant's to approve past: such a plan never applies."""
    review, ceiling = plan.review, granted.max_monthly_cost
    if review is None or review.monthly_cost is None or ceiling is None or not plan.has_changes:
        return
    if review.monthly_cost > ceiling:
        raise PermanentError(f"monthly cost estimate {review.monthly_cost:.2f} {review.currency} is above the "
                             f"ceiling {ceiling:.2f} of tenant policy {granted.policy!r}: nothing applied (make "
                             "the app smaller, or ask the platform team)", reason="CostCeilingExceeded")


def check_policy(plan: PlanSummary) -> None:
    if plan.review is not None and plan.review.violations:
        rules = ", ".join(plan.review.violated_rules)
        raise PermanentError(f"plan violates policy {rules}: {'; '.join(plan.review.violations[:5])} "
                             "(fix the module input, or waive a rule in spec.terraform.policy.skip)",
                             reason="PolicyViolation")


def review_fields(plan: PlanSummary) -> dict[str, Any]:
    review = plan.review
    if review is None:
        return {}
    fields: dict[str, Any] = {"policy": {"violations": list(review.violations), "waived": list(review.waived)}}
    if review.monthly_cost is not None:
        fields["cost"] = {"monthlyEstimate": review.monthly_cost, "monthlyEstimateAtMinTasks": review.monthly_cost_min,
                          "currency": review.currency, "priceTableDate": review.price_table_date,
                          "lines": list(review.cost_lines)}
    return fields


def drift_found(plan: PlanSummary) -> tuple[bool, str]:
    if not plan.has_changes:
        return False, "no drift: the infrastructure matches the last apply"
    shown = ", ".join(f"{address} ({action})" for address, action in plan.resources[:5])
    more = f" and {len(plan.resources) - 5} more" if len(plan.resources) > 5 else ""
    return True, f"{len(plan.resources)} resource(s) drifted: {shown}{more}"


# The condition reason of a held plan: the weightiest hold.
_HOLD_PRIORITY = ("DestructiveChange", "CostLimitExceeded", "ApprovalRequired")


def awaiting_approval(app: LLMApp, plan: PlanSummary, digest: str, holds: list[Hold],
                      fields: dict[str, Any]) -> Result:
    note = ""
    if app.spec.approve_plan not in ("auto", "manual"):
        note = f"spec.approvePlan {app.spec.approve_plan} does not name a pending plan for these inputs (stale); "
    reason = min((hold.reason for hold in holds), key=_HOLD_PRIORITY.index)
    texts = [hold.text for hold in holds]
    message = (f"{note}plan {plan.plan_id} (+{plan.add} ~{plan.change} -{plan.destroy}) waits for approval: "
               f"{'; '.join(texts)}. To apply exactly this plan, set spec.approvePlan: {plan.plan_id}")
    destructive = list(plan.review.destructive) if plan.review else []
    changes = [f"{address}: {action}" for address, action in plan.resources[:HELD_PLAN_RESOURCES]]
    fields = {**fields, "plan": {**plan_fields(plan, digest, pending=True), "reasons": texts,
                                 "destructive": destructive, "resources": changes}}
    return Result(Report(Outcome.AWAITING_APPROVAL, reason, message, app.ref.generation, plan_pending=True), fields)


async def _with_running_image(app: LLMApp, deps: Deps, previous: Previous, ws: Workspace) -> Workspace:
    """rollout pipeline: plan with the image the service runs, so the CD's deploy is no change."""
    if deps.service is None or app.spec.app.rollout_mode != "pipeline":
        return ws
    return with_running_image(ws, await running_image(deps.service, app.spec.aws.region, previous.outputs))


async def _roll_out(app: LLMApp, deps: Deps, previous: Previous, outputs: Outputs, *,
                    applied_now: bool) -> RolloutResult | None:
    if deps.service is None:
        return None
    return await roll_out(deps.service, app.spec.aws.region, app.spec.app.rollout_mode, app.spec.app.desired_count,
                          outputs, previous.rollout, applied_now=applied_now, scaling=scaling_tasks(app))


async def _sync_sign_in(app: LLMApp, deps: Deps, previous: Previous, outputs: Outputs) -> dict[str, Any] | None:
    """spec.auth.oidc: the rule authenticates with the provider, then forwards to the app (engine/sign_in.py)."""
    oidc = app.spec.auth.oidc if app.spec.auth is not None else None
    rule_arn, target_group = str(outputs.get("sign_in_oidc_rule_arn") or ""), str(outputs.get("target_group_arn") or "")
    if oidc is None or deps.sign_in is None or not rule_arn or not target_group:
        return None
    if deps.secrets is None:
        raise PermanentError("this operator cannot read Kubernetes Secrets", reason="SecretsUnavailable")
    ref = oidc.client_secret_ref
    secret = await deps.secrets.read(app.ref.namespace, ref.name, ref.key, reader=app.ref.name)
    wanted = sign_in.action_of(oidc)
    wanted_digest = sign_in.digest(wanted, secret, target_group, _digest_key(deps.settings))
    rule = await deps.sign_in.observe(app.spec.aws.region, rule_arn)
    if sign_in.needs_setting(wanted, wanted_digest, target_group, rule, previous.sign_in):
        await deps.sign_in.set_up(app.spec.aws.region, rule_arn, wanted, secret, target_group)
    return {"provider": oidc.issuer, "clientId": oidc.client_id, "digest": wanted_digest}   # status.signIn


async def _app_health(app: LLMApp, deps: Deps, outputs: Outputs) -> tuple[bool, str, str] | None:
    """AppHealthy from ECS and the ALB (and optionally an HTTP probe); None when not checked."""
    cluster, service = outputs.get("ecs_cluster_name"), outputs.get("ecs_service_name")
    if deps.health is None or not deps.settings.app_health or not cluster or not service:
        return None
    url = url_from(outputs) if deps.settings.app_health_probe else None
    verdict = await deps.health(app.spec.aws.region, str(cluster), str(service),
                                endpoint_url=deps.settings.aws_endpoint_url, url=url,
                                probe_path=app.spec.app.health_check_path if url else None)
    return verdict.healthy, verdict.reason, shorten(deps.redactor.redact(verdict.message))


# -- GitHub glue ---------------------------------------------------------------------------------

async def _github_target(app: LLMApp, deps: Deps) -> Any:
    github = app.spec.github
    assert github.token_secret_ref is not None
    ref = github.token_secret_ref
    if deps.secrets is None:
        raise PermanentError("this operator cannot read Kubernetes Secrets", reason="SecretsUnavailable")
    require_allowed_host(github.api_url, deps.settings.github_hosts)   # before the token is read
    token = await deps.secrets.read(app.ref.namespace, ref.name, ref.key, reader=app.ref.name)
    return GitHubTarget(repository=github.repository, environment=app.github_environment or app.spec.environment,
                        api_url=github.api_url, token=token, ca_bundle=_ca_bundle(deps.settings),
                        digest_key=_digest_key(deps.settings))


def _ca_bundle(settings: Settings) -> str | None:
    return str(settings.github_ca_bundle) if settings.github_ca_bundle else None


def _digest_key(settings: Settings) -> bytes:
    return settings.digest_key.get_secret_value().encode() if settings.digest_key else b""


def synced_from_status(data: Mapping[str, Any] | None) -> Any:
    if not data or not data.get("digest"):
        return None
    return GitHubSyncRecord(
        environment=str(data.get("environment", "")),
        variables=tuple(data.get("variables") or ()),
        secrets=tuple(data.get("secrets") or ()),
        digest=str(data["digest"]),
        created_environment=bool(data.get("createdEnvironment", False)),
        synced_at=str(data.get("syncedAt", "")),
    )


def _record_to_status(record: Any) -> dict[str, Any]:
    return {
        "environment": record.environment,
        "variables": list(record.variables),
        "secrets": list(record.secrets),
        "digest": record.digest,
        "createdEnvironment": record.created_environment,
        "syncedAt": record.synced_at,
    }


async def _sync_github(app: LLMApp, deps: Deps, previous: Previous, outputs: Outputs, ws: Workspace
                       ) -> tuple[dict[str, Any] | None, list[str]]:
    """Sync the environment; when the target (API URL, repository, environment) moved, first remove
    what was written to the old one. Returns the status and the warnings of a move that could not
    clean up the old target."""
    github = app.spec.github
    if github.token_secret_ref is None or deps.github is None or not deps.settings.github_sync:
        return None, []
    target = await _github_target(app, deps)
    desired = DesiredGitHubState(
        variables=github_variables(outputs, deps.settings.github_variable_outputs, github.variables),
        secrets=await read_secret_values(app, deps, github.secrets),
    )
    previous_sync = synced_from_status(previous.github)
    shown = previous.github or {}
    unmoved = (shown.get("repository") == target.repository and shown.get("apiUrl") == target.api_url
               and shown.get("environment") == target.environment)
    # The record is read only when status cannot vouch for the target (it moved, or an older status).
    record = await deps.records.read(ws.backend) if deps.records is not None and not unmoved else None
    known = record.github if record is not None else None
    warnings: list[str] = []
    if known is not None and not known.same_target(target.api_url, target.repository, target.environment):
        warnings = await remove_github_names(deps, app.ref.namespace, app.ref.name, known, "the GitHub target moved")
        previous_sync = None
    synced = await deps.github.sync(target, desired, previous_sync)
    if deps.records is not None and (previous_sync is None or previous_sync.digest != synced.digest):
        record = record or await deps.records.read(ws.backend)
    if record is not None and deps.records is not None and (
            known is None or known.digest != synced.digest or not known.same_target(
                target.api_url, target.repository, target.environment)):
        ref = github.token_secret_ref
        await deps.records.write(ws.backend, record.model_copy(update={"github": GitHubRecord(
            api_url=target.api_url, repository=target.repository, environment=synced.environment,
            token_secret=ref.name, token_key=ref.key, variables=synced.variables, secrets=synced.secrets,
            created_environment=synced.created_environment, digest=synced.digest, synced_at=synced.synced_at),
            "updated_at": deps.clock()}))
    return {**_record_to_status(synced), "repository": target.repository, "apiUrl": target.api_url}, warnings


async def remove_github_names(deps: Deps, namespace: str, app_name: str, known: GitHubRecord, why: str
                              ) -> list[str]:
    """Remove the names the record says we manage at `known`'s target, with the token its Secret
    holds now. A token that no longer reads, or no longer may, leaves them: said as a warning."""
    left = (f"{why}: {len(known.variables)} variable(s) and {len(known.secrets)} secret(s) were left in "
            f"{known.repository} environment {known.environment}")
    if deps.github is None or deps.secrets is None or not known.token_secret or not known.token_key:
        return [f"{left} (no token to remove them with)"]
    try:
        require_allowed_host(known.api_url, deps.settings.github_hosts)
        token = await deps.secrets.read(namespace, known.token_secret, known.token_key, reader=app_name)
        old = GitHubTarget(repository=known.repository, environment=known.environment, api_url=known.api_url,
                           token=token, ca_bundle=_ca_bundle(deps.settings))
        await deps.github.remove(old, GitHubSyncRecord(
            environment=known.environment, variables=known.variables, secrets=known.secrets, digest=known.digest,
            created_environment=known.created_environment, synced_at=known.synced_at))
    except PermanentError as exc:
        return [f"{left}: {shorten(deps.redactor.redact(exc.message), 300)}"]
    except TransientError as exc:
        if exc.reason not in ("SecretNotFound", "SecretKeyNotFound"):
            raise   # GitHub or the API is down: retry, the token may still work
        return [f"{left}: the token Secret {namespace}/{known.token_secret} is gone"]
    return []

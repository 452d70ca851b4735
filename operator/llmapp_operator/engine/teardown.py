"""Teardown: destroy what the applied record says was built, in steps that resume, and always end.

The record beside the state (api/record.py) is the truth, not status: a teardown after a restore
without status, or after the operator was killed during the first apply, still destroys. It needs
no valid spec either (the record holds the module, backend and rendered variables), and
`deletionPolicy` is read from the raw object, so an invalid spec can still be orphaned.

Steps, each recorded as done in the record so a retry (or a restarted operator) skips it:
terraform destroy (only when there is a record or a state: never "destroy succeeded" when nothing
ran), the app secrets in Secrets Manager, the GitHub names (a missing environment is done; a
token Secret that is gone leaves them, with a Warning naming what was left), the saved plans,
and last the record itself. Imports no kopf.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from llmapp_operator.api.conditions import Outcome, Report
from llmapp_operator.api.errors import PermanentError, ReconcileError
from llmapp_operator.api.record import AppliedRecord, GitHubRecord, TeardownProgress
from llmapp_operator.api.spec import BackendSpec, DeletionPolicy, InvalidSpec, LLMApp
from llmapp_operator.api.tenancy import TenantPolicy, assumed_role, backend_for
from llmapp_operator.api.workspace import BackendConfig, from_record, kept_addresses, render_backend
from llmapp_operator.engine.reconcile import (
    Deps,
    Previous,
    Result,
    failed,
    grant_of,
    owner_of,
    remove_github_names,
    require_same_state,
    synced_from_status,
    workspace_of,
)
from llmapp_operator.runners.modules import load_module


def deletion_policy(body: Mapping[str, Any]) -> DeletionPolicy:
    """Read even from a spec the model refuses: the way out of a stuck deletion must always work."""
    value = ((body.get("spec") or {}).get("deletionPolicy"))
    return DeletionPolicy.ORPHAN if value == DeletionPolicy.ORPHAN.value else DeletionPolicy.DELETE


async def backend_of(body: Mapping[str, Any], deps: Deps) -> tuple[BackendConfig, TenantPolicy]:
    """Where the state (and the record) of this object is, from the raw spec and the tenant policy
    of its namespace: the backend is immutable, so this is where the applies went."""
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    policy = await deps.policy_for(namespace)
    raw = (body.get("spec") or {}).get("terraform") or {}
    raw = raw if isinstance(raw, Mapping) else {}
    ref = raw.get("backendRef") if isinstance(raw.get("backendRef"), str) else None
    where = f"tenant policy {policy.name!r} (namespace {namespace})"
    try:
        legacy = BackendSpec.model_validate(raw.get("backend") or {})
    except ValidationError:
        raise PermanentError(f"spec.terraform.backend is not a backend of {where}",
                             reason="BackendNotAllowed") from None
    named = backend_for(policy, ref, legacy, where)
    return render_backend(named, namespace, name, deps.settings), policy


async def teardown(body: Mapping[str, Any], deps: Deps) -> Result:
    meta = body.get("metadata") or {}
    generation = int(meta.get("generation") or 0)
    if deletion_policy(body) is DeletionPolicy.ORPHAN:
        return Result(Report(Outcome.DELETING, "Orphaned",
                             "deletionPolicy is Orphan: AWS resources, state and GitHub settings are kept",
                             generation))
    try:
        app: LLMApp | None = LLMApp.from_body(body)
    except InvalidSpec:
        app = None
    step = "policy"
    warnings: list[str] = []
    try:
        try:
            backend, policy = await backend_of(body, deps)
        except PermanentError as exc:
            if exc.reason == "NoPolicy" and not (body.get("status") or {}).get("lastAttemptedDigest"):
                # Refused from the start: it never ran Terraform, so nothing can be left to destroy.
                # (With a policy gone after an apply there may be: that stays Stalled, for a human.)
                return Result(Report(Outcome.DELETING, "NothingToDestroy", f"{exc.message}; this LLMApp never "
                                     "ran Terraform, so there is nothing to destroy", generation))
            raise
        require_same_state((body.get("status") or {}).get("state"), backend.location, policy.name)
        step = "record"
        if deps.records is None:
            raise PermanentError("this operator has no applied-record store", reason="RecordsUnavailable")
        await deps.backend.ensure(backend)
        record = await deps.records.read(backend)
        if record is None:
            return await _teardown_without_record(body, app, deps, backend, generation)
        progress = record.teardown or TeardownProgress(started_at=deps.clock())
        record = await _save(deps, backend, record, progress)
        if not progress.destroyed:
            step = "destroy"
            role = assumed_role(policy.role, record.namespace, record.name, record.uid) if policy.role else None
            ws = from_record(record, deps.settings, load_module(record.module, deps.settings.modules), role)
            runner = deps.runner_for(app) if app is not None else deps.runner
            async with deps.gate.slot():
                await runner.init(ws)
                await runner.destroy(ws)
            progress = progress.model_copy(update={"destroyed": True})
            record = await _save(deps, backend, record, progress)
        kept = kept_message(record.outputs)
        if kept and kept not in warnings:
            warnings.append(kept)
        if not progress.app_secrets_removed:
            step = "secrets"
            if deps.app_secrets is not None:
                await deps.app_secrets.delete_all(record.region, _owner(meta))
            progress = progress.model_copy(update={"app_secrets_removed": True})
            record = await _save(deps, backend, record, progress)
        if not progress.github_removed:
            step = "github"
            if record.github is not None and _any(record.github.variables, record.github.secrets,
                                                  record.github.created_environment):
                warnings += await remove_github_names(deps, str(meta.get("namespace", "")), str(meta.get("name", "")),
                                                      record.github,
                                                      "the LLMApp was deleted")
            progress = progress.model_copy(update={"github_removed": True})
            record = await _save(deps, backend, record, progress)
        if not progress.plans_removed:
            step = "plans"
            await deps.records.delete_plans(backend)
            progress = progress.model_copy(update={"plans_removed": True})
            record = await _save(deps, backend, record, progress)
        step = "record"
        await deps.records.delete(backend)
    except ReconcileError as exc:
        return _failed(body, app, exc, deps, step)
    warnings += await _forget(deps, str(meta.get("uid", "")))
    return Result(Report(Outcome.DELETING, "Destroyed", "terraform destroy ran; app secrets, GitHub names and "
                         "saved plans removed" + ("; " + kept if kept else ""), generation, infra_applied=False),
                  warnings=tuple(warnings))


def kept_message(outputs: Mapping[str, Any]) -> str:
    """What the teardown left standing on purpose (spec.app.storage.keepOnDelete), for an Event."""
    addresses = kept_addresses(outputs)
    if not addresses:
        return ""
    bucket = str(outputs.get("storage_bucket") or "")
    what = f"the storage bucket {bucket} and its objects" if bucket else ", ".join(addresses)
    return (f"kept, not destroyed: {what} (spec.app.storage.keepOnDelete); it is no longer in any Terraform "
            "state: delete it yourself once nothing needs it")


async def _teardown_without_record(body: Mapping[str, Any], app: LLMApp | None, deps: Deps, backend: BackendConfig,
                                   generation: int) -> Result:
    """An object applied by an operator older than the record (or never applied)."""
    assert deps.records is not None
    warnings: list[str] = []
    step = "destroy"
    try:
        state = await deps.records.state_exists(backend)
        if state:
            if app is None:
                raise PermanentError("there is state to destroy but no applied record, and the spec is invalid: fix "
                                     "the spec, or set spec.deletionPolicy: Orphan to keep the AWS resources",
                                     reason="InvalidSpec")
            ws = workspace_of(app, deps, await grant_of(app, deps))
            runner = deps.runner_for(app)
            async with deps.gate.slot():
                await runner.init(ws)
                await runner.destroy(ws)
        step = "secrets"
        if deps.app_secrets is not None and app is not None:
            await deps.app_secrets.delete_all(app.spec.aws.region, owner_of(app))
        step = "github"
        synced = synced_from_status((body.get("status") or {}).get("github"))
        if synced is not None and app is not None and app.spec.github.token_secret_ref is not None:
            ref = app.spec.github.token_secret_ref
            warnings += await remove_github_names(deps, app.ref.namespace, app.ref.name, GitHubRecord(
                api_url=app.spec.github.api_url, repository=app.spec.github.repository,
                environment=synced.environment, token_secret=ref.name, token_key=ref.key,
                variables=synced.variables, secrets=synced.secrets, created_environment=synced.created_environment,
                digest=synced.digest), "the LLMApp was deleted")
        step = "plans"
        await deps.records.delete_plans(backend)
    except ReconcileError as exc:
        return _failed(body, app, exc, deps, step)
    warnings += await _forget(deps, str((body.get("metadata") or {}).get("uid", "")))
    if not state:
        return Result(Report(Outcome.DELETING, "NothingToDestroy", "no Terraform state and no applied record: "
                             "nothing was built, nothing was destroyed", generation), warnings=tuple(warnings))
    return Result(Report(Outcome.DELETING, "Destroyed", "terraform destroy ran (no applied record: the state and "
                         "the spec were used)", generation, infra_applied=False), warnings=tuple(warnings))


async def _forget(deps: Deps, uid: str) -> list[str]:
    """Last, and never in the way of the finalizer: what the runners keep for the object. Finished
    Jobs also go by their TTL, so a refusal here is a Warning, not a stuck deletion."""
    warnings = []
    for runner in (deps.runner, deps.job_runner):
        if runner is None:
            continue
        try:
            await runner.forget(uid)
        except (ReconcileError, OSError) as exc:
            warnings.append(f"left behind by the {type(runner).__name__}: {deps.redactor.redact(str(exc))[:200]}")
    return warnings


async def _save(deps: Deps, backend: BackendConfig, record: AppliedRecord, progress: TeardownProgress
                ) -> AppliedRecord:
    assert deps.records is not None
    record = record.model_copy(update={"teardown": progress, "updated_at": deps.clock()})
    await deps.records.write(backend, record)
    return record


def _any(*parts: Any) -> bool:
    return any(bool(part) for part in parts)


def _owner(meta: Mapping[str, Any]) -> dict[str, str]:
    return {"namespace": str(meta.get("namespace", "")), "name": str(meta.get("name", "")),
            "uid": str(meta.get("uid", ""))}


def _failed(body: Mapping[str, Any], app: LLMApp | None, exc: ReconcileError, deps: Deps, step: str) -> Result:
    if app is not None:
        return failed(app, exc, deps.redactor, step=step, deleting=True)
    from llmapp_operator.obs.redaction import shorten

    meta = body.get("metadata") or {}
    message = shorten(deps.redactor.redact(exc.message))
    return Result(Report(Outcome.DELETING, exc.reason, message, int(meta.get("generation") or 0), step=step),
                  {"lastError": message}, error=exc)


__all__ = ["Previous", "backend_of", "deletion_policy", "teardown"]

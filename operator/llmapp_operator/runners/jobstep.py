"""What runs inside a Terraform Job: `llmapp-operator job-step --request FILE`.

The same code path as the local runner (terraform.LocalRunner on the pod's own emptyDir), fed by
the request ConfigMap the operator mounted, answered with a result ConfigMap owned by the Job.
A request the signing key does not authenticate is refused before anything is read from it
(no workspace, no Terraform, no result); the result is MACed with the same key.
Saved plans cross from the plan Job to the apply Job through the state bucket (aws.PlanStore).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import pathlib
import signal
from collections.abc import Mapping
from typing import Any

from llmapp_operator.api.errors import PermanentError, ReconcileError, TransientError
from llmapp_operator.api.workspace import BackendConfig, ReviewOptions, Workspace
from llmapp_operator.config import Settings
from llmapp_operator.kube.client import KubeClient, load_config, namespaced
from llmapp_operator.obs.redaction import REDACTOR
from llmapp_operator.runners.job import (
    MAC_SUFFIX,
    RESULT_KEY,
    JobRequest,
    JobResult,
    configmap_manifest,
    error_to_dict,
    job_labels,
    role_from_dict,
    signed,
    signing_key,
    summary_from_dict,
    summary_to_dict,
    verify_request,
)
from llmapp_operator.runners.local import LocalRunner
from llmapp_operator.runners.modules import load_module

log = logging.getLogger("llmapp_operator.job")
JOB_USER_AGENT = "llmapp-operator-job"


def workspace_for(request: JobRequest, settings: Settings) -> Workspace:
    """The operator's Workspace, rebuilt from the request and this image's own copy of the module."""
    module = load_module(request.module, settings.modules)
    if module.digest != request.module_digest:
        raise PermanentError(f"module {request.module!r} in the Job's image differs from the operator's: "
                             "run the operator and its Jobs from the same image", reason="ModuleMismatch")
    return Workspace(
        uid=request.uid, directory=settings.workdir / "workspaces" / request.uid, module=module,
        tfvars=dict(request.tfvars), backend=BackendConfig(**request.backend),
        timeout_seconds=request.timeout_seconds, lock_timeout_seconds=request.lock_timeout_seconds,
        digest=request.digest, namespace=request.namespace, name=request.name,
        review=review_options(request.review) if request.review is not None else None,
        role=role_from_dict(request.role), keep_on_destroy=tuple(request.keep_on_destroy),
    )


def review_options(data: Mapping[str, Any]) -> ReviewOptions:
    tasks, scaling = data.get("desired_tasks"), data.get("scaling_tasks")
    return ReviewOptions(region=str(data["region"]), policy_skip=tuple(data.get("policy_skip") or ()),
                         price_override=data.get("price_override"),
                         desired_tasks=int(tasks) if tasks is not None else None,
                         scaling_tasks=(int(scaling[0]), int(scaling[1])) if scaling else None)


def reply(request: JobRequest, *, plan: dict[str, Any] | None = None, outputs: dict[str, Any] | None = None,
          error: ReconcileError | None = None) -> JobResult:
    """The answer to exactly this request: its step, object, inputs and nonce."""
    return JobResult(step=request.step, uid=request.uid, digest=request.digest, nonce=request.nonce,
                     ok=error is None, plan=plan, outputs=outputs,
                     error=error_to_dict(error) if error is not None else None)


async def run_step(request: JobRequest, settings: Settings, *, runner: LocalRunner | None = None) -> JobResult:
    runner = runner or LocalRunner(settings)
    try:
        ws = workspace_for(request, settings)
        await runner.init(ws)
        if request.step == "plan":
            summary = await runner.plan(ws)
            if summary.has_changes:
                await runner.keep(ws, summary)   # this pod's disk goes with it: the apply Job fetches it
            return reply(request, plan=summary_to_dict(summary))
        if request.step == "apply":
            if request.plan is None:
                raise PermanentError("an apply Job needs the plan it applies", reason="JobRequestInvalid")
            plan = summary_from_dict(request.plan)
            outputs = await runner.apply(ws, plan)   # fetches the kept plan, refused unless its hash is its id
            with contextlib.suppress(ReconcileError):  # applied; a leftover plan file is harmless
                await runner.plans.delete(ws.backend, plan.plan_id)
            return reply(request, outputs=outputs)
        if request.step == "output":
            return reply(request, outputs=await runner.output(ws))
        if request.step == "destroy":
            await runner.destroy(ws)
            return reply(request)
        raise PermanentError(f"unknown step {request.step!r}", reason="JobRequestInvalid")
    except ReconcileError as exc:
        return reply(request, error=exc)


def write_result(result: JobResult, request: JobRequest, key: bytes) -> None:
    """The result ConfigMap, owned by the Job; needs `create configmaps` in the job namespace."""
    load_config()
    labels = job_labels(request.uid, request.digest, request.step)
    body = configmap_manifest(request.result_name, request.job_namespace,
                              signed(key, "result", RESULT_KEY, result.to_json()),
                              request.job_name, request.job_uid, labels)
    # Its own user agent: audit logs (and the RBAC test) tell the Job from the operator.
    answer = KubeClient(user_agent=JOB_USER_AGENT).request_blocking(
        "POST", namespaced("v1", request.job_namespace, "configmaps"), body=body)
    if not answer.ok:
        raise RuntimeError(f"{answer.status}: {answer.message()}")


async def _run_until_sigterm(request: JobRequest, settings: Settings) -> JobResult:
    """The step, stopped cleanly by SIGTERM. As a container's PID 1 this process gets no default
    signal handling: without a handler SIGTERM would be ignored and Terraform SIGKILLed at the end of
    the grace period, its lock held. The handler cancels the step, which sends SIGTERM to Terraform's
    process group and waits the kill grace for it to save its state and release the lock."""
    task = asyncio.ensure_future(run_step(request, settings))
    loop = asyncio.get_running_loop()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        stopped = True
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, stop)
    try:
        return await task
    except asyncio.CancelledError:
        if not stopped:
            raise
        return reply(request, error=TransientError(f"terraform {request.step} was stopped (the Job's pod got "
                                                   "SIGTERM); the operator retries", reason="JobStopped"))
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def read_request(request_path: pathlib.Path, key: bytes) -> JobRequest:
    """The mounted request, only if the key authenticates it (the MAC is mounted beside it)."""
    data = {request_path.name: request_path.read_text()}
    mac_path = request_path.with_name(request_path.name + MAC_SUFFIX)
    if mac_path.exists():
        data[mac_path.name] = mac_path.read_text()
    request = verify_request(data, key)
    if request is None:
        raise ValueError("the request is not authenticated by the signing key")
    return request


def main(request_path: pathlib.Path) -> int:
    try:
        settings = Settings.from_env()
        key = signing_key(settings)
    except (ValueError, ReconcileError) as exc:
        log.error("the Job cannot run: %s", exc)
        return 2
    try:
        request = read_request(request_path, key)
    except (OSError, ValueError) as exc:
        # Nothing from an unauthenticated request is used, not even where to write a result.
        log.error("refusing the Job request %s: %s", request_path, exc if isinstance(exc, ValueError)
                  else type(exc).__name__)
        return 2
    result = asyncio.run(_run_until_sigterm(request, settings))
    log.info("terraform %s for %s/%s: %s", request.step, request.namespace, request.name,
             "ok" if result.ok else json.dumps(result.error))
    try:
        write_result(result, request, key)
    except Exception as exc:  # the operator then reports JobResultMissing and retries
        log.error("cannot write the result ConfigMap %s: %s", request.result_name,
                  REDACTOR.redact(str(exc))[:300])
        return 3
    return 0 if result.ok else 1

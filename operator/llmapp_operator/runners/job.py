"""Terraform steps as Kubernetes Jobs: the Runner protocol, executed in the operator's own image.

Each step (plan, apply, output, destroy) is one Job in the job namespace (the operator's own, or a
runner namespace the chart names), never in the tenant's: the runner identity and the Jobs'
inputs stay out of reach of whoever may create pods where the LLMApps live. A Job's inputs travel
in a request ConfigMap (variables, backend, module name, the tenant role: never a secret) with an
HMAC-SHA256 over it; the pod runs `llmapp-operator job-step`, the local runner's code path
(jobstep.py), which refuses a request whose MAC does not verify, and answers with a result
ConfigMap MACed the same way. The key sits in a Secret only the operator and the runner read.
The operator trusts a result only when its MAC verifies and it answers exactly the request, and
adopts a running Job after a restart only when its request verifies. Saved plans go to the state
bucket (aws.PlanStore), so an apply Job applies exactly the plan an earlier plan Job made. Both
ConfigMaps are owned by the Job, so the Job's TTL removes all three; a deleted LLMApp's Jobs are
removed by their uid label.

A Job that fails, is evicted or runs past its deadline becomes a TransientError with its own
reason (the handler backs off); a restarted operator finds a still-running Job by its labels and
waits for it instead of starting a second one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar, Protocol, Self

from pydantic import ConfigDict, TypeAdapter, ValidationError

from llmapp_operator.api.errors import PermanentError, ReconcileError, TransientError
from llmapp_operator.api.tenancy import AssumedRole
from llmapp_operator.api.workspace import Workspace
from llmapp_operator.config import Settings
from llmapp_operator.kube.client import Answer, KubeClient, namespaced
from llmapp_operator.obs.redaction import REDACTOR, Redactor, shorten
from llmapp_operator.review.verdict import PlanReview
from llmapp_operator.runners.base import Outputs, PlanSummary

REQUEST_KEY = "request.json"
RESULT_KEY = "result.json"
MAC_SUFFIX = ".hmac"   # request.json.hmac, result.json.hmac: beside what they authenticate
SIGNING_KEY_ENV = "LLMAPP_JOB_SIGNING_KEY"
SIGNING_SECRET_KEY = "key"   # the key's entry in the signing Secret
REQUEST_MOUNT = "/llmapp/request"
WORKDIR_MOUNT = "/work"
CONTAINER = "terraform"
LABEL_UID = "llmops.dev/uid"
LABEL_STEP = "llmops.dev/step"
LABEL_DIGEST = "llmops.dev/digest"
ANNOTATION_NONCE = "llmops.dev/nonce"
ANNOTATION_LLMAPP = "llmops.dev/llmapp"   # namespace/name of the LLMApp a Job works for (for people)
MANAGED_BY = {"app.kubernetes.io/managed-by": "llmapp-operator", "app.kubernetes.io/name": "llmapp-terraform"}
JOB_STOP_MARGIN_SECONDS = 30  # job-step's own exit after Terraform stopped (result write, log flush)
DEADLINE_GRACE_SECONDS = 120   # init (module copy, providers from the image's cache) on top of the step
STEPS = ("plan", "apply", "output", "destroy")
# Settings a Job must not inherit from the operator: it serves no probes or metrics, and its
# workspace is the pod's own emptyDir.
_JOB_ENV_OVERRIDES = {"LLMAPP_WORKDIR": WORKDIR_MOUNT, "LLMAPP_METRICS_PORT": "",
                      "LLMAPP_LIVENESS_ENDPOINT": "", "LLMAPP_DEFAULT_RUNNER": "local"}


# -- what travels between the operator and the Job ------------------------------------------------

class WireMessage:
    """A dataclass that travels as JSON in a ConfigMap, read back strictly: a field of the wrong
    type or one this version does not know is an error (operator and Job run the same image)."""

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid", strict=True)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, text: str) -> Self:
        try:
            parsed: Self = TypeAdapter(cls).validate_json(text)
        except ValidationError as exc:
            raise ValueError(f"not a valid {cls.__name__}: {exc.error_count()} problem(s)") from None
        return parsed


# -- authentication: HMAC-SHA256 with the install's signing key ---------------------------------

def mac(key: bytes, kind: str, text: str) -> str:
    """The MAC of a request or result text; `kind` keeps a request from passing as a result."""
    return hmac.new(key, f"{kind}\n{text}".encode(), hashlib.sha256).hexdigest()


def authentic(key: bytes, kind: str, text: str, claimed: str | None) -> bool:
    return bool(claimed) and hmac.compare_digest(mac(key, kind, text), str(claimed).strip())


def signed(key: bytes, kind: str, name: str, text: str) -> dict[str, str]:
    """ConfigMap data: the text and its MAC."""
    return {name: text, name + MAC_SUFFIX: mac(key, kind, text)}


def signing_key(settings: Settings) -> bytes:
    if settings.job_signing_key is None or len(settings.job_signing_key.get_secret_value()) < 32:
        raise PermanentError("the job runner needs a signing key of at least 32 characters (LLMAPP_JOB_SIGNING_KEY; "
                             "the chart creates it with jobRunner.enabled)", reason="JobRunnerNotEnabled")
    return settings.job_signing_key.get_secret_value().encode()


@dataclass(frozen=True)
class JobRequest(WireMessage):
    """Everything a Job needs to rebuild the Workspace; the operator's own settings come as env."""

    step: str
    namespace: str
    name: str
    uid: str
    digest: str
    module: str
    module_digest: str
    tfvars: Mapping[str, Any]
    backend: Mapping[str, Any]
    timeout_seconds: int
    lock_timeout_seconds: int
    nonce: str
    job_name: str
    plan: Mapping[str, Any] | None = None   # the plan an apply Job applies (PlanSummary as a dict)
    job_uid: str = ""   # set once the Job exists: the result ConfigMap is owned by it
    review: Mapping[str, Any] | None = None   # ReviewOptions as a dict
    job_namespace: str = ""   # where the Job, its request and its result live
    role: Mapping[str, Any] | None = None   # the tenant role (AssumedRole as a dict)
    keep_on_destroy: tuple[str, ...] = ()   # state addresses a destroy leaves standing

    @property
    def result_name(self) -> str:
        return f"{self.job_name}-result"



@dataclass(frozen=True)
class JobResult(WireMessage):
    """What a Job reports back. `error` is already redacted by the runner that raised it."""

    step: str
    uid: str
    digest: str
    nonce: str
    ok: bool
    plan: Mapping[str, Any] | None = None
    outputs: Mapping[str, Any] | None = None
    error: Mapping[str, str] | None = None   # {"kind": transient|permanent, "reason", "message"}

    def raise_error(self) -> None:
        if self.ok:
            return
        error = self.error or {}
        message, reason = str(error.get("message", "the Job reported a failure")), str(error.get("reason", "JobFailed"))
        if error.get("kind") == "permanent":
            raise PermanentError(message, reason=reason)
        raise TransientError(message, reason=reason)


def summary_to_dict(plan: PlanSummary) -> dict[str, Any]:
    wire: dict[str, Any] = json.loads(json.dumps(asdict(plan)))   # tuples become lists, as on the wire
    return wire


def summary_from_dict(data: Mapping[str, Any]) -> PlanSummary:
    return PlanSummary(
        has_changes=bool(data.get("has_changes")), add=int(data.get("add", 0)), change=int(data.get("change", 0)),
        destroy=int(data.get("destroy", 0)), replace=int(data.get("replace", 0)),
        resources=tuple((str(address), str(action)) for address, action in data.get("resources", ())),
        plan_id=str(data.get("plan_id", "")),
        review=review_from_dict(data["review"]) if data.get("review") else None,
    )


def review_from_dict(data: Mapping[str, Any]) -> PlanReview:
    def strings(name: str) -> tuple[str, ...]:
        return tuple(str(item) for item in data.get(name) or ())
    cost, lowest = data.get("monthly_cost"), data.get("monthly_cost_min")
    return PlanReview(violations=strings("violations"), waived=strings("waived"), destructive=strings("destructive"),
                      monthly_cost=float(cost) if cost is not None else None,
                      monthly_cost_min=float(lowest) if lowest is not None else None,
                      currency=str(data.get("currency", "")),
                      price_table_date=str(data.get("price_table_date", "")), cost_lines=strings("cost_lines"))


def error_to_dict(exc: ReconcileError) -> dict[str, str]:
    kind = "permanent" if isinstance(exc, PermanentError) else "transient"
    return {"kind": kind, "reason": exc.reason, "message": exc.message}


def verify_result(data: Mapping[str, str] | None, request: JobRequest, key: bytes) -> JobResult:
    """The result ConfigMap's content, accepted only when the runner's key authenticates it and it
    answers exactly this request. Anything else is ignored: whoever wrote it, it was not a Job."""
    if not data or RESULT_KEY not in data:
        raise TransientError(f"Job {request.job_name} finished without writing its result",
                             reason="JobResultMissing")
    if not authentic(key, "result", data[RESULT_KEY], data.get(RESULT_KEY + MAC_SUFFIX)):
        raise TransientError(f"Job {request.job_name}: its result is not authenticated by the runner's key "
                             "(ignored; nothing of it was used)", reason="JobResultForged")
    try:
        result = JobResult.from_json(data[RESULT_KEY])
    except ValueError:
        raise TransientError(f"Job {request.job_name} wrote an unreadable result", reason="JobResultInvalid") from None
    answered = (result.step, result.uid, result.digest, result.nonce)
    if answered != (request.step, request.uid, request.digest, request.nonce):
        raise TransientError(f"Job {request.job_name}: the result does not answer this request (ignored)",
                             reason="JobResultInvalid")
    return result


def verify_request(data: Mapping[str, str] | None, key: bytes) -> JobRequest | None:
    """A request ConfigMap's request, if the runner's key authenticates it."""
    if not data or REQUEST_KEY not in data or not authentic(key, "request", data[REQUEST_KEY],
                                                            data.get(REQUEST_KEY + MAC_SUFFIX)):
        return None
    try:
        return JobRequest.from_json(data[REQUEST_KEY])
    except ValueError:
        return None


def role_to_dict(role: AssumedRole | None) -> dict[str, Any] | None:
    return None if role is None else asdict(role)


def role_from_dict(data: Mapping[str, Any] | None) -> AssumedRole | None:
    return None if data is None else TypeAdapter(AssumedRole).validate_python(data, strict=False)


def request_for(ws: Workspace, step: str, job_name: str, nonce: str, job_namespace: str,
                plan: PlanSummary | None = None) -> JobRequest:
    return JobRequest(
        step=step, namespace=ws.namespace, name=ws.name, uid=ws.uid, digest=ws.digest,
        module=ws.module.name, module_digest=ws.module.digest, tfvars=dict(ws.tfvars),
        backend=asdict(ws.backend), timeout_seconds=ws.timeout_seconds,
        lock_timeout_seconds=ws.lock_timeout_seconds, nonce=nonce, job_name=job_name,
        plan=summary_to_dict(plan) if plan is not None else None,
        review=asdict(ws.review) if ws.review is not None else None,
        job_namespace=job_namespace, role=role_to_dict(ws.role), keep_on_destroy=tuple(ws.keep_on_destroy),
    )


# -- manifests (pure) -----------------------------------------------------------------------------

def job_name(ws: Workspace, step: str, nonce: str) -> str:
    """`<name>-<step>-<nonce>`, at most 52 characters: Job names end up in pod labels (63) and the
    Job controller adds a suffix to pod names."""
    return f"{ws.name[:52 - len(step) - len(nonce) - 2].rstrip('-.')}-{step}-{nonce}"


def job_labels(uid: str, digest: str, step: str) -> dict[str, str]:
    return {**MANAGED_BY, LABEL_UID: uid, LABEL_STEP: step, LABEL_DIGEST: digest.removeprefix("sha256:")[:63]}


def label_selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def job_owner(job_name: str, job_uid: str) -> dict[str, Any]:
    """The Job owns its ConfigMaps. Without `blockOwnerDeletion`: on clusters with
    OwnerReferencesPermissionEnforcement (OpenShift) setting it needs `update` on `jobs/finalizers`,
    which neither the operator nor the runner has (nor needs)."""
    return {"apiVersion": "batch/v1", "kind": "Job", "name": job_name, "uid": job_uid,
            "controller": True, "blockOwnerDeletion": False}


def job_manifest(request: JobRequest, ws: Workspace, settings: Settings) -> dict[str, Any]:
    """The Job for one step: one try (backoffLimit 0: the operator owns retries and backoff), a
    deadline from the run timeout, a TTL, the runner ServiceAccount and a restricted pod."""
    labels = job_labels(ws.uid, ws.digest, request.step)
    env = {**settings.to_env(), **_JOB_ENV_OVERRIDES}
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": settings.job_image,
        "args": ["job-step", "--request", f"{REQUEST_MOUNT}/{REQUEST_KEY}"],
        "env": [*({"name": key, "value": value} for key, value in sorted(env.items())),
                # The key from its Secret (never a plain value in the Job), and where the Job is.
                {"name": SIGNING_KEY_ENV, "valueFrom": {"secretKeyRef": {
                    "name": settings.job_signing_secret, "key": SIGNING_SECRET_KEY}}},
                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
        "resources": {"requests": {"cpu": settings.job_cpu, "memory": settings.job_memory},
                      "limits": {"memory": settings.job_memory}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "request", "mountPath": REQUEST_MOUNT, "readOnly": True},
                         {"name": "work", "mountPath": WORKDIR_MOUNT},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }
    if settings.job_env_secret:
        container["envFrom"] = [{"secretRef": {"name": settings.job_env_secret}}]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            # No owner reference: owners must be in the same namespace. The uid label finds them.
            "name": request.job_name, "namespace": request.job_namespace, "labels": labels,
            "annotations": {ANNOTATION_NONCE: request.nonce, ANNOTATION_LLMAPP: f"{ws.namespace}/{ws.name}"},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": ws.timeout_seconds + DEADLINE_GRACE_SECONDS,
            "ttlSecondsAfterFinished": settings.job_ttl_seconds,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": settings.job_service_account,
                    # job-step forwards SIGTERM to Terraform and waits the kill grace for it to
                    # save its state and release the lock; the kubelet's SIGKILL comes after.
                    "terminationGracePeriodSeconds": int(settings.kill_grace_seconds) + JOB_STOP_MARGIN_SECONDS,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                        "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [{"name": "request", "configMap": {"name": request.job_name}},
                                {"name": "work", "emptyDir": {}},
                                {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def configmap_manifest(name: str, namespace: str, data: Mapping[str, str], job_name: str, job_uid: str,
                       labels: Mapping[str, str]) -> dict[str, Any]:
    """A ConfigMap owned by the Job: the Job's TTL (or its removal) removes it too. It does not
    block the Job's deletion: neither the operator nor the runner may set finalizers on Jobs."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if job_uid:
        meta["ownerReferences"] = [job_owner(job_name, job_uid)]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data)}


# -- reading a Job's status (pure) ---------------------------------------------------------------

@dataclass(frozen=True)
class JobState:
    finished: bool
    succeeded: bool = False
    reason: str = ""
    message: str = ""


def job_state(job: Mapping[str, Any]) -> JobState:
    """Complete/Failed conditions first (what the Job controller concludes), counters otherwise."""
    status = job.get("status") or {}
    for condition in status.get("conditions") or ():
        if condition.get("status") != "True":
            continue
        if condition.get("type") in ("Complete", "SuccessCriteriaMet"):
            return JobState(finished=True, succeeded=True)
        if condition.get("type") in ("Failed", "FailureTarget"):
            return JobState(finished=True, reason=str(condition.get("reason") or "Failed"),
                            message=str(condition.get("message") or ""))
    if status.get("succeeded"):
        return JobState(finished=True, succeeded=True)
    if status.get("failed"):
        return JobState(finished=True, reason="BackoffLimitExceeded")
    return JobState(finished=False)


def failure_error(request: JobRequest, state: JobState, pods: Sequence[Mapping[str, Any]], log_tail: str,
                  redactor: Redactor) -> TransientError:
    """Why a Job failed without a result, as a retryable error with a reason users can search."""
    what = f"terraform {request.step} Job {request.job_name}"
    if state.reason == "DeadlineExceeded":
        return TransientError(f"{what} ran past its deadline and was stopped", reason="JobDeadlineExceeded")
    evicted = [pod for pod in pods if (pod.get("status") or {}).get("reason") in ("Evicted", "Preempting")
               or _disrupted(pod)]
    if evicted:
        return TransientError(f"{what}: its pod was evicted from the node", reason="JobEvicted")
    detail = shorten(redactor.redact(" ".join(log_tail.split()[-60:]))) if log_tail else state.message
    return TransientError(f"{what} failed ({state.reason}){': ' + detail if detail else ''}", reason="JobFailed")


def _disrupted(pod: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "DisruptionTarget" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


# -- the Kubernetes calls ------------------------------------------------------------------------

class JobApi(Protocol):
    async def create(self, namespace: str, plural: str, body: Mapping[str, Any]) -> dict[str, Any]: ...
    async def delete(self, namespace: str, plural: str, name: str) -> None: ...
    async def get(self, namespace: str, plural: str, name: str) -> dict[str, Any] | None: ...
    async def list_objects(self, namespace: str, plural: str, selector: str) -> list[dict[str, Any]]: ...
    async def log_tail(self, namespace: str, pod: str, lines: int) -> str: ...


class KubeJobApi:
    """batch/v1 Jobs, ConfigMaps and Pods through the operator's one Kubernetes client, as dicts.

    RBAC: jobs create/get/list/delete, configmaps create/get, pods list, pods/log get. A 403 is a
    permanent error that carries the API server's own message, not a retry storm."""

    _GROUPS = {"jobs": "batch/v1", "configmaps": "v1", "pods": "v1"}

    def __init__(self, client: KubeClient | None = None) -> None:
        self.client = client or KubeClient()

    async def create(self, namespace: str, plural: str, body: Mapping[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = await self._call("POST", plural, namespace, body=dict(body))
        return created

    async def delete(self, namespace: str, plural: str, name: str) -> None:
        await self._call("DELETE", plural, namespace, name=name, body={"propagationPolicy": "Background"})

    async def get(self, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await self._call("GET", plural, namespace, name=name)
        return found

    async def list_objects(self, namespace: str, plural: str, selector: str) -> list[dict[str, Any]]:
        listed = await self._call("GET", plural, namespace, query=[("labelSelector", selector)])
        return list((listed or {}).get("items") or [])

    async def log_tail(self, namespace: str, pod: str, lines: int) -> str:
        answer = await self.client.request("GET", namespaced("v1", namespace, "pods", pod, "log"),
                                           query=[("container", CONTAINER), ("tailLines", str(lines))])
        if not answer.ok:
            raise api_error("GET", "pods/log", namespace, answer)
        return answer.data.decode(errors="replace")

    async def _call(self, method: str, plural: str, namespace: str, *, name: str | None = None,
                    body: dict[str, Any] | None = None, query: list[tuple[str, str]] | None = None) -> Any:
        answer = await self.client.request(method, namespaced(self._GROUPS[plural], namespace, plural, name),
                                           body=body, query=query or ())
        if answer.status == 404 and method in ("GET", "DELETE"):
            return None
        if not answer.ok:
            raise api_error(method, plural, namespace, answer)
        return answer.json()


def api_error(method: str, plural: str, namespace: str, answer: Answer) -> ReconcileError:
    """An API server refusal, with the server's own message: a 403 says whether RBAC, an admission
    plugin or a terminating namespace refused, and that matters to whoever fixes it."""
    status, message = answer.status, answer.message()
    what = f"{method} {plural} in {namespace}"
    if status == 403 and any(cause.get("reason") == "NamespaceTerminating" for cause in answer.causes()):
        return PermanentError(f"{what}: {message}", reason="NamespaceTerminating")
    if status == 403:
        return PermanentError(f"{what} was refused: {message}", reason="JobForbidden")
    if status == 409:
        return TransientError(f"{what}: {message}", reason="JobConflict")
    if status in (400, 422):
        return PermanentError(f"{what} was rejected: {message}", reason="JobInvalid")
    return TransientError(f"{what}: {status} {message}", reason="KubernetesApi")


# -- the runner ----------------------------------------------------------------------------------

@dataclass
class JobRunner:
    """The Runner protocol over Jobs; `jobs_created` lets tests and benchmarks count them."""

    settings: Settings
    api: JobApi = field(default_factory=KubeJobApi)
    redactor: Redactor = REDACTOR
    jobs_created: int = 0

    async def init(self, ws: Workspace) -> None:
        """Nothing here: each Job starts from an empty disk and runs its own `terraform init`."""

    async def plan(self, ws: Workspace) -> PlanSummary:
        result = await self._run(ws, "plan")
        return summary_from_dict(result.plan or {})

    async def apply(self, ws: Workspace, plan: PlanSummary) -> Outputs:
        if not plan.has_changes:
            return await self.output(ws)
        result = await self._run(ws, "apply", plan)
        return dict(result.outputs or {})

    async def keep(self, ws: Workspace, plan: PlanSummary) -> None:
        """Nothing to do: the plan Job already stored its plan in the state bucket."""

    async def output(self, ws: Workspace) -> Outputs:
        return dict((await self._run(ws, "output")).outputs or {})

    async def destroy(self, ws: Workspace) -> None:
        await self._run(ws, "destroy")

    @property
    def namespace(self) -> str:
        return self.settings.job_namespace_or_own

    async def _run(self, ws: Workspace, step: str, plan: PlanSummary | None = None) -> JobResult:
        if not self.settings.job_image:
            raise PermanentError("spec.terraform.runner is job, but this operator's job runner is not enabled "
                                 "(chart value jobRunner.enabled, which sets LLMAPP_JOB_IMAGE and grants its RBAC)",
                                 reason="JobRunnerNotEnabled")
        key = signing_key(self.settings)
        request = await self._adopt(ws, step, key) or await self._start(ws, step, plan, key)
        result = await self._outcome(ws, request, key)
        result.raise_error()
        return result

    async def _adopt(self, ws: Workspace, step: str, key: bytes) -> JobRequest | None:
        """A Job for the same object, step and inputs that is still running (the operator was
        restarted while it ran): wait for it rather than run Terraform twice. Only a Job whose
        request the runner's key authenticates: labels alone are anyone's to copy."""
        selector = label_selector(job_labels(ws.uid, ws.digest, step))
        for job in await self.api.list_objects(self.namespace, "jobs", selector):
            if job_state(job).finished:
                continue  # finished ones are history; their TTL removes them
            configmap = await self.api.get(self.namespace, "configmaps", job["metadata"]["name"])
            request = verify_request((configmap or {}).get("data"), key)
            if request is not None and (request.uid, request.digest, request.step, request.job_name) == (
                    ws.uid, ws.digest, step, job["metadata"]["name"]):
                return request
        return None

    async def _start(self, ws: Workspace, step: str, plan: PlanSummary | None, key: bytes) -> JobRequest:
        nonce = secrets.token_hex(4)
        request = request_for(ws, step, job_name(ws, step, nonce), nonce, self.namespace, plan)
        # The Job first, then its request owned by it: the pod waits for the ConfigMap volume.
        job = await self.api.create(self.namespace, "jobs", job_manifest(request, ws, self.settings))
        self.jobs_created += 1
        request = replace(request, job_uid=str(job["metadata"].get("uid", "")))
        try:
            await self.api.create(self.namespace, "configmaps", configmap_manifest(
                request.job_name, self.namespace, signed(key, "request", REQUEST_KEY, request.to_json()),
                request.job_name, request.job_uid, job_labels(ws.uid, ws.digest, step)))
        except ReconcileError:
            # A Job without its request would wait for the volume forever, and each retry would add one.
            try:
                await self.api.delete(self.namespace, "jobs", request.job_name)
            except ReconcileError as exc:
                raise TransientError(f"the request of Job {request.job_name} could not be created and the Job "
                                     f"could not be removed: {exc}", reason="JobLeftBehind") from None
            raise
        return request

    async def _outcome(self, ws: Workspace, request: JobRequest, key: bytes) -> JobResult:
        name = request.job_name
        give_up = time.monotonic() + ws.timeout_seconds + 2 * DEADLINE_GRACE_SECONDS
        while True:
            current = await self.api.get(self.namespace, "jobs", name)
            if current is None:
                raise TransientError(f"Job {name} was deleted before it finished", reason="JobVanished")
            state = job_state(current)
            if state.finished:
                break
            if time.monotonic() > give_up:  # the Job controller should have enforced the deadline
                raise TransientError(f"Job {name} is still not finished after its deadline", reason="JobUnresponsive")
            await asyncio.sleep(self.settings.job_poll_seconds)
        result_map = await self.api.get(self.namespace, "configmaps", request.result_name)
        if result_map is not None or state.succeeded:
            # A recorded failure speaks for itself; a success must have recorded its result.
            return verify_result((result_map or {}).get("data"), request, key)
        selector = label_selector({"job-name": name})
        pods = await self.api.list_objects(self.namespace, "pods", selector)
        tail = await self._log_tail(pods)
        raise failure_error(request, state, pods, tail, self.redactor)

    async def _log_tail(self, pods: list[dict[str, Any]]) -> str:
        for pod in pods:
            try:
                return await self.api.log_tail(self.namespace, pod["metadata"]["name"], 20)
            except ReconcileError:
                continue  # the log is a courtesy; the failure reason stands without it
        return ""

    async def forget(self, uid: str) -> None:
        """The Jobs (and so their ConfigMaps) of a deleted LLMApp: no owner reference can reach
        across namespaces, so its uid label finds them."""
        if not self.settings.job_image:
            return
        jobs = await self.api.list_objects(self.namespace, "jobs", label_selector({**MANAGED_BY, LABEL_UID: uid}))
        for job in jobs:
            await self.api.delete(self.namespace, "jobs", job["metadata"]["name"])

"""Terraform steps as Kubernetes Jobs: the Runner protocol, executed in the operator's own image.

Each step (plan, apply, output, destroy) is one Job in the LLMApp's namespace, owned by the
LLMApp. Its inputs travel in a request ConfigMap (variables, backend, module name: never a secret);
the pod runs `llmapp-operator job-step`, which is the local runner's code path (jobstep.py), and
writes a result ConfigMap the operator verifies against the request's nonce before trusting it.
Saved plans go to the state bucket (aws.PlanStore), so an apply Job applies exactly the plan an
earlier plan Job made. Both ConfigMaps are owned by the Job, so the Job's TTL removes all three.

A Job that fails, is evicted or runs past its deadline becomes a TransientError with its own
reason (the handler backs off); a restarted operator finds a still-running Job by its labels and
waits for it instead of starting a second one.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol, Self

from llmapp_operator import GROUP, VERSION
from llmapp_operator.api.errors import PermanentError, ReconcileError, TransientError
from llmapp_operator.api.workspace import Workspace
from llmapp_operator.config import Settings
from llmapp_operator.kube.client import Answer, KubeClient, namespaced
from llmapp_operator.obs.redaction import REDACTOR, Redactor, shorten
from llmapp_operator.review.verdict import PlanReview
from llmapp_operator.runners.base import Outputs, PlanSummary

REQUEST_KEY = "request.json"
RESULT_KEY = "result.json"
REQUEST_MOUNT = "/llmapp/request"
WORKDIR_MOUNT = "/work"
CONTAINER = "terraform"
LABEL_UID = "llmops.dev/uid"
LABEL_STEP = "llmops.dev/step"
LABEL_DIGEST = "llmops.dev/digest"
ANNOTATION_NONCE = "llmops.dev/nonce"
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
    """A dataclass that travels as JSON in a ConfigMap; unknown keys from another version are ignored."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, text: str) -> Self:
        data = json.loads(text)
        fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
        return cls(**{name: data[name] for name in fields if name in data})


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
    cost = data.get("monthly_cost")
    return PlanReview(violations=strings("violations"), waived=strings("waived"), destructive=strings("destructive"),
                      monthly_cost=float(cost) if cost is not None else None, currency=str(data.get("currency", "")),
                      price_table_date=str(data.get("price_table_date", "")))


def error_to_dict(exc: ReconcileError) -> dict[str, str]:
    kind = "permanent" if isinstance(exc, PermanentError) else "transient"
    return {"kind": kind, "reason": exc.reason, "message": exc.message}


def verify_result(data: Mapping[str, str] | None, request: JobRequest) -> JobResult:
    """The result ConfigMap's content, accepted only when it answers exactly this request."""
    if not data or RESULT_KEY not in data:
        raise TransientError(f"Job {request.job_name} finished without writing its result",
                             reason="JobResultMissing")
    try:
        result = JobResult.from_json(data[RESULT_KEY])
    except (ValueError, TypeError):
        raise TransientError(f"Job {request.job_name} wrote an unreadable result", reason="JobResultInvalid") from None
    answered = (result.step, result.uid, result.digest, result.nonce)
    if answered != (request.step, request.uid, request.digest, request.nonce):
        raise TransientError(f"Job {request.job_name}: the result does not answer this request (ignored)",
                             reason="JobResultInvalid")
    return result


def request_for(ws: Workspace, step: str, job_name: str, nonce: str, plan: PlanSummary | None = None) -> JobRequest:
    return JobRequest(
        step=step, namespace=ws.namespace, name=ws.name, uid=ws.uid, digest=ws.digest,
        module=ws.module.name, module_digest=ws.module.digest, tfvars=dict(ws.tfvars),
        backend=asdict(ws.backend), timeout_seconds=ws.timeout_seconds,
        lock_timeout_seconds=ws.lock_timeout_seconds, nonce=nonce, job_name=job_name,
        plan=summary_to_dict(plan) if plan is not None else None,
        review=asdict(ws.review) if ws.review is not None else None,
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


def owner_reference(api_version: str, kind: str, name: str, uid: str, *, block_owner_deletion: bool
                    ) -> dict[str, Any]:
    """`blockOwnerDeletion: true` makes a foreground deletion of the owner wait for this object; on
    clusters with OwnerReferencesPermissionEnforcement (OpenShift) setting it needs `update` on the
    owner's `finalizers` subresource, so it is set only where that right is granted (the LLMApp)."""
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid,
            "controller": True, "blockOwnerDeletion": block_owner_deletion}


def job_manifest(request: JobRequest, ws: Workspace, settings: Settings) -> dict[str, Any]:
    """The Job for one step: one try (backoffLimit 0: the operator owns retries and backoff), a
    deadline from the run timeout, a TTL, the runner ServiceAccount and a restricted pod."""
    labels = job_labels(ws.uid, ws.digest, request.step)
    env = {**settings.to_env(), **_JOB_ENV_OVERRIDES}
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": settings.job_image,
        "args": ["job-step", "--request", f"{REQUEST_MOUNT}/{REQUEST_KEY}"],
        "env": [{"name": key, "value": value} for key, value in sorted(env.items())],
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
            "name": request.job_name, "namespace": ws.namespace, "labels": labels,
            "annotations": {ANNOTATION_NONCE: request.nonce},
            "ownerReferences": [owner_reference(f"{GROUP}/{VERSION}", "LLMApp", ws.name, ws.uid,
                                                block_owner_deletion=True)],
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


def configmap_manifest(name: str, namespace: str, key: str, text: str, job_name: str, job_uid: str,
                       labels: Mapping[str, str]) -> dict[str, Any]:
    """A ConfigMap owned by the Job: the Job's TTL (or the LLMApp's deletion) removes it too. It does
    not block the Job's deletion: neither the operator nor the runner may set finalizers on Jobs."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if job_uid:
        meta["ownerReferences"] = [owner_reference("batch/v1", "Job", job_name, job_uid, block_owner_deletion=False)]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {key: text}}


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

    async def _run(self, ws: Workspace, step: str, plan: PlanSummary | None = None) -> JobResult:
        if not self.settings.job_image:
            raise PermanentError("spec.terraform.runner is job, but this operator's job runner is not enabled "
                                 "(chart value jobRunner.enabled, which sets LLMAPP_JOB_IMAGE and grants its RBAC)",
                                 reason="JobRunnerNotEnabled")
        request = await self._adopt(ws, step) or await self._start(ws, step, plan)
        result = await self._outcome(ws, request)
        result.raise_error()
        return result

    async def _adopt(self, ws: Workspace, step: str) -> JobRequest | None:
        """A Job for the same object, step and inputs that is still running (the operator was
        restarted while it ran): wait for it rather than run Terraform twice."""
        selector = label_selector(job_labels(ws.uid, ws.digest, step))
        for job in await self.api.list_objects(ws.namespace, "jobs", selector):
            if job_state(job).finished:
                continue  # finished ones are history; their TTL removes them
            configmap = await self.api.get(ws.namespace, "configmaps", job["metadata"]["name"])
            if configmap and REQUEST_KEY in (configmap.get("data") or {}):
                return JobRequest.from_json(configmap["data"][REQUEST_KEY])
        return None

    async def _start(self, ws: Workspace, step: str, plan: PlanSummary | None) -> JobRequest:
        nonce = secrets.token_hex(4)
        request = request_for(ws, step, job_name(ws, step, nonce), nonce, plan)
        # The Job first, then its request owned by it: the pod waits for the ConfigMap volume.
        job = await self.api.create(ws.namespace, "jobs", job_manifest(request, ws, self.settings))
        self.jobs_created += 1
        request = replace(request, job_uid=str(job["metadata"].get("uid", "")))
        try:
            await self.api.create(ws.namespace, "configmaps", configmap_manifest(
                request.job_name, ws.namespace, REQUEST_KEY, request.to_json(), request.job_name, request.job_uid,
                job_labels(ws.uid, ws.digest, step)))
        except ReconcileError:
            # A Job without its request would wait for the volume forever, and each retry would add one.
            try:
                await self.api.delete(ws.namespace, "jobs", request.job_name)
            except ReconcileError as exc:
                raise TransientError(f"the request of Job {request.job_name} could not be created and the Job "
                                     f"could not be removed: {exc}", reason="JobLeftBehind") from None
            raise
        return request

    async def _outcome(self, ws: Workspace, request: JobRequest) -> JobResult:
        name = request.job_name
        give_up = time.monotonic() + ws.timeout_seconds + 2 * DEADLINE_GRACE_SECONDS
        while True:
            current = await self.api.get(ws.namespace, "jobs", name)
            if current is None:
                raise TransientError(f"Job {name} was deleted before it finished", reason="JobVanished")
            state = job_state(current)
            if state.finished:
                break
            if time.monotonic() > give_up:  # the Job controller should have enforced the deadline
                raise TransientError(f"Job {name} is still not finished after its deadline", reason="JobUnresponsive")
            await asyncio.sleep(self.settings.job_poll_seconds)
        result_map = await self.api.get(ws.namespace, "configmaps", request.result_name)
        if result_map is not None or state.succeeded:
            # A recorded failure speaks for itself; a success must have recorded its result.
            return verify_result((result_map or {}).get("data"), request)
        selector = label_selector({"job-name": name})
        pods = await self.api.list_objects(ws.namespace, "pods", selector)
        tail = await self._log_tail(ws, pods)
        raise failure_error(request, state, pods, tail, self.redactor)

    async def _log_tail(self, ws: Workspace, pods: list[dict[str, Any]]) -> str:
        for pod in pods:
            try:
                return await self.api.log_tail(ws.namespace, pod["metadata"]["name"], 20)
            except ReconcileError:
                continue  # the log is a courtesy; the failure reason stands without it
        return ""

"""After apply: is the app actually up? The `AppHealthy` condition's verdict.

Reads the ECS service (its PRIMARY deployment, and when tasks are missing, why), the health of its ALB
targets, and optionally GETs a probe path. All reads are boto3/urllib calls made in one worker thread;
`judge` decides from what they returned, so the decision itself is testable without AWS.
"""

from __future__ import annotations

import asyncio
import http.client
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from typing import IO, Any

import botocore.exceptions

from llmapp_operator.cloud.clients import aws_errors, client
from llmapp_operator.cloud.ecs_service import describe_service, ecr_image_missing, images_of

Doc = Mapping[str, Any]  # one item as boto3 returns it (a service, a task, a target health description)

MESSAGE_LIMIT = 160  # condition messages stay one short line
# list_tasks promises no order: one page of stopped tasks (describe_tasks takes at most 100), sorted here.
STOPPED_TASKS_LOOKED_AT = 100
EVENTS_LOOKED_AT = 10  # ECS lists service events newest first


@dataclass(frozen=True)
class AppHealth:
    """The verdict: `reason` is a CamelCase condition reason, `message` one short line without secrets."""

    healthy: bool
    reason: str
    message: str


async def check_app_health(region: str, cluster: str, service: str, *, endpoint_url: str | None = None,
                           url: str | None = None, probe_path: str | None = None,
                           probe_timeout: float = 5.0) -> AppHealth:
    """Whether the app is up. Access denied -> PermanentError; throttling, network -> TransientError."""
    return await asyncio.to_thread(_check_blocking, region, cluster, service, endpoint_url, url, probe_path,
                                   probe_timeout)


def _check_blocking(region: str, cluster: str, service: str, endpoint_url: str | None, url: str | None,
                    probe_path: str | None, probe_timeout: float) -> AppHealth:
    # Each stage reads only what the verdict so far cannot do without: a failing service costs one call.
    with aws_errors(f"ECS service {cluster}/{service} ({region})", denied="AppHealthDenied",
                    unavailable="AppHealthUnavailable",
                    denied_hint="the operator's AWS identity may not read the service, its tasks and target groups"):
        ecs = client("ecs", region, endpoint_url)
        found = describe_service(ecs, cluster, service)
        if found is None:
            return judge(None)
        stopped: list[Doc] = []
        images: list[str] = []
        missing: list[str] = []
        if found.get("status") == "ACTIVE" and _running(found) < _desired(found):
            stopped = _stopped_tasks(ecs, cluster, service)
            images = [image for _, image in images_of(ecs, _task_definition(found))]
            missing = [image for image in images if ecr_image_missing(image, endpoint_url)]
        verdict = judge(found, stopped_tasks=stopped, images=images, missing_images=missing)
        if verdict.reason != "Healthy":
            return verdict
        target_health = _target_health(client("elbv2", region, endpoint_url), found)
        verdict = judge(found, target_health=target_health)
    # The probe's own failures are its verdict, never an AWS error: it runs outside aws_errors.
    if verdict.reason != "Healthy" or not url or not probe_path:
        return verdict
    return judge(found, target_health=target_health, probe_failure=probe(url, probe_path, probe_timeout))


# --- the decision -------------------------------------------------------------------------------------------


def judge(service: Doc | None, *, stopped_tasks: Sequence[Doc] = (), images: Sequence[str] = (),
          missing_images: Sequence[str] = (), target_health: Mapping[str, Sequence[Doc] | None] | None = None,
          probe_failure: str | None = None) -> AppHealth:
    """The verdict from already-fetched data, as boto3 returns it.

    `service`: a `describe_services` entry (None: missing). `stopped_tasks`: `describe_tasks` entries of
    its STOPPED tasks. `images`: the images of its task definition; `missing_images`: those ECR says
    were never pushed. `target_health`: TargetGroupArn -> TargetHealthDescriptions (None for a target
    group that does not exist; the whole mapping None when not looked at). `probe_failure`: what the
    HTTP probe found wrong, None when it passed or did not run.
    """
    if service is None or service.get("status") != "ACTIVE":
        return _service_not_found(service)
    running, desired = _running(service), _desired(service)
    # A never-pushed image first: ECS keeps such a rollout IN_PROGRESS (retrying) or marks it FAILED
    # (circuit breaker), so checked after the rollout it would read as a failure instead of as waiting.
    waiting = _waiting_for_image(service, stopped_tasks, images, missing_images) if running < desired else None
    if waiting is not None:
        return waiting
    rollout = _rollout(service)
    if rollout is not None:
        return rollout
    if running != desired:
        last = _last_stop_reason(service, stopped_tasks)
        return AppHealth(False, "TasksNotRunning", _short(f"running {running} of {desired} tasks"
                                                          + (f"; last stopped: {last}" if last else "")))
    if desired == 0:
        return AppHealth(True, "ScaledToZero", "the service is scaled to zero tasks")
    healthy_targets, unhealthy = _judge_targets(target_health)
    if unhealthy is not None:
        return unhealthy
    if probe_failure is not None:
        return AppHealth(False, "ProbeFailed", _short(probe_failure))
    message = f"{running}/{desired} tasks running"
    if target_health:
        message += f", {healthy_targets} healthy targets"
    return AppHealth(True, "Healthy", message)


def _service_not_found(service: Doc | None) -> AppHealth:
    if service is None:
        return AppHealth(False, "ServiceNotFound", "the ECS service does not exist")
    return AppHealth(False, "ServiceNotFound",
                     _short(f"the ECS service {service.get('serviceName', '')} is {service.get('status', 'unknown')}"))


def _primary(service: Doc) -> Doc | None:
    return next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), None)


def _rollout(service: Doc) -> AppHealth | None:
    # Services without the ECS deployment controller (CODE_DEPLOY, EXTERNAL) have no rolloutState.
    primary = _primary(service)
    if primary is None:
        return None
    state = primary.get("rolloutState")
    if state == "FAILED":
        why = primary.get("rolloutStateReason") or "no reason given"
        return AppHealth(False, "RolloutFailed", _short(f"deployment failed: {why}"))
    if state == "IN_PROGRESS":
        return AppHealth(False, "RollingOut", f"deployment in progress: running {primary.get('runningCount', 0)}"
                                              f" of {primary.get('desiredCount', 0)}")
    return None


# Real stop reasons: "CannotPullContainerError: ... failed to resolve ref <image>: not found", or the older
# "... manifest for <image> not found: manifest unknown", or "... repository ... does not exist". A pull
# error alone is not enough: a network or auth failure ("i/o timeout") is a failure, not a wait.
_PULL_ERROR = "cannotpullcontainererror"
_NOT_THERE = ("not found", "does not exist", "manifest unknown")


def _says_image_missing(text: str) -> bool:
    lowered = text.lower()
    return _PULL_ERROR in lowered and any(marker in lowered for marker in _NOT_THERE)


def _waiting_for_image(service: Doc, stopped_tasks: Sequence[Doc], images: Sequence[str],
                       missing_images: Sequence[str]) -> AppHealth | None:
    image = _pull_failure_image(service, stopped_tasks)
    if image is None and any(_says_image_missing(e.get("message", ""))
                             for e in service.get("events", [])[:EVENTS_LOOKED_AT]):
        image = images[0] if images else "the task definition's image"
    if image is None and missing_images:
        image = missing_images[0]
    if image is None:
        return None
    if _running(service) == 0:
        return AppHealth(False, "WaitingForImage", _short(f"waiting for the first image from CI (push to {image})"))
    # Some tasks run (an older image, or a tag since deleted): new ones still need CI to push this one.
    return AppHealth(False, "WaitingForImage", _short(f"waiting for the image from CI (push to {image}); running "
                                                      f"{_running(service)} of {_desired(service)} tasks"))


def _pull_failure_image(service: Doc, stopped_tasks: Sequence[Doc]) -> str | None:
    """The image of the service's most recent stopped task that could not pull it, or None."""
    for task in _service_tasks(service, stopped_tasks):
        for container in task.get("containers", []):
            if _says_image_missing(container.get("reason", "")):
                return str(container.get("image") or "the task definition's image")
        reason = str(task.get("stoppedReason", ""))
        if _says_image_missing(reason):
            images = [str(c["image"]) for c in task.get("containers", []) if c.get("image")]
            # The stop reason usually names the image ref: prefer the container it names.
            return next((i for i in images if i in reason), images[0] if images else "the task definition's image")
    return None


def _service_tasks(service: Doc, tasks: Sequence[Doc]) -> list[Doc]:
    """The service's tasks of its current task definition, most recently stopped first.

    Filtered here although `list_tasks(serviceName=...)` already filters: moto ignores that filter, and
    failures of an older task definition revision say nothing about the current image.
    """
    group = f"service:{service.get('serviceName', '')}"
    current = _task_definition(service)
    mine = [t for t in tasks if t.get("group") == group
            and (not current or not t.get("taskDefinitionArn") or t["taskDefinitionArn"] == current)]
    return sorted(mine, key=lambda t: str(t.get("stoppedAt", "")), reverse=True)


def _last_stop_reason(service: Doc, stopped_tasks: Sequence[Doc]) -> str | None:
    for task in _service_tasks(service, stopped_tasks):
        reasons = [c["reason"] for c in task.get("containers", []) if c.get("reason")]
        reason = task.get("stoppedReason") or (reasons[0] if reasons else "")
        if reason:
            return str(reason)
    return None


def _judge_targets(target_health: Mapping[str, Sequence[Doc] | None] | None) -> tuple[int, AppHealth | None]:
    """-> (healthy targets in all groups, a verdict when some target group has no healthy target)."""
    total = 0
    for arn, descriptions in (target_health or {}).items():
        name = _target_group_name(arn)
        if descriptions is None:
            return total, AppHealth(False, "TargetsUnhealthy", _short(f"target group {name} does not exist"))
        states = Counter(d.get("TargetHealth", {}).get("State", "unknown") for d in descriptions)
        if not states["healthy"]:
            return total, AppHealth(False, "TargetsUnhealthy", _short(_no_healthy_targets(name, descriptions, states)))
        total += states["healthy"]
    return total, None


def _no_healthy_targets(name: str, descriptions: Sequence[Doc], states: Counter[str]) -> str:
    if not descriptions:
        return f"no targets registered in target group {name}"
    counts = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
    reason = next((d["TargetHealth"]["Reason"] for d in descriptions if d.get("TargetHealth", {}).get("Reason")), None)
    return f"no healthy targets in target group {name}: {counts}" + (f" ({reason})" if reason else "")


def _target_group_name(arn: str) -> str:
    # arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>
    parts = arn.split(":")[-1].split("/")
    return parts[1] if len(parts) >= 3 else arn


def _running(service: Doc) -> int:
    return int(service.get("runningCount", 0))


def _desired(service: Doc) -> int:
    return int(service.get("desiredCount", 0))


def _task_definition(service: Doc) -> str:
    primary = _primary(service)
    return str((primary or {}).get("taskDefinition") or service.get("taskDefinition") or "")


def _short(text: str, limit: int = MESSAGE_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


# --- the reads (blocking: run in the worker thread) ---------------------------------------------------------


def _stopped_tasks(ecs: Any, cluster: str, service: str) -> list[Doc]:
    arns = ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus="STOPPED",
                          maxResults=STOPPED_TASKS_LOOKED_AT).get("taskArns", [])[:STOPPED_TASKS_LOOKED_AT]
    if not arns:
        return []
    return list(ecs.describe_tasks(cluster=cluster, tasks=arns).get("tasks", []))


def _target_health(elbv2: Any, service: Doc) -> dict[str, Sequence[Doc] | None]:
    health: dict[str, Sequence[Doc] | None] = {}
    for arn in dict.fromkeys(lb["targetGroupArn"] for lb in service.get("loadBalancers", [])
                             if lb.get("targetGroupArn")):
        try:
            health[arn] = list(elbv2.describe_target_health(TargetGroupArn=arn).get("TargetHealthDescriptions", []))
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"TargetGroupNotFound", "TargetGroupNotFoundException"}:
                raise
            health[arn] = None
    return health


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx answers the probe (the app is up); following it could lead anywhere."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: Message, newurl: str) -> urllib.request.Request | None:
        return None


def probe(url: str, path: str, timeout: float) -> str | None:
    """GET url+path: None when it answers 2xx/3xx, else what went wrong (no URL: it may carry credentials)."""
    target = url.rstrip("/") + "/" + path.lstrip("/")
    try:
        parts = urllib.parse.urlsplit(target)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return "probe URL is invalid: not probed"
    if parts.scheme not in {"http", "https"}:
        return "probe URL is not http or https: not probed"
    shown = parts.path or "/"
    request = urllib.request.Request(target, method="GET", headers={"User-Agent": "llmapp-operator-health"})
    try:
        with urllib.request.build_opener(_NoRedirects).open(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:  # 3xx/4xx/5xx: the server answered
        status = exc.code
        exc.close()
    except urllib.error.URLError as exc:
        cause = exc.reason if isinstance(exc.reason, BaseException) else exc
        return f"GET {shown} failed: {type(cause).__name__}"
    except (OSError, ValueError, http.client.HTTPException) as exc:  # timeouts while reading, bad URLs
        return f"GET {shown} failed: {type(exc).__name__}"
    return None if 200 <= status < 400 else f"GET {shown} returned HTTP {status}"

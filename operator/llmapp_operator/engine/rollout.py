"""After Terraform: the ECS service runs what its rollout owner chose, with spec.app.desiredCount tasks
once that image exists. The stack's service module ignores desired_count, the task definition and the
load balancer after creation (docs/stack.md), so the operator sets them here, through the ECS API.

One owner for each rollout (spec.app.rollout):
- pipeline: the app's CD registers revisions and deploys them. The operator deploys a revision only
  right after Terraform made one (an env, secret or size change, built with the image that runs), and
  only while the service still runs that image: a CD deploy is never rolled back.
- operator: Terraform's revision (spec.app.image) is what runs. It is deployed once; when ECS's circuit
  breaker rolls it back, the object stalls as RolledBack instead of deploying it again and again.

`decide` is pure; `roll_out` does the reads and the one UpdateService.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from llmapp_operator.api.errors import PermanentError, ReconcileError, TransientError
from llmapp_operator.cloud.ecs_service import LoadBalancer, Revision, ServiceView

Mode = Literal["pipeline", "operator"]


class ServiceControl(Protocol):
    """cloud.ecs_service.EcsService, as a dependency tests can point at moto."""

    async def observe(self, region: str, cluster: str, service: str) -> ServiceView | None: ...
    async def revision(self, region: str, task_definition: str, container: str) -> Revision | None: ...
    async def image_exists(self, image: str) -> bool: ...
    async def scaling_range(self, region: str, cluster: str, service: str) -> tuple[int, int] | None: ...
    async def update(self, region: str, cluster: str, service: str, *, desired_count: int | None = None,
                     task_definition: str | None = None,
                     load_balancers: tuple[LoadBalancer, ...] | None = None) -> None: ...


@dataclass(frozen=True)
class Wanted:
    mode: Mode
    desired_count: int
    load_balancer: LoadBalancer | None
    """Where the tasks register; None when the module's outputs do not say."""
    terraform: Revision | None
    """The revision Terraform registered (resolved from the ecs_task_definition_arn output)."""
    applied_now: bool
    """Terraform applied in this pass: its revision is new."""
    requested: str = ""
    """The revision the operator deployed last (status.rollout.requested)."""
    scaling: tuple[int, int] | None = None
    """spec.app.scaling: the (min, max) tasks Application Auto Scaling holds now; the autoscaler owns
    the count inside it. None: a fixed count, desired_count."""


@dataclass(frozen=True)
class Choice:
    deploy: Revision | None
    """The revision to point the service at; None: leave it."""
    runs: Revision | None
    """The revision the service will run, whose image must exist for tasks to start."""
    problem: str | None = None
    message: str = ""


@dataclass(frozen=True)
class ServiceChange:
    desired_count: int | None = None
    task_definition: str | None = None
    load_balancers: tuple[LoadBalancer, ...] | None = None

    @property
    def empty(self) -> bool:
        return self.desired_count is None and self.task_definition is None and self.load_balancers is None


def choose(wanted: Wanted, view: ServiceView, running: Revision | None) -> Choice:
    """Which revision the service should run, and whether something stops the rollout (pure)."""
    ours = wanted.terraform
    if ours is None or ours.arn == view.task_definition:
        return Choice(deploy=None, runs=running or ours)
    if wanted.mode == "pipeline":
        if not wanted.applied_now or ours.arn == wanted.requested:
            return Choice(deploy=None, runs=running)   # the CD's revision runs: its choice stands
        if running is not None and running.image != ours.image:
            return Choice(deploy=None, runs=running, problem="DeployedMeanwhile", message=(
                f"the app's CD deployed {running.image} while Terraform built a revision with {ours.image}: "
                "not deploying it (that would roll the CD's deploy back); planning again"))
        return Choice(deploy=ours, runs=ours)
    if ours.arn == wanted.requested:
        if any(td == ours.arn and state == "IN_PROGRESS" for td, state in view.deployments):
            return Choice(deploy=None, runs=ours)
        return Choice(deploy=None, runs=running, problem="RolledBack", message=(
            f"ECS rolled the deployment of {ours.image} back: the service runs "
            f"{running.image if running else view.task_definition}. Fix spec.app.image to deploy again"))
    return Choice(deploy=ours, runs=ours)


def decide(wanted: Wanted, view: ServiceView, choice: Choice, image_exists: bool) -> ServiceChange:
    """The one UpdateService that makes the service what `choice` says (pure)."""
    count = _task_count(wanted, view) if image_exists else 0
    balancers: tuple[LoadBalancer, ...] | None = None
    if wanted.load_balancer is not None and view.load_balancers != (wanted.load_balancer,):
        # The module's service variant ignores load_balancer too: a new target group (a port change,
        # or the name with the port on an upgrade) reaches the service only here.
        balancers = (wanted.load_balancer,)
    return ServiceChange(
        desired_count=count if count != view.desired_count else None,
        task_definition=choice.deploy.arn if choice.deploy is not None else None,
        load_balancers=balancers,
    )


def _task_count(wanted: Wanted, view: ServiceView) -> int:
    """The count to run once the image exists: the spec's, or with autoscaling the autoscaler's,
    brought into its range (the service starts at 0, and a target tracking policy cannot scale out
    from 0 tasks)."""
    if wanted.scaling is None:
        return wanted.desired_count
    low, high = wanted.scaling
    return min(max(view.desired_count, low), high)


@dataclass(frozen=True)
class RolloutResult:
    status: dict[str, Any]
    deployed: tuple[bool, str, str]
    """The Deployed condition: (ok, reason, message)."""
    error: ReconcileError | None = None
    replan: bool = False
    """The inputs must be planned again (the CD deployed while Terraform applied)."""


def service_of(outputs: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(cluster, service, app container) as the module's outputs name them; None when one is missing."""
    names = tuple(str(outputs.get(key) or "") for key in ("ecs_cluster_name", "ecs_service_name", "container_name"))
    return (names[0], names[1], names[2]) if all(names) else None


async def running_image(control: ServiceControl, region: str, outputs: Mapping[str, Any]) -> str:
    """rollout pipeline: the app image the service runs now, "" before there is a service."""
    names = service_of(outputs)
    if names is None:
        return ""
    cluster, service, container = names
    view = await control.observe(region, cluster, service)
    if view is None or not view.task_definition:
        return ""
    revision = await control.revision(region, view.task_definition, container)
    return revision.image if revision is not None else ""


async def roll_out(control: ServiceControl, region: str, mode: Mode, desired_count: int,
                   outputs: Mapping[str, Any], previous: Mapping[str, Any] | None, *,
                   applied_now: bool, scaling: tuple[int, int] | None = None) -> RolloutResult | None:
    """Set the service to what `mode` wants; None when the outputs name no service."""
    names = service_of(outputs)
    if names is None:
        return None
    cluster, service, container = names
    view = await control.observe(region, cluster, service)
    if view is None:
        return RolloutResult(status={"mode": mode}, deployed=(False, "ServiceMissing", "no such ECS service"),
                             error=TransientError(f"ECS service {cluster}/{service} is not there yet",
                                                  reason="ServiceMissing"))
    port = int(outputs.get("container_port") or 0) or (view.load_balancers[0].container_port
                                                        if view.load_balancers else 0)
    target_group = str(outputs.get("target_group_arn") or "")
    balancer = LoadBalancer(target_group, container, port) if target_group and port else None
    arn = str(outputs.get("ecs_task_definition_arn") or "")
    terraform = await control.revision(region, arn, container) if arn else None
    running = await control.revision(region, view.task_definition, container) if view.task_definition else None
    requested = str((previous or {}).get("requested") or "")
    if scaling is not None:
        # A scheduled action moves the range (0..0 out of hours): the live target, else the spec's.
        scaling = await control.scaling_range(region, cluster, service) or scaling
    wanted = Wanted(mode, desired_count, balancer, terraform, applied_now, requested, scaling)
    choice = choose(wanted, view, running)
    runs = choice.runs
    exists = bool(runs and runs.image) and await control.image_exists(runs.image if runs else "")
    change = decide(wanted, view, choice, exists)
    if not change.empty:
        await control.update(region, cluster, service, desired_count=change.desired_count,
                             task_definition=change.task_definition, load_balancers=change.load_balancers)
    status = {
        "mode": mode,
        "image": runs.image if runs else None,
        "taskDefinition": change.task_definition or view.task_definition or None,
        "requested": change.task_definition or requested or None,
        "desiredCount": change.desired_count if change.desired_count is not None else view.desired_count,
        "scaling": {"minTasks": scaling[0], "maxTasks": scaling[1]} if scaling is not None else None,
        "state": ("IN_PROGRESS" if change.task_definition else view.rollout_state) or None,
    }
    if choice.problem == "DeployedMeanwhile":
        return RolloutResult(status, (False, choice.problem, choice.message), replan=True,
                             error=TransientError(choice.message, reason=choice.problem))
    if choice.problem == "RolledBack":
        return RolloutResult(status, (False, choice.problem, choice.message),
                             error=PermanentError(choice.message, reason=choice.problem))
    if not exists:
        shown = runs.image if runs and runs.image else "an image"
        message = (f"no tasks until {shown} exists: push it" +
                   (", or let the app's CD deploy its first revision" if mode == "pipeline" else ""))
        return RolloutResult(status, (False, "WaitingForImage", message))
    image = runs.image if runs else ""
    if status["state"] == "IN_PROGRESS":
        return RolloutResult(status, (False, "RollingOut", f"ECS is rolling out {image}"))
    return RolloutResult(status, (True, "Deployed", f"{status['desiredCount']} task(s) of {image}"))

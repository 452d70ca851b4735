"""The ECS service as the operator reads and changes it: what it runs, and the three things the
operator sets itself because the stack's service module leaves them alone (desired count, the task
definition revision, the load balancer; docs/stack.md). Blocking boto3 calls run in a worker thread;
what to change is decided in engine/rollout.py.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from llmapp_operator.cloud.clients import aws_errors, client

Doc = Mapping[str, Any]

_DENIED_HINT = ("the operator's AWS identity may not describe or update the ECS service and its task "
                "definitions, describe ECR images, or describe the service's scalable target (docs/iam.md)")


@dataclass(frozen=True)
class LoadBalancer:
    target_group_arn: str
    container_name: str
    container_port: int


@dataclass(frozen=True)
class ServiceView:
    """What one DescribeServices says about the service."""

    task_definition: str
    """The revision the service runs (its PRIMARY deployment's, once ECS moved to it)."""
    desired_count: int
    running_count: int
    load_balancers: tuple[LoadBalancer, ...]
    rollout_state: str = ""
    """rolloutState of the PRIMARY deployment (IN_PROGRESS, COMPLETED, FAILED); "" if ECS gives none."""
    rollout_reason: str = ""
    deployments: tuple[tuple[str, str], ...] = ()
    """(taskDefinition, rolloutState) of every deployment ECS lists, PRIMARY first."""


@dataclass(frozen=True)
class Revision:
    arn: str
    image: str
    """The app container's image in this revision."""


def view_of(service: Doc) -> ServiceView:
    deployments = sorted(service.get("deployments") or (), key=lambda d: d.get("status") != "PRIMARY")
    primary = deployments[0] if deployments and deployments[0].get("status") == "PRIMARY" else {}
    return ServiceView(
        task_definition=str(service.get("taskDefinition") or primary.get("taskDefinition") or ""),
        desired_count=int(service.get("desiredCount") or 0),
        running_count=int(service.get("runningCount") or 0),
        load_balancers=tuple(
            LoadBalancer(str(lb.get("targetGroupArn") or ""), str(lb.get("containerName") or ""),
                         int(lb.get("containerPort") or 0))
            for lb in service.get("loadBalancers") or ()),
        rollout_state=str(primary.get("rolloutState") or ""),
        rollout_reason=str(primary.get("rolloutStateReason") or ""),
        deployments=tuple((str(d.get("taskDefinition") or ""), str(d.get("rolloutState") or ""))
                          for d in deployments),
    )


def describe_service(ecs: Any, cluster: str, service: str) -> Doc | None:
    try:
        found = ecs.describe_services(cluster=cluster, services=[service]).get("services", [])
    except botocore.exceptions.ClientError as exc:
        # A missing cluster is a missing service (not yet applied, or destroyed), not an AWS outage.
        if exc.response.get("Error", {}).get("Code") == "ClusterNotFoundException":
            return None
        raise
    return found[0] if found else None  # a missing service comes back in `failures` (reason MISSING)


def images_of(ecs: Any, task_definition: str) -> list[tuple[str, str]]:
    """(container name, image) of a revision; [] for no revision."""
    if not task_definition:
        return []
    definition = ecs.describe_task_definition(taskDefinition=task_definition).get("taskDefinition", {})
    return [(str(c.get("name") or ""), str(c["image"])) for c in definition.get("containerDefinitions", [])
            if c.get("image")]


_ECR_IMAGE = re.compile(r"^(?P<registry>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
                        r"/(?P<repository>[a-z0-9._/-]+)(?::(?P<tag>[\w.-]+))?(?:@(?P<digest>[\w:]+))?$")


def ecr_image_missing(image: str, endpoint_url: str | None) -> bool:
    """Whether ECR says this exact tag/digest was never pushed. Only private ECR images are checked.

    `describe_images` with `imageIds` raises ImageNotFoundException for a missing tag on AWS and moto
    alike (listing a repository's images would instead return an empty list, which says nothing about
    this tag). Any other error (no ecr:DescribeImages permission, a repository elsewhere) means
    "cannot tell", never "missing": an image outside ECR is trusted to exist.
    """
    ref = _ECR_IMAGE.match(image)
    if ref is None:
        return False
    image_id = {"imageDigest": ref["digest"]} if ref["digest"] else {"imageTag": ref["tag"] or "latest"}
    ecr = client("ecr", ref["region"], endpoint_url)
    try:
        found = ecr.describe_images(registryId=ref["registry"], repositoryName=ref["repository"], imageIds=[image_id])
    except botocore.exceptions.ClientError as exc:
        # A missing repository is not "the CI has not pushed yet": someone else's image, or a typo.
        return bool(exc.response.get("Error", {}).get("Code") == "ImageNotFoundException")
    return not found.get("imageDetails")


class EcsService:
    """The operator's hands on one ECS service (its own AWS identity; docs/iam.md)."""

    def __init__(self, endpoint_url: str | None = None) -> None:
        self.endpoint_url = endpoint_url

    async def observe(self, region: str, cluster: str, service: str) -> ServiceView | None:
        def read() -> ServiceView | None:
            with self._errors(cluster, service, region):
                found = describe_service(client("ecs", region, self.endpoint_url), cluster, service)
            # A deleted service stays listed as INACTIVE for a while: there is nothing to set on it.
            return view_of(found) if found is not None and found.get("status") == "ACTIVE" else None
        return await asyncio.to_thread(read)

    async def revision(self, region: str, task_definition: str, container: str) -> Revision | None:
        """The revision (an ARN, or a family for its latest ACTIVE revision) with its app image."""
        def read() -> Revision | None:
            with self._errors("task definition", task_definition, region):
                ecs = client("ecs", region, self.endpoint_url)
                try:
                    definition = ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
                except botocore.exceptions.ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") in {"ClientException", "InvalidParameterException"}:
                        return None  # ECS answers a missing revision with ClientException
                    raise
            images = [str(c.get("image") or "") for c in definition.get("containerDefinitions", [])
                      if c.get("name") == container]
            return Revision(arn=str(definition.get("taskDefinitionArn") or task_definition),
                            image=images[0] if images else "")
        return await asyncio.to_thread(read)

    async def image_exists(self, image: str) -> bool:
        def read() -> bool:
            region = (_ECR_IMAGE.match(image) or {"region": "us-east-1"})["region"]
            with self._errors("ECR image", image.split("@")[0].split(":")[0], region):
                return not ecr_image_missing(image, self.endpoint_url)
        return bool(image) and await asyncio.to_thread(read)

    async def scaling_range(self, region: str, cluster: str, service: str) -> tuple[int, int] | None:
        """(min, max) of the service's scalable target as Application Auto Scaling holds it now (a
        scheduled action may have moved it from the spec's); None when none is registered."""
        def read() -> tuple[int, int] | None:
            with self._errors(cluster, service, region):
                found = client("application-autoscaling", region, self.endpoint_url).describe_scalable_targets(
                    ServiceNamespace="ecs", ResourceIds=[f"service/{cluster}/{service}"],
                    ScalableDimension="ecs:service:DesiredCount").get("ScalableTargets", [])
            return (int(found[0]["MinCapacity"]), int(found[0]["MaxCapacity"])) if found else None
        return await asyncio.to_thread(read)

    async def update(self, region: str, cluster: str, service: str, *, desired_count: int | None = None,
                     task_definition: str | None = None,
                     load_balancers: Sequence[LoadBalancer] | None = None) -> None:
        request: dict[str, Any] = {"cluster": cluster, "service": service}
        if desired_count is not None:
            request["desiredCount"] = desired_count
        if task_definition is not None:
            request["taskDefinition"] = task_definition
        if load_balancers is not None:
            request["loadBalancers"] = [{"targetGroupArn": lb.target_group_arn, "containerName": lb.container_name,
                                         "containerPort": lb.container_port} for lb in load_balancers]
        if len(request) == 2:
            return

        def write() -> None:
            with self._errors(cluster, service, region):
                client("ecs", region, self.endpoint_url).update_service(**request)
        await asyncio.to_thread(write)

    @staticmethod
    def _errors(cluster: str, service: str, region: str) -> Any:
        return aws_errors(f"ECS {cluster}/{service} ({region})", denied="EcsDenied", unavailable="EcsUnavailable",
                          denied_hint=_DENIED_HINT)

"""The ECS service after Terraform, against moto: desiredCount through the ECS API, no tasks until the
image exists, and one owner for each rollout (spec.app.rollout) — a CD deploy is neither rolled back nor
drift in `pipeline` mode; in `operator` mode spec.app.image runs and an ECS rollback stalls the object.

The ECS objects are created here as terraform/stack would create them (the sandbox module makes no ECS
service): a cluster, a task definition family, a service with 0 tasks, an ECR repository. moto does not
start tasks or roll back deployments; where ECS would, the test does what ECS does (docs/fidelity.md).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

import boto3
import pytest

from llmapp_operator.api.conditions import Outcome
from llmapp_operator.api.errors import PermanentError, TransientError, Waiting
from llmapp_operator.api.spec import LLMApp
from llmapp_operator.api.workspace import render, resource_name
from llmapp_operator.cloud.ecs_service import EcsService
from llmapp_operator.engine.reconcile import Deps, Previous, converge, status_patch
from llmapp_operator.engine.rollout import roll_out
from llmapp_operator.runners.modules import load_module
from tests.integration.conftest import TerraformLog
from tests.integration.test_reconcile_terraform import after

REGION = "us-east-1"
NS = "team-r"


class Ecs:
    """One app's ECS service and ECR repository in moto, named as the stack names them."""

    def __init__(self, endpoint: str, app_name: str) -> None:
        self.name = resource_name(NS, app_name)
        self.cluster, self.service = f"{self.name}-cluster", f"{self.name}-service"
        self.family, self.container = f"{self.name}-task", f"{self.name}-app"
        self.ecs: Any = boto3.client("ecs", endpoint_url=endpoint, region_name=REGION)
        self.ecr: Any = boto3.client("ecr", endpoint_url=endpoint, region_name=REGION)
        ec2: Any = boto3.client("ec2", endpoint_url=endpoint, region_name=REGION)
        elbv2: Any = boto3.client("elbv2", endpoint_url=endpoint, region_name=REGION)
        self.repository = self.ecr.create_repository(repositoryName=self.name)["repository"]["repositoryUri"]
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        self.target_group = elbv2.create_target_group(
            Name=f"tg-{uuid.uuid4().hex[:12]}", Protocol="HTTP", Port=8501, VpcId=vpc,
            TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
        group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
        self.ecs.create_cluster(clusterName=self.cluster)
        # What the stack's first apply leaves: its revision (the placeholder :latest, no image pushed
        # yet in pipeline mode) and a service created with 0 tasks.
        first = self.register(f"{self.repository}:latest")
        self.ecs.create_service(cluster=self.cluster, serviceName=self.service, taskDefinition=first,
                                desiredCount=0, launchType="FARGATE",
                                networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet],
                                                                             "securityGroups": [group]}},
                                loadBalancers=[{"targetGroupArn": self.target_group,
                                                "containerName": self.container, "containerPort": 8501}])

    def register(self, image: str, env: dict[str, str] | None = None) -> str:
        arn: str = self.ecs.register_task_definition(
            family=self.family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="1024",
            memory="2048", containerDefinitions=[{
                "name": self.container, "image": image, "essential": True,
                "portMappings": [{"containerPort": 8501}],
                "environment": [{"name": k, "value": v} for k, v in (env or {}).items()]}],
        )["taskDefinition"]["taskDefinitionArn"]
        return arn

    def push(self, tag: str) -> str:
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1,
                               "digest": "sha256:" + "a" * 64}, "layers": []}
        self.ecr.put_image(repositoryName=self.name, imageTag=tag, imageManifest=json.dumps(manifest))
        return f"{self.repository}:{tag}"

    def cd_deploy(self, tag: str) -> str:
        """What the app's CD does (examples/app-repo cd.yml): push, render the current revision with the
        new image, register it, point the service at it."""
        image = self.push(tag)
        arn = self.register(image)
        self.ecs.update_service(cluster=self.cluster, service=self.service, taskDefinition=arn)
        return arn

    def described(self) -> dict[str, Any]:
        found: dict[str, Any] = self.ecs.describe_services(cluster=self.cluster, services=[self.service])["services"][0]
        return found

    def outputs(self, task_definition: str | None = None) -> dict[str, Any]:
        return {"ecs_cluster_name": self.cluster, "ecs_service_name": self.service, "container_name": self.container,
                "container_port": 8501, "target_group_arn": self.target_group,
                "ecs_task_definition_arn": task_definition or self.family}


def make_app(name: str, generation: int = 1, **app: Any) -> LLMApp:
    return LLMApp.from_body({
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": generation},
        "spec": {"environment": "dev", "aws": {"region": REGION}, "github": {"repository": "acme/rags"},
                 "terraform": {"module": "sandbox"}, "app": app}})


@pytest.fixture
def service_deps(deps: Deps, moto_endpoint: str) -> Deps:
    return replace(deps, service=EcsService(moto_endpoint))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def test_no_tasks_until_the_image_exists_then_desired_count_through_the_ecs_api(
        service_deps: Deps, moto_endpoint: str, terraform_log: TerraformLog) -> None:
    name = unique("wait")
    ecs = Ecs(moto_endpoint, name)
    first = await converge(make_app(name, desiredCount=2), service_deps, Previous())

    # The stack's placeholder :latest was never pushed: the service keeps 0 tasks and the object waits.
    assert isinstance(first.error, Waiting) and first.error.reason == "WaitingForImage", first.report.message
    assert first.report.deployed is not None and first.report.deployed[:2] == (False, "WaitingForImage")
    assert ecs.described()["desiredCount"] == 0
    assert first.fields["rollout"]["mode"] == "pipeline" and first.fields["rollout"]["desiredCount"] == 0
    assert first.fields["lastAppliedDigest"]   # the infrastructure is applied; only the tasks wait

    # The app's CD deploys its first image: the recheck scales to spec.app.desiredCount, no Terraform.
    deployed = ecs.cd_deploy("sha-1")
    runs = terraform_log.count()
    waited = after(Previous(), first)
    second = await converge(make_app(name, desiredCount=2), service_deps, waited)
    assert second.error is None, second.report.message
    assert terraform_log.count() == runs
    assert ecs.described()["desiredCount"] == 2 and ecs.described()["taskDefinition"] == deployed
    assert second.report.deployed == (True, "Deployed", f"2 task(s) of {ecs.repository}:sha-1")

    # A desiredCount change is no Terraform input: the ECS API sets it, and the cost follows the spec.
    status = {**status_patch(Previous(), first, "t1"), **status_patch(waited, second, "t2")}
    third = await converge(make_app(name, generation=2, desiredCount=5), service_deps, Previous.from_status(status))
    assert third.error is None and third.report.outcome is Outcome.UNCHANGED
    assert terraform_log.count() == runs
    assert ecs.described()["desiredCount"] == 5
    assert third.fields["rollout"]["desiredCount"] == 5


async def test_a_cd_deploy_is_neither_rolled_back_nor_reported_as_drift(
        service_deps: Deps, moto_endpoint: str, terraform_log: TerraformLog) -> None:
    name = unique("cd")
    ecs = Ecs(moto_endpoint, name)
    ecs.cd_deploy("sha-1")
    first = await converge(make_app(name), service_deps, Previous())
    assert first.error is None, first.report.message
    ready = after(Previous(), first)

    later = ecs.cd_deploy("sha-2")   # a revision registered outside Terraform
    drift = await converge(make_app(name), service_deps, ready, drift_check=True)
    assert drift.error is None, drift.report.message
    assert drift.report.drift is not None and drift.report.drift[0] is False, drift.report.drift
    assert ecs.described()["taskDefinition"] == later   # not rolled back

    # An env change re-applies with the image that runs: the plan got sha-2, not the placeholder.
    changed = await converge(make_app(name, generation=2, env={"MODEL": "gpt"}), service_deps, ready)
    assert changed.error is None and changed.report.outcome is Outcome.APPLIED, changed.report.message
    assert service_deps.records is not None
    record = await service_deps.records.read(backend_of(service_deps, name))
    assert record is not None and record.tfvars["image"] == f"{ecs.repository}:sha-2"
    assert ecs.described()["taskDefinition"] == later


def backend_of(deps: Deps, name: str) -> Any:
    return render(make_app(name), deps.settings, load_module("sandbox", deps.settings.modules)).backend


# --- the rollout step on its own: what Terraform would have registered, against moto -----------------------

async def test_pipeline_deploys_terraform_s_revision_with_the_running_image(moto_endpoint: str) -> None:
    ecs = Ecs(moto_endpoint, unique("env"))
    running = ecs.cd_deploy("sha-1")
    ours = ecs.register(f"{ecs.repository}:sha-1", env={"MODEL": "gpt"})   # an env change, same image
    result = await roll_out(EcsService(moto_endpoint), REGION, "pipeline", 1, ecs.outputs(ours),
                            {"requested": running}, applied_now=True)
    assert result is not None and result.error is None, result
    assert ecs.described()["taskDefinition"] == ours and ecs.described()["desiredCount"] == 1
    assert result.status["requested"] == ours


async def test_pipeline_never_deploys_over_a_cd_deploy_made_during_the_apply(moto_endpoint: str) -> None:
    ecs = Ecs(moto_endpoint, unique("race"))
    ecs.cd_deploy("sha-1")
    ours = ecs.register(f"{ecs.repository}:sha-1", env={"MODEL": "gpt"})
    meanwhile = ecs.cd_deploy("sha-2")
    result = await roll_out(EcsService(moto_endpoint), REGION, "pipeline", 1, ecs.outputs(ours), {},
                            applied_now=True)
    assert result is not None and isinstance(result.error, TransientError) and result.replan
    assert result.error.reason == "DeployedMeanwhile"
    assert ecs.described()["taskDefinition"] == meanwhile


async def test_pipeline_leaves_the_cd_s_revision_on_a_pass_without_apply(moto_endpoint: str) -> None:
    ecs = Ecs(moto_endpoint, unique("keep"))
    old = ecs.cd_deploy("sha-1")
    newer = ecs.cd_deploy("sha-2")
    result = await roll_out(EcsService(moto_endpoint), REGION, "pipeline", 1, ecs.outputs(old), {"requested": old},
                            applied_now=False)
    assert result is not None and result.error is None
    assert ecs.described()["taskDefinition"] == newer


async def test_operator_mode_deploys_the_spec_image_once_and_stalls_when_ecs_rolled_it_back(
        moto_endpoint: str) -> None:
    ecs = Ecs(moto_endpoint, unique("op"))
    good = ecs.cd_deploy("v1")
    bad = ecs.register(ecs.push("v2"))   # Terraform's revision for spec.app.image v2
    control = EcsService(moto_endpoint)
    first = await roll_out(control, REGION, "operator", 2, ecs.outputs(bad), {"requested": good}, applied_now=True)
    assert first is not None and first.error is None
    assert ecs.described()["taskDefinition"] == bad and first.status["requested"] == bad

    # The circuit breaker rolls back to the last good revision (moto does not: the test does what ECS does).
    ecs.ecs.update_service(cluster=ecs.cluster, service=ecs.service, taskDefinition=good)
    second = await roll_out(control, REGION, "operator", 2, ecs.outputs(bad), first.status, applied_now=False)
    assert second is not None and isinstance(second.error, PermanentError)
    assert second.error.reason == "RolledBack" and second.deployed[:2] == (False, "RolledBack")
    assert ecs.described()["taskDefinition"] == good   # not deployed again and again


async def test_operator_mode_waits_for_a_tag_not_pushed_yet(moto_endpoint: str) -> None:
    ecs = Ecs(moto_endpoint, unique("tag"))
    ours = ecs.register(f"{ecs.repository}:v9")
    result = await roll_out(EcsService(moto_endpoint), REGION, "operator", 3, ecs.outputs(ours), {},
                            applied_now=True)
    assert result is not None and result.deployed[1] == "WaitingForImage"
    assert f"{ecs.repository}:v9" in result.deployed[2]
    assert ecs.described()["desiredCount"] == 0 and ecs.described()["taskDefinition"] == ours
    ecs.push("v9")
    again = await roll_out(EcsService(moto_endpoint), REGION, "operator", 3, ecs.outputs(ours), result.status,
                           applied_now=False)
    assert again is not None and again.deployed[0] and ecs.described()["desiredCount"] == 3


def register_scaling(endpoint: str, ecs: Ecs, low: int, high: int) -> None:
    """The scalable target as terraform/stack/scaling.tf registers it (or a scheduled action moves it)."""
    scaling: Any = boto3.client("application-autoscaling", endpoint_url=endpoint, region_name=REGION)
    scaling.register_scalable_target(ServiceNamespace="ecs", ResourceId=f"service/{ecs.cluster}/{ecs.service}",
                                     ScalableDimension="ecs:service:DesiredCount", MinCapacity=low, MaxCapacity=high)


async def test_with_scaling_the_autoscaler_owns_the_count_inside_the_range_it_holds_now(
        service_deps: Deps, moto_endpoint: str, terraform_log: TerraformLog) -> None:
    name = unique("scale")
    ecs = Ecs(moto_endpoint, name)
    register_scaling(moto_endpoint, ecs, 2, 6)
    scaling = {"minTasks": 2, "maxTasks": 6, "cpuTarget": 60,
               "schedule": {"stop": "cron(0 20 ? * MON-FRI *)", "start": "cron(0 7 ? * MON-FRI *)",
                            "timezone": "Europe/Berlin"}}
    app = make_app(name, desiredCount=9, scaling=scaling)
    first = await converge(app, service_deps, Previous())   # a real terraform apply of the sandbox with scaling
    assert isinstance(first.error, Waiting) and first.error.reason == "WaitingForImage", first.report.message
    assert ecs.described()["desiredCount"] == 0   # no tasks before the image, scaling or not

    ecs.cd_deploy("sha-1")
    status = status_patch(Previous(), first, "t1")
    second = await converge(app, service_deps, Previous.from_status(status))
    assert second.error is None, second.report.message
    # Raised from 0 to the minimum (target tracking cannot scale out from 0); desiredCount 9 is not used.
    assert ecs.described()["desiredCount"] == 2
    assert second.fields["rollout"]["scaling"] == {"minTasks": 2, "maxTasks": 6}

    # The autoscaler scaled out: its count stands, with no Terraform run.
    runs = terraform_log.count()
    ecs.ecs.update_service(cluster=ecs.cluster, service=ecs.service, desiredCount=5)
    status.update(status_patch(Previous.from_status(status), second, "t2"))
    third = await converge(app, service_deps, Previous.from_status(status))
    assert third.error is None and ecs.described()["desiredCount"] == 5 and terraform_log.count() == runs

    # Out of hours the stop action holds 0..0 and App Auto Scaling scaled in: the operator keeps 0.
    register_scaling(moto_endpoint, ecs, 0, 0)
    ecs.ecs.update_service(cluster=ecs.cluster, service=ecs.service, desiredCount=0)
    status.update(status_patch(Previous.from_status(status), third, "t3"))
    fourth = await converge(app, service_deps, Previous.from_status(status))
    assert ecs.described()["desiredCount"] == 0
    assert fourth.fields["rollout"]["scaling"] == {"minTasks": 0, "maxTasks": 0}


async def test_an_apply_recovered_from_the_record_still_deploys_terraform_s_revision(
        service_deps: Deps, moto_endpoint: str, terraform_log: TerraformLog) -> None:
    name = unique("lost")
    ecs = Ecs(moto_endpoint, name)
    ecs.cd_deploy("sha-1")
    first = await converge(make_app(name), service_deps, Previous())
    assert first.error is None, first.report.message
    status = status_patch(Previous(), first, "t1")
    # An env change applied by a pass that stopped right after the apply: no rollout, no status write.
    changed = make_app(name, generation=2, env={"MODEL": "gpt"})
    stopped = await converge(changed, replace(service_deps, service=None), Previous.from_status(status))
    assert stopped.error is None
    ours = ecs.register(f"{ecs.repository}:sha-1", env={"MODEL": "gpt"})   # the revision that apply registered
    runs = terraform_log.count()
    again = await converge(changed, service_deps, Previous.from_status(status))
    assert isinstance(again.error, Waiting) and again.error.reason == "RollingOut", again.report.message
    assert terraform_log.count() == runs   # taken from the applied record, not planned again
    assert ecs.described()["taskDefinition"] == ours   # and Terraform's revision is deployed all the same

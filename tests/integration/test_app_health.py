"""The AppHealthy verdict: real boto3 against moto in server mode, and a real HTTP probe, all on 127.0.0.1.

What moto 5.x does, found by experiment (and so what these tests can build for real):
- A service's runningCount is the MOTO_ECS_SERVICE_RUNNING environment variable read when the service is
  created (the server runs in this process, so monkeypatch.setenv reaches it); pendingCount is the rest.
  Its PRIMARY deployment is COMPLETED when running >= desired, else IN_PROGRESS. moto never produces a
  FAILED rollout, nor an ECS-controlled service whose rollout COMPLETED with tasks missing, nor service
  events: those cases are covered by `judge` tests on boto3-shaped dicts at the end of this file.
- A service starts no tasks; `list_tasks` ignores `serviceName` (returns the cluster's tasks). Stopped
  tasks with a chosen `stoppedReason` come from run_task(group="service:<name>") + stop_task.
- Registered `ip` targets are always "healthy"; `instance` targets of stopped instances are "unused"
  (Target.InvalidState); an empty target group has no descriptions.
- ECR `describe_images(imageIds=[...])` raises ImageNotFoundException for a tag never pushed.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest

from llmapp_operator.api.errors import PermanentError, TransientError
from llmapp_operator.cloud.app_health import MESSAGE_LIMIT, AppHealth, check_app_health, judge, probe
from llmapp_sandbox.cloud import running_moto

REGION = "us-east-1"
CLUSTER = "llm-dev"
ACCOUNT = "123456789012"  # moto's account
ECR_REPO = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/acme/rags"
PUBLIC_IMAGE = "ghcr.io/acme/rags:0.1.0"  # not private ECR: the image is never looked up


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto of its own: these tests set MOTO_ECS_SERVICE_RUNNING, read by services they create."""
    with running_moto() as url:
        yield url


@pytest.fixture(autouse=True)
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Obviously fake credentials, and no proxy or profile that could send a request off this machine."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                 "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


class Aws:
    """Builds ECS services, target groups and ECR images in moto; wiped before each test."""

    def __init__(self, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.url = url
        self.monkeypatch = monkeypatch
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).close()
        self.ecs: Any = boto3.client("ecs", endpoint_url=url, region_name=REGION)
        self.elbv2: Any = boto3.client("elbv2", endpoint_url=url, region_name=REGION)
        self.ec2: Any = boto3.client("ec2", endpoint_url=url, region_name=REGION)
        self.ecr: Any = boto3.client("ecr", endpoint_url=url, region_name=REGION)
        self.ecs.create_cluster(clusterName=CLUSTER)
        self.vpc = self.ec2.describe_vpcs()["Vpcs"][0]["VpcId"]

    def target_group(self, name: str, *, target_type: str = "ip", targets: Sequence[str] = ()) -> str:
        arn: str = self.elbv2.create_target_group(Name=name, Protocol="HTTP", Port=8080, VpcId=self.vpc,
                                                  TargetType=target_type)["TargetGroups"][0]["TargetGroupArn"]
        if targets:
            self.elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": t, "Port": 8080} for t in targets])
        return arn

    def service(self, name: str, *, desired: int, running: int, image: str = PUBLIC_IMAGE,
                target_groups: Sequence[str] = (), controller: str = "ECS") -> dict[str, Any]:
        self.monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", str(running))  # read by moto at create_service
        task_definition = self.ecs.register_task_definition(
            family=name, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
            containerDefinitions=[{"name": "app", "image": image, "memory": 512,
                                   "portMappings": [{"containerPort": 8080}]}],
        )["taskDefinition"]["taskDefinitionArn"]
        service: dict[str, Any] = self.ecs.create_service(
            cluster=CLUSTER, serviceName=name, taskDefinition=task_definition, desiredCount=desired,
            launchType="FARGATE", networkConfiguration=self.network(), deploymentController={"type": controller},
            loadBalancers=[{"targetGroupArn": arn, "containerName": "app", "containerPort": 8080}
                           for arn in target_groups],
        )["service"]
        return service

    def network(self) -> dict[str, Any]:
        subnet = self.ec2.describe_subnets()["Subnets"][0]["SubnetId"]
        group = self.ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
        return {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}}

    def stopped_task(self, service: dict[str, Any], reason: str) -> None:
        """A task of the service (as ECS starts them: group service:<name>) that stopped for `reason`."""
        task = self.ecs.run_task(cluster=CLUSTER, taskDefinition=service["taskDefinition"], launchType="FARGATE",
                                 group=f"service:{service['serviceName']}", networkConfiguration=self.network(),
                                 startedBy=next((d["id"] for d in service["deployments"]), "ecs-svc/0"))["tasks"][0]
        self.ecs.stop_task(cluster=CLUSTER, task=task["taskArn"], reason=reason)

    def push(self, repository: str, tag: str) -> None:
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1,
                               "digest": "sha256:" + "a" * 64}, "layers": []}
        self.ecr.put_image(repositoryName=repository, imageTag=tag, imageManifest=json.dumps(manifest))

    async def health(self, service: str, **kwargs: Any) -> AppHealth:
        return await check_app_health(REGION, CLUSTER, service, endpoint_url=self.url, **kwargs)


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Aws:
    return Aws(moto_url, monkeypatch)


# --- ECS service and tasks ---------------------------------------------------------------------------------


async def test_healthy_service_with_healthy_targets(aws: Aws) -> None:
    tg = aws.target_group("rags-tg", targets=["10.0.1.10", "10.0.2.10"])
    aws.service("rags", desired=2, running=2, target_groups=[tg])
    assert await aws.health("rags") == AppHealth(True, "Healthy", "2/2 tasks running, 2 healthy targets")


async def test_service_without_load_balancer_is_judged_on_its_tasks(aws: Aws) -> None:
    aws.service("worker", desired=1, running=1)
    assert await aws.health("worker") == AppHealth(True, "Healthy", "1/1 tasks running")


async def test_tasks_still_starting_is_rolling_out(aws: Aws) -> None:
    # The image is in ECR, so a service with no task running yet is starting, not waiting for CI.
    aws.ecr.create_repository(repositoryName="acme/rags")
    aws.push("acme/rags", "v1")
    aws.service("rags", desired=2, running=0, image=f"{ECR_REPO}:v1")
    assert await aws.health("rags") == AppHealth(False, "RollingOut", "deployment in progress: running 0 of 2")


async def test_some_tasks_running_is_rolling_out(aws: Aws) -> None:
    aws.service("rags", desired=3, running=1)
    assert await aws.health("rags") == AppHealth(False, "RollingOut", "deployment in progress: running 1 of 3")


async def test_tasks_missing_outside_a_rollout(aws: Aws) -> None:
    # An EXTERNAL deployment controller has no ECS rollout state: the counts alone say tasks are missing.
    service = aws.service("rags", desired=3, running=1, controller="EXTERNAL")
    aws.stopped_task(service, "Essential container in task exited")
    assert await aws.health("rags") == AppHealth(
        False, "TasksNotRunning", "running 1 of 3 tasks; last stopped: Essential container in task exited")


async def test_scaled_to_zero(aws: Aws) -> None:
    tg = aws.target_group("rags-tg")  # no targets: irrelevant when nothing should run
    aws.service("rags", desired=0, running=0, target_groups=[tg])
    assert await aws.health("rags") == AppHealth(True, "ScaledToZero", "the service is scaled to zero tasks")


async def test_missing_service(aws: Aws) -> None:
    assert await aws.health("nope") == AppHealth(False, "ServiceNotFound", "the ECS service does not exist")


async def test_missing_cluster(aws: Aws) -> None:
    health = await check_app_health(REGION, "no-such-cluster", "rags", endpoint_url=aws.url)
    assert health == AppHealth(False, "ServiceNotFound", "the ECS service does not exist")


async def test_deleted_service(aws: Aws) -> None:
    aws.service("rags", desired=0, running=0)
    aws.ecs.delete_service(cluster=CLUSTER, service="rags")
    assert await aws.health("rags") == AppHealth(False, "ServiceNotFound", "the ECS service rags is INACTIVE")


# --- a never-pushed image ----------------------------------------------------------------------------------


async def test_never_pushed_ecr_image_is_waiting(aws: Aws) -> None:
    # Terraform made the repository; CI has not pushed yet. moto's rollout says IN_PROGRESS (as AWS does
    # while it retries the pull): the verdict must still read as waiting.
    aws.ecr.create_repository(repositoryName="acme/rags")
    aws.push("acme/rags", "other-tag")  # another tag does not help: the task definition wants :latest
    service = aws.service("rags", desired=1, running=0, image=f"{ECR_REPO}:latest")
    assert service["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    assert await aws.health("rags") == AppHealth(
        False, "WaitingForImage", f"waiting for the first image from CI (push to {ECR_REPO}:latest)")


async def test_update_to_a_tag_not_pushed_yet_is_waiting(aws: Aws) -> None:
    aws.ecr.create_repository(repositoryName="acme/rags")
    aws.push("acme/rags", "v1")
    aws.service("rags", desired=2, running=1, image=f"{ECR_REPO}:v2")
    assert await aws.health("rags") == AppHealth(
        False, "WaitingForImage", f"waiting for the image from CI (push to {ECR_REPO}:v2); running 1 of 2 tasks")


async def test_missing_ecr_repository_is_not_waiting_for_ci(aws: Aws) -> None:
    # No repository: a push from CI would fail too. Not "waiting"; the rollout speaks.
    aws.service("rags", desired=1, running=0, image=f"{ECR_REPO}:latest")
    assert await aws.health("rags") == AppHealth(False, "RollingOut", "deployment in progress: running 0 of 1")


async def test_stopped_task_that_could_not_pull_is_waiting(aws: Aws) -> None:
    service = aws.service("rags", desired=2, running=0)
    aws.stopped_task(service, f"CannotPullContainerError: pull image manifest has been retried 5 time(s): "
                              f"failed to resolve ref {PUBLIC_IMAGE}: not found")
    assert await aws.health("rags") == AppHealth(
        False, "WaitingForImage", f"waiting for the first image from CI (push to {PUBLIC_IMAGE})")


async def test_pull_failures_that_are_not_a_missing_image(aws: Aws) -> None:
    service = aws.service("rags", desired=2, running=0)
    other = aws.service("other", desired=1, running=1)
    # A network failure is not a wait; another service's missing image is not ours.
    aws.stopped_task(service, "CannotPullContainerError: ref pull has been retried 5 time(s): "
                              "dial tcp 10.0.0.1:443: i/o timeout")
    aws.stopped_task(other, "CannotPullContainerError: failed to resolve ref x: not found")
    assert await aws.health("rags") == AppHealth(False, "RollingOut", "deployment in progress: running 0 of 2")


# --- target groups -----------------------------------------------------------------------------------------


async def test_target_group_without_targets(aws: Aws) -> None:
    tg = aws.target_group("rags-tg")
    aws.service("rags", desired=1, running=1, target_groups=[tg])
    assert await aws.health("rags") == AppHealth(
        False, "TargetsUnhealthy", "no targets registered in target group rags-tg")


async def test_targets_that_are_not_healthy(aws: Aws) -> None:
    # moto's only non-healthy registered targets: instances that are stopped.
    image = aws.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instances = [i["InstanceId"] for i in
                 aws.ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2, InstanceType="t3.micro")["Instances"]]
    tg = aws.target_group("rags-tg", target_type="instance", targets=instances)
    aws.ec2.stop_instances(InstanceIds=instances)
    aws.service("rags", desired=2, running=2, target_groups=[tg])
    assert await aws.health("rags") == AppHealth(
        False, "TargetsUnhealthy", "no healthy targets in target group rags-tg: 2 unused (Target.InvalidState)")


async def test_every_target_group_needs_a_healthy_target(aws: Aws) -> None:
    good = aws.target_group("rags-http", targets=["10.0.1.10"])
    empty = aws.target_group("rags-grpc")
    aws.service("rags", desired=1, running=1, target_groups=[good, empty])
    assert await aws.health("rags") == AppHealth(
        False, "TargetsUnhealthy", "no targets registered in target group rags-grpc")


async def test_deleted_target_group(aws: Aws) -> None:
    tg = aws.target_group("rags-tg", targets=["10.0.1.10"])
    aws.service("rags", desired=1, running=1, target_groups=[tg])
    aws.elbv2.delete_target_group(TargetGroupArn=tg)
    assert await aws.health("rags") == AppHealth(False, "TargetsUnhealthy", "target group rags-tg does not exist")


# --- the HTTP probe ----------------------------------------------------------------------------------------


class AppServer(http.server.ThreadingHTTPServer):
    requests: list[str]


class AppHandler(http.server.BaseHTTPRequestHandler):
    server: AppServer

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        if self.path == "/slow":
            time.sleep(1.5)
        status = {"/healthz": 200, "/moved": 302, "/broken": 503, "/slow": 200}.get(self.path, 404)
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "http://192.0.2.1/elsewhere")  # never followed (TEST-NET-1)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def app_server() -> Iterator[AppServer]:
    server = AppServer(("127.0.0.1", 0), AppHandler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def app_url(app_server: AppServer) -> str:
    app_server.requests.clear()
    return f"http://127.0.0.1:{app_server.server_address[1]}"


@pytest.fixture
def healthy_service(aws: Aws) -> Aws:
    aws.service("rags", desired=1, running=1, target_groups=[aws.target_group("rags-tg", targets=["10.0.1.10"])])
    return aws


@pytest.mark.parametrize("path", ["/healthz", "/moved", "healthz"])
async def test_probe_passes(healthy_service: Aws, app_server: AppServer, app_url: str, path: str) -> None:
    health = await healthy_service.health("rags", url=app_url + "/", probe_path=path)
    assert health == AppHealth(True, "Healthy", "1/1 tasks running, 1 healthy targets")
    assert app_server.requests == ["/" + path.lstrip("/")]  # one GET, the redirect not followed


@pytest.mark.parametrize(("path", "message"), [("/broken", "GET /broken returned HTTP 503"),
                                                ("/missing", "GET /missing returned HTTP 404")])
async def test_probe_fails_on_status(healthy_service: Aws, app_url: str, path: str, message: str) -> None:
    health = await healthy_service.health("rags", url=app_url, probe_path=path)
    assert health == AppHealth(False, "ProbeFailed", message)


async def test_probe_timeout(healthy_service: Aws, app_url: str) -> None:
    health = await healthy_service.health("rags", url=app_url, probe_path="/slow", probe_timeout=0.3)
    assert health == AppHealth(False, "ProbeFailed", "GET /slow failed: TimeoutError")


async def test_probe_connection_refused(healthy_service: Aws) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    health = await healthy_service.health("rags", url=f"http://127.0.0.1:{port}", probe_path="/healthz")
    assert health == AppHealth(False, "ProbeFailed", "GET /healthz failed: ConnectionRefusedError")


@pytest.mark.parametrize("url", ["file:///etc", "ftp://127.0.0.1"])
async def test_probe_only_http(healthy_service: Aws, url: str) -> None:
    health = await healthy_service.health("rags", url=url, probe_path="/passwd")
    assert health == AppHealth(False, "ProbeFailed", "probe URL is not http or https: not probed")


async def test_no_probe_while_targets_are_unhealthy(aws: Aws, app_server: AppServer, app_url: str) -> None:
    aws.service("rags", desired=1, running=1, target_groups=[aws.target_group("rags-tg")])
    assert (await aws.health("rags", url=app_url, probe_path="/healthz")).reason == "TargetsUnhealthy"
    assert app_server.requests == []


# --- AWS failures ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def failing_aws(code: str) -> Iterator[str]:
    """An endpoint on 127.0.0.1 that answers every AWS JSON call with error `code`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = json.dumps({"__type": code, "message": "no"}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_access_denied_is_permanent() -> None:
    with failing_aws("AccessDeniedException") as url, pytest.raises(PermanentError) as caught:
        await check_app_health(REGION, CLUSTER, "rags", endpoint_url=url)
    assert caught.value.reason == "AppHealthDenied"


async def test_throttling_is_transient() -> None:
    with failing_aws("ThrottlingException") as url, pytest.raises(TransientError) as caught:
        await check_app_health(REGION, CLUSTER, "rags", endpoint_url=url)
    assert caught.value.reason == "AppHealthUnavailable"


async def test_unreachable_aws_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientError) as caught:
        await check_app_health(REGION, CLUSTER, "rags", endpoint_url=f"http://127.0.0.1:{port}")
    assert caught.value.reason == "AppHealthUnavailable"


# --- judge on boto3-shaped data: the states moto cannot produce --------------------------------------------

TASK_DEF = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/rags:7"


def ecs_service(*, running: int, desired: int, rollout: str = "COMPLETED", reason: str = "",
                deployment_running: int | None = None, events: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "serviceName": "rags", "status": "ACTIVE", "runningCount": running, "desiredCount": desired,
        "taskDefinition": TASK_DEF,
        "deployments": [{"id": "ecs-svc/1", "status": "PRIMARY", "taskDefinition": TASK_DEF,
                         "desiredCount": desired, "runningCount": running if deployment_running is None
                         else deployment_running, "rolloutState": rollout, "rolloutStateReason": reason}],
        "events": [{"id": str(i), "message": m} for i, m in enumerate(events)],
    }


def stopped(reason: str, *, container_reason: str = "", group: str = "service:rags",
            task_definition: str = TASK_DEF, at: str = "2025-01-01T00:00:00") -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": f"{ECR_REPO}:latest", "lastStatus": "STOPPED"}
    if container_reason:
        container["reason"] = container_reason
    return {"group": group, "taskDefinitionArn": task_definition, "lastStatus": "STOPPED", "stoppedReason": reason,
            "stoppedAt": at, "containers": [container]}


def test_rollout_failed() -> None:
    why = "ECS deployment circuit breaker: tasks failed to start. " + "x" * 300
    health = judge(ecs_service(running=0, desired=2, rollout="FAILED", reason=why))
    assert (health.healthy, health.reason) == (False, "RolloutFailed")
    assert health.message.startswith("deployment failed: ECS deployment circuit breaker: tasks failed to start.")
    assert len(health.message) == MESSAGE_LIMIT and health.message.endswith("...")


def test_failed_rollout_of_a_never_pushed_image_is_waiting() -> None:
    pull = "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref: not found"
    health = judge(ecs_service(running=0, desired=1, rollout="FAILED", reason="tasks failed to start"),
                   stopped_tasks=[stopped("Task failed to start", container_reason=pull)])
    assert health == AppHealth(False, "WaitingForImage",
                               f"waiting for the first image from CI (push to {ECR_REPO}:latest)")


def test_service_events_saying_the_image_is_missing() -> None:
    event = ("(service rags) failed to launch a task: CannotPullContainerError: "
             "manifest for x:latest not found: manifest unknown")
    health = judge(ecs_service(running=0, desired=1, rollout="IN_PROGRESS", events=[event]), images=[PUBLIC_IMAGE])
    assert health == AppHealth(False, "WaitingForImage",
                               f"waiting for the first image from CI (push to {PUBLIC_IMAGE})")


def test_pull_failure_of_an_older_revision_is_not_waiting() -> None:
    old = TASK_DEF.replace(":7", ":6")
    health = judge(ecs_service(running=0, desired=1, rollout="IN_PROGRESS"),
                   stopped_tasks=[stopped("CannotPullContainerError: ref: not found", task_definition=old)])
    assert health.reason == "RollingOut"


def test_missing_ecr_image_while_some_tasks_run() -> None:
    # Running tasks had an image once (an older tag, or a tag since deleted): not the *first* image.
    health = judge(ecs_service(running=1, desired=2), missing_images=[f"{ECR_REPO}:v2"])
    assert health == AppHealth(False, "WaitingForImage",
                               f"waiting for the image from CI (push to {ECR_REPO}:v2); running 1 of 2 tasks")


def test_all_tasks_running_is_not_waiting_whatever_ecr_says() -> None:
    assert judge(ecs_service(running=2, desired=2), missing_images=[f"{ECR_REPO}:v2"]).reason == "Healthy"


def test_invalid_probe_url_is_not_probed() -> None:
    assert probe("http://[::1", "/healthz", 1.0) == "probe URL is invalid: not probed"


def test_rolling_out_while_old_tasks_still_run() -> None:
    health = judge(ecs_service(running=2, desired=2, rollout="IN_PROGRESS", deployment_running=1))
    assert health == AppHealth(False, "RollingOut", "deployment in progress: running 1 of 2")


def test_completed_rollout_with_crashed_tasks() -> None:
    tasks = [stopped("Essential container in task exited", at="2025-01-01T00:00:00"),
             stopped("", container_reason="OutOfMemoryError: Container killed due to memory usage",
                     at="2025-01-01T00:05:00")]
    health = judge(ecs_service(running=1, desired=2), stopped_tasks=tasks)
    assert health == AppHealth(False, "TasksNotRunning", "running 1 of 2 tasks; last stopped: OutOfMemoryError: "
                                                         "Container killed due to memory usage")


def test_targets_failing_health_checks() -> None:
    arn = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/rags-tg/0123456789abcdef"
    descriptions = [
        {"Target": {"Id": "10.0.1.10", "Port": 8080}, "TargetHealth": {"State": "initial",
                                                                        "Reason": "Elb.RegistrationInProgress"}},
        {"Target": {"Id": "10.0.2.10", "Port": 8080}, "TargetHealth": {"State": "unhealthy",
                                                                        "Reason": "Target.FailedHealthChecks"}},
        {"Target": {"Id": "10.0.3.10", "Port": 8080}, "TargetHealth": {"State": "unhealthy",
                                                                        "Reason": "Target.Timeout"}},
    ]
    health = judge(ecs_service(running=3, desired=3), target_health={arn: descriptions})
    assert health == AppHealth(False, "TargetsUnhealthy", "no healthy targets in target group rags-tg: 1 initial, "
                                                          "2 unhealthy (Elb.RegistrationInProgress)")


def test_draining_service_is_not_found() -> None:
    service = {**ecs_service(running=1, desired=1), "status": "DRAINING"}
    assert judge(service) == AppHealth(False, "ServiceNotFound", "the ECS service rags is DRAINING")

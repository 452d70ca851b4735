"""Real parts on loopback: moto in server mode (S3 state + locks) and the real terraform binary.

Terraform runs go through a tiny wrapper script that logs each invocation, so tests count the
processes an operation started without touching the operator's internals.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import os
import pathlib
import re
import stat
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest
import yaml

from llmapp_operator.api.workspace import state_key
from llmapp_operator.cloud.app_secrets import AppSecrets
from llmapp_operator.cloud.state import RecordStore, StateBackend
from llmapp_operator.config import Settings
from llmapp_operator.engine.reconcile import Deps
from llmapp_operator.github import sync as github_sync
from llmapp_operator.kube.secrets import KubeSecrets
from llmapp_operator.kube.tenants import PolicyFile
from llmapp_operator.runners.gate import RunGate
from llmapp_operator.runners.job import JobRunner
from llmapp_operator.runners.local import LocalRunner
from llmapp_sandbox.apiserver.server import RunningApiServer, running_apiserver
from llmapp_sandbox.cloud import running_moto, sandbox_aws_env
from llmapp_sandbox.cluster import ApiClient, running_operator, use_kubeconfig
from llmapp_sandbox.github_emulator import sandbox_ca_file
from tests.chart_render import RELEASE_NAMESPACE, rbac_objects
from tests.conftest import REPO, TERRAFORM
from tests.secrets_scan import leaks, secret_for_tests

FIXTURES = REPO / "tests" / "fixtures" / "terraform"
SANDBOX_MODULE = REPO / "terraform" / "sandbox"   # not in the operator's default allow-list: tests add it

# The object and namespace the operator-level tests drive (through `open_sandbox`).
NS = "team-a"
# Secrets are read only for the LLMApps they name (kube/secrets.py): the tests' Secrets name "rags".
CONSENT = {"llmops.dev/allowed-llmapps": "rags"}
CRD = yaml.safe_load((REPO / "crds" / "llmapp.yaml").read_text())
APP: dict[str, Any] = {
    "apiVersion": "llmops.dev/v1alpha1",
    "kind": "LLMApp",
    "metadata": {"name": "rags", "namespace": NS},
    "spec": {
        "environment": "dev",
        "aws": {"region": "us-east-1"},
        "github": {"repository": "acme/rags"},
        "terraform": {"module": "sandbox"},
    },
}


def body_of(app: Any, status: Any = None) -> dict[str, Any]:
    """The Kubernetes object of a parsed LLMApp (what the teardown reads: raw, the spec may be invalid)."""
    return {"apiVersion": "llmops.dev/v1alpha1", "kind": "LLMApp",
            "metadata": {"name": app.ref.name, "namespace": app.ref.namespace, "uid": app.ref.uid,
                         "generation": app.ref.generation},
            "spec": app.spec.model_dump(by_alias=True, mode="json", exclude_none=True), "status": status or {}}


def llmapp(name: str = "rags", **spec: Any) -> dict[str, Any]:
    obj = copy.deepcopy(APP)
    obj["metadata"]["name"] = name
    obj["spec"].update(spec)
    return obj


@dataclass
class Sandbox:
    api: RunningApiServer
    client: ApiClient
    settings: Settings
    deps: Deps
    s3: Any

    def state(self, name: str = "rags", *, prefix: str | None = None, namespace: str = NS) -> list[str]:
        key = state_key(prefix or self.settings.state_key_prefix, namespace, name)
        try:
            return state_resources(self.s3, self.settings.state_bucket, key)
        except (self.s3.exceptions.NoSuchKey, self.s3.exceptions.NoSuchBucket):
            return []


SandboxFactory = Callable[..., contextlib.AbstractAsyncContextManager[Sandbox]]


# The chart's RBAC the operator runs under in every sandbox (cluster-wide, the job runner enabled):
# a call it does not grant is refused by the emulator and fails the test.
CHART_VALUES: dict[str, Any] = {"jobRunner": {"enabled": True}}
OPERATOR_ACCOUNT = (RELEASE_NAMESPACE, "llmapp-operator")
JOB_NS = RELEASE_NAMESPACE   # the chart's default job namespace: never a tenant's
RUNNER_ACCOUNT = (JOB_NS, "llmapp-terraform")
SIGNING_SECRET = "llmapp-operator-job-signing-key"   # the chart's name for it
# What the chart's random keys stand for here; registered, so a key in any object or log fails the test.
SIGNING_KEY = secret_for_tests("test-signing-key-" + "0123456789abcdef" * 2)
DIGEST_KEY = secret_for_tests("test-digest-key-" + "0123456789abcdef" * 2)


def signing_secret(namespace: str = JOB_NS, key: str = SIGNING_KEY) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SIGNING_SECRET, "namespace": namespace},
            "data": {"key": base64.b64encode(key.encode()).decode()}}


@pytest.fixture
def open_sandbox(settings: Settings, deps: Deps, s3, tmp_path: pathlib.Path) -> SandboxFactory:
    """API server + the real operator, opened inside the test's own task.

    The operator runs as the chart's ServiceAccount under enforced RBAC (from the rendered chart)
    and OwnerReferencesPermissionEnforcement; the test's client is an administrator. Any request
    the chart does not grant fails the test at the end, unless it passes `allow_denied=True`.

    Kopf waits 5 s at exit for tasks that appeared after it started; a fixture's teardown runs
    in such a task, the test body does not.
    """
    @contextlib.asynccontextmanager
    async def open_(*, allow_denied: bool = False, chart_values: dict[str, Any] | None = None,
                    **overrides: Any) -> AsyncIterator[Sandbox]:
        """`overrides` replace operator settings for this sandbox (e.g. progress_delay_seconds)."""
        local = settings.updated(**{"namespaces": (NS,), **overrides})
        local_deps = replace(deps, settings=local, job_runner=JobRunner(local), tenants=PolicyFile(local))
        async with running_apiserver([CRD], rbac=True, owner_references_enforcement=True) as api:
            api.server.apply_manifests([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
                                        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": JOB_NS}},
                                        signing_secret(),
                                        *rbac_objects(CHART_VALUES if chart_values is None else chart_values)])
            token = api.server.tokens.mint_service_account_token(*OPERATOR_ACCOUNT)
            use_kubeconfig(api.write_kubeconfig(tmp_path / "kubeconfig", NS, token=token))
            async with running_operator(local, local_deps):
                yield Sandbox(api=api, client=ApiClient(api.url, token=api.admin_token), settings=local,
                              deps=local_deps, s3=s3)
            if not allow_denied:
                assert not api.server.denied, f"RBAC refused calls the chart does not grant: {api.server.denied}"

    return open_


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with sandbox_aws_env(), running_moto() as endpoint:
        yield endpoint


@pytest.fixture
def s3(moto_endpoint: str):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")


class TerraformLog:
    """Reads the wrapper's invocation log: one line per terraform process."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def commands(self) -> list[str]:
        if not self.path.exists():
            return []
        return [line.split()[1] if len(line.split()) > 1 else "" for line in self.path.read_text().splitlines()]

    def count(self) -> int:
        return len(self.commands())


@pytest.fixture
def terraform_log(tmp_path: pathlib.Path) -> TerraformLog:
    return TerraformLog(tmp_path / "terraform-invocations.log")


class TerraformProcesses:
    """How many terraform processes run at once for one workspace, sampled every 10 ms from the
    wrapper's pid log while `watching()`: one object's passes must never overlap."""

    def __init__(self, log: TerraformLog) -> None:
        self.path = log.path.with_name(log.path.name + ".pids")
        self.most_at_once = 0

    def live(self) -> dict[str, list[str]]:
        running: dict[str, list[str]] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                pid, chdir, step = (line.split() + ["", "", ""])[:3]
                if pid.isdigit() and _alive(int(pid)):
                    running.setdefault(chdir, []).append(step)
        return running

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[TerraformProcesses]:
        import asyncio

        async def sample() -> None:
            while True:
                self.most_at_once = max([self.most_at_once, *(len(steps) for steps in self.live().values())])
                await asyncio.sleep(0.01)

        task = asyncio.create_task(sample())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"   # a zombie has finished
    except (OSError, IndexError):
        return False


@pytest.fixture
def terraform_processes(terraform_log: TerraformLog) -> TerraformProcesses:
    return TerraformProcesses(terraform_log)


class TerraformHooks:
    """Marker files the wrapper script honours, so a test can act at a chosen Terraform step:
    `started-<step>` appears when a step starts; `pause(step)` holds the next run of that step
    before terraform starts until `release(step)`."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    def pause(self, step: str) -> None:
        (self.path / f"pause-{step}").touch()

    def release(self, step: str) -> None:
        (self.path / f"go-{step}").touch()

    def started(self, step: str) -> bool:
        return (self.path / f"started-{step}").exists()

    async def wait(self, marker: str, timeout: float = 60) -> None:
        import asyncio

        for _ in range(int(timeout / 0.02)):
            if (self.path / marker).exists():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"terraform never reached {marker}")


@pytest.fixture
def terraform_hooks(tmp_path: pathlib.Path) -> TerraformHooks:
    return TerraformHooks(tmp_path / "terraform-hooks")


def write_terraform_wrapper(path: pathlib.Path, log: TerraformLog, hooks: TerraformHooks) -> pathlib.Path:
    """The real terraform behind a shell script that logs each invocation and honours the hooks.
    `exec` keeps the pid: the operator's journal and process-group handling see terraform itself."""
    assert TERRAFORM is not None
    path.write_text(f"""#!/bin/sh
echo "$*" >> '{log.path}'
echo "$$ $1 $2" >> '{log.path}.pids'  # exec keeps $$: the pid of terraform itself, per workspace
step="$2"  # $1 is -chdir=...
touch '{hooks.path}'/started-"$step"
if [ -e '{hooks.path}'/pause-"$step" ]; then
  rm -f '{hooks.path}'/pause-"$step"
  touch '{hooks.path}'/paused-"$step"
  while [ ! -e '{hooks.path}'/go-"$step" ]; do sleep 0.05; done
  rm -f '{hooks.path}'/go-"$step"
fi
exec '{TERRAFORM}' "$@"
""")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def settings(tmp_path: pathlib.Path, moto_endpoint: str, terraform_log: TerraformLog,
             terraform_hooks: TerraformHooks, request: pytest.FixtureRequest) -> Settings:
    if TERRAFORM is None:
        pytest.skip("terraform binary not on PATH: integration tests need the real CLI")
    wrapper = write_terraform_wrapper(tmp_path / "terraform", terraform_log, terraform_hooks)
    base = Settings()
    # Each test gets its own bucket, so state from one test never leaks into another.
    # (A hash of the full test id keeps parametrized cases apart after the name is cut to fit.)
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]
    bucket = "tfstate-" + re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:40].strip("-") + "-" + digest
    return base.updated(
        workdir=tmp_path / "work",
        terraform_binary=str(wrapper),
        metrics_port=None,   # tests that serve metrics pick a free port
        github_hosts=("127.0.0.1:*",), github_ca_bundle=sandbox_ca_file(),   # the GitHub emulator, over https
        digest_key=DIGEST_KEY,
        modules={**base.modules, "sandbox": SANDBOX_MODULE, "failing-destroy": FIXTURES / "failing-destroy",
                 "slow-apply": FIXTURES / "slow-apply", "wide": FIXTURES / "wide"},
        state_bucket=bucket,
        aws_endpoint_url=moto_endpoint,
        retry_base_seconds=0.2,
        retry_max_seconds=1.0,
        progress_delay_seconds=0.0,  # show every step, so tests see Planning/Applying
        liveness_endpoint=None,
        app_health=False,   # the sandbox module's ECS names are not real services (test_app_health checks them)
        service_control=False,   # ... nor services to scale (test_rollout.py builds them in moto)
        shutdown_grace_seconds=3.0,   # a stopping operator in a test gives running passes this long
        kill_grace_seconds=5.0,
    )


@pytest.fixture
def deps(settings: Settings) -> Deps:
    return Deps(settings=settings, runner=LocalRunner(settings), backend=StateBackend(settings.aws_endpoint_url),
                gate=RunGate(settings.max_concurrent_runs), secrets=KubeSecrets(),
                app_secrets=AppSecrets(settings.aws_endpoint_url), github=github_sync,
                records=RecordStore(settings.aws_endpoint_url))


def state_resources(s3, bucket: str, key: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Addresses of the managed resources recorded in the remote state."""
    import json

    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    state = json.loads(body)
    return sorted(f"{r['type']}.{r['name']}" for r in state.get("resources", []) if r.get("mode") == "managed")


os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


def state_versions(s3, bucket: str, key: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """Every stored version of a state file (the bucket is versioned), oldest first."""
    import json

    listing = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    # S3 lists a key's versions newest first (LastModified has one-second resolution: no tiebreak).
    versions = [v for v in reversed(listing) if v["Key"] == key]
    return [json.loads(s3.get_object(Bucket=bucket, Key=key, VersionId=v["VersionId"])["Body"].read())
            for v in versions]


def assert_state_sound(s3, bucket: str, key: str, expected_instances: int) -> None:  # type: ignore[no-untyped-def]
    """One lineage (never forked), serials that only grow (never lost), every resource instance
    exactly once (nothing created twice), and no lock left behind."""
    history = state_versions(s3, bucket, key)
    assert history, f"no state at s3://{bucket}/{key}"
    assert len({doc["lineage"] for doc in history}) == 1, "state lineage forked"
    serials = [doc["serial"] for doc in history]
    assert serials == sorted(serials), f"state serial went backwards: {serials}"
    final = history[-1]
    instances = [(r["type"], r["name"], i.get("index_key")) for r in final.get("resources", [])
                 if r.get("mode") == "managed" for i in r.get("instances", [])]
    assert len(instances) == len(set(instances)) == expected_instances, instances
    locks = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []) if o["Key"].endswith(".tflock")]
    assert locks == [], f"state lock left held: {locks}"


SCANNED_FILE_LIMIT = 5_000_000


@pytest.fixture(autouse=True)
def secrets_scan(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture,
                 monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> Iterator[None]:
    """Fails the test when a registered secret shows up in logs, LLMApps, Events, Terraform state
    or the test's files (see tests/secrets_scan.py)."""
    import logging

    from llmapp_operator.obs.redaction import RedactingFilter
    from llmapp_sandbox.apiserver.server import ApiServer

    servers: list[ApiServer] = []
    init = ApiServer.__init__

    def recording(self: ApiServer, *args: Any, **kwargs: Any) -> None:  # every API server the test starts
        init(self, *args, **kwargs)
        servers.append(self)

    monkeypatch.setattr(ApiServer, "__init__", recording)
    endpoint = request.getfixturevalue("moto_endpoint") if "moto_endpoint" in request.fixturenames else None
    redacting = RedactingFilter()  # the operator's own handler filter, as in production
    caplog.handler.addFilter(redacting)
    for name in ("llmapp_operator", "kopf"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield
    caplog.handler.removeFilter(redacting)

    texts: list[tuple[str, str]] = [
        (f"log record {r.name}", caplog.handler.format(r)) for r in caplog.get_records("call")]
    for server in servers:
        for plural in ("llmapps", "events", "configmaps", "jobs", "pods"):   # the Jobs' requests and results too
            with contextlib.suppress(KeyError):   # a server without the CRD serves no llmapps
                texts += [(f"{plural} {o['metadata'].get('name')}", json.dumps(o))
                          for o in server.peek_objects(plural)]
    if endpoint is not None:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        for bucket in s3.list_buckets().get("Buckets", []):
            for item in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
                if item["Key"].endswith((".tfstate", ".tflock")):
                    body = s3.get_object(Bucket=bucket["Name"], Key=item["Key"])["Body"].read()
                    texts.append((f"s3://{bucket['Name']}/{item['Key']}", body.decode(errors="replace")))
    for file in tmp_path.rglob("*"):
        if file.is_file() and not file.is_symlink() and file.stat().st_size < SCANNED_FILE_LIMIT:
            texts.append((str(file.relative_to(tmp_path)), file.read_text(errors="replace")))
    found = leaks(texts)
    assert not found, f"a test secret leaked into: {found[:10]}"

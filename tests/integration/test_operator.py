"""The real Kopf operator against the sandbox API server, with real terraform on moto.

Each test drives the object as a user would (create/patch/delete over the API) and asserts on
what a user sees: status, conditions, Events, and what is left in the Terraform state.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import pathlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
import yaml

from llmapp_operator.config import Settings
from llmapp_operator.reconcile import Deps
from llmapp_operator.sandbox.cluster import ApiClient, condition, is_ready, running_operator, use_kubeconfig
from llmapp_operator.sandbox.kube_emulator import RunningApiServer, running_apiserver
from llmapp_operator.workspace import state_key
from tests.conftest import REPO, needs_terraform
from tests.integration.conftest import TerraformLog, state_resources

pytestmark = needs_terraform

NS = "team-a"
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

    def state(self, name: str = "rags") -> list[str]:
        key = state_key(self.settings.state_key_prefix, NS, name)
        try:
            return state_resources(self.s3, self.settings.state_bucket, key)
        except self.s3.exceptions.NoSuchKey:
            return []


SandboxFactory = Callable[[], contextlib.AbstractAsyncContextManager[Sandbox]]


@pytest.fixture
def open_sandbox(settings: Settings, deps: Deps, s3, tmp_path: pathlib.Path) -> SandboxFactory:
    """API server + the real operator, opened inside the test's own task.

    Kopf waits 5 s at exit for tasks that appeared after it started; a fixture's teardown runs
    in such a task, the test body does not.
    """
    settings = replace(settings, namespaces=(NS,))
    deps = replace(deps, settings=settings)

    @contextlib.asynccontextmanager
    async def open_() -> AsyncIterator[Sandbox]:
        async with running_apiserver([CRD]) as api:
            use_kubeconfig(api.write_kubeconfig(tmp_path / "kubeconfig", NS))
            async with running_operator(settings, deps):
                yield Sandbox(api=api, client=ApiClient(api.url), settings=settings, deps=deps, s3=s3)

    return open_


async def test_create_to_ready_with_url_conditions_and_events(
    open_sandbox: SandboxFactory, terraform_log: TerraformLog
) -> None:
    async with open_sandbox() as sandbox:
        await sandbox.client.create(llmapp())
        obj = await sandbox.client.wait_for(NS, "rags", is_ready)
        assert obj is not None
        status = obj["status"]
        assert status["phase"] == "Ready"
        assert status["url"].startswith("http://") and status["url"].endswith(".elb.amazonaws.com")
        assert status["url"] == status["outputs"]["url"]
        assert status["outputs"]["ecr_repository_name"]
        assert status["observedGeneration"] == obj["metadata"]["generation"] == 1
        assert status["lastAppliedDigest"] == status["lastAttemptedDigest"]
        assert status["plan"] == {"add": 6, "change": 0, "destroy": 0, "replace": 0}
        for cond_type, expected in (
            ("Ready", "True"),
            ("Reconciling", "False"),
            ("Stalled", "False"),
            ("InfraApplied", "True"),
        ):
            assert condition(obj, cond_type)["status"] == expected, cond_type  # type: ignore[index]
        assert "llmops.dev/teardown" in obj["metadata"]["finalizers"]
        # Kopf's bookkeeping lives in our annotations, never in status.
        assert set(status) <= {
            "phase",
            "url",
            "outputs",
            "observedGeneration",
            "lastAttemptedDigest",
            "lastAppliedDigest",
            "plan",
            "conditions",
            "lastError",
        }
        assert not any(key.startswith("kopf.zalando.org") for key in obj["metadata"].get("annotations", {}))
        assert terraform_log.commands() == ["init", "plan", "show", "apply", "output"]
        assert sandbox.state() != []

        reasons = [e["reason"] for e in await wait_events(sandbox, "rags", "Ready")]
        assert reasons[-1] == "Ready" and "Applying" in reasons
        assert all(e["type"] == "Normal" for e in await sandbox.client.events(NS, "rags"))


async def wait_events(sandbox: Sandbox, name: str, reason: str, timeout: float = 10) -> list[dict[str, Any]]:
    for _ in range(int(timeout / 0.1)):
        events = await sandbox.client.events(NS, name)
        if any(e["reason"] == reason for e in events):
            return events
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {reason} event; got {[e['reason'] for e in await sandbox.client.events(NS, name)]}")


async def test_spec_change_reapplies_and_metadata_change_does_not(
    open_sandbox: SandboxFactory, terraform_log: TerraformLog
) -> None:
    async with open_sandbox() as sandbox:
        await sandbox.client.create(llmapp())
        first = await sandbox.client.wait_for(NS, "rags", is_ready)
        assert first is not None
        runs = terraform_log.count()

        await sandbox.client.patch(NS, "rags", {"metadata": {"labels": {"team": "a"}}})
        await asyncio.sleep(1.0)
        assert terraform_log.count() == runs

        await sandbox.client.patch(NS, "rags", {"spec": {"app": {"desiredCount": 2}}})
        second = await sandbox.client.wait_for(NS, "rags", lambda o: is_ready(o) and o["metadata"]["generation"] == 2)
        assert second is not None
        assert second["status"]["observedGeneration"] == 2
        assert second["status"]["plan"]["change"] == 1
        assert second["status"]["lastAppliedDigest"] != first["status"]["lastAppliedDigest"]
        assert terraform_log.count() > runs


async def test_restart_resync_of_unchanged_object_starts_no_terraform(
    settings: Settings, deps: Deps, tmp_path: pathlib.Path, terraform_log: TerraformLog
) -> None:
    settings = replace(settings, namespaces=(NS,))
    async with running_apiserver([CRD]) as api:
        use_kubeconfig(api.write_kubeconfig(tmp_path / "kubeconfig", NS))
        client = ApiClient(api.url)
        async with running_operator(settings, replace(deps, settings=settings)):
            await client.create(llmapp())
            before = await client.wait_for(NS, "rags", is_ready)
        runs = terraform_log.count()
        api.server.reset_counts()

        # A new operator process life: Kopf lists the object again and the resume handler runs.
        async with running_operator(settings, replace(deps, settings=settings)):
            await asyncio.sleep(1.5)
        after = await client.get(NS, "rags")
        assert is_ready(after)
        assert terraform_log.count() == runs
        assert after is not None and before is not None
        assert after["status"]["conditions"] == before["status"]["conditions"]
        writes = sum(
            n
            for (verb, plural, _), n in api.server.request_counts.items()
            if plural == "llmapps" and verb in ("PATCH", "PUT", "POST")
        )
        assert writes <= 2


async def test_delete_destroys_then_releases_finalizer(
    open_sandbox: SandboxFactory, terraform_log: TerraformLog
) -> None:
    async with open_sandbox() as sandbox:
        await sandbox.client.create(llmapp())
        await sandbox.client.wait_for(NS, "rags", is_ready)
        assert sandbox.state() != []

        await sandbox.client.delete(NS, "rags")
        await sandbox.client.wait_for(NS, "rags", lambda o: o is None)
        assert "destroy" in terraform_log.commands()
        assert sandbox.state() == []


async def test_delete_with_orphan_policy_keeps_everything(
    open_sandbox: SandboxFactory, terraform_log: TerraformLog
) -> None:
    async with open_sandbox() as sandbox:
        await sandbox.client.create(llmapp(deletionPolicy="Orphan"))
        await sandbox.client.wait_for(NS, "rags", is_ready)
        await sandbox.client.delete(NS, "rags")
        await sandbox.client.wait_for(NS, "rags", lambda o: o is None)
        assert "destroy" not in terraform_log.commands()
        assert len(sandbox.state()) == 6


async def test_failing_destroy_keeps_finalizer_and_explains(
    open_sandbox: SandboxFactory, tmp_path: pathlib.Path
) -> None:
    async with open_sandbox() as sandbox:
        marker = tmp_path / "destroy-must-fail"
        marker.touch()
        spec = {"module": "failing-destroy", "vars": {"fail_destroy_marker": str(marker)}}
        await sandbox.client.create(llmapp(terraform=spec))
        await sandbox.client.wait_for(NS, "rags", is_ready)

        await sandbox.client.delete(NS, "rags")
        stuck = await sandbox.client.wait_for(
            NS,
            "rags",
            lambda o: o is not None and (condition(o, "Reconciling") or {}).get("reason") == "TerraformFailed",
        )
        assert stuck is not None
        assert stuck["metadata"]["deletionTimestamp"]
        assert "llmops.dev/teardown" in stuck["metadata"]["finalizers"]
        assert stuck["status"]["phase"] == "Deleting"
        assert "terraform destroy" in stuck["status"]["lastError"]
        warnings = [e for e in await sandbox.client.events(NS, "rags") if e["type"] == "Warning"]
        assert warnings and warnings[0]["reason"] == "TerraformFailed"
        assert sandbox.state() == ["terraform_data.guarded"]  # nothing half-destroyed silently

        marker.unlink()
        await sandbox.client.wait_for(NS, "rags", lambda o: o is None, timeout=30)
        assert sandbox.state() == []


async def test_invalid_spec_stalls_with_event_and_no_retry_storm(
    open_sandbox: SandboxFactory, terraform_log: TerraformLog
) -> None:
    async with open_sandbox() as sandbox:
        # The emulator does not run the CRD's schema, like `kubectl apply --validate=false` on an old CRD.
        await sandbox.client.create(llmapp(app={"cpu": 256, "memory": 8192}))
        obj = await sandbox.client.wait_for(
            NS, "rags", lambda o: (condition(o, "Stalled") or {}).get("status") == "True"
        )
        assert obj is not None
        assert obj["status"]["phase"] == "Failed"
        assert "spec.app" in condition(obj, "Stalled")["message"]  # type: ignore[index]
        assert condition(obj, "Ready")["status"] == "False"  # type: ignore[index]
        events = await wait_events(sandbox, "rags", "InvalidSpec")
        assert any(e["type"] == "Warning" for e in events)

        sandbox.api.server.reset_counts()
        await asyncio.sleep(2.0)
        assert terraform_log.count() == 0
        patches = sum(
            n
            for (verb, plural, _), n in sandbox.api.server.request_counts.items()
            if plural == "llmapps" and verb.lower() == "patch"
        )
        assert patches == 0  # no retry loop touching the object

        # Fixing the spec recovers without any other action.
        await sandbox.client.patch(NS, "rags", {"spec": {"app": {"memory": 2048}}})
        await sandbox.client.wait_for(NS, "rags", is_ready)


async def test_suspend_stops_terraform_and_says_so(open_sandbox: SandboxFactory, terraform_log: TerraformLog) -> None:
    async with open_sandbox() as sandbox:
        await sandbox.client.create(llmapp(suspend=True))
        obj = await sandbox.client.wait_for(
            NS, "rags", lambda o: (o or {}).get("status", {}).get("phase") == "Suspended"
        )
        assert obj is not None
        assert condition(obj, "Ready")["reason"] == "Suspended"  # type: ignore[index]
        assert terraform_log.count() == 0

        await sandbox.client.patch(NS, "rags", {"spec": {"suspend": False}})
        await sandbox.client.wait_for(NS, "rags", is_ready)


async def test_state_lock_held_elsewhere_is_retried_then_ready(open_sandbox: SandboxFactory) -> None:
    async with open_sandbox() as sandbox:
        key = state_key(sandbox.settings.state_key_prefix, NS, "rags")
        sandbox.s3.create_bucket(Bucket=sandbox.settings.state_bucket)
        lock = {
            "ID": "1d9a5c1e-0000-4000-8000-00000000abcd",
            "Operation": "OperationTypeApply",
            "Info": "",
            "Who": "ci@elsewhere",
            "Version": "1.11.4",
            "Created": "2026-11-24T00:00:00Z",
            "Path": f"{sandbox.settings.state_bucket}/{key}",
        }
        sandbox.s3.put_object(Bucket=sandbox.settings.state_bucket, Key=key + ".tflock", Body=json.dumps(lock).encode())

        await sandbox.client.create(llmapp())
        locked = await sandbox.client.wait_for(
            NS, "rags", lambda o: (condition(o, "Reconciling") or {}).get("reason") == "StateLocked"
        )
        assert locked is not None and condition(locked, "Stalled")["status"] == "False"  # type: ignore[index]

        sandbox.s3.delete_object(Bucket=sandbox.settings.state_bucket, Key=key + ".tflock")
        ready = await sandbox.client.wait_for(NS, "rags", is_ready, timeout=30)
        assert ready is not None and "lastError" not in ready["status"]


async def test_two_objects_converge_concurrently_with_separate_state(open_sandbox: SandboxFactory) -> None:
    async with open_sandbox() as sandbox:
        await asyncio.gather(sandbox.client.create(llmapp("one")), sandbox.client.create(llmapp("two")))
        one, two = await asyncio.gather(
            sandbox.client.wait_for(NS, "one", is_ready), sandbox.client.wait_for(NS, "two", is_ready)
        )
        assert one and two and one["status"]["url"] != two["status"]["url"]
        assert len(sandbox.state("one")) == len(sandbox.state("two")) == 6

"""One serialised reconcile per object, in the real operator (Kopf), real terraform, S3 on moto.

Every kind of pass (spec change, drift check, secret resync, retry, re-check, delete) goes
through the object's one worker: never two Terraform processes for an object, Ready only for a
generation that was applied, failed passes of every kind retried until they succeed, Stalled
objects re-run by the `llmops.dev/reconcile-requested-at` annotation, and a teardown that reads
the applied record beside the state, not status, and always finishes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import pathlib
from typing import Any

import boto3

from llmapp_operator.api.record import record_key
from llmapp_operator.api.workspace import state_key
from llmapp_sandbox.cluster import condition, is_ready
from llmapp_sandbox.github_emulator import GitHubEmulator, running_github
from tests.conftest import needs_terraform
from tests.integration.conftest import (
    CONSENT,
    NS,
    Sandbox,
    SandboxFactory,
    TerraformHooks,
    TerraformLog,
    TerraformProcesses,
    llmapp,
)
from tests.secrets_scan import secret_for_tests

pytestmark = needs_terraform

GITHUB_TOKEN = secret_for_tests("fake-github-token-for-one-reconcile-0005")


def secret(name: str, key: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS, "annotations": CONSENT},
            "data": {key: base64.b64encode(value.encode()).decode()}}


def reason_is(cond_type: str, reason: str) -> Any:
    return lambda o: (condition(o, cond_type) or {}).get("reason") == reason


def ready_for(generation: int) -> Any:
    return lambda o: is_ready(o) and o["metadata"]["generation"] == generation


def record_exists(sandbox: Sandbox, name: str = "rags") -> bool:
    key = record_key(state_key(sandbox.settings.state_key_prefix, NS, name))
    try:
        sandbox.s3.head_object(Bucket=sandbox.settings.state_bucket, Key=key)
        return True
    except sandbox.s3.exceptions.ClientError:
        return False


async def delete_secret(sandbox: Sandbox, name: str) -> None:
    client = sandbox.client
    await client._call("DELETE", client._path(NS, name, plural="secrets", group=None, version="v1"))


async def wipe_status(sandbox: Sandbox, name: str = "rags") -> None:
    """What a restore without status (Velero, a GitOps re-create) leaves: the spec only."""
    client = sandbox.client
    await client._call("PATCH", client._path(NS, f"{name}/status"), {"status": None}, "application/merge-patch+json")


async def test_drift_and_resync_falling_due_during_a_spec_change_never_start_a_second_terraform(
    open_sandbox: SandboxFactory, terraform_hooks: TerraformHooks, terraform_log: TerraformLog,
    terraform_processes: TerraformProcesses,
) -> None:
    async with open_sandbox(resync_seconds=1.0) as sandbox, terraform_processes.watching():
        await sandbox.client.create(llmapp(driftDetection={"interval": "1s"}))
        await sandbox.client.wait_for(NS, "rags", ready_for(1))
        await asyncio.sleep(1.5)   # a drift check and a resync have run on the Ready object
        assert terraform_log.commands().count("plan") >= 2

        terraform_hooks.pause("apply")
        await sandbox.client.patch(NS, "rags", {"spec": {"app": {"healthCheckPath": "/healthz"}}})
        await terraform_hooks.wait("paused-apply")
        started = terraform_log.count()
        await asyncio.sleep(3.0)   # drift (1 s) and resync (1 s) fall due while generation 2 applies
        assert terraform_log.count() == started, "a pass started terraform beside the running apply"
        during = await sandbox.client.get(NS, "rags")
        assert not is_ready(during), "Ready for generation 2 before it was applied"
        assert during is not None and during["status"]["observedGeneration"] in (1, 2)

        terraform_hooks.release("apply")
        await sandbox.client.wait_for(NS, "rags", ready_for(2))
        after_apply = terraform_log.count()
        await asyncio.sleep(2.5)   # the checks that were due run after the apply, one at a time
        assert terraform_log.count() > after_apply
        await sandbox.client.wait_for(NS, "rags", ready_for(2))
    assert terraform_processes.most_at_once == 1


async def test_a_failing_resync_is_retried_and_recovers_without_a_spec_edit(
    open_sandbox: SandboxFactory, moto_endpoint: str
) -> None:
    first, rotated = secret_for_tests("fake-rotating-value-0006a"), secret_for_tests("fake-rotating-value-0006b")
    sm = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")
    async with open_sandbox(resync_seconds=1.0) as sandbox:
        await sandbox.client.create(secret("openai", "api-key", first))
        ref = {"secretKeyRef": {"name": "openai", "key": "api-key"}}
        await sandbox.client.create(llmapp(app={"secrets": [{"name": "OPENAI_API_KEY", "valueFrom": ref}]}))
        await sandbox.client.wait_for(NS, "rags", is_ready)

        await delete_secret(sandbox, "openai")   # a rotation that went wrong: the Secret is gone
        failed = await sandbox.client.wait_for(NS, "rags", reason_is("Reconciling", "SecretNotFound"))
        assert failed is not None and condition(failed, "Stalled")["status"] == "False"   # type: ignore[index]

        await sandbox.client.create(secret("openai", "api-key", rotated))   # fixed outside the spec
        await sandbox.client.wait_for(NS, "rags", is_ready, timeout=30)
        stored = sm.get_secret_value(SecretId="llmapp/team-a/rags/OPENAI_API_KEY")["SecretString"]
        assert stored == rotated
        assert (await sandbox.client.get(NS, "rags"))["metadata"]["generation"] == 1   # type: ignore[index]


async def test_a_failing_drift_check_is_retried_and_recovers(open_sandbox: SandboxFactory,
                                                             terraform_log: TerraformLog) -> None:
    async with open_sandbox() as sandbox:
        await sandbox.client.create(llmapp(driftDetection={"interval": "1s"}))
        await sandbox.client.wait_for(NS, "rags", is_ready)
        key = state_key(sandbox.settings.state_key_prefix, NS, "rags")
        lock = {"ID": "6d9a5c1e-0000-4000-8000-00000000abcd", "Operation": "OperationTypeApply", "Info": "",
                "Who": "ci@elsewhere", "Version": "1.11.4", "Created": "2026-11-24T00:00:00Z",
                "Path": f"{sandbox.settings.state_bucket}/{key}"}
        sandbox.s3.put_object(Bucket=sandbox.settings.state_bucket, Key=key + ".tflock", Body=json.dumps(lock).encode())
        locked = await sandbox.client.wait_for(NS, "rags", reason_is("Reconciling", "StateLocked"))
        assert locked is not None and condition(locked, "Stalled")["status"] == "False"   # type: ignore[index]
        plans = terraform_log.commands().count("plan")
        await asyncio.sleep(1.5)   # retried with backoff (0.2 s .. 1 s), still locked: still retrying
        assert terraform_log.commands().count("plan") > plans
        shown = terraform_log.commands().count("show")   # `show` follows a plan that got the lock
        sandbox.s3.delete_object(Bucket=sandbox.settings.state_bucket, Key=key + ".tflock")
        await sandbox.client.wait_for(NS, "rags", is_ready, timeout=30)
        assert terraform_log.commands().count("show") > shown


async def test_the_annotation_re_runs_a_stalled_object_at_once(open_sandbox: SandboxFactory, tmp_path: pathlib.Path,
                                                               terraform_log: TerraformLog) -> None:
    denied = tmp_path / "no-permission"
    denied.touch()
    async with open_sandbox(stalled_recheck_seconds=3600.0) as sandbox:
        await sandbox.client.create(llmapp(terraform={"module": "failing-destroy",
                                                      "vars": {"deny_apply_marker": str(denied)}}))
        stalled = await sandbox.client.wait_for(NS, "rags", reason_is("Stalled", "AccessDenied"))
        assert stalled is not None and condition(stalled, "Stalled")["status"] == "True"   # type: ignore[index]
        denied.unlink()   # the IAM policy is fixed: nothing in the spec changed
        runs = terraform_log.count()
        await asyncio.sleep(1.5)
        assert terraform_log.count() == runs, "a Stalled object was retried in a loop"

        await sandbox.client.patch(NS, "rags", {"metadata": {"annotations": {
            "llmops.dev/reconcile-requested-at": "2026-12-01T10:00:00Z"}}})
        await sandbox.client.wait_for(NS, "rags", is_ready, timeout=30)


async def test_teardown_after_a_restore_without_status_still_destroys(open_sandbox: SandboxFactory,
                                                                     terraform_log: TerraformLog) -> None:
    async with open_sandbox() as sandbox:
        await sandbox.client.create(llmapp())
        await sandbox.client.wait_for(NS, "rags", is_ready)
        assert len(sandbox.state()) == 7 and record_exists(sandbox)

        await wipe_status(sandbox)
        wiped = await sandbox.client.get(NS, "rags")
        assert wiped is not None and not wiped.get("status")
        await sandbox.client.delete(NS, "rags")
        assert await sandbox.client.wait_for(NS, "rags", lambda o: o is None) is None
        assert "destroy" in terraform_log.commands()
        assert sandbox.state() == [] and not record_exists(sandbox)
        events = await sandbox.client.events(NS, "rags")
        assert not any(e["reason"] == "NothingToDestroy" for e in events)


async def test_an_object_never_applied_is_deleted_as_nothing_to_destroy(open_sandbox: SandboxFactory,
                                                                         terraform_log: TerraformLog) -> None:
    async with open_sandbox() as sandbox:
        await sandbox.client.create(llmapp(suspend=True))
        await sandbox.client.wait_for(NS, "rags", lambda o: (o or {}).get("status", {}).get("phase") == "Suspended")
        await sandbox.client.delete(NS, "rags")
        assert await sandbox.client.wait_for(NS, "rags", lambda o: o is None) is None
        assert terraform_log.count() == 0
        events = await sandbox.client.events(NS, "rags")
        assert any(e["reason"] == "NothingToDestroy" for e in events), [e["reason"] for e in events]


async def test_a_repository_move_leaves_nothing_in_the_old_repository(open_sandbox: SandboxFactory) -> None:
    emulator = GitHubEmulator(tokens={GITHUB_TOKEN: {"acme/rags", "acme/rags-next"}})
    emulator.add_repository("acme/rags")
    emulator.add_repository("acme/rags-next")
    async with running_github(emulator) as github_url, open_sandbox() as sandbox:
        await sandbox.client.create(secret("github-token", "token", GITHUB_TOKEN))
        github = {"repository": "acme/rags", "apiUrl": github_url,
                  "tokenSecretRef": {"name": "github-token", "key": "token"}, "variables": {"APP_LOG_LEVEL": "info"}}
        await sandbox.client.create(llmapp(github=github))
        await sandbox.client.wait_for(NS, "rags", is_ready)
        assert "ECS_CLUSTER" in emulator.environment_variables("acme/rags", "dev")

        await sandbox.client.patch(NS, "rags", {"spec": {"github": {"repository": "acme/rags-next"}}})
        moved = await sandbox.client.wait_for(NS, "rags", ready_for(2))
        assert moved is not None and moved["status"]["github"]["repository"] == "acme/rags-next"
        assert emulator.environments("acme/rags") == set()   # the environment we created went too
        assert emulator.environment_variables("acme/rags-next", "dev")["APP_LOG_LEVEL"] == "info"

        await sandbox.client.delete(NS, "rags")
        await sandbox.client.wait_for(NS, "rags", lambda o: o is None)
        assert emulator.environments("acme/rags-next") == set()


async def test_a_namespace_deleted_with_its_app_and_secrets_finishes_terminating(
    open_sandbox: SandboxFactory, caplog: Any
) -> None:
    """The namespace controller deletes the token Secret at once and the LLMApp waits for its
    finalizer: the teardown destroys, skips the GitHub clean-up it has no token for, says what
    it left (an Event cannot be posted into a terminating namespace: the log says it), and ends."""
    emulator = GitHubEmulator(tokens={GITHUB_TOKEN: {"acme/rags"}})
    emulator.add_repository("acme/rags")
    async with running_github(emulator) as github_url, open_sandbox() as sandbox:
        await sandbox.client.create(secret("github-token", "token", GITHUB_TOKEN))
        github = {"repository": "acme/rags", "apiUrl": github_url,
                  "tokenSecretRef": {"name": "github-token", "key": "token"}}
        await sandbox.client.create(llmapp(github=github))
        await sandbox.client.wait_for(NS, "rags", is_ready)

        client = sandbox.client
        await client._call("DELETE", f"{client.url}/api/v1/namespaces/{NS}")
        for _ in range(600):
            if sandbox.api.server.get_object("namespaces", None, NS) is None:
                break
            await asyncio.sleep(0.1)
        assert sandbox.api.server.get_object("namespaces", None, NS) is None, "the namespace never went"
        assert sandbox.state() == [] and not record_exists(sandbox)
        assert "the token Secret team-a/github-token is gone" in caplog.text
        assert emulator.environments("acme/rags") == {"dev"}   # what was left, and said so


async def test_a_secret_that_does_not_name_the_app_is_never_read(open_sandbox: SandboxFactory) -> None:
    """Secrets by consent: whoever may create LLMApps in a namespace cannot make the operator read
    the namespace's other Secrets (and send them to a repository of their choice)."""
    value = secret_for_tests("fake-database-password-not-for-llmapps-0008")
    async with open_sandbox() as sandbox:
        unconsented = secret("db", "password", value)
        unconsented["metadata"]["annotations"] = {"llmops.dev/allowed-llmapps": "billing"}   # another app's
        await sandbox.client.create(unconsented)
        ref = {"secretKeyRef": {"name": "db", "key": "password"}}
        await sandbox.client.create(llmapp(app={"secrets": [{"name": "DB_PASSWORD", "valueFrom": ref}]}))
        refused = await sandbox.client.wait_for(NS, "rags", reason_is("Stalled", "SecretNotAllowed"))
        message = condition(refused, "Stalled")["message"]   # type: ignore[index]
        assert "Secret team-a/db does not allow LLMApp rags to read it" in message
        assert "llmops.dev/allowed-llmapps=rags" in message and value not in json.dumps(refused)
        assert sandbox.state() == []   # nothing applied

        client = sandbox.client
        await client._call("PATCH", client._path(NS, "db", plural="secrets", group=None, version="v1"),
                           {"metadata": {"annotations": {"llmops.dev/allowed-llmapps": "billing,rags"}}},
                           "application/merge-patch+json")
        await client.patch(NS, "rags", {"metadata": {"annotations": {
            "llmops.dev/reconcile-requested-at": "2026-12-01T11:00:00Z"}}})
        await client.wait_for(NS, "rags", is_ready, timeout=30)


async def test_a_github_api_off_the_platform_s_list_gets_no_token(open_sandbox: SandboxFactory) -> None:
    async with open_sandbox() as sandbox:
        await sandbox.client.create(secret("github-token", "token", GITHUB_TOKEN))
        github = {"repository": "acme/rags", "apiUrl": "https://169.254.169.254/latest",   # a metadata address
                  "tokenSecretRef": {"name": "github-token", "key": "token"}}
        await sandbox.client.create(llmapp(github=github))
        refused = await sandbox.client.wait_for(NS, "rags", reason_is("Stalled", "GitHubHostNotAllowed"))
        message = condition(refused, "Stalled")["message"]   # type: ignore[index]
        assert "GitHub API https://169.254.169.254/latest is not allowed" in message
        assert "127.0.0.1:* (LLMAPP_GITHUB_HOSTS)" in message
        assert condition(refused, "InfraApplied")["status"] == "True"   # type: ignore[index]

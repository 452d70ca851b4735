"""The real Kopf operator against the sandbox API server, with real terraform on moto.

Each test drives the object as a user would (create/patch/delete over the API) and asserts on
what a user sees: status, conditions, Events, and what is left in the Terraform state.
"""

from __future__ import annotations

import asyncio
import copy
import json
import pathlib
from dataclasses import replace
from typing import Any

import pytest

from llmapp_operator.api.workspace import state_key
from llmapp_operator.config import Settings
from llmapp_operator.engine.reconcile import Deps
from llmapp_operator.kopf_app.wiring import build_deps
from llmapp_sandbox.apiserver.server import running_apiserver
from llmapp_sandbox.cluster import ApiClient, condition, is_ready, running_operator, use_kubeconfig
from tests.conftest import needs_terraform
from tests.integration.conftest import (
    CONSENT,
    CRD,
    NS,
    Sandbox,
    SandboxFactory,
    TerraformHooks,
    TerraformLog,
    assert_state_sound,
    llmapp,
)
from tests.secrets_scan import secret_for_tests

pytestmark = needs_terraform

LATE_VALUE = secret_for_tests("arrived-later-value")


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
        assert {key: status["plan"][key] for key in ("add", "change", "destroy", "replace", "pending")} == {
            "add": 7, "change": 0, "destroy": 0, "replace": 0, "pending": False}
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
            "policy",
            "cost",
            "conditions",
            "lastError",
            "state",
        }
        assert status["state"] == f"s3://{sandbox.settings.state_bucket}/llmapp/{NS}/rags/terraform.tfstate"
        assert not any(key.startswith("kopf.zalando.org") for key in obj["metadata"].get("annotations", {}))
        assert terraform_log.commands() == ["init", "plan", "show", "apply", "output"]
        assert sandbox.state() != []

        reasons = [e["reason"] for e in await wait_events(sandbox, "rags", "Ready")]
        assert reasons[-1] == "Ready" and "Applying" in reasons
        assert all(e["type"] == "Normal" for e in await sandbox.client.events(NS, "rags"))



async def test_a_fast_reconcile_writes_no_progress(open_sandbox: SandboxFactory) -> None:
    """Progress waits progress_delay_seconds: a create that finishes sooner costs no extra status
    writes and no Planning/Applying Events, only the finalizer, the result and one Ready Event."""
    async with open_sandbox(progress_delay_seconds=60) as sandbox:
        await sandbox.client.create(llmapp())
        await sandbox.client.wait_for(NS, "rags", is_ready)
        reasons = [e["reason"] for e in await wait_events(sandbox, "rags", "Ready")]
        status_writes = sandbox.api.server.request_counts[("PATCH", "llmapps", "status")]
    assert reasons == ["Ready"]
    assert status_writes == 1

async def wait_events(sandbox: Sandbox, name: str, reason: str, timeout: float = 10) -> list[dict[str, Any]]:
    for _ in range(int(timeout / 0.1)):
        events = await sandbox.client.events(NS, name)
        if any(e["reason"] == reason for e in events):
            return events
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {reason} event; got {[e['reason'] for e in await sandbox.client.events(NS, name)]}")


async def test_metrics_are_served_and_follow_what_happened(open_sandbox: SandboxFactory) -> None:
    """prometheus-client on the configured port: Terraform step timings, phases, reconciles."""
    import socket
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    async with open_sandbox(metrics_port=port) as sandbox:
        before = await asyncio.to_thread(samples)
        await sandbox.client.create(llmapp())
        await sandbox.client.wait_for(NS, "rags", is_ready)
        after = await asyncio.to_thread(samples)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("llmapp_terraform_step_duration_seconds_count", step="apply", outcome="ok") == 1
    assert grew("llmapp_terraform_step_duration_seconds_count", step="plan", outcome="ok") == 1
    assert grew("llmapp_reconcile_duration_seconds_count", handler="reconcile", trigger="observed",
                outcome="applied") == 1
    assert after[("llmapp_objects", (("phase", "Ready"),))] >= 1
    assert after[("llmapp_terraform_runs_in_flight", ())] == 0


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

        await sandbox.client.patch(NS, "rags", {"spec": {"app": {"healthCheckPath": "/healthz"}}})
        second = await sandbox.client.wait_for(NS, "rags", lambda o: is_ready(o) and o["metadata"]["generation"] == 2)
        assert second is not None
        assert second["status"]["observedGeneration"] == 2
        assert second["status"]["plan"]["change"] == 1
        assert second["status"]["lastAppliedDigest"] != first["status"]["lastAppliedDigest"]
        assert terraform_log.count() > runs


async def test_restart_resync_of_unchanged_object_starts_no_terraform(
    settings: Settings, deps: Deps, tmp_path: pathlib.Path, terraform_log: TerraformLog
) -> None:
    settings = settings.updated(namespaces=(NS,))
    async with running_apiserver([CRD], namespaces=[NS]) as api:
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


async def test_a_restart_reads_no_secret_and_calls_no_cloud_for_a_settled_object(
    settings: Settings, tmp_path: pathlib.Path, terraform_log: TerraformLog
) -> None:
    """Resuming a Ready object at its generation: no Terraform, no Secrets Manager, no write. Its
    Secrets are read again (and the cloud asked) in the resync, spread over the interval."""
    import collections

    from llmapp_sandbox.cloud import running_moto

    cloud: collections.Counter[str] = collections.Counter()
    with running_moto(cloud) as endpoint:
        settings = settings.updated(namespaces=(NS,), aws_endpoint_url=endpoint)
        app = llmapp(app={"secrets": [{"name": "OPENAI_API_KEY",
                                       "valueFrom": {"secretKeyRef": {"name": "openai", "key": "api-key"}}}]})
        async with running_apiserver([CRD], namespaces=[NS]) as api:
            use_kubeconfig(api.write_kubeconfig(tmp_path / "kubeconfig", NS))
            client = ApiClient(api.url)
            await client.create({"apiVersion": "v1", "kind": "Secret",
                                 "metadata": {"name": "openai", "namespace": NS, "annotations": CONSENT},
                                 "stringData": {"api-key": secret_for_tests("restart-test-value-4b1d")}})
            async with running_operator(settings, build_deps(settings)):
                await client.create(app)
                await client.wait_for(NS, "rags", is_ready)
            assert cloud["secretsmanager"] > 0, "the first apply stores the app secret"
            runs = terraform_log.count()
            api.server.reset_counts()
            cloud.clear()
            async with running_operator(settings, build_deps(settings)):
                await asyncio.sleep(1.5)
            assert is_ready(await client.get(NS, "rags"))
            assert terraform_log.count() == runs
            assert sum(cloud.values()) == 0, dict(cloud)
            assert api.server.request_counts[("GET", "secrets", None)] == 0
            assert not [key for key in api.server.request_counts if key[1] == "llmapps" and key[0] in (
                "PATCH", "PUT", "POST")]


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


async def test_delete_while_apply_runs_finishes_apply_then_destroys(
    open_sandbox: SandboxFactory, terraform_hooks: TerraformHooks, terraform_log: TerraformLog
) -> None:
    """The apply is never cut short (that would strand resources outside the state); the delete
    waits for it, then destroys everything it created and releases the finalizer."""
    async with open_sandbox() as sandbox:
        terraform_hooks.pause("apply")
        await sandbox.client.create(llmapp())
        await terraform_hooks.wait("paused-apply")
        await sandbox.client.delete(NS, "rags")
        terraform_hooks.release("apply")
        assert await sandbox.client.wait_for(NS, "rags", lambda o: o is None, timeout=60) is None
        commands = terraform_log.commands()
        assert commands.index("apply") < commands.index("destroy"), commands
        key = state_key(sandbox.settings.state_key_prefix, NS, "rags")
        assert_state_sound(sandbox.s3, sandbox.settings.state_bucket, key, expected_instances=0)


async def test_spec_change_while_plan_runs_applies_the_new_generation(
    open_sandbox: SandboxFactory, terraform_hooks: TerraformHooks, terraform_log: TerraformLog
) -> None:
    """A spec edited mid-plan is not lost: the plan of generation 1 completes, then generation 2
    is planned and applied, and Ready is reported for generation 2 only."""
    async with open_sandbox() as sandbox:
        terraform_hooks.pause("plan")
        await sandbox.client.create(llmapp())
        await terraform_hooks.wait("paused-plan")
        await sandbox.client.patch(NS, "rags", {"spec": {"app": {"env": {"MODEL": "gpt-4o"}}}})
        terraform_hooks.release("plan")
        obj = await sandbox.client.wait_for(NS, "rags", is_ready, timeout=60)
        assert obj is not None and obj["metadata"]["generation"] == 2
        assert obj["status"]["observedGeneration"] == 2
        key = state_key(sandbox.settings.state_key_prefix, NS, "rags")
        assert_state_sound(sandbox.s3, sandbox.settings.state_bucket, key, expected_instances=7)
        state = json.loads(sandbox.s3.get_object(Bucket=sandbox.settings.state_bucket, Key=key)["Body"].read())
        revision = next(r for r in state["resources"] if r["name"] == "task_definition")
        assert revision["instances"][0]["attributes"]["input"]["value"]["environment"] == {"MODEL": "gpt-4o"}
        assert terraform_log.commands().count("plan") >= 2


async def test_delete_with_orphan_policy_keeps_everything(
    open_sandbox: SandboxFactory, terraform_log: TerraformLog
) -> None:
    async with open_sandbox() as sandbox:
        await sandbox.client.create(llmapp(deletionPolicy="Orphan"))
        await sandbox.client.wait_for(NS, "rags", is_ready)
        await sandbox.client.delete(NS, "rags")
        await sandbox.client.wait_for(NS, "rags", lambda o: o is None)
        assert "destroy" not in terraform_log.commands()
        assert len(sandbox.state()) == 7


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
        # Stored under an older, looser CRD (no Fargate rule); the API server does not re-validate
        # stored objects when the CRD tightens, so the operator still meets it.
        loose = copy.deepcopy(CRD)
        del loose["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["app"][
            "x-kubernetes-validations"]
        sandbox.api.server.update_object("customresourcedefinitions", loose)
        await sandbox.client.create(llmapp(app={"cpu": 256, "memory": 8192}))
        sandbox.api.server.update_object("customresourcedefinitions", CRD)
        obj = await sandbox.client.wait_for(
            NS, "rags", lambda o: (condition(o, "Stalled") or {}).get("status") == "True"
        )
        assert obj is not None
        assert obj["status"]["phase"] == "Failed"
        assert "spec.app" in condition(obj, "Stalled")["message"]  # type: ignore[index]
        assert condition(obj, "Ready")["status"] == "False"  # type: ignore[index]
        events = await wait_events(sandbox, "rags", "InvalidSpec")
        assert any(e["type"] == "Warning" for e in events)

        def patches() -> int:
            return sum(n for (verb, plural, _), n in sandbox.api.server.request_counts.items()
                       if plural == "llmapps" and verb.lower() == "patch")

        # The first pass's own writes (status, Kopf's annotations) may land late on a busy machine:
        # wait until the object is quiet, then no retry loop may touch it.
        for _ in range(20):
            sandbox.api.server.reset_counts()
            await asyncio.sleep(0.5)
            if patches() == 0:
                break
        sandbox.api.server.reset_counts()
        await asyncio.sleep(2.0)
        assert terraform_log.count() == 0
        assert patches() == 0  # no retry loop touching the object

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
        assert len(sandbox.state("one")) == len(sandbox.state("two")) == 7


SECRET_VALUE = secret_for_tests("fake-openai-key-for-tests-7f3a9c1e5b2d")


async def test_app_secret_reaches_secrets_manager_and_nowhere_else(
    open_sandbox: SandboxFactory, caplog: pytest.LogCaptureFixture, moto_endpoint: str
) -> None:
    import base64

    import boto3

    from llmapp_operator.obs.redaction import RedactingFilter

    caplog.set_level("DEBUG")
    caplog.handler.addFilter(RedactingFilter())  # the operator's log handler carries this filter
    async with open_sandbox() as sandbox:
        await sandbox.client.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "openai", "namespace": NS, "annotations": CONSENT},
                "data": {"api-key": base64.b64encode(SECRET_VALUE.encode()).decode()},
            }
        )
        ref = {"secretKeyRef": {"name": "openai", "key": "api-key"}}
        await sandbox.client.create(llmapp(app={"secrets": [{"name": "OPENAI_API_KEY", "valueFrom": ref}]}))
        obj = await sandbox.client.wait_for(NS, "rags", is_ready)
        events = await sandbox.client.events(NS, "rags")

        sm = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")
        stored = sm.get_secret_value(SecretId="llmapp/team-a/rags/OPENAI_API_KEY")
        assert stored["SecretString"] == SECRET_VALUE
        workspace = sandbox.settings.workdir / "workspaces"
        tfvars = next(workspace.glob("*/terraform.tfvars.json")).read_text()
        assert stored["ARN"] in tfvars  # Terraform sees the ARN only

        key = state_key(sandbox.settings.state_key_prefix, NS, "rags")
        state = sandbox.s3.get_object(Bucket=sandbox.settings.state_bucket, Key=key)["Body"].read().decode()
        workspace_text = "".join(
            p.read_text(errors="ignore") for p in workspace.rglob("*") if p.is_file() and ".terraform" not in p.parts
        )
        for where, text in {
            "status": json.dumps(obj),
            "events": json.dumps(events),
            "state": state,
            "workspace": workspace_text,
            "logs": caplog.text,
        }.items():
            assert SECRET_VALUE not in text, f"secret value leaked into {where}"

        # Deleting the object removes the hand-off too.
        await sandbox.client.delete(NS, "rags")
        await sandbox.client.wait_for(NS, "rags", lambda o: o is None)
        names = {s["Name"] for s in sm.list_secrets()["SecretList"]}
        assert "llmapp/team-a/rags/OPENAI_API_KEY" not in names


async def test_missing_secret_is_named_and_retried_until_it_exists(open_sandbox: SandboxFactory) -> None:
    import base64

    async with open_sandbox() as sandbox:
        ref = {"secretKeyRef": {"name": "late", "key": "token"}}
        await sandbox.client.create(llmapp(app={"secrets": [{"name": "TOKEN", "valueFrom": ref}]}))
        waiting = await sandbox.client.wait_for(
            NS, "rags", lambda o: (condition(o, "Reconciling") or {}).get("reason") == "SecretNotFound"
        )
        assert waiting is not None and "Secret team-a/late not found" in waiting["status"]["lastError"]
        assert condition(waiting, "Stalled")["status"] == "False"  # type: ignore[index]

        await sandbox.client.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "late", "namespace": NS, "annotations": CONSENT},
                "data": {"token": base64.b64encode(LATE_VALUE.encode()).decode()},
            }
        )
        await sandbox.client.wait_for(NS, "rags", is_ready, timeout=30)


GITHUB_TOKEN = secret_for_tests("fake-github-token-for-the-emulator-0003")
OPENAI_VALUE = secret_for_tests("fake-openai-value-for-github-0004")


async def test_github_environment_receives_names_and_secrets_and_is_cleaned_up(
    open_sandbox: SandboxFactory, caplog: pytest.LogCaptureFixture
) -> None:
    import base64

    from llmapp_operator.obs.redaction import RedactingFilter
    from llmapp_sandbox.github_emulator import GitHubEmulator, running_github

    caplog.set_level("DEBUG")
    caplog.handler.addFilter(RedactingFilter())
    emulator = GitHubEmulator(tokens={GITHUB_TOKEN: {"acme/rags"}})
    emulator.add_repository("acme/rags")
    async with running_github(emulator) as github_url, open_sandbox() as sandbox:
        for name, key, value in (("github-token", "token", GITHUB_TOKEN), ("openai", "api-key", OPENAI_VALUE)):
            await sandbox.client.create(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": name, "namespace": NS, "annotations": CONSENT},
                    "data": {key: base64.b64encode(value.encode()).decode()},
                }
            )
        github = {
            "repository": "acme/rags",
            "apiUrl": github_url,
            "tokenSecretRef": {"name": "github-token", "key": "token"},
            "variables": {"APP_LOG_LEVEL": "info"},
            "secrets": [{"name": "OPENAI_KEY", "valueFrom": {"secretKeyRef": {"name": "openai", "key": "api-key"}}}],
        }
        await sandbox.client.create(llmapp(github=github))
        obj = await sandbox.client.wait_for(NS, "rags", is_ready)
        assert obj is not None
        assert condition(obj, "GitHubSynced")["status"] == "True"  # type: ignore[index]

        outputs = obj["status"]["outputs"]
        variables = emulator.environment_variables("acme/rags", "dev")
        assert variables == {
            "ECS_CLUSTER": outputs["ecs_cluster_name"],
            "ECS_SERVICE": outputs["ecs_service_name"],
            "ECS_TASK_DEFINITION": outputs["ecs_task_definition_family"],
            "CONTAINER_NAME": outputs["container_name"],
            "ECR_REPOSITORY_NAME": outputs["ecr_repository_name"],
            "ECR_REGISTRY": outputs["ecr_registry"],
            "AWS_REGION": "us-east-1",
            "ROLE_TO_ASSUME": outputs["deploy_role_arn"],
            "APP_LOG_LEVEL": "info",
        }
        assert emulator.environment_secrets("acme/rags", "dev") == {"OPENAI_KEY": OPENAI_VALUE}
        status_github = obj["status"]["github"]
        assert status_github["environment"] == "dev" and status_github["secrets"] == ["OPENAI_KEY"]
        assert "ECS_CLUSTER" in status_github["variables"] and status_github["createdEnvironment"]

        # Idempotent: a spec change that touches neither infra nor GitHub values writes nothing there.
        writes = len(emulator.writes())
        await sandbox.client.patch(NS, "rags", {"spec": {"terraform": {"timeout": "20m"}}})
        await sandbox.client.wait_for(NS, "rags", lambda o: is_ready(o) and o["metadata"]["generation"] == 2)
        assert len(emulator.writes()) == writes

        events = await sandbox.client.events(NS, "rags")
        for where, text in {"status": json.dumps(obj), "events": json.dumps(events), "logs": caplog.text}.items():
            for value in (GITHUB_TOKEN, OPENAI_VALUE):
                assert value not in text, f"a secret leaked into {where}"

        await sandbox.client.delete(NS, "rags")
        await sandbox.client.wait_for(NS, "rags", lambda o: o is None)
        assert emulator.environments("acme/rags") == set()


@pytest.mark.parametrize("gone", ["environment", "access"])
async def test_a_github_environment_gone_before_the_delete_does_not_hold_the_finalizer(
        open_sandbox: SandboxFactory, gone: str) -> None:
    """Deleted by hand (GitHub answers 404 for it: done), or the token lost the repository (404 for
    the repository: the names are reported left behind, a Warning): either way the LLMApp goes."""
    import base64

    from llmapp_sandbox.github_emulator import GitHubEmulator, running_github

    emulator = GitHubEmulator(tokens={GITHUB_TOKEN: {"acme/rags"}})
    emulator.add_repository("acme/rags")
    async with running_github(emulator) as github_url, open_sandbox() as sandbox:
        await sandbox.client.create({"apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": "github-token", "namespace": NS, "annotations": CONSENT},
            "data": {"token": base64.b64encode(GITHUB_TOKEN.encode()).decode()}})
        github = {"repository": "acme/rags", "apiUrl": github_url,
                  "tokenSecretRef": {"name": "github-token", "key": "token"}}
        await sandbox.client.create(llmapp(github=github))
        await sandbox.client.wait_for(NS, "rags", is_ready)
        if gone == "environment":
            del emulator.repos["acme/rags"].environments["dev"]
        else:
            emulator.tokens[GITHUB_TOKEN].discard("acme/rags")
        await sandbox.client.delete(NS, "rags")
        assert await sandbox.client.wait_for(NS, "rags", lambda o: o is None, timeout=60) is None
        warnings = [e for e in await sandbox.client.events(NS, "rags") if e["type"] == "Warning"]
        if gone == "access":
            assert any(e["reason"] == "LeftBehind" and "acme/rags" in e["message"] for e in warnings), warnings
        else:
            assert not warnings


async def test_revoked_github_token_stalls_with_a_clear_reason(open_sandbox: SandboxFactory) -> None:
    import base64

    from llmapp_sandbox.github_emulator import GitHubEmulator, running_github

    emulator = GitHubEmulator(tokens={})  # no token is valid
    emulator.add_repository("acme/rags")
    async with running_github(emulator) as github_url, open_sandbox() as sandbox:
        await sandbox.client.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "github-token", "namespace": NS, "annotations": CONSENT},
                "data": {"token": base64.b64encode(b"fake-revoked-github-token").decode()},
            }
        )
        github = {
            "repository": "acme/rags",
            "apiUrl": github_url,
            "tokenSecretRef": {"name": "github-token", "key": "token"},
        }
        await sandbox.client.create(llmapp(github=github))
        obj = await sandbox.client.wait_for(
            NS, "rags", lambda o: (condition(o, "Stalled") or {}).get("reason") == "GitHubUnauthorized"
        )
        assert obj is not None
        assert condition(obj, "InfraApplied")["status"] == "True"  # type: ignore[index]
        assert condition(obj, "GitHubSynced")["status"] == "False"  # type: ignore[index]
        assert obj["status"]["phase"] == "Failed"


async def test_github_sync_off_in_settings_leaves_github_alone(open_sandbox: SandboxFactory) -> None:
    from llmapp_sandbox.github_emulator import GitHubEmulator, running_github

    emulator = GitHubEmulator(tokens={})  # any call would fail: none may be made
    emulator.add_repository("acme/rags")
    async with running_github(emulator) as github_url, open_sandbox(github_sync=False) as sandbox:
        github = {"repository": "acme/rags", "apiUrl": github_url,
                  "tokenSecretRef": {"name": "github-token", "key": "token"}}
        await sandbox.client.create(llmapp(github=github))
        obj = await sandbox.client.wait_for(NS, "rags", is_ready)
        assert condition(obj, "GitHubSynced") is None and obj["status"].get("github") is None
        assert emulator.writes() == [] and emulator.environments("acme/rags") == set()

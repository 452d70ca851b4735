"""reconcile.converge/teardown with the real terraform binary, the real S3 backend on moto."""

from __future__ import annotations

import asyncio
import json
import pathlib
from dataclasses import replace
from typing import Any

from llmapp_operator.api.conditions import Outcome
from llmapp_operator.api.spec import LLMApp
from llmapp_operator.api.status import undeclared
from llmapp_operator.api.workspace import state_key
from llmapp_operator.engine.reconcile import Deps, Previous, Result, converge, status_patch
from llmapp_operator.engine.teardown import teardown
from llmapp_operator.runners.gate import RunGate
from llmapp_operator.runners.local import LocalRunner
from tests.conftest import needs_terraform
from tests.integration.conftest import TerraformLog, body_of, state_resources

pytestmark = needs_terraform

SANDBOX_RESOURCES = [
    "terraform_data.alb", "terraform_data.alb_logs_bucket", "terraform_data.deploy_role",
    "terraform_data.ecr", "terraform_data.ecs_service", "terraform_data.task_definition", "terraform_data.vpc",
]


def make_app(name: str = "rags", namespace: str = "team-a", uid: str | None = None, **spec: Any) -> LLMApp:
    body = {
        "metadata": {"name": name, "namespace": namespace, "uid": uid or f"uid-{namespace}-{name}",
                     "generation": spec.pop("generation", 1)},
        "spec": {
            "environment": "dev",
            "aws": {"region": "us-east-1"},
            "github": {"repository": "acme/rags"},
            "terraform": {"module": "sandbox"},
            **spec,
        },
    }
    return LLMApp.from_body(body)


def after(previous: Previous, result: Result) -> Previous:
    patch = status_patch(previous, result, "2026-11-24T00:00:00Z")
    assert undeclared(patch) == [], "the pass writes status fields the CRD does not declare"
    return Previous.from_status(patch)


async def test_create_apply_outputs_url_and_state(deps: Deps, s3, settings, terraform_log: TerraformLog) -> None:
    app = make_app()
    result = await converge(app, deps, Previous())

    assert result.error is None, result.report.message
    assert result.report.outcome is Outcome.APPLIED
    fields = result.fields
    assert fields["url"].startswith("http://") and fields["url"].endswith(".us-east-1.elb.amazonaws.com")
    assert fields["outputs"]["ecs_cluster_name"].endswith("-cluster")
    plan_id = fields["plan"].pop("id")
    assert len(plan_id) == 16 and fields["plan"].pop("digest") == fields["lastAttemptedDigest"]
    assert fields["plan"] == {"add": 7, "change": 0, "destroy": 0, "replace": 0, "pending": False}
    assert fields["policy"] == {"violations": [], "waived": []}   # terraform_data resources: nothing to flag
    assert fields["lastAppliedDigest"] == fields["lastAttemptedDigest"]
    assert terraform_log.commands() == ["init", "plan", "show", "apply", "output"]
    key = state_key(settings.state_key_prefix, "team-a", "rags")
    assert state_resources(s3, settings.state_bucket, key) == SANDBOX_RESOURCES
    # The state bucket was bootstrapped private, versioned and encrypted.
    assert s3.get_bucket_versioning(Bucket=settings.state_bucket)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=settings.state_bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    assert s3.get_bucket_encryption(Bucket=settings.state_bucket)["ServerSideEncryptionConfiguration"]
    # No lock left behind.
    assert "Contents" not in s3.list_objects_v2(Bucket=settings.state_bucket, Prefix=key + ".tflock")


async def test_unchanged_resync_starts_no_terraform(deps: Deps, terraform_log: TerraformLog) -> None:
    app = make_app()
    first = await converge(app, deps, Previous())
    assert first.error is None
    count = terraform_log.count()

    second = await converge(app, deps, after(Previous(), first))
    assert second.report.outcome is Outcome.UNCHANGED
    assert terraform_log.count() == count  # zero processes for an unchanged digest


async def test_an_apply_whose_status_was_lost_is_not_planned_and_applied_again(
        deps: Deps, terraform_log: TerraformLog) -> None:
    app = make_app()
    first = await converge(app, deps, Previous())
    assert first.error is None
    count = terraform_log.count()
    # The status write of that pass failed: the next pass starts from the status before it.
    again = await converge(app, deps, Previous())
    assert terraform_log.count() == count, "a second Terraform run for inputs already applied"
    assert again.error is None and again.report.outcome is Outcome.APPLIED
    assert again.fields["outputs"] == first.fields["outputs"] and again.fields["url"] == first.fields["url"]
    assert again.fields["lastAppliedDigest"] == first.fields["lastAppliedDigest"]
    # New inputs are planned and applied as ever.
    changed = await converge(make_app(app={"cpu": 2048, "memory": 4096}, generation=2), deps, Previous())
    assert changed.error is None and terraform_log.count() > count and changed.fields["plan"]["replace"] == 1


async def test_spec_change_replans_and_reapplies(deps: Deps, s3, settings) -> None:
    first = await converge(make_app(), deps, Previous())
    changed = make_app(app={"cpu": 2048, "memory": 4096}, generation=2)
    second = await converge(changed, deps, after(Previous(), first))

    assert second.error is None, second.report.message
    # Only the task definition changed, and like an ECS revision it is replaced, not updated.
    assert {k: second.fields["plan"][k] for k in ("add", "change", "destroy", "replace")} == {
        "add": 1, "change": 0, "destroy": 1, "replace": 1}
    assert second.fields["lastAppliedDigest"] != first.fields["lastAppliedDigest"]
    assert second.report.generation == 2


async def test_teardown_destroys_everything(deps: Deps, s3, settings) -> None:
    app = make_app()
    await converge(app, deps, Previous())
    result = await teardown(body_of(app), deps)

    assert result.error is None, result.report.message
    key = state_key(settings.state_key_prefix, "team-a", "rags")
    assert state_resources(s3, settings.state_bucket, key) == []


async def test_a_teardown_that_failed_after_destroy_resumes_without_destroying_again(
        deps: Deps, s3, settings, terraform_log: TerraformLog) -> None:
    """Progress is recorded step by step in the applied record: the retry skips what is done."""
    from llmapp_operator.api.errors import TransientError
    from llmapp_operator.api.record import record_key

    class SecretsManagerDownOnce:
        def __init__(self, real: Any) -> None:
            self.real, self.failed = real, False

        async def delete_all(self, region: str, owner: dict[str, str]) -> None:
            if not self.failed:
                self.failed = True
                raise TransientError("secretsmanager: connection refused", reason="SecretsManagerUnavailable")
            await self.real.delete_all(region, owner)

    app = make_app()
    await converge(app, deps, Previous())
    flaky = replace(deps, app_secrets=SecretsManagerDownOnce(deps.app_secrets))
    first = await teardown(body_of(app), flaky)
    assert first.transient and first.report.step == "secrets"
    key = state_key(settings.state_key_prefix, "team-a", "rags")
    record = json.loads(s3.get_object(Bucket=settings.state_bucket, Key=record_key(key))["Body"].read())
    assert record["teardown"]["destroyed"] is True and record["teardown"]["app_secrets_removed"] is False

    done = await teardown(body_of(app), flaky)
    assert done.error is None and done.report.reason == "Destroyed"
    assert terraform_log.commands().count("destroy") == 1
    assert "Contents" not in s3.list_objects_v2(Bucket=settings.state_bucket, Prefix=record_key(key))


async def test_orphan_policy_keeps_state(deps: Deps, s3, settings, terraform_log: TerraformLog) -> None:
    app = make_app(deletionPolicy="Orphan")
    await converge(app, deps, Previous())
    count = terraform_log.count()
    result = await teardown(body_of(app), deps)

    assert result.error is None and result.report.reason == "Orphaned"
    assert terraform_log.count() == count
    key = state_key(settings.state_key_prefix, "team-a", "rags")
    assert state_resources(s3, settings.state_bucket, key) == SANDBOX_RESOURCES


async def test_an_invalid_spec_neither_blocks_the_teardown_nor_the_orphan_policy(
        deps: Deps, s3, settings, terraform_log: TerraformLog) -> None:
    """A spec stored under a looser CRD that the model now refuses: `deletionPolicy: Orphan` is
    still read, and without it the teardown destroys from the applied record."""
    invalid = {"cpu": 256, "memory": 8192}
    kept, gone = make_app(name="kept"), make_app(name="gone")
    for app in (kept, gone):
        await converge(app, deps, Previous())
    count = terraform_log.count()

    body = body_of(kept)
    body["spec"].update(app=invalid, deletionPolicy="Orphan")
    released = await teardown(body, deps)
    assert released.error is None and released.report.reason == "Orphaned"
    assert terraform_log.count() == count
    assert state_resources(s3, settings.state_bucket, state_key(settings.state_key_prefix, "team-a", "kept")) \
        == SANDBOX_RESOURCES

    body = body_of(gone)
    body["spec"]["app"] = invalid
    destroyed = await teardown(body, deps)
    assert destroyed.error is None and destroyed.report.reason == "Destroyed", destroyed.report.message
    assert state_resources(s3, settings.state_bucket, state_key(settings.state_key_prefix, "team-a", "gone")) == []


async def test_failing_destroy_reports_and_keeps_state(deps: Deps, s3, settings, tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "fail-destroy"
    marker.touch()
    app = make_app(terraform={"module": "failing-destroy", "vars": {"fail_destroy_marker": str(marker)}})
    first = await converge(app, deps, Previous())
    assert first.error is None, first.report.message

    failed = await teardown(body_of(app), deps)
    assert failed.transient and failed.report.outcome is Outcome.DELETING
    assert failed.report.reason == "TerraformFailed"
    assert "terraform destroy" in failed.report.message
    key = state_key(settings.state_key_prefix, "team-a", "rags")
    assert state_resources(s3, settings.state_bucket, key) == ["terraform_data.guarded"]

    marker.unlink()  # the cause goes away: the retry succeeds
    done = await teardown(body_of(app), deps)
    assert done.error is None, done.report.message
    assert state_resources(s3, settings.state_bucket, key) == []


async def test_state_lock_held_by_another_run_is_transient(deps: Deps, s3, settings) -> None:
    app = make_app()
    first = await converge(app, deps, Previous())
    key = state_key(settings.state_key_prefix, "team-a", "rags")
    lock = {"ID": "5b3c0d8e-0000-4000-8000-000000000001", "Operation": "OperationTypeApply",
            "Info": "", "Who": "someone@elsewhere", "Version": "1.11.4",
            "Created": "2026-11-24T00:00:00Z", "Path": f"{settings.state_bucket}/{key}"}
    s3.put_object(Bucket=settings.state_bucket, Key=key + ".tflock", Body=json.dumps(lock).encode())

    changed = make_app(app={"healthCheckPath": "/healthz"}, generation=2)
    blocked = await converge(changed, deps, after(Previous(), first))
    assert blocked.transient and blocked.report.reason == "StateLocked"
    assert blocked.report.outcome is Outcome.RETRYING
    assert "lastAppliedDigest" not in blocked.fields
    # Someone else's lock is never broken by us.
    s3.head_object(Bucket=settings.state_bucket, Key=key + ".tflock")

    s3.delete_object(Bucket=settings.state_bucket, Key=key + ".tflock")
    retried = await converge(changed, deps, after(Previous(), first))
    assert retried.error is None, retried.report.message


async def test_two_objects_keep_separate_state(deps: Deps, s3, settings) -> None:
    a = make_app(name="one")
    b = make_app(name="two", namespace="team-b")
    results = await asyncio.gather(converge(a, deps, Previous()), converge(b, deps, Previous()))
    assert all(r.error is None for r in results), [r.report.message for r in results]
    assert results[0].fields["url"] != results[1].fields["url"]
    for namespace, name in (("team-a", "one"), ("team-b", "two")):
        key = state_key(settings.state_key_prefix, namespace, name)
        assert state_resources(s3, settings.state_bucket, key) == SANDBOX_RESOURCES

    await teardown(body_of(a), deps)
    assert state_resources(s3, settings.state_bucket, state_key(settings.state_key_prefix, "team-b", "two")) \
        == SANDBOX_RESOURCES


async def test_concurrency_bound_is_respected(settings) -> None:
    bounded = settings.updated(max_concurrent_runs=2)
    gate = RunGate(bounded.max_concurrent_runs)
    from llmapp_operator.cloud.state import StateBackend

    deps = Deps(settings=bounded, runner=LocalRunner(bounded), backend=StateBackend(bounded.aws_endpoint_url),
                gate=gate)
    apps = [make_app(name=f"app-{i}") for i in range(5)]
    results = await asyncio.gather(*(converge(app, deps, Previous()) for app in apps))
    assert all(r.error is None for r in results)
    assert gate.max_in_flight == 2


async def test_timeout_stops_the_run_and_releases_the_lock(deps: Deps, s3, settings, tmp_path: pathlib.Path) -> None:
    # A terraform that hangs: the wrapper sleeps instead of exec'ing for `apply`.
    slow = tmp_path / "slow-terraform"
    slow.write_text(
        "#!/bin/sh\n"
        'case "$2" in apply) sleep 30;; esac\n'
        f'exec {settings.terraform_binary} "$@"\n'
    )
    slow.chmod(0o755)
    # The spec's timeout is at least 1m (CRD and model); the operator's default is what a test can shorten.
    slow_settings = settings.updated(terraform_binary=str(slow), default_timeout_seconds=2)
    slow_deps = replace(deps, settings=slow_settings, runner=LocalRunner(slow_settings))
    app = make_app(terraform={"module": "sandbox"})

    result = await converge(app, slow_deps, Previous())
    assert result.transient and result.report.reason == "TerraformTimeout"
    # The whole process group is gone (no orphan `sleep`).
    import subprocess

    leftovers = subprocess.run(["pgrep", "-f", str(slow)], capture_output=True, text=True).stdout.strip()
    assert leftovers == ""


async def test_invalid_module_vars_fail_before_any_run(deps: Deps, terraform_log: TerraformLog) -> None:
    # "wide" is a platform module to the CRD (not built in): only the operator knows its variables.
    app = make_app(terraform={"module": "wide", "vars": {"no_such_variable": "1"}})
    result = await converge(app, deps, Previous())
    assert result.report.outcome is Outcome.STALLED
    assert "no_such_variable" in result.report.message
    assert terraform_log.count() == 0

    unknown = make_app(terraform={"module": "not-offered"})
    result = await converge(unknown, deps, Previous())
    assert result.report.outcome is Outcome.STALLED and result.report.reason == "UnknownModule"
    assert terraform_log.count() == 0


class MemorySecrets:
    """Kubernetes Secret values as the test sets them (the Secrets Manager side is real moto)."""

    def __init__(self, values: dict[tuple[str, str], str]) -> None:
        self.values = values

    async def read(self, namespace: str, name: str, key: str, *, reader: str) -> str:
        return self.values[(name, key)]


async def test_rotated_app_secret_gets_a_new_version_and_rolls_the_service(
    deps: Deps, moto_endpoint: str, terraform_log: TerraformLog
) -> None:
    import boto3

    from llmapp_operator.cloud.app_secrets import AppSecrets

    secrets = MemorySecrets({("openai", "api-key"): "first-value-1234"})
    deps = replace(deps, secrets=secrets, app_secrets=AppSecrets(moto_endpoint))
    ref = {"secretKeyRef": {"name": "openai", "key": "api-key"}}
    app = make_app(app={"secrets": [{"name": "OPENAI_API_KEY", "valueFrom": ref}]})
    first = await converge(app, deps, Previous())
    assert first.error is None, first.report.message
    outputs = first.fields["outputs"]
    ecs = boto3.client("ecs", endpoint_url=moto_endpoint, region_name="us-east-1")
    ecs.create_cluster(clusterName=outputs["ecs_cluster_name"])
    ecs.register_task_definition(family="f", containerDefinitions=[{"name": "app", "image": "x", "memory": 512}])
    ecs.create_service(cluster=outputs["ecs_cluster_name"], serviceName=outputs["ecs_service_name"],
                       taskDefinition="f", desiredCount=1)
    runs = terraform_log.count()

    secrets.values[("openai", "api-key")] = "second-value-5678"
    rotated = await converge(app, deps, after(Previous(), first))
    assert rotated.error is None, rotated.report.message
    assert rotated.report.outcome is Outcome.UNCHANGED  # same ARN: no Terraform run
    assert "service redeployed" in rotated.report.message
    assert terraform_log.count() == runs
    sm = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")
    assert sm.get_secret_value(SecretId="llmapp/team-a/rags/OPENAI_API_KEY")["SecretString"] == "second-value-5678"

"""Day two with the real terraform on the S3 backend in moto: plan approval with the saved plan
stored beside the state, guardrail holds, drift detection, and AppHealthy from ECS/ELBv2 in moto.

The sandbox module is made of terraform_data, so an AWS-shaped plan review (destructive change,
cost) comes from `StackReviewRunner`: the real LocalRunner runs the real plan, and its review is
made from the AWS stack's plan JSON (tests/unit/test_review.py builds it), since Terraform cannot
plan AWS resources without providers.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import replace
from typing import Any

import boto3
import pytest

from llmapp_operator.api.conditions import Outcome, derive
from llmapp_operator.api.errors import Waiting
from llmapp_operator.api.workspace import Workspace, resource_name, state_key
from llmapp_operator.cloud.app_health import check_app_health
from llmapp_operator.engine.reconcile import Deps, Previous, converge
from llmapp_operator.review.verdict import review_plan
from llmapp_operator.runners.base import PlanSummary
from llmapp_operator.runners.local import LocalRunner
from tests.conftest import CHECKOV, needs_checkov, needs_terraform
from tests.integration.conftest import TerraformLog
from tests.integration.test_reconcile_terraform import after, make_app
from tests.unit.test_review import edit, stack_plan

pytestmark = needs_terraform


def cond(previous: Previous, cond_type: str) -> dict[str, Any]:
    return next(c for c in previous.conditions if c["type"] == cond_type)


async def test_manual_approval_applies_exactly_the_saved_plan_even_from_another_pod(
        deps: Deps, settings: Any, s3: Any, terraform_log: TerraformLog) -> None:
    app = make_app(approvePlan="manual")
    held = await converge(app, deps, Previous())
    assert held.report.outcome is Outcome.AWAITING_APPROVAL and held.error is None
    previous = after(Previous(), held)
    assert previous.phase == "AwaitingApproval"
    assert cond(previous, "PlanPending")["status"] == "True" and cond(previous, "Ready")["status"] == "False"
    plan = held.fields["plan"]
    assert plan["pending"] is True and plan["add"] == 7 and len(plan["id"]) == 16
    assert f"spec.approvePlan: {plan['id']}" in held.report.message
    assert "lastAppliedDigest" not in held.fields and terraform_log.commands() == ["init", "plan", "show"]
    key = state_key(settings.state_key_prefix, "team-a", "rags").rsplit("/", 1)[0] + f"/plans/{plan['id']}.tfplan"
    assert s3.get_object(Bucket=settings.state_bucket, Key=key)["ServerSideEncryption"] == "AES256"

    # A wrong (stale) id is refused with a clear message and a fresh plan.
    stale = await converge(make_app(approvePlan="0123456789abcdef", generation=2), deps, previous)
    assert stale.report.outcome is Outcome.AWAITING_APPROVAL
    assert "0123456789abcdef does not name a pending plan" in stale.report.message
    previous = after(previous, stale)
    fresh_id = stale.fields["plan"]["id"]

    # The operator pod is replaced: its workspace is gone; the approved plan comes from the bucket.
    shutil.rmtree(settings.workdir)
    other_pod = replace(deps, runner=LocalRunner(settings))
    terraform_log.path.unlink()
    applied = await converge(make_app(approvePlan=fresh_id, generation=3), other_pod, previous)
    assert applied.error is None, applied.report.message
    assert applied.report.outcome is Outcome.APPLIED
    assert terraform_log.commands() == ["init", "apply", "output"]   # no new plan: exactly the saved one
    assert applied.fields["plan"]["id"] == fresh_id and applied.fields["plan"]["pending"] is False
    previous = after(previous, applied)
    assert cond(previous, "PlanPending")["status"] == "False" and cond(previous, "Ready")["status"] == "True"

    # A spec change later is held again: approvePlan still names an applied plan, not a pending one.
    again = await converge(make_app(approvePlan=fresh_id, generation=4, app={"healthCheckPath": "/healthz"}), deps,
                           previous)
    assert again.report.outcome is Outcome.AWAITING_APPROVAL and again.fields["plan"]["change"] == 1


async def test_an_approved_plan_whose_state_moved_on_is_refused_and_planned_again(
        deps: Deps, settings: Any) -> None:
    held = await converge(make_app(approvePlan="manual"), deps, Previous())
    previous = after(Previous(), held)
    # Someone else applies meanwhile (auto mode): the saved plan's state is no longer current.
    await converge(make_app(), replace(deps, runner=LocalRunner(settings)), Previous())
    result = await converge(make_app(approvePlan=held.fields["plan"]["id"], generation=2), deps, previous)
    assert result.error is not None and result.error.reason == "StalePlan"
    assert "approved plan" in result.report.message and result.fields["plan"]["pending"] is False
    retried = await converge(make_app(approvePlan=held.fields["plan"]["id"], generation=2), deps,
                             after(previous, result))
    # The other apply already built exactly these inputs (its record says so): nothing to plan or approve.
    assert retried.report.outcome is Outcome.APPLIED and retried.report.message.startswith("applied already")


class StackReviewRunner(LocalRunner):
    """The real plan of the sandbox module, reviewed as the AWS stack's plan `document` would be."""

    document: dict[str, Any] = stack_plan()

    async def plan(self, ws: Workspace) -> PlanSummary:
        summary = await super().plan(ws)
        assert ws.review is not None
        return replace(summary, review=review_plan(self.document, ws.review))


def with_stack_review(deps: Deps, document: dict[str, Any]) -> Deps:
    runner = StackReviewRunner(deps.settings)
    runner.document = document
    return replace(deps, runner=runner)


async def test_a_destructive_plan_is_held_even_with_auto_unless_allowed(deps: Deps) -> None:
    document = stack_plan()
    for item in document["resource_changes"]:
        if item["type"] in ("aws_s3_bucket", "aws_ecr_repository"):
            item["change"]["actions"] = ["delete", "create"]
    guarded = with_stack_review(deps, document)
    held = await converge(make_app(), guarded, Previous())
    assert held.report.outcome is Outcome.AWAITING_APPROVAL and held.report.reason == "DestructiveChange"
    assert held.fields["plan"]["destructive"] == ["module.alb_logs.aws_s3_bucket.this[0]",
                                                  "module.ecr.aws_ecr_repository.this[0]"]
    print("HELD FOR A DESTRUCTIVE CHANGE:", json.dumps(
        {"phase": after(Previous(), held).phase, "plan": held.fields["plan"], "message": held.report.message},
        indent=1))
    allowed = await converge(make_app(terraform={"module": "sandbox", "allowDestructiveChanges": True}),
                             guarded, Previous())
    assert allowed.report.outcome is Outcome.APPLIED


async def test_a_plan_over_the_cost_limit_is_held_and_policy_violations_stall(deps: Deps) -> None:
    # The cost counts spec.app.desiredCount (the operator sets it through the ECS API), not the plan's
    # count: the service module ignores desired_count, so a plan shows the count the service had.
    guarded = with_stack_review(deps, edit(stack_plan(), "aws_ecs_service", desired_count=1))
    held = await converge(make_app(terraform={"module": "sandbox", "maxMonthlyCost": 100}, app={"desiredCount": 20}),
                          guarded, Previous())
    assert held.report.reason == "CostLimitExceeded"
    assert held.fields["cost"]["monthlyEstimate"] > 100 and held.fields["cost"]["currency"] == "USD"
    assert "above spec.terraform.maxMonthlyCost 100.00" in held.report.message
    print("HELD OVER ITS COST LIMIT:", json.dumps({"phase": "AwaitingApproval", "plan": held.fields["plan"],
                                                   "cost": held.fields["cost"], "message": held.report.message},
                                                  indent=1))
    under = await converge(make_app(terraform={"module": "sandbox", "maxMonthlyCost": 100000},
                                    app={"desiredCount": 20}), guarded, Previous())
    assert under.report.outcome is Outcome.APPLIED

    public = with_stack_review(deps, edit(stack_plan(), "aws_ecs_service",
                                          network_configuration=[{"assign_public_ip": True}]))
    stalled = await converge(make_app(name="other"), public, Previous())
    assert stalled.report.outcome is Outcome.STALLED and stalled.report.reason == "PolicyViolation"
    assert "LLMAPP-ECS-PUBLIC-IP" in stalled.report.message
    waived = await converge(make_app(name="other", terraform={"module": "sandbox",
                                                              "policy": {"skip": ["LLMAPP-ECS-PUBLIC-IP"]}}),
                            public, Previous())
    assert waived.report.outcome is Outcome.APPLIED
    assert waived.fields["policy"]["waived"][0].startswith("LLMAPP-ECS-PUBLIC-IP")


def tamper_with_state(s3: Any, bucket: str, key: str) -> None:
    """A change made outside the operator: the recorded input of one resource differs from the config."""
    state = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    resource = next(r for r in state["resources"] if r["name"] == "alb")
    resource["instances"][0]["attributes"]["input"]["value"]["health_check_path"] = "/changed-by-hand"
    state["serial"] += 1
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(state).encode())


async def test_drift_is_found_by_a_plan_without_apply_and_remediated_when_asked(
        deps: Deps, settings: Any, s3: Any, terraform_log: TerraformLog) -> None:
    app = make_app()
    previous = after(Previous(), await converge(app, deps, Previous()))
    quiet = await converge(app, deps, previous, drift_check=True)
    assert quiet.report.drift == (False, "no drift: the infrastructure matches the last apply")
    previous = after(previous, quiet)
    assert cond(previous, "Drifted")["status"] == "False" and previous.drift_checked_at

    key = state_key(settings.state_key_prefix, "team-a", "rags")
    tamper_with_state(s3, settings.state_bucket, key)
    terraform_log.path.unlink()
    found = await converge(app, deps, previous, drift_check=True)
    assert found.error is None, found.report.message
    assert terraform_log.commands() == ["init", "plan", "show"]   # planned, not applied
    assert found.report.outcome is Outcome.UNCHANGED and found.report.drift is not None
    assert found.report.drift[0] is True and "terraform_data.alb (change)" in found.report.drift[1]
    assert found.fields["drift"]["resources"] == ["terraform_data.alb: change"]
    previous = after(previous, found)
    assert cond(previous, "Drifted")["status"] == "True" and cond(previous, "Ready")["status"] == "True"

    healing = make_app(driftDetection={"interval": "1h", "autoRemediate": True})
    fixed = await converge(healing, deps, previous, drift_check=True)
    assert fixed.report.outcome is Outcome.APPLIED and fixed.report.message.startswith("drift remediated")
    assert cond(after(previous, fixed), "Drifted")["status"] == "False"
    assert "changed-by-hand" not in s3.get_object(Bucket=settings.state_bucket, Key=key)["Body"].read().decode()


@pytest.fixture
def ecs(moto_endpoint: str) -> Any:
    return boto3.client("ecs", endpoint_url=moto_endpoint, region_name="us-east-1")


async def test_app_healthy_comes_from_the_ecs_service_in_moto(deps: Deps, ecs: Any, moto_endpoint: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    checking = replace(deps, settings=deps.settings.updated(app_health=True, app_health_recheck_seconds=7.0),
                       health=check_app_health)
    app = make_app(name="healthy")
    name = resource_name("team-a", "healthy")
    # Applied, but no ECS service exists yet: not healthy, looked at again later (no backoff storm).
    first = await converge(app, checking, Previous())
    assert first.report.outcome is Outcome.RETRYING and first.report.app_health is not None
    assert first.report.app_health[:2] == (False, "ServiceNotFound")
    assert isinstance(first.error, Waiting) and first.error.delay == 7.0
    assert first.fields["lastAppliedDigest"]   # infrastructure is recorded as applied
    previous = after(Previous(), first)
    assert cond(previous, "InfraApplied")["status"] == "True" and cond(previous, "AppHealthy")["status"] == "False"

    # The service appears with its tasks running (moto runs as many as MOTO_ECS_SERVICE_RUNNING says).
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")
    ecs.create_cluster(clusterName=f"{name}-cluster")
    ecs.register_task_definition(family=f"{name}-task", containerDefinitions=[
        {"name": "app", "image": "public.ecr.aws/docker/library/busybox:latest", "memory": 512}])
    ecs.create_service(cluster=f"{name}-cluster", serviceName=f"{name}-service", taskDefinition=f"{name}-task",
                       desiredCount=1)
    second = await converge(app, checking, previous)
    assert second.error is None, second.report.message
    assert second.report.outcome is Outcome.UNCHANGED and second.report.app_health is not None
    assert second.report.app_health[:2] == (True, "Healthy")
    conditions = {c["type"]: c["status"] for c in derive(previous.conditions, second.report, "2026-11-25T00:00:00Z")}
    assert conditions["Ready"] == "True" and conditions["AppHealthy"] == "True"


async def test_the_operator_waits_for_approval_and_applies_on_the_id(open_sandbox: Any, terraform_log: Any) -> None:
    from llmapp_sandbox.cluster import condition, is_ready
    from tests.integration.conftest import NS, llmapp

    async with open_sandbox() as sandbox:
        await sandbox.client.create(llmapp(approvePlan="manual"))

        def waiting(obj: dict[str, Any] | None) -> bool:
            return obj is not None and (obj.get("status") or {}).get("phase") == "AwaitingApproval"

        obj = await sandbox.client.wait_for(NS, "rags", waiting, timeout=60)
        plan = obj["status"]["plan"]
        assert condition(obj, "PlanPending")["status"] == "True"            # type: ignore[index]
        # In progress for kstatus (not done until approved), but waiting for a human: no retry loop.
        reconciling = condition(obj, "Reconciling")
        assert (reconciling["status"], reconciling["reason"]) == ("True", "ApprovalRequired")  # type: ignore[index]
        runs = terraform_log.count()
        await asyncio.sleep(1.5)   # several backoff periods of this sandbox (retry_max_seconds 1)
        assert terraform_log.count() == runs, "a held plan was planned again"
        assert sandbox.state() == []                                        # nothing applied
        events = [(e["reason"], e["type"]) for e in await sandbox.client.events(NS, "rags")]
        assert ("AwaitingApproval", "Normal") in events
        await sandbox.client.patch(NS, "rags", {"spec": {"approvePlan": plan["id"]}})
        obj = await sandbox.client.wait_for(NS, "rags", is_ready, timeout=60)
        assert obj["status"]["plan"]["id"] == plan["id"] and obj["status"]["plan"]["pending"] is False
        assert condition(obj, "PlanPending")["status"] == "False"           # type: ignore[index]
        assert len(sandbox.state()) == 7


async def test_the_drift_timer_finds_drift_in_a_running_operator(settings: Any, s3: Any, tmp_path: Any) -> None:
    """The real schedule: a separate operator process checks drift at the object's interval (1s)."""
    from llmapp_sandbox.apiserver.server import running_apiserver
    from llmapp_sandbox.cluster import ApiClient, condition, is_ready
    from tests.integration.conftest import CRD, NS, llmapp
    from tests.integration.operator_process import OperatorProcess

    local = settings.updated(namespaces=(NS,))   # the worker schedules each check at the object's interval
    async with running_apiserver([CRD], namespaces=[NS]) as api:
        client = ApiClient(api.url)
        operator = OperatorProcess(local, api, tmp_path)
        await operator.start()
        try:
            await client.create(llmapp(driftDetection={"interval": "1s"}))
            await client.wait_for(NS, "rags", is_ready, timeout=60)
            await client.wait_for(NS, "rags", lambda o: bool(((o or {}).get("status") or {}).get("drift")),
                                  timeout=30)   # a first, clean check
            tamper_with_state(s3, local.state_bucket, state_key(local.state_key_prefix, NS, "rags"))

            def drifted(obj: dict[str, Any] | None) -> bool:
                return (condition(obj, "Drifted") or {}).get("status") == "True"

            obj = await client.wait_for(NS, "rags", drifted, timeout=30)
            assert obj["status"]["drift"]["resources"] == ["terraform_data.alb: change"]
            assert condition(obj, "Ready")["status"] == "True"   # type: ignore[index]  # reported, not applied
            for _ in range(100):   # Events are posted asynchronously, next to the status write
                events = [(e["reason"], e["type"]) for e in await client.events(NS, "rags")]
                if ("DriftDetected", "Warning") in events:
                    break
                await asyncio.sleep(0.1)
            assert ("DriftDetected", "Warning") in events
        finally:
            await operator.stop()


CHECKOV_STAND_IN = """#!{python}
# Stands in for the checkov CLI (not installable here without pulling its large dependency set):
# same arguments, same JSON report shape, and it really reads the plan JSON the operator wrote.
import json, sys
args = sys.argv[1:]
assert args[args.index("--framework") + 1] == "terraform_plan" and args[args.index("-o") + 1] == "json"
plan = json.load(open(args[args.index("-f") + 1]))
failed = [{{"check_id": "CKV_TEST_1", "check_name": "load balancers must not be created by tests",
           "resource": change["address"]}} for change in plan["resource_changes"] if change["name"] == "alb"]
print(json.dumps({{"check_type": "terraform_plan", "results": {{"failed_checks": failed}}}}))
sys.exit(1 if failed else 0)
"""


async def test_checkov_findings_on_the_real_plan_join_the_policy_report(deps: Deps, tmp_path: Any) -> None:
    import stat
    import sys

    checkov = tmp_path / "checkov"
    checkov.write_text(CHECKOV_STAND_IN.format(python=sys.executable))
    checkov.chmod(checkov.stat().st_mode | stat.S_IXUSR)
    with_checkov = deps.settings.updated(checkov=str(checkov))
    checked = replace(deps, settings=with_checkov, runner=LocalRunner(with_checkov))
    stalled = await converge(make_app(), checked, Previous())
    assert stalled.report.reason == "PolicyViolation", stalled.report.message
    assert "CKV_TEST_1 terraform_data.alb" in stalled.report.message
    assert not list(deps.settings.workdir.rglob("tfplan.json"))   # the plan JSON did not stay on disk
    waived = await converge(make_app(terraform={"module": "sandbox", "policy": {"skip": ["CKV_TEST_1"]}}),
                            checked, Previous())
    assert waived.report.outcome is Outcome.APPLIED
    assert waived.fields["policy"]["waived"] == [
        "CKV_TEST_1 terraform_data.alb: load balancers must not be created by tests"]


@needs_checkov
async def test_the_real_checkov_runs_on_the_plan(deps: Deps) -> None:
    with_checkov = deps.settings.updated(checkov=CHECKOV)
    result = await converge(make_app(), replace(deps, settings=with_checkov, runner=LocalRunner(with_checkov)),
                            Previous())
    assert result.report.outcome is Outcome.APPLIED, result.report.message   # no checks for terraform_data

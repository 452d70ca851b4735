"""spec.app.scaling and spec.app.models: refused at apply time, rendered for the stack, reviewed by
the policy rules and priced as a range (pure; the moto and Terraform side is in
tests/integration/test_rollout.py and test_stack_features.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from llmapp_operator.api.spec import BEDROCK_IDS_ENV, LLMApp
from llmapp_operator.api.status import undeclared
from llmapp_operator.api.workspace import ReviewOptions, kept_addresses, render
from llmapp_operator.cloud.ecs_service import ServiceView
from llmapp_operator.config import Settings
from llmapp_operator.engine.reconcile import review_fields
from llmapp_operator.engine.rollout import Choice, Wanted, decide
from llmapp_operator.review.cost import estimate_monthly_cost, load_price_table
from llmapp_operator.review.policy import evaluate_policy
from llmapp_operator.review.verdict import review_plan
from llmapp_operator.runners.base import PlanSummary
from llmapp_operator.runners.modules import load_module
from tests.spec_samples import BASE
from tests.unit.test_crd import model_verdict, server_verdict
from tests.unit.test_review import change, stack_plan

SCALING = {"minTasks": 2, "maxTasks": 6, "cpuTarget": 60, "requestsPerTarget": 200,
           "schedule": {"stop": "cron(0 20 ? * MON-FRI *)", "start": "cron(0 7 ? * MON-FRI *)",
                        "timezone": "Europe/Berlin"}}
MODELS = [{"id": "anthropic.claude-3-haiku-20240307-v1:0", "env": "CHAT_MODEL"},
          {"id": "eu.anthropic.claude-3-5-sonnet-20240620-v1:0"}]


def spec_with(**app: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    spec["app"] = app
    return spec


def refused_by_both(spec: dict[str, Any], words: str) -> None:
    server, model = server_verdict(spec), model_verdict(spec)
    assert not server[0] and not model[0], (server, model)
    assert words in server[1] and words in model[1], (server, model)


def test_a_range_upside_down_or_without_a_metric_is_refused_at_apply_time() -> None:
    assert server_verdict(spec_with(scaling=SCALING)) == (True, "") == model_verdict(spec_with(scaling=SCALING))
    refused_by_both(spec_with(scaling={"minTasks": 5, "maxTasks": 4, "cpuTarget": 50}), "minTasks must not be above")
    refused_by_both(spec_with(scaling={"maxTasks": 4}), "set cpuTarget, requestsPerTarget or both")
    # 0 tasks only on a schedule: target tracking cannot scale out from 0.
    assert not server_verdict(spec_with(scaling={"minTasks": 0, "maxTasks": 4, "cpuTarget": 50}))[0]


def test_model_ids_are_named_models_and_their_variables_are_the_operator_s() -> None:
    assert server_verdict(spec_with(models=MODELS)) == (True, "") == model_verdict(spec_with(models=MODELS))
    for wildcard in ("*", "anthropic.*", "anthropic.claude-*"):
        assert not server_verdict(spec_with(models=[{"id": wildcard}]))[0]
        assert not model_verdict(spec_with(models=[{"id": wildcard}]))[0]
    refused_by_both(spec_with(models=MODELS, env={BEDROCK_IDS_ENV: "x"}), BEDROCK_IDS_ENV)
    refused_by_both(spec_with(models=MODELS, env={"CHAT_MODEL": "x"}), "the operator")
    secret = {"name": "CHAT_MODEL", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
    assert not server_verdict(spec_with(models=MODELS, secrets=[secret]))[0]
    assert not model_verdict(spec_with(models=MODELS, secrets=[secret]))[0]
    twice = [{"id": "a.b", "env": "X"}, {"id": "c.d", "env": "X"}]
    assert not server_verdict(spec_with(models=twice))[0] and not model_verdict(spec_with(models=twice))[0]


def test_the_stack_gets_the_range_the_model_ids_and_the_variables_for_the_container() -> None:
    app = LLMApp.from_body({"metadata": {"name": "rags", "namespace": "team-a", "uid": "u1"},
                            "spec": spec_with(scaling=SCALING, models=MODELS, env={"A": "1"})})
    ws = render(app, Settings(), load_module("stack", Settings().modules))
    assert ws.tfvars["scaling"] == {"min_tasks": 2, "max_tasks": 6, "cpu_target": 60, "requests_per_target": 200,
                                    "schedule": {"stop": "cron(0 20 ? * MON-FRI *)",
                                                 "start": "cron(0 7 ? * MON-FRI *)", "timezone": "Europe/Berlin"}}
    assert ws.tfvars["bedrock_models"] == [m["id"] for m in MODELS]
    assert ws.tfvars["app_environment"] == {
        "A": "1", "CHAT_MODEL": MODELS[0]["id"], BEDROCK_IDS_ENV: f"{MODELS[0]['id']},{MODELS[1]['id']}"}
    assert ws.review is not None and ws.review.scaling_tasks == (2, 6)
    plain = render(LLMApp.from_body({"metadata": {"name": "rags", "namespace": "team-a", "uid": "u1"},
                                     "spec": spec_with()}), Settings(), load_module("stack", Settings().modules))
    assert plain.tfvars["scaling"] is None and plain.tfvars["bedrock_models"] == []
    assert BEDROCK_IDS_ENV not in plain.tfvars["app_environment"]


def view(desired: int) -> ServiceView:
    return ServiceView("arn:td/app:1", desired, desired, ())


@pytest.mark.parametrize("current,expected", [(0, 2), (1, 2), (2, None), (5, None), (6, None), (9, 6)])
def test_with_scaling_only_a_count_outside_the_range_is_corrected(current: int, expected: int | None) -> None:
    wanted = Wanted("pipeline", 1, None, None, False, scaling=(2, 6))
    assert decide(wanted, view(current), Choice(deploy=None, runs=None), image_exists=True).desired_count == expected
    # ... and none while the image is missing.
    assert decide(wanted, view(current), Choice(deploy=None, runs=None), image_exists=False).desired_count == (
        None if current == 0 else 0)


def policy(statements: list[dict[str, Any]]) -> dict[str, Any]:
    plan = stack_plan()
    plan["resource_changes"].append(change("module.ecs_service", "aws_iam_policy", "tasks", {
        "policy": json.dumps({"Version": "2012-10-17", "Statement": statements})}, index=0))
    return plan


ACTIONS = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
PROFILE = "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-5-sonnet-20240620-v1:0"
# What models.tf gives the ecs module for MODELS (checked against terraform's own output in
# tests/integration/test_stack_features.py).
STACK_STATEMENTS = [
    {"Sid": "InvokeFoundationModels", "Effect": "Allow", "Action": ACTIONS,
     "Resource": "arn:aws:bedrock:eu-west-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"},
    {"Sid": "InvokeProfile1", "Effect": "Allow", "Action": ACTIONS, "Resource": PROFILE},
    {"Sid": "InvokeThroughProfile1", "Effect": "Allow", "Action": ACTIONS,
     "Resource": "arn:aws:bedrock:*::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0",
     "Condition": {"StringEquals": {"bedrock:InferenceProfileArn": PROFILE}}},
]


def bedrock_findings(statements: list[dict[str, Any]]) -> list[str]:
    return [v for v in evaluate_policy(policy(statements))[0] if v.startswith("LLMAPP-BEDROCK-SCOPED")]


def test_the_stack_s_bedrock_statements_pass_and_every_wildcard_is_refused() -> None:
    assert bedrock_findings(STACK_STATEMENTS) == []
    allow = {"Effect": "Allow"}
    wide = [
        {**allow, "Action": "bedrock:*", "Resource": STACK_STATEMENTS[0]["Resource"]},
        {**allow, "Action": ["bedrock:Invoke*"], "Resource": STACK_STATEMENTS[0]["Resource"]},
        {**allow, "Action": "*", "Resource": "*"},
        {**allow, "Action": ACTIONS, "Resource": "*"},
        {**allow, "Action": ACTIONS, "Resource": "arn:aws:bedrock:eu-west-1::foundation-model/*"},
        {**allow, "Action": ACTIONS, "Resource": "arn:aws:bedrock:eu-west-1::foundation-model/anthropic.*"},
        # every region, without the profile condition:
        {**allow, "Action": ACTIONS, "Resource": STACK_STATEMENTS[2]["Resource"]},
        {**allow, "NotAction": "s3:*", "Resource": "*"},
        {**allow, "Action": ACTIONS, "NotResource": STACK_STATEMENTS[0]["Resource"]},
    ]
    for statement in wide:
        assert len(bedrock_findings([statement])) == 1, statement
    # Deny statements and other services are not this rule's business.
    assert bedrock_findings([{"Effect": "Deny", "Action": "bedrock:*", "Resource": "*"},
                             {**allow, "Action": "ecr:GetAuthorizationToken", "Resource": "*"}]) == []


def test_with_scaling_the_cost_is_a_range_and_the_guardrails_see_its_top() -> None:
    plan, table = stack_plan(), load_price_table("us-east-1")
    at_two, _ = estimate_monthly_cost(plan, table, tasks=2)
    at_six, _ = estimate_monthly_cost(plan, table, tasks=6)
    review = review_plan(plan, ReviewOptions(region="us-east-1", desired_tasks=1, scaling_tasks=(2, 6)))
    assert (review.monthly_cost_min, review.monthly_cost) == (at_two, at_six) and at_two < at_six
    assert review.cost_lines[0].startswith("at minTasks: Fargate 2 task(s)")
    assert any(line.startswith("Fargate 6 task(s)") for line in review.cost_lines)
    fixed = review_plan(plan, ReviewOptions(region="us-east-1", desired_tasks=1))
    assert fixed.monthly_cost_min is None


def test_storage_is_rendered_and_its_variable_is_the_operator_s() -> None:
    module = load_module("stack", Settings().modules)
    app = LLMApp.from_body({"metadata": {"name": "rags", "namespace": "team-a", "uid": "u1"},
                            "spec": spec_with(storage={"keepOnDelete": False})})
    assert render(app, Settings(), module).tfvars["storage"] == {"keep_on_delete": False, "env": "STORAGE_BUCKET"}
    refused_by_both(spec_with(storage={}, env={"STORAGE_BUCKET": "x"}), "storage.env")
    refused_by_both(spec_with(storage={"env": "CHAT_MODEL"}, models=MODELS), "storage.env")
    refused_by_both(spec_with(storage={"env": BEDROCK_IDS_ENV}, models=MODELS), "storage.env")


def test_only_state_addresses_are_taken_from_the_keep_on_destroy_output() -> None:
    assert kept_addresses({"keep_on_destroy": ["module.app_storage", 'module.a["k"]', "x; rm -rf /", 3]}) == (
        "module.app_storage", 'module.a["k"]')
    assert kept_addresses({"keep_on_destroy": "module.app_storage"}) == () == kept_addresses({})


def test_the_cost_range_reaches_status_under_declared_names() -> None:
    review = review_plan(stack_plan(), ReviewOptions(region="us-east-1", scaling_tasks=(2, 6)))
    fields = review_fields(PlanSummary(has_changes=True, add=1, review=review))
    assert fields["cost"]["monthlyEstimateAtMinTasks"] == review.monthly_cost_min
    assert fields["cost"]["monthlyEstimate"] == review.monthly_cost
    assert undeclared(fields) == []

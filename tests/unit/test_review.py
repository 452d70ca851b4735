"""Guardrails on plan JSON: policy rules, destroy protection, the cost estimate and the price table.

Terraform cannot plan AWS resources here (no providers), so the plan is built in the shape
`terraform show -json` gives for terraform/stack (terraform-aws-modules: module addresses,
resource_changes with actions and `after`); each test changes one thing in it.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from llmapp_operator.api.workspace import ReviewOptions
from llmapp_operator.review.cost import (
    HOURS_PER_MONTH,
    PRICE_FIELDS,
    PRICES_FILE,
    UnknownRegion,
    estimate_monthly_cost,
    load_price_table,
)
from llmapp_operator.review.policy import RULES, destructive_changes, evaluate_policy
from llmapp_operator.review.verdict import review_plan


def change(module: str, rtype: str, name: str, after: dict[str, Any], actions: tuple[str, ...] = ("create",),
           index: Any = None) -> dict[str, Any]:
    address = f"{module + '.' if module else ''}{rtype}.{name}{f'[{index}]' if index is not None else ''}"
    item = {"address": address, "mode": "managed", "type": rtype, "name": name,
            "change": {"actions": list(actions), "before": None, "after": after, "after_unknown": {}}}
    if module:
        item["module_address"] = module
    return item


def stack_plan() -> dict[str, Any]:
    """What terraform/stack creates, as far as the guardrails look."""
    closed = {key: True for key in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                    "restrict_public_buckets")}
    return {"format_version": "1.2", "terraform_version": "1.11.4", "resource_changes": [
        change("module.vpc", "aws_vpc", "this", {"cidr_block": "10.0.0.0/16"}, index=0),
        change("module.vpc", "aws_nat_gateway", "this", {}, index=0),
        change("module.alb_logs", "aws_s3_bucket", "this", {"force_destroy": False}, index=0),
        change("module.alb_logs", "aws_s3_bucket_public_access_block", "this", closed, index=0),
        change("module.alb_logs", "aws_s3_bucket_server_side_encryption_configuration", "this",
               {"rule": [{"apply_server_side_encryption_by_default": [{"sse_algorithm": "AES256"}]}]}, index=0),
        change("module.alb", "aws_lb", "this", {"load_balancer_type": "application",
                                                "access_logs": [{"enabled": True, "prefix": "alb"}]}, index=0),
        change("module.alb", "aws_lb_listener", "this", {"port": 80, "protocol": "HTTP"}, index="http"),
        change("module.alb", "aws_vpc_security_group_ingress_rule", "this",
               {"cidr_ipv4": "0.0.0.0/0", "from_port": 80, "to_port": 80, "ip_protocol": "tcp"}, index="http"),
        change("module.ecr", "aws_ecr_repository", "this",
               {"image_scanning_configuration": [{"scan_on_push": True}]}, index=0),
        change("module.ecs_service", "aws_ecs_task_definition", "this", {"cpu": "1024", "memory": "2048"}, index=0),
        change("module.ecs_service", "aws_ecs_service", "this",
               {"desired_count": 1, "network_configuration": [{"assign_public_ip": False}]}, index=0),
        {"address": "data.aws_region.current", "mode": "data", "type": "aws_region", "name": "current",
         "change": {"actions": ["read"], "after": {}}},
    ]}


def edit(plan: dict[str, Any], rtype: str, **after: Any) -> dict[str, Any]:
    plan = copy.deepcopy(plan)
    for item in plan["resource_changes"]:
        if item["type"] == rtype:
            item["change"]["after"].update(after)
    return plan


def rules(plan: dict[str, Any], skip: tuple[str, ...] = ()) -> list[str]:
    return sorted({item.split(" ", 1)[0] for item in evaluate_policy(plan, skip)[0]})


def test_the_stack_as_written_passes_every_rule() -> None:
    assert evaluate_policy(stack_plan()) == ((), ())


@pytest.mark.parametrize(("rtype", "after", "rule"), [
    ("aws_s3_bucket_public_access_block", {"block_public_policy": False}, "LLMAPP-S3-PRIVATE"),
    ("aws_lb", {"access_logs": [{"enabled": False}]}, "LLMAPP-ALB-ACCESS-LOGS"),
    ("aws_lb", {"access_logs": []}, "LLMAPP-ALB-ACCESS-LOGS"),
    ("aws_ecr_repository", {"image_scanning_configuration": [{"scan_on_push": False}]}, "LLMAPP-ECR-SCAN-ON-PUSH"),
    ("aws_vpc_security_group_ingress_rule", {"from_port": 22, "to_port": 22}, "LLMAPP-SG-OPEN-INGRESS"),
    ("aws_vpc_security_group_ingress_rule", {"ip_protocol": "-1"}, "LLMAPP-SG-OPEN-INGRESS"),
    ("aws_ecs_service", {"network_configuration": [{"assign_public_ip": True}]}, "LLMAPP-ECS-PUBLIC-IP"),
])
def test_each_rule_catches_its_violation(rtype: str, after: dict[str, Any], rule: str) -> None:
    assert rules(edit(stack_plan(), rtype, **after)) == [rule]


def test_missing_companions_and_public_acls_and_legacy_ingress_blocks_are_caught() -> None:
    plan = stack_plan()
    plan["resource_changes"] = [c for c in plan["resource_changes"]
                                if c["type"] != "aws_s3_bucket_server_side_encryption_configuration"]
    assert rules(plan) == ["LLMAPP-S3-ENCRYPTED"]
    plan = stack_plan()
    plan["resource_changes"].append(change("", "aws_s3_bucket_acl", "logs", {"acl": "public-read"}))
    plan["resource_changes"].append(change("", "aws_security_group", "db", {"ingress": [
        {"cidr_blocks": ["10.0.0.0/8"], "from_port": 5432, "to_port": 5432, "protocol": "tcp"},
        {"cidr_blocks": [], "ipv6_cidr_blocks": ["::/0"], "from_port": 0, "to_port": 65535, "protocol": "tcp"}]}))
    violations, _ = evaluate_policy(plan)
    assert [v.split(":")[0] for v in violations] == ["LLMAPP-S3-PRIVATE aws_s3_bucket_acl.logs",
                                                     "LLMAPP-SG-OPEN-INGRESS aws_security_group.db"]
    assert "ports 0-65535 open to ::/0" in violations[1]


def test_open_ingress_is_fine_on_the_listener_ports_the_plan_declares() -> None:
    plan = edit(stack_plan(), "aws_lb_listener", port=8443)
    plan = edit(plan, "aws_vpc_security_group_ingress_rule", from_port=8443, to_port=8443)
    assert rules(plan) == []
    assert rules(edit(plan, "aws_vpc_security_group_ingress_rule", from_port=80, to_port=80)) == [
        "LLMAPP-SG-OPEN-INGRESS"]   # 80 is no listener any more


def test_waived_rules_are_reported_apart_and_deleted_resources_are_not_judged() -> None:
    plan = edit(stack_plan(), "aws_ecr_repository", image_scanning_configuration=[])
    violations, waived = evaluate_policy(plan, skip=("LLMAPP-ECR-SCAN-ON-PUSH",))
    assert violations == () and waived[0].startswith("LLMAPP-ECR-SCAN-ON-PUSH module.ecr.aws_ecr_repository")
    for item in plan["resource_changes"]:
        if item["type"] == "aws_ecr_repository":
            item["change"]["actions"] = ["delete"]
    assert evaluate_policy(plan) == ((), ())
    assert set(RULES) >= {"LLMAPP-S3-PRIVATE", "LLMAPP-S3-ENCRYPTED", "LLMAPP-ALB-ACCESS-LOGS",
                          "LLMAPP-ECR-SCAN-ON-PUSH", "LLMAPP-SG-OPEN-INGRESS", "LLMAPP-ECS-PUBLIC-IP"}


@pytest.mark.parametrize("actions", [("delete",), ("delete", "create"), ("create", "delete")])
def test_destroying_or_replacing_stateful_or_shared_resources_is_destructive(actions: tuple[str, ...]) -> None:
    plan = stack_plan()
    for item in plan["resource_changes"]:
        if item["type"] in ("aws_s3_bucket", "aws_ecs_service"):
            item["change"]["actions"] = list(actions)
    assert destructive_changes(plan) == ("module.alb_logs.aws_s3_bucket.this[0]",)  # the service is not protected
    assert destructive_changes(stack_plan()) == ()


def test_cost_is_the_sum_of_its_lines_computed_from_the_table() -> None:
    table = load_price_table("us-east-1")
    price, hours = table.prices, HOURS_PER_MONTH
    expected = (1 * hours * (1 * price["fargate_vcpu_hour"] + 2 * price["fargate_gb_hour"])
                + hours * (price["alb_hour"] + price["alb_lcu_baseline"] * price["alb_lcu_hour"])
                + hours * price["nat_gateway_hour"] + price["nat_gb_baseline_month"] * price["nat_gb_processed"]
                + price["s3_gb_baseline"] * price["s3_gb_month"] + price["ecr_gb_baseline"] * price["ecr_gb_month"])
    total, lines = estimate_monthly_cost(stack_plan(), table)
    assert total == round(expected, 2) and len(lines) == 5
    assert lines[0].startswith("Fargate 1 task(s) x 1 vCPU / 2 GB")
    bigger, _ = estimate_monthly_cost(edit(edit(stack_plan(), "aws_ecs_service", desired_count=3),
                                           "aws_ecs_task_definition", cpu="4096", memory="8192"), table)
    fargate = 3 * hours * (4 * price["fargate_vcpu_hour"] + 8 * price["fargate_gb_hour"])
    assert bigger == round(expected - hours * (price["fargate_vcpu_hour"] + 2 * price["fargate_gb_hour"])
                           + fargate, 2)


def test_the_shipped_price_table_is_complete_dated_and_overridable() -> None:
    shipped = json.loads(PRICES_FILE.read_text())
    assert shipped["currency"] == "USD" and shipped["date"]
    for region, entry in shipped["regions"].items():
        assert set(PRICE_FIELDS) <= set(entry), region
        # Alias records to an ALB are free (the table's comment says so); everything else costs.
        free = {"route53_record_month", "cognito_user_pool_month"}
        assert all(entry[name] > 0 for name in PRICE_FIELDS if name not in free), region
        assert all(entry[name] == 0 for name in free), region
    override = {"date": "2027-01-01", "regions": {"us-east-1": {"alb_hour": 1.0}, "xx-test-1": {
        name: 0.5 for name in PRICE_FIELDS}}}
    table = load_price_table("us-east-1", override)
    assert table.prices["alb_hour"] == 1.0 and table.date == "2027-01-01"
    assert table.prices["fargate_vcpu_hour"] == shipped["regions"]["us-east-1"]["fargate_vcpu_hour"]
    assert load_price_table("xx-test-1", override).prices["nat_gateway_hour"] == 0.5
    with pytest.raises(UnknownRegion, match="no prices for region mars-north-1"):
        load_price_table("mars-north-1")


def test_review_puts_it_together_and_skips_cost_for_unknown_regions() -> None:
    plan = edit(stack_plan(), "aws_ecs_service", network_configuration=[{"assign_public_ip": True}])
    review = review_plan(plan, ReviewOptions(region="eu-west-1"))
    assert review.violated_rules == ("LLMAPP-ECS-PUBLIC-IP",)
    assert review.monthly_cost is not None and review.currency == "USD" and review.price_table_date
    assert review_plan(plan, ReviewOptions(region="mars-north-1")).monthly_cost is None


def test_an_operator_price_table_is_read_once_and_bad_ones_are_named(tmp_path: Any) -> None:
    from llmapp_operator.review.cost import read_price_override

    good = tmp_path / "prices.json"
    good.write_text(json.dumps({"date": "2027-02-01", "regions": {"us-east-1": {"alb_hour": 2.0}}}))
    override = read_price_override(str(good))
    review = review_plan(stack_plan(), ReviewOptions(region="us-east-1", price_override=override))
    assert review.price_table_date == "2027-02-01"
    assert review.monthly_cost is not None and review.monthly_cost > review_plan(
        stack_plan(), ReviewOptions(region="us-east-1")).monthly_cost  # type: ignore[operator]
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a JSON object"):
        read_price_override(str(tmp_path / "bad.json"))
    with pytest.raises(ValueError, match="FileNotFoundError"):
        read_price_override(str(tmp_path / "missing.json"))


CHECKOV_REPORT = {   # the shape of `checkov -f tfplan.json --framework terraform_plan -o json` (abridged)
    "check_type": "terraform_plan",
    "results": {
        "passed_checks": [{"check_id": "CKV_AWS_19", "check_name": "Ensure the S3 bucket has server-side-encryption "
                           "enabled", "resource": "module.alb_logs.aws_s3_bucket.this[0]"}],
        "failed_checks": [{"check_id": "CKV_AWS_18", "check_name": "Ensure the S3 bucket has access logging enabled",
                           "resource": "module.alb_logs.aws_s3_bucket.this[0]", "file_path": "/tfplan.json"},
                          {"check_id": "CKV2_AWS_28", "check_name": "Ensure public facing ALB are protected by WAF",
                           "resource": "module.alb.aws_lb.this[0]"}],
    },
    "summary": {"passed": 1, "failed": 2},
}


def test_checkov_failed_checks_join_the_report_and_are_waived_by_id() -> None:
    from llmapp_operator.review.checkov import checkov_findings, with_findings
    from llmapp_operator.review.verdict import PlanReview

    findings = checkov_findings(CHECKOV_REPORT)
    assert findings == ("CKV2_AWS_28 module.alb.aws_lb.this[0]: Ensure public facing ALB are protected by WAF",
                        "CKV_AWS_18 module.alb_logs.aws_s3_bucket.this[0]: Ensure the S3 bucket has access logging "
                        "enabled")
    assert checkov_findings([CHECKOV_REPORT, {"check_type": "secrets", "results": {}}]) == findings
    assert checkov_findings({}) == ()
    merged = with_findings(PlanReview(violations=("LLMAPP-ECS-PUBLIC-IP x: y",)), findings, skip=("CKV2_AWS_28",))
    assert merged.violated_rules == ("CKV_AWS_18", "LLMAPP-ECS-PUBLIC-IP")
    assert merged.waived == (findings[0],)

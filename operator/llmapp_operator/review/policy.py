"""The built-in policy rules and destroy protection, read from `terraform show -json` (pure)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from llmapp_operator.review.resources import Resource, blocks, resources_after

# Built-in rules: id -> what they demand. Ids are stable: users waive them by id.
RULES: Mapping[str, str] = {
    "LLMAPP-S3-PRIVATE": "S3 buckets block all public access (no public ACL)",
    "LLMAPP-S3-ENCRYPTED": "S3 buckets have a server-side encryption configuration",
    "LLMAPP-ALB-ACCESS-LOGS": "application load balancers write access logs",
    "LLMAPP-ECR-SCAN-ON-PUSH": "ECR repositories scan images on push",
    "LLMAPP-SG-OPEN-INGRESS": "no security group ingress from 0.0.0.0/0 or ::/0 except the ALB listener ports",
    "LLMAPP-ECS-PUBLIC-IP": "ECS tasks get no public IP (they run in private subnets)",
    "LLMAPP-BEDROCK-SCOPED": "IAM policies allow Bedrock models only by name (no wildcard action or model)",
}
# Destroying or replacing these loses data or breaks what others share: held for approval.
PROTECTED_TYPES = frozenset({"aws_s3_bucket", "aws_ecr_repository", "aws_vpc", "aws_db_instance",
                             "aws_rds_cluster", "aws_efs_file_system", "aws_dynamodb_table"})
OPEN_CIDRS = frozenset({"0.0.0.0/0", "::/0"})
DEFAULT_LISTENER_PORTS = frozenset({80, 443})
def _s3_rules(resources: list[Resource]) -> Iterator[tuple[str, str, str]]:
    # terraform-aws-modules/s3-bucket (and hand-written stacks) declare a bucket's access block and
    # encryption as separate resources in the same module; at plan time their `bucket` argument is
    # usually unknown (it is the new bucket's id), so they are matched by module, not by value.
    by_module: dict[str, list[Resource]] = {}
    for resource in resources:
        by_module.setdefault(resource.module, []).append(resource)
    for members in by_module.values():
        buckets = [r for r in members if r.type == "aws_s3_bucket"]
        blocks = [r for r in members if r.type == "aws_s3_bucket_public_access_block"]
        encryption = [r for r in members if r.type == "aws_s3_bucket_server_side_encryption_configuration"]
        closed = [b for b in blocks if all(b.after.get(key) is True for key in (
            "block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"))]
        for index, bucket in enumerate(buckets):
            if len(closed) <= index:
                yield "LLMAPP-S3-PRIVATE", bucket.address, "no public access block with all four settings on"
            if len(encryption) <= index:
                yield "LLMAPP-S3-ENCRYPTED", bucket.address, "no server-side encryption configuration"
        for acl in (r for r in members if r.type == "aws_s3_bucket_acl"):
            if acl.after.get("acl") in ("public-read", "public-read-write", "authenticated-read"):
                yield "LLMAPP-S3-PRIVATE", acl.address, f"canned ACL {acl.after.get('acl')}"


def _alb_rules(resources: list[Resource]) -> Iterator[tuple[str, str, str]]:
    for lb in (r for r in resources if r.type in ("aws_lb", "aws_alb")):
        if lb.after.get("load_balancer_type", "application") != "application":
            continue
        if not any(block.get("enabled") is True for block in blocks(lb.after.get("access_logs"))):
            yield "LLMAPP-ALB-ACCESS-LOGS", lb.address, "access_logs is not enabled"


def _ecr_rules(resources: list[Resource]) -> Iterator[tuple[str, str, str]]:
    for repo in (r for r in resources if r.type == "aws_ecr_repository"):
        scanning = list(blocks(repo.after.get("image_scanning_configuration")))
        if not any(block.get("scan_on_push") is True for block in scanning):
            yield "LLMAPP-ECR-SCAN-ON-PUSH", repo.address, "image_scanning_configuration.scan_on_push is not true"


def _rule(cidrs: Iterable[Any], low: Any, high: Any, protocol: Any) -> dict[str, Any]:
    return {"cidrs": [c for c in cidrs if c], "from": low, "to": high, "protocol": protocol}


def _ingress_rules(resources: list[Resource]) -> Iterator[tuple[Resource, Mapping[str, Any]]]:
    """(resource, rule) for every ingress rule, in the three ways the AWS provider spells them."""
    for resource in resources:
        after = resource.after
        if resource.type == "aws_security_group":
            for block in blocks(after.get("ingress")):
                cidrs = [*(block.get("cidr_blocks") or ()), *(block.get("ipv6_cidr_blocks") or ())]
                yield resource, _rule(cidrs, block.get("from_port"), block.get("to_port"), block.get("protocol"))
        elif resource.type == "aws_vpc_security_group_ingress_rule":
            yield resource, _rule((after.get("cidr_ipv4"), after.get("cidr_ipv6")), after.get("from_port"),
                                  after.get("to_port"), after.get("ip_protocol"))
        elif resource.type == "aws_security_group_rule" and after.get("type") == "ingress":
            cidrs = [*(after.get("cidr_blocks") or ()), *(after.get("ipv6_cidr_blocks") or ())]
            yield resource, _rule(cidrs, after.get("from_port"), after.get("to_port"), after.get("protocol"))


def _sg_rules(resources: list[Resource]) -> Iterator[tuple[str, str, str]]:
    listener_ports = {int(r.after["port"]) for r in resources
                      if r.type in ("aws_lb_listener", "aws_alb_listener") and isinstance(r.after.get("port"), int)}
    allowed = listener_ports or set(DEFAULT_LISTENER_PORTS)
    for resource, rule in _ingress_rules(resources):
        open_to = sorted(set(rule["cidrs"]) & OPEN_CIDRS)
        if not open_to:
            continue
        all_ports = str(rule["protocol"]) in ("-1", "all")
        low, high = rule["from"], rule["to"]
        if not all_ports and isinstance(low, int) and isinstance(high, int) and low == high and low in allowed:
            continue
        ports = "all ports" if all_ports else f"ports {low}-{high}"
        yield "LLMAPP-SG-OPEN-INGRESS", resource.address, f"{ports} open to {', '.join(open_to)}"


def _ecs_rules(resources: list[Resource]) -> Iterator[tuple[str, str, str]]:
    for service in (r for r in resources if r.type == "aws_ecs_service"):
        if any(block.get("assign_public_ip") is True for block in blocks(service.after.get("network_configuration"))):
            yield "LLMAPP-ECS-PUBLIC-IP", service.address, "assign_public_ip is true"


IAM_POLICY_TYPES = frozenset({"aws_iam_policy", "aws_iam_role_policy", "aws_iam_user_policy", "aws_iam_group_policy"})
# The one region wildcard the stack writes: a foundation model reached through an inference profile,
# allowed only through that profile (models.tf).
_THROUGH_PROFILE = "bedrock:inferenceprofilearn"


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value] if isinstance(value, list) else []


def _statements(policy: Any) -> Iterator[Mapping[str, Any]]:
    """The statements of a policy document (a JSON string in plan JSON; unknown until apply: none)."""
    try:
        document = json.loads(policy) if isinstance(policy, str) else None
    except ValueError:
        return
    if isinstance(document, Mapping):
        statements = document.get("Statement")
        for statement in [statements] if isinstance(statements, Mapping) else statements or ():
            if isinstance(statement, Mapping):
                yield statement


def _bedrock_wildcard(statement: Mapping[str, Any]) -> str | None:
    """Why an Allow statement grants Bedrock model access wider than named models; None if it does not."""
    if statement.get("Effect", "Allow") != "Allow":
        return None
    if "NotAction" in statement:
        if not any(a.lower() in ("bedrock:*", "*") for a in _as_list(statement["NotAction"])):
            return "NotAction allows every other action, Bedrock's included"
        return None
    actions = [a.lower() for a in _as_list(statement.get("Action"))]
    bedrock = [a for a in actions if a == "*" or a.startswith("bedrock:")]
    if not bedrock:
        return None
    wild_actions = sorted(a for a in bedrock if "*" in a)
    if wild_actions:
        return f"action {', '.join(wild_actions)}"
    if "NotResource" in statement:
        return "NotResource allows every other resource"
    conditions = {key.lower() for block in (statement.get("Condition") or {}).values() if isinstance(block, Mapping)
                  for key in block}
    for resource in _as_list(statement.get("Resource")):
        parts = resource.split(":", 5)
        model = parts[5] if len(parts) == 6 else resource
        if "*" in model:
            return f"resource {resource}"
        if len(parts) == 6 and "*" in parts[3] and _THROUGH_PROFILE not in conditions:
            return f"resource {resource} in every region, not only through an inference profile"
    return None


def _bedrock_rules(resources: list[Resource]) -> Iterator[tuple[str, str, str]]:
    for resource in (r for r in resources if r.type in IAM_POLICY_TYPES):
        for statement in _statements(resource.after.get("policy")):
            why = _bedrock_wildcard(statement)
            if why:
                yield "LLMAPP-BEDROCK-SCOPED", resource.address, why


def evaluate_policy(plan: Mapping[str, Any], skip: Iterable[str] = ()) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(violations, waived), each as "RULE-ID address: why", sorted."""
    resources = resources_after(plan)
    skipped = set(skip)
    found = [f"{rule} {address}: {why}" for check in (_s3_rules, _alb_rules, _ecr_rules, _sg_rules, _ecs_rules,
                                                                     _bedrock_rules)
             for rule, address, why in check(resources)]
    violations = tuple(sorted(item for item in found if item.split(" ", 1)[0] not in skipped))
    waived = tuple(sorted(item for item in found if item.split(" ", 1)[0] in skipped))
    return violations, waived


# -- destroy protection ---------------------------------------------------------------------------

def destructive_changes(plan: Mapping[str, Any]) -> tuple[str, ...]:
    """Protected resources the plan deletes, alone or as part of a replacement (either order)."""
    return tuple(sorted(
        str(change.get("address", "")) for change in plan.get("resource_changes") or ()
        if change.get("type") in PROTECTED_TYPES and "delete" in ((change.get("change") or {}).get("actions") or ())
    ))


# -- cost -----------------------------------------------------------------------------------------


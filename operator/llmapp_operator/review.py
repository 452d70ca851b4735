"""Guardrails on every plan, before apply: policy rules, destroy protection and a cost estimate.

Pure: everything is read from `terraform show -json` of the saved plan (and a price table given
as data). The runner calls `review_plan` right after `plan`, where the plan JSON is at hand, so the
JSON itself (which may hold sensitive attribute values) never leaves the place Terraform ran: only
the verdict travels (to status, or back from a Job).
"""

from __future__ import annotations

import functools
import json
import pathlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

# Built-in rules: id -> what they demand. Ids are stable: users waive them by id.
RULES: Mapping[str, str] = {
    "LLMAPP-S3-PRIVATE": "S3 buckets block all public access (no public ACL)",
    "LLMAPP-S3-ENCRYPTED": "S3 buckets have a server-side encryption configuration",
    "LLMAPP-ALB-ACCESS-LOGS": "application load balancers write access logs",
    "LLMAPP-ECR-SCAN-ON-PUSH": "ECR repositories scan images on push",
    "LLMAPP-SG-OPEN-INGRESS": "no security group ingress from 0.0.0.0/0 or ::/0 except the ALB listener ports",
    "LLMAPP-ECS-PUBLIC-IP": "ECS tasks get no public IP (they run in private subnets)",
}
# Destroying or replacing these loses data or breaks what others share: held for approval.
PROTECTED_TYPES = frozenset({"aws_s3_bucket", "aws_ecr_repository", "aws_vpc", "aws_db_instance",
                             "aws_rds_cluster", "aws_efs_file_system", "aws_dynamodb_table"})
OPEN_CIDRS = frozenset({"0.0.0.0/0", "::/0"})
DEFAULT_LISTENER_PORTS = frozenset({80, 443})
PRICES_FILE = pathlib.Path(__file__).resolve().parent / "prices" / "aws.json"


@dataclass(frozen=True)
class ReviewOptions:
    """What the review needs besides the plan; part of the Workspace (and of a Job's request)."""

    region: str
    policy_skip: tuple[str, ...] = ()
    price_override: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class PlanReview:
    violations: tuple[str, ...] = ()        # "RULE-ID address: why"
    waived: tuple[str, ...] = ()
    destructive: tuple[str, ...] = ()       # addresses of protected resources destroyed or replaced
    monthly_cost: float | None = None
    currency: str = ""
    price_table_date: str = ""
    cost_lines: tuple[str, ...] = field(default=())

    @property
    def violated_rules(self) -> tuple[str, ...]:
        return tuple(sorted({item.split(" ", 1)[0] for item in self.violations}))


# -- the plan JSON, walked once -------------------------------------------------------------------

@dataclass(frozen=True)
class Resource:
    address: str
    module: str          # "" for the root module
    type: str
    after: Mapping[str, Any]


def resources_after(plan: Mapping[str, Any]) -> list[Resource]:
    """Managed resources that will exist after the plan (created, updated, replaced or unchanged)."""
    found = []
    for change in plan.get("resource_changes") or ():
        actions = list((change.get("change") or {}).get("actions") or ())
        if change.get("mode", "managed") != "managed" or actions == ["delete"]:
            continue
        after = (change.get("change") or {}).get("after") or {}
        found.append(Resource(str(change.get("address", "")), str(change.get("module_address", "")),
                              str(change.get("type", "")), after if isinstance(after, Mapping) else {}))
    return found


def _blocks(value: Any) -> Iterator[Mapping[str, Any]]:
    """Nested blocks appear as lists of objects in plan JSON."""
    for item in value if isinstance(value, list) else ():
        if isinstance(item, Mapping):
            yield item


# -- policy ---------------------------------------------------------------------------------------

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
        if not any(block.get("enabled") is True for block in _blocks(lb.after.get("access_logs"))):
            yield "LLMAPP-ALB-ACCESS-LOGS", lb.address, "access_logs is not enabled"


def _ecr_rules(resources: list[Resource]) -> Iterator[tuple[str, str, str]]:
    for repo in (r for r in resources if r.type == "aws_ecr_repository"):
        scanning = list(_blocks(repo.after.get("image_scanning_configuration")))
        if not any(block.get("scan_on_push") is True for block in scanning):
            yield "LLMAPP-ECR-SCAN-ON-PUSH", repo.address, "image_scanning_configuration.scan_on_push is not true"


def _rule(cidrs: Iterable[Any], low: Any, high: Any, protocol: Any) -> dict[str, Any]:
    return {"cidrs": [c for c in cidrs if c], "from": low, "to": high, "protocol": protocol}


def _ingress_rules(resources: list[Resource]) -> Iterator[tuple[Resource, Mapping[str, Any]]]:
    """(resource, rule) for every ingress rule, in the three ways the AWS provider spells them."""
    for resource in resources:
        after = resource.after
        if resource.type == "aws_security_group":
            for block in _blocks(after.get("ingress")):
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
        if any(block.get("assign_public_ip") is True for block in _blocks(service.after.get("network_configuration"))):
            yield "LLMAPP-ECS-PUBLIC-IP", service.address, "assign_public_ip is true"


def evaluate_policy(plan: Mapping[str, Any], skip: Iterable[str] = ()) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(violations, waived), each as "RULE-ID address: why", sorted."""
    resources = resources_after(plan)
    skipped = set(skip)
    found = [f"{rule} {address}: {why}" for check in (_s3_rules, _alb_rules, _ecr_rules, _sg_rules, _ecs_rules)
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

PRICE_FIELDS = ("fargate_vcpu_hour", "fargate_gb_hour", "alb_hour", "alb_lcu_hour", "alb_lcu_baseline",
                "nat_gateway_hour", "nat_gb_processed", "nat_gb_baseline_month", "s3_gb_month", "s3_gb_baseline",
                "ecr_gb_month", "ecr_gb_baseline")
HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class PriceTable:
    region: str
    currency: str
    date: str
    prices: Mapping[str, float]


class UnknownRegion(ValueError):
    pass


@functools.lru_cache(maxsize=4)
def read_price_override(path: str) -> Mapping[str, Any]:
    """LLMAPP_PRICE_TABLE: read once per process (a changed file takes a restart)."""
    try:
        data = json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"price table {path}: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise ValueError(f"price table {path}: not a JSON object")
    return data


@functools.lru_cache(maxsize=1)
def _shipped_prices() -> Mapping[str, Any]:
    """prices/aws.json, parsed once per process (it ships with the code); never modified."""
    data: Mapping[str, Any] = json.loads(PRICES_FILE.read_text())
    return data


def load_price_table(region: str, override: Mapping[str, Any] | None = None) -> PriceTable:
    """The shipped table's entry for `region`, with an override (same shape) merged field by field."""
    shipped = _shipped_prices()
    regions = dict(shipped["regions"])
    meta = {"currency": shipped["currency"], "date": shipped["date"]}
    if override:
        meta.update({key: override[key] for key in ("currency", "date") if key in override})
        for name, entry in (override.get("regions") or {}).items():
            regions[name] = {**regions.get(name, {}), **entry}
    if region not in regions:
        raise UnknownRegion(f"no prices for region {region} (known: {', '.join(sorted(regions))})")
    return PriceTable(region=region, currency=str(meta["currency"]), date=str(meta["date"]),
                      prices={name: float(regions[region][name]) for name in PRICE_FIELDS})


def _task_size(resources: list[Resource]) -> tuple[float, float]:
    """vCPU and GB of the (first) task definition; 1 vCPU / 2 GB if the plan does not say."""
    for task in (r for r in resources if r.type == "aws_ecs_task_definition"):
        try:
            return int(str(task.after.get("cpu"))) / 1024, int(str(task.after.get("memory"))) / 1024
        except ValueError:
            continue  # unknown until apply: the next task definition, or the default
    return 1.0, 2.0


def estimate_monthly_cost(plan: Mapping[str, Any], table: PriceTable) -> tuple[float, tuple[str, ...]]:
    """(monthly total, line items) for what the plan leaves running; list prices, no free tier."""
    resources = resources_after(plan)
    price, hours = table.prices, HOURS_PER_MONTH
    lines: list[tuple[str, float]] = []
    vcpu, gb = _task_size(resources)
    for service in (r for r in resources if r.type == "aws_ecs_service"):
        count = service.after.get("desired_count")
        tasks = int(count) if isinstance(count, int) else 1
        amount = tasks * hours * (vcpu * price["fargate_vcpu_hour"] + gb * price["fargate_gb_hour"])
        lines.append((f"Fargate {tasks} task(s) x {vcpu:g} vCPU / {gb:g} GB", amount))
    types = Counter(r.type for r in resources)
    count = types["aws_lb"] + types["aws_alb"]
    if count:
        lines.append((f"ALB ({count}) + {price['alb_lcu_baseline']:g} LCU baseline",
                      count * hours * (price["alb_hour"] + price["alb_lcu_baseline"] * price["alb_lcu_hour"])))
    count = types["aws_nat_gateway"]
    if count:
        data = price["nat_gb_baseline_month"] * price["nat_gb_processed"]
        lines.append((f"NAT gateway ({count}) + {price['nat_gb_baseline_month']:g} GB/month",
                      count * (hours * price["nat_gateway_hour"] + data)))
    count = types["aws_s3_bucket"]
    if count:
        lines.append((f"S3 ({count} bucket(s)) {price['s3_gb_baseline']:g} GB each",
                      count * price["s3_gb_baseline"] * price["s3_gb_month"]))
    count = types["aws_ecr_repository"]
    if count:
        lines.append((f"ECR ({count}) {price['ecr_gb_baseline']:g} GB each",
                      count * price["ecr_gb_baseline"] * price["ecr_gb_month"]))
    total = round(sum(amount for _, amount in lines), 2)
    return total, tuple(f"{item}: {amount:.2f} {table.currency}" for item, amount in lines)


# -- Checkov (optional) ---------------------------------------------------------------------------

def checkov_findings(report: Any) -> tuple[str, ...]:
    """Failed checks of `checkov -o json` (one report, or a list of them per framework), in the
    same "ID address: why" form as the built-in rules."""
    reports = report if isinstance(report, list) else [report]
    found = set()
    for item in reports:
        results = (item or {}).get("results") or {} if isinstance(item, Mapping) else {}
        for check in results.get("failed_checks") or ():
            if isinstance(check, Mapping) and check.get("check_id"):
                why = str(check.get("check_name") or "failed")
                found.add(f"{check['check_id']} {check.get('resource', '?')}: {why}")
    return tuple(sorted(found))


def with_findings(review: PlanReview, findings: Iterable[str], skip: Iterable[str]) -> PlanReview:
    """Checkov's findings merged into the same report, waivable by id like the built-in rules."""
    skipped = set(skip)
    extra = list(findings)
    waived = {item for item in extra if item.split(" ", 1)[0] in skipped}
    return replace(review, violations=tuple(sorted({*review.violations, *(set(extra) - waived)})),
                   waived=tuple(sorted({*review.waived, *waived})))


# -- all of it ------------------------------------------------------------------------------------

def review_plan(plan: Mapping[str, Any], options: ReviewOptions) -> PlanReview:
    violations, waived = evaluate_policy(plan, options.policy_skip)
    try:
        table = load_price_table(options.region, options.price_override)
    except UnknownRegion:
        return PlanReview(violations=violations, waived=waived, destructive=destructive_changes(plan))
    monthly, lines = estimate_monthly_cost(plan, table)
    return PlanReview(violations=violations, waived=waived, destructive=destructive_changes(plan),
                      monthly_cost=monthly, currency=table.currency, price_table_date=table.date, cost_lines=lines)

"""Monthly cost estimate of a plan from a shipped (or overridden) price table (pure)."""

from __future__ import annotations

import functools
import json
import pathlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmapp_operator.review.resources import Resource, resources_after

PRICES_FILE = pathlib.Path(__file__).resolve().parent / "prices" / "aws.json"


PRICE_FIELDS = ("fargate_vcpu_hour", "fargate_gb_hour", "alb_hour", "alb_lcu_hour", "alb_lcu_baseline",
                "nat_gateway_hour", "nat_gb_processed", "nat_gb_baseline_month", "s3_gb_month", "s3_gb_baseline",
                "ecr_gb_month", "ecr_gb_baseline", "route53_record_month", "cognito_user_pool_month")
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


def estimate_monthly_cost(plan: Mapping[str, Any], table: PriceTable, *,
                          tasks: int | None = None) -> tuple[float, tuple[str, ...]]:
    """(monthly total, line items) for what the plan leaves running; list prices, no free tier.
    `tasks`: the count per service the operator will set (the stack's service module ignores
    desired_count after creation, so the plan shows the old count); None: the plan's count."""
    resources = resources_after(plan)
    price, hours = table.prices, HOURS_PER_MONTH
    lines: list[tuple[str, float]] = []
    vcpu, gb = _task_size(resources)
    for service in (r for r in resources if r.type == "aws_ecs_service"):
        count = service.after.get("desired_count") if tasks is None else tasks
        running = int(count) if isinstance(count, int) else 1
        amount = running * hours * (vcpu * price["fargate_vcpu_hour"] + gb * price["fargate_gb_hour"])
        lines.append((f"Fargate {running} task(s) x {vcpu:g} vCPU / {gb:g} GB", amount))
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
    count = types["aws_route53_record"]
    if count:
        # spec.domain: the alias record and the certificate's validation record (ACM's public
        # certificates are free); 0 in the shipped table, see its comment.
        lines.append((f"Route53 records ({count})", count * price["route53_record_month"]))
    count = types["aws_cognito_user_pool"]
    if count:
        # spec.auth: billed per monthly active user beyond the free tier; 0 at the idle baseline.
        lines.append((f"Cognito user pool ({count})", count * price["cognito_user_pool_month"]))
    total = round(sum(amount for _, amount in lines), 2)
    return total, tuple(f"{item}: {amount:.2f} {table.currency}" for item, amount in lines)


# -- Checkov (optional) ---------------------------------------------------------------------------


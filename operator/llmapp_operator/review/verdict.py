"""The review of one plan: policy, destroy protection and cost in one verdict (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmapp_operator.api.workspace import ReviewOptions
from llmapp_operator.review.cost import UnknownRegion, estimate_monthly_cost, load_price_table
from llmapp_operator.review.policy import destructive_changes, evaluate_policy


@dataclass(frozen=True)
class PlanReview:
    violations: tuple[str, ...] = ()        # "RULE-ID address: why"
    waived: tuple[str, ...] = ()
    destructive: tuple[str, ...] = ()       # addresses of protected resources destroyed or replaced
    monthly_cost: float | None = None
    """With autoscaling: the estimate at maxTasks (what the guardrails compare)."""
    monthly_cost_min: float | None = None
    """With autoscaling: the estimate at minTasks; None without."""
    currency: str = ""
    price_table_date: str = ""
    cost_lines: tuple[str, ...] = ()        # the estimate's line items

    @property
    def violated_rules(self) -> tuple[str, ...]:
        return tuple(sorted({item.split(" ", 1)[0] for item in self.violations}))


# -- the plan JSON, walked once -------------------------------------------------------------------

def review_plan(plan: Mapping[str, Any], options: ReviewOptions) -> PlanReview:
    violations, waived = evaluate_policy(plan, options.policy_skip)
    try:
        table = load_price_table(options.region, options.price_override)
    except UnknownRegion:
        return PlanReview(violations=violations, waived=waived, destructive=destructive_changes(plan))
    lowest: float | None = None
    if options.scaling_tasks is not None:
        low, high = options.scaling_tasks
        lowest, low_lines = estimate_monthly_cost(plan, table, tasks=low)
        monthly, lines = estimate_monthly_cost(plan, table, tasks=high)
        # The Fargate line at minTasks beside the full estimate at maxTasks.
        lines = tuple(f"at minTasks: {item}" for item in low_lines if item.startswith("Fargate")) + lines
    else:
        monthly, lines = estimate_monthly_cost(plan, table, tasks=options.desired_tasks)
    return PlanReview(violations=violations, waived=waived, destructive=destructive_changes(plan),
                      monthly_cost=monthly, monthly_cost_min=lowest, currency=table.currency,
                      price_table_date=table.date, cost_lines=lines)

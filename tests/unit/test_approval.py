"""Pure parts of day two: which plan is approved, why a plan is held, when drift is due."""

from __future__ import annotations

from llmapp_operator.engine.reconcile import Previous, approved_plan, hold_reasons
from llmapp_operator.review.verdict import PlanReview
from llmapp_operator.runners.base import PlanSummary
from tests.unit.test_workspace import app

PENDING = {"id": "0123456789abcdef", "pending": True, "digest": "sha256:d1", "add": 2, "change": 1, "destroy": 0}


def test_only_the_pending_plan_for_these_inputs_is_approved() -> None:
    previous = Previous(plan=PENDING)
    plan = approved_plan(app(approvePlan="0123456789abcdef"), previous, "sha256:d1")
    assert plan is not None and (plan.plan_id, plan.add, plan.change, plan.has_changes) == (
        "0123456789abcdef", 2, 1, True)
    assert approved_plan(app(approvePlan="0123456789abcdef"), previous, "sha256:other") is None   # inputs changed
    assert approved_plan(app(approvePlan="fedcba9876543210"), previous, "sha256:d1") is None      # another id
    assert approved_plan(app(approvePlan="auto"), previous, "sha256:d1") is None
    assert approved_plan(app(approvePlan="0123456789abcdef"), Previous(plan={**PENDING, "pending": False}),
                         "sha256:d1") is None                                                    # already applied


def test_hold_reasons_name_each_guardrail() -> None:
    plan = PlanSummary(has_changes=True, add=1, review=PlanReview(
        destructive=("module.ecr.aws_ecr_repository.this[0]",), monthly_cost=250.0, currency="USD"))
    assert hold_reasons(app(), PlanSummary(has_changes=True)) == []
    reasons = hold_reasons(app(approvePlan="manual", terraform={"maxMonthlyCost": 100}), plan)
    assert len(reasons) == 3
    assert [hold.reason for hold in reasons] == ["ApprovalRequired", "DestructiveChange", "CostLimitExceeded"]
    assert "protected resources (module.ecr.aws_ecr_repository.this[0])" in reasons[1].text
    assert "250.00 USD is above spec.terraform.maxMonthlyCost 100.00" in reasons[2].text
    assert hold_reasons(app(terraform={"allowDestructiveChanges": True, "maxMonthlyCost": 300}), plan) == []

"""What `kubectl llmapp` prints (plugin/view.py) and when `approve` refuses (pure)."""

from __future__ import annotations

from typing import Any

from llmapp_operator.plugin import view


def held(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "rags", "namespace": "team-a", "generation": 3},
            "spec": {}, "status": {"observedGeneration": 3, "phase": "AwaitingApproval", **status}}


PLAN = {"id": "0123456789abcdef", "add": 2, "change": 1, "destroy": 1, "replace": 1, "pending": True,
        "reasons": ["a destructive change"], "destructive": ["module.ecr.aws_ecr_repository.this[0]"],
        "resources": ["module.ecr.aws_ecr_repository.this[0]: replace", "module.alb.aws_lb.this[0]: update"]}
COST = {"monthlyEstimate": 123.456, "currency": "USD", "priceTableDate": "2026-11-01",
        "lines": ["ALB (1) + 1 LCU baseline: 22.27 USD"]}


def test_the_plan_screen_lists_changes_cost_findings_and_the_command() -> None:
    screen = view.plan_screen(held(plan=PLAN, cost=COST, policy={"violations": [], "waived": ["CKV_AWS_2 x: y"]}))
    assert "Plan 0123456789abcdef: +2 to add, ~1 to change, -1 to destroy (1 replaced)" in screen
    assert "held: a destructive change" in screen
    assert "replace   module.ecr.aws_ecr_repository.this[0]" in screen
    assert "DESTROYS a protected resource: module.ecr.aws_ecr_repository.this[0]" in screen
    assert "Cost: 123.46 USD/month" in screen and "ALB (1) + 1 LCU baseline: 22.27 USD" in screen
    assert "policy (waived): CKV_AWS_2 x: y" in screen
    assert screen.endswith("kubectl llmapp approve rags -n team-a")


def test_more_changes_than_listed_are_counted() -> None:
    plan = {**PLAN, "add": 150, "replace": 0, "resources": PLAN["resources"]}
    assert "... and 150 more" in view.plan_screen(held(plan=plan))


def test_approve_takes_only_the_plan_that_waits_for_this_generation() -> None:
    assert view.pending_plan(held(plan=PLAN), None) == ("0123456789abcdef", "")
    assert view.pending_plan(held(plan=PLAN), "0123456789abcdef") == ("0123456789abcdef", "")
    stale, why = view.pending_plan(held(plan=PLAN), "fedcba9876543210")
    assert stale is None and "stale" in why and "0123456789abcdef" in why
    moved = held(plan=PLAN)
    moved["metadata"]["generation"] = 4
    assert view.pending_plan(moved, None)[0] is None and "generation 3" in view.pending_plan(moved, None)[1]
    assert view.pending_plan(held(plan={**PLAN, "pending": False}), None)[0] is None


def test_the_status_screen_says_what_to_do() -> None:
    screen = view.status_screen(held(plan=PLAN, cost=COST, url="http://x.elb.amazonaws.com", lastError="boom",
                                     rollout={"mode": "pipeline", "desiredCount": 2, "image": "repo:sha",
                                              "state": "COMPLETED"},
                                     conditions=[{"type": "PlanPending", "status": "True", "reason": "Destructive",
                                                  "message": "m"},
                                                 {"type": "Ready", "status": "False", "reason": "AwaitingApproval",
                                                  "message": "waits"}]))
    assert "WAITS FOR APPROVAL: kubectl llmapp approve rags -n team-a" in screen
    assert "Rollout:   pipeline: 2 task(s) of repo:sha (COMPLETED)" in screen
    assert "Error:     boom" in screen and "URL:       http://x.elb.amazonaws.com" in screen
    # Conditions in kstatus order: Ready first.
    assert screen.index("Ready ") < screen.index("PlanPending")


def test_the_listing_is_kubectl_s_table() -> None:
    rows = view.listing([held(cost=COST, url="http://u", conditions=[{"type": "Ready", "status": "True",
                                                                      "reason": "Applied"}])],
                        all_namespaces=True).splitlines()
    assert rows[0].split() == ["NAMESPACE", "NAME", "PHASE", "READY", "REASON", "COST", "URL"]
    assert rows[1].split() == ["team-a", "rags", "AwaitingApproval", "True", "Applied", "123.46", "USD/month",
                               "http://u"]

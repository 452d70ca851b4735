"""Condition derivation: kstatus semantics and transition times that only move on change."""

from __future__ import annotations

from llmapp_operator.api.conditions import Outcome, Phase, Report, derive, phase_for


def by_type(conditions: list[dict]) -> dict[str, dict]:  # type: ignore[type-arg]
    return {c["type"]: c for c in conditions}


def test_applied_is_ready_not_reconciling_not_stalled() -> None:
    conds = by_type(derive([], Report(Outcome.APPLIED, "Applied", "ok", 4, infra_applied=True), "t1"))
    assert conds["Ready"]["status"] == "True"
    assert conds["Reconciling"]["status"] == "False"
    assert conds["Stalled"]["status"] == "False"
    assert conds["InfraApplied"]["status"] == "True"
    assert all(c["observedGeneration"] == 4 for c in conds.values())
    assert "GitHubSynced" not in conds


def test_retrying_is_reconciling_and_stalled_is_stalled() -> None:
    retry = by_type(derive([], Report(Outcome.RETRYING, "StateLocked", "locked", 1, step="plan"), "t"))
    assert (retry["Ready"]["status"], retry["Reconciling"]["status"], retry["Stalled"]["status"]) == \
        ("False", "True", "False")
    assert retry["Reconciling"]["reason"] == "StateLocked"
    stalled = by_type(derive([], Report(Outcome.STALLED, "InvalidSpec", "bad", 1), "t"))
    assert (stalled["Ready"]["status"], stalled["Reconciling"]["status"], stalled["Stalled"]["status"]) == \
        ("False", "False", "True")
    assert stalled["Stalled"]["message"] == "bad"


def test_a_plan_held_for_approval_is_not_current_for_kstatus() -> None:
    """kstatus reads neither Reconciling nor Stalled as Current (done): a held plan is in progress."""
    held = by_type(derive([], Report(Outcome.AWAITING_APPROVAL, "ApprovalRequired",
                                     "plan 0123456789abcdef waits for approval", 2, plan_pending=True), "t"))
    assert (held["Ready"]["status"], held["Reconciling"]["status"], held["Stalled"]["status"]) == \
        ("False", "True", "False")
    assert held["Reconciling"]["reason"] == "ApprovalRequired" and held["PlanPending"]["status"] == "True"


def test_transition_time_moves_only_on_status_change() -> None:
    first = derive([], Report(Outcome.APPLIED, "Applied", "ok", 1, infra_applied=True), "t1")
    second = derive(first, Report(Outcome.UNCHANGED, "UpToDate", "same", 2, infra_applied=True), "t2")
    assert by_type(second)["Ready"]["lastTransitionTime"] == "t1"
    assert by_type(second)["Ready"]["observedGeneration"] == 2
    third = derive(second, Report(Outcome.RETRYING, "TerraformFailed", "x", 3, infra_applied=False), "t3")
    assert by_type(third)["Ready"]["lastTransitionTime"] == "t3"
    assert by_type(third)["InfraApplied"]["status"] == "False"


def test_untouched_parts_keep_their_last_known_state() -> None:
    first = derive([], Report(Outcome.APPLIED, "Applied", "ok", 1, infra_applied=True), "t1")
    suspended = by_type(derive(first, Report(Outcome.SUSPENDED, "Suspended", "s", 2), "t2"))
    assert suspended["InfraApplied"]["status"] == "True"
    assert suspended["Ready"]["reason"] == "Suspended"


def test_phases() -> None:
    assert phase_for(Report(Outcome.APPLIED, "", "", 1)) is Phase.READY
    assert phase_for(Report(Outcome.STALLED, "", "", 1)) is Phase.FAILED
    assert phase_for(Report(Outcome.IN_PROGRESS, "", "", 1, step="plan")) is Phase.PLANNING
    assert phase_for(Report(Outcome.RETRYING, "", "", 1, step="apply")) is Phase.APPLYING
    assert phase_for(Report(Outcome.RETRYING, "", "", 1, step="backend")) is Phase.PENDING
    assert phase_for(Report(Outcome.DELETING, "", "", 1)) is Phase.DELETING
    assert phase_for(Report(Outcome.SUSPENDED, "", "", 1)) is Phase.SUSPENDED


def test_unchanged_pass_keeps_the_ready_story() -> None:
    first = derive([], Report(Outcome.APPLIED, "Applied", "applied: 6 added", 1, infra_applied=True), "t1")
    again = derive(first, Report(Outcome.UNCHANGED, "UpToDate", "matches", 1, infra_applied=True), "t2")
    assert again == first  # a resync writes nothing new

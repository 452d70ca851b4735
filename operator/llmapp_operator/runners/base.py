"""The Runner protocol and what a run yields: plan summaries and outputs (pure parsing)."""

from __future__ import annotations

import hashlib
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from llmapp_operator.api.workspace import Workspace
from llmapp_operator.review.verdict import PlanReview

Outputs = dict[str, Any]


@dataclass(frozen=True)
class PlanSummary:
    has_changes: bool
    add: int = 0
    change: int = 0
    destroy: int = 0
    replace: int = 0
    resources: tuple[tuple[str, str], ...] = ()   # (address, action) — never values
    plan_id: str = ""   # sha256 of the saved plan file (first 16 hex): names exactly one plan
    review: PlanReview | None = None   # guardrails' verdict, made where the plan JSON is


class Runner(Protocol):
    """What reconcile needs from Terraform; LocalRunner runs it here, a JobRunner in Jobs."""

    async def init(self, ws: Workspace) -> None: ...
    async def plan(self, ws: Workspace) -> PlanSummary: ...
    async def apply(self, ws: Workspace, plan: PlanSummary) -> Outputs: ...
    async def keep(self, ws: Workspace, plan: PlanSummary) -> None: ...
    async def output(self, ws: Workspace) -> Outputs: ...
    async def destroy(self, ws: Workspace) -> None: ...
    async def forget(self, uid: str) -> None:
        """Drop what the runner keeps for a deleted object (its workspace, its Jobs)."""
        ...


def summarize_plan(plan_json: Mapping[str, Any], has_changes: bool) -> PlanSummary:
    """Counts and addresses from `terraform show -json PLAN` (pure)."""
    counts = {"add": 0, "change": 0, "destroy": 0, "replace": 0}
    resources = []
    for change in plan_json.get("resource_changes", []):
        actions = list(change.get("change", {}).get("actions", []))
        if actions == ["create"]:
            action = "add"
        elif actions == ["update"]:
            action = "change"
        elif actions == ["delete"]:
            action = "destroy"
        elif sorted(actions) == ["create", "delete"]:
            action = "replace"
        else:
            continue  # no-op and read
        counts[action] += 1
        resources.append((str(change.get("address", "")), action))
    # Terraform's own summary counts a replacement as one add and one destroy; so do we.
    return PlanSummary(
        has_changes=has_changes,
        add=counts["add"] + counts["replace"],
        change=counts["change"],
        destroy=counts["destroy"] + counts["replace"],
        replace=counts["replace"],
        resources=tuple(resources),
    )


def plan_file_id(path: pathlib.Path) -> str:
    """The id of a saved plan: its content hash, so an id names exactly one plan file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def public_outputs(output_json: Mapping[str, Any]) -> Outputs:
    """`terraform output -json` minus sensitive outputs, which never reach status."""
    return {
        name: item.get("value")
        for name, item in sorted(output_json.items())
        if not item.get("sensitive", False)
    }



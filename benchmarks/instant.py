"""Stand-ins that answer instantly, so a benchmark measures the operator and not Terraform or AWS."""

from __future__ import annotations

from typing import Any

from llmapp_operator.api.workspace import BackendConfig, Workspace
from llmapp_operator.runners.base import PlanSummary


class InstantRunner:
    """Returns the sandbox's outputs without starting Terraform."""

    processes_started = 0

    async def init(self, ws: Workspace) -> None:
        return None

    async def plan(self, ws: Workspace) -> PlanSummary:
        return PlanSummary(has_changes=True, add=6)

    async def apply(self, ws: Workspace, plan: PlanSummary) -> dict[str, Any]:
        return await self.output(ws)

    async def output(self, ws: Workspace) -> dict[str, Any]:
        name = ws.tfvars["name"]
        return {"alb_dns": f"{name}.elb.example", "url": f"http://{name}.elb.example",
                "ecs_cluster_name": f"{name}-cluster"}

    async def destroy(self, ws: Workspace) -> None:
        return None

    async def forget(self, uid: str) -> None:
        return None


class InstantBackend:
    """A state bucket that is always there (the scale benchmark runs no Terraform)."""

    async def ensure(self, backend: BackendConfig) -> None:
        return None

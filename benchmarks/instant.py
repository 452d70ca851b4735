"""Stand-ins that answer instantly, so a benchmark measures the operator and not Terraform or AWS."""

from __future__ import annotations

import asyncio
import os
import pathlib
from typing import Any

from llmapp_operator.api.record import AppliedRecord
from llmapp_operator.api.workspace import BackendConfig, Workspace
from llmapp_operator.runners.base import PlanSummary


class InstantRunner:
    """Returns the sandbox's outputs without starting Terraform. `plan_seconds` makes each plan
    take that long (the drift benchmark needs plans that overlap); `apply_log` gets one line per
    apply (`<uid> <shard>`), so a benchmark can check that each object was applied exactly once, and
    by one shard."""

    processes_started = 0

    def __init__(self, plan_seconds: float = 0.0, apply_log: pathlib.Path | None = None) -> None:
        self.plan_seconds = plan_seconds
        self.apply_log = apply_log
        self.plans = 0

    @classmethod
    def from_env(cls) -> InstantRunner:
        log = os.environ.get("BENCH_APPLY_LOG")
        return cls(apply_log=pathlib.Path(log) if log else None)

    async def init(self, ws: Workspace) -> None:
        return None

    async def plan(self, ws: Workspace) -> PlanSummary:
        self.plans += 1
        if self.plan_seconds:
            await asyncio.sleep(self.plan_seconds)
        return PlanSummary(has_changes=True, add=6)

    async def apply(self, ws: Workspace, plan: PlanSummary) -> dict[str, Any]:
        if self.apply_log is not None:
            with self.apply_log.open("a") as log:
                log.write(f"{ws.uid} {os.environ.get('LLMAPP_SHARD', '0')}\n")
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


class InstantRecords:
    """The applied record kept in memory (the real one is an S3 object beside the state)."""

    def __init__(self) -> None:
        self.records: dict[str, AppliedRecord] = {}

    async def read(self, backend: BackendConfig) -> AppliedRecord | None:
        return self.records.get(backend.location)

    async def write(self, backend: BackendConfig, record: AppliedRecord) -> None:
        self.records[backend.location] = record

    async def delete(self, backend: BackendConfig) -> None:
        self.records.pop(backend.location, None)

    async def state_exists(self, backend: BackendConfig) -> bool:
        return False

    async def delete_plans(self, backend: BackendConfig) -> int:
        return 0

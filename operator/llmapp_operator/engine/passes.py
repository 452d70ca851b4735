"""What the object's worker (engine/worker.py) runs: a converge pass for whatever reasons were
folded into it, and the teardown. Imports no kopf."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from llmapp_operator.api import conditions
from llmapp_operator.api.conditions import Outcome, Report
from llmapp_operator.api.spec import InvalidSpec, LLMApp
from llmapp_operator.engine import teardown as teardown_module
from llmapp_operator.engine.reconcile import Deps, Previous, Result, converge
from llmapp_operator.engine.worker import Reason
from llmapp_operator.obs import metrics

# Someone waits for these: a pass that has one of them never queues behind scheduled drift checks.
URGENT = frozenset({Reason.SPEC, Reason.REQUESTED, Reason.OBSERVED, Reason.DELETE})


def settled(body: Mapping[str, Any]) -> bool:
    """Ready for its current generation with the inputs it last applied: a restarted operator has
    nothing to do for it (no Terraform, no cloud or GitHub call); the resync looks again later."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    generation = int(meta.get("generation") or 0)
    ready = next((c for c in status.get("conditions") or () if c.get("type") == conditions.READY), None)
    return bool(ready and ready.get("status") == "True" and ready.get("observedGeneration") == generation
                and status.get("observedGeneration") == generation
                and status.get("lastAppliedDigest") and status.get("lastAppliedDigest") == status.get(
                    "lastAttemptedDigest"))


async def run_pass(deps: Deps, body: Mapping[str, Any], reasons: frozenset[Reason],
                   progress: Callable[[Report], Awaitable[None]]) -> Result:
    previous = Previous.from_status(body.get("status"))
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    try:
        app = LLMApp.from_body(body)
    except InvalidSpec as exc:
        return Result(Report(Outcome.STALLED, "InvalidSpec", str(exc), generation), {"lastError": str(exc)})
    if reasons == {Reason.OBSERVED} and settled(body):
        return Result(Report(Outcome.UNCHANGED, "UpToDate", "infrastructure matches the spec", generation,
                             infra_applied=True))
    drift_check = Reason.DRIFT in reasons and not app.spec.suspend
    # The pass's duration and outcome are recorded by the worker (engine/worker.py), for every pass.
    result = await converge(app, deps, previous, progress, drift_check=drift_check,
                            background=not reasons & URGENT)
    if drift_check and result.report.drift is not None:
        remediated = result.report.outcome is Outcome.APPLIED
        metrics.DRIFT_CHECKS.labels(result="drifted" if result.report.drift[0]
                                    else "remediated" if remediated else "clean").inc()
    return result


async def run_teardown(deps: Deps, body: Mapping[str, Any]) -> Result:
    return await teardown_module.teardown(body, deps)

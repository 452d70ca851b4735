"""What `kubectl llmapp` prints, from an LLMApp as the API server returns it (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

CONDITION_ORDER = ("Ready", "Reconciling", "Stalled", "InfraApplied", "GitHubSynced", "Deployed", "AppHealthy",
                   "PlanPending", "Drifted", "CertificateIssued")


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for cond in _status(obj).get("conditions") or ():
        if isinstance(cond, Mapping) and cond.get("type") == kind:
            return cond
    return {}


def table(rows: Sequence[Sequence[str]]) -> str:
    """kubectl's plain table: columns padded to the widest cell, three spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def listing(objects: Sequence[Mapping[str, Any]], *, all_namespaces: bool) -> str:
    """One line per LLMApp, like `kubectl get llmapps`, plus what a user asks next (reason, cost)."""
    head = (["NAMESPACE"] if all_namespaces else []) + ["NAME", "PHASE", "READY", "REASON", "COST", "URL"]
    rows = [head]
    for obj in objects:
        meta, status, ready = obj.get("metadata") or {}, _status(obj), _condition(obj, "Ready")
        rows.append(([str(meta.get("namespace", ""))] if all_namespaces else []) + [
            str(meta.get("name", "")), str(status.get("phase") or "Pending"), str(ready.get("status") or "Unknown"),
            str(ready.get("reason") or ""), cost_total(obj) or "", str(status.get("url") or "")])
    return table(rows)


def cost_total(obj: Mapping[str, Any]) -> str | None:
    cost = _status(obj).get("cost") or {}
    if not isinstance(cost, Mapping) or cost.get("monthlyEstimate") is None:
        return None
    return f"{float(cost['monthlyEstimate']):.2f} {cost.get('currency') or ''}/month".replace(" /", "/")


def status_screen(obj: Mapping[str, Any]) -> str:
    """Everything about one LLMApp on one screen: what it is, whether it works, and what to do."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, _status(obj)
    lines = [f"{meta.get('namespace')}/{meta.get('name')}   generation {meta.get('generation')}, "
             f"observed {status.get('observedGeneration', '-')}",
             f"Phase:     {status.get('phase') or 'Pending'}",
             f"URL:       {status.get('url') or '-'}"]
    rollout = status.get("rollout") or {}
    if rollout:
        lines.append(f"Rollout:   {rollout.get('mode') or '-'}: {rollout.get('desiredCount', '-')} task(s) of "
                     f"{rollout.get('image') or '-'} ({rollout.get('state') or 'unknown'})")
    total = cost_total(obj)
    lines.append(f"Cost:      {total or '-'}")
    plan = status.get("plan") or {}
    if plan:
        counts = f"+{plan.get('add', 0)} ~{plan.get('change', 0)} -{plan.get('destroy', 0)}"
        if plan.get("pending"):
            lines.append(f"Plan:      {plan.get('id')} ({counts}) WAITS FOR APPROVAL: "
                         f"kubectl llmapp approve {meta.get('name')} -n {meta.get('namespace')}")
        else:
            lines.append(f"Plan:      {plan.get('id') or '-'} ({counts}), applied")
    drift = status.get("drift") or {}
    if drift:
        drifted = drift.get("resources") or []
        lines.append(f"Drift:     checked {drift.get('checkedAt') or '-'}: "
                     + (f"{len(drifted)} resource(s) drifted" if drifted else "none"))
    if spec.get("suspend"):
        lines.append("Suspended: yes (kubectl llmapp resume to go on)")
    if status.get("lastError"):
        lines.append(f"Error:     {status['lastError']}")
    lines.append("")
    rows = [["CONDITION", "STATUS", "REASON", "MESSAGE"]]
    known = {str(c.get("type")): c for c in status.get("conditions") or () if isinstance(c, Mapping)}
    for kind in sorted(known, key=lambda k: CONDITION_ORDER.index(k) if k in CONDITION_ORDER else 99):
        cond = known[kind]
        rows.append([kind, str(cond.get("status", "")), str(cond.get("reason", "")), str(cond.get("message", ""))])
    lines.append(table(rows) if len(rows) > 1 else "No conditions yet: the operator has not looked at it.")
    return "\n".join(lines)


def plan_screen(obj: Mapping[str, Any]) -> str:
    """The held plan: what it would do, what it costs, what the review found."""
    meta, status = obj.get("metadata") or {}, _status(obj)
    plan = status.get("plan") or {}
    if not plan.get("pending"):
        return (f"No plan of {meta.get('namespace')}/{meta.get('name')} waits for approval"
                + (f" (last plan {plan.get('id')} was applied)." if plan.get("id") else "."))
    lines = [f"Plan {plan.get('id')}: +{plan.get('add', 0)} to add, ~{plan.get('change', 0)} to change, "
             f"-{plan.get('destroy', 0)} to destroy ({plan.get('replace', 0)} replaced)"]
    for why in plan.get("reasons") or ():
        lines.append(f"  held: {why}")
    lines.append("")
    changes = [str(item).rsplit(": ", 1) for item in plan.get("resources") or ()]
    if changes:
        lines.append(table([["ACTION", "RESOURCE"]] + [[parts[-1], parts[0]] for parts in changes]))
        shown = len(changes)
        total = int(plan.get("add", 0)) + int(plan.get("change", 0)) + int(plan.get("destroy", 0)) - int(
            plan.get("replace", 0))
        if total > shown:
            lines.append(f"... and {total - shown} more")
    for address in plan.get("destructive") or ():
        lines.append(f"DESTROYS a protected resource: {address}")
    lines += ["", cost_screen(obj)]
    policy = status.get("policy") or {}
    for finding in policy.get("violations") or ():
        lines.append(f"policy: {finding}")
    for finding in policy.get("waived") or ():
        lines.append(f"policy (waived): {finding}")
    lines += ["", f"To apply exactly this plan: kubectl llmapp approve {meta.get('name')} -n {meta.get('namespace')}"]
    return "\n".join(lines)


def cost_screen(obj: Mapping[str, Any]) -> str:
    cost = _status(obj).get("cost") or {}
    if not cost or cost.get("monthlyEstimate") is None:
        return "Cost: no estimate yet (no plan was reviewed)."
    lines = [f"Cost: {cost_total(obj)} (list prices of {cost.get('priceTableDate') or '?'}, no free tier)"]
    lines += [f"  {line}" for line in cost.get("lines") or ()]
    return "\n".join(lines)


def pending_plan(obj: Mapping[str, Any], wanted: str | None) -> tuple[str | None, str]:
    """(the plan id to write into spec.approvePlan, or None with why not)."""
    plan = _status(obj).get("plan") or {}
    meta = obj.get("metadata") or {}
    if not plan.get("pending") or not plan.get("id"):
        return None, f"no plan of {meta.get('namespace')}/{meta.get('name')} waits for approval"
    if int(_status(obj).get("observedGeneration") or 0) != int(meta.get("generation") or 0):
        return None, (f"plan {plan['id']} was made for generation {_status(obj).get('observedGeneration')}, "
                      f"the spec is at {meta.get('generation')}: wait for the new plan (kubectl llmapp status)")
    if wanted and wanted != plan["id"]:
        return None, f"plan {wanted} is not the one waiting (that is {plan['id']}): it is stale, approve {plan['id']}"
    return str(plan["id"]), ""

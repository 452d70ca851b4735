"""argocd/health.lua run by a real Lua 5.1 interpreter (lupa) on status fixtures, one per branch."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import REPO

lupa = pytest.importorskip("lupa", reason="lupa (Lua 5.1 for Python) is needed to run the Argo CD health script")

SCRIPT = (REPO / "argocd" / "health.lua").read_text()


def run_health(obj: dict[str, Any]) -> dict[str, str]:
    from lupa import lua51

    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)

    def to_lua(value: Any) -> Any:
        if isinstance(value, dict):
            return runtime.table_from({k: to_lua(v) for k, v in value.items()})
        if isinstance(value, list):
            return runtime.table_from([to_lua(v) for v in value])  # 1-based, as JSON arrays in Argo CD
        return value

    runtime.globals().obj = to_lua(obj)
    result = runtime.execute(SCRIPT)
    return {"status": result["status"], "message": result["message"]}


def cond(kind: str, status: str, reason: str = "R", message: str = "m", generation: int | None = 1) -> dict[str, Any]:
    c = {"type": kind, "status": status, "reason": reason, "message": message}
    if generation is not None:
        c["observedGeneration"] = generation
    return c


def app(status: dict[str, Any] | None = None, generation: int = 1, **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "rags", "generation": generation, **extra.pop("metadata", {})},
                           "spec": extra.pop("spec", {})}
    if status is not None:
        obj["status"] = status
    return obj


READY = {"phase": "Ready", "observedGeneration": 1, "url": "http://x.elb.amazonaws.com",
         "conditions": [cond("Ready", "True", "Applied", "applied"), cond("Reconciling", "False"),
                        cond("Stalled", "False")]}

CASES = [
    ("no status", app(), "Progressing", "Waiting for the operator"),
    ("deleting", app(READY, metadata={"deletionTimestamp": "2026-11-25T00:00:00Z"}), "Progressing", "Deleting"),
    ("suspended by spec", app(READY, spec={"suspend": True}), "Suspended", "spec.suspend"),
    ("suspended phase", app({"phase": "Suspended"}), "Suspended", "spec.suspend"),
    ("stalled", app({"phase": "Failed", "conditions": [cond("Stalled", "True", "InvalidSpec", "spec.app.cpu: bad"),
                                                        cond("Ready", "False")]}),
     "Degraded", "InvalidSpec: spec.app.cpu: bad"),
    ("failed phase", app({"phase": "Failed", "lastError": "boom", "conditions": []}), "Degraded", "boom"),
    ("awaiting approval", app({"phase": "AwaitingApproval", "plan": {"id": "p-123"},
                               "conditions": [cond("PlanPending", "True")]}), "Progressing", "approvePlan to p-123"),
    ("plan pending without id", app({"phase": "Planning", "conditions": [cond("PlanPending", "True")]}),
     "Progressing", "awaits approval"),
    ("ready", app(READY), "Healthy", "applied (http://x.elb.amazonaws.com)"),
    ("ready for an older generation", app(READY, generation=2), "Progressing", "reconciling generation 2"),
    ("ready without condition generation", app({**READY, "conditions": [cond("Ready", "True", generation=None)]}),
     "Healthy", "m"),
    ("reconciling", app({"phase": "Applying", "conditions": [cond("Ready", "False"),
                                                             cond("Reconciling", "True", "Applying", "apply")]}),
     "Progressing", "Applying: apply"),
    ("ready false, not stalled", app({"phase": "Pending", "conditions": [cond("Ready", "False", "SecretNotFound",
                                                                              "Secret a/b not found")]}),
     "Progressing", "SecretNotFound: Secret a/b not found"),
    ("status without conditions", app({"phase": "Pending"}), "Progressing", "Phase Pending"),
]


@pytest.mark.parametrize(("obj", "status", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_health(obj: dict[str, Any], status: str, message: str) -> None:
    health = run_health(obj)
    assert health["status"] == status
    assert message in health["message"]


def test_script_keeps_to_the_libraries_argo_cd_gives() -> None:
    code = "\n".join(line.split("--", 1)[0] for line in SCRIPT.splitlines())
    for forbidden in (r"\bos\.", r"\bio\.", r"\brequire\b", r"\bdofile\b", r"\bloadfile\b", r"\bload\b"):
        assert not re.search(forbidden, code), forbidden


def test_docs_embed_the_script_verbatim() -> None:
    docs = (REPO / "docs" / "argocd.md").read_text()
    assert "resource.customizations.health.llmops.dev_LLMApp: |" in docs
    block = docs.split("resource.customizations.health.llmops.dev_LLMApp: |\n", 1)[1].split("```", 1)[0]
    embedded = "\n".join(line[4:] for line in block.splitlines())
    assert embedded.strip() == SCRIPT.strip()

"""argocd/health.lua run the way Argo CD runs a custom health check, on Argo CD's own test format.

Argo CD runs a health script from argocd-cm in gopher-lua with only the base, table, package and a
reduced os (time, date) libraries: no string, math or io, and no string methods ("x"):upper().
`sandbox()` builds the same environment in a real Lua 5.1 (lupa), and every case of
argocd/health_test.yaml (the health_test.yaml format of argo-cd's resource_customizations) runs in
it, and again with all libraries open (resource.customizations.useOpenLibs).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

lua51 = pytest.importorskip("lupa.lua51", reason="lupa (Lua 5.1 for Python) is needed to run the Argo CD health script")

ARGOCD = REPO / "argocd"
SCRIPT = (ARGOCD / "health.lua").read_text()
HEALTH_TESTS = yaml.safe_load((ARGOCD / "health_test.yaml").read_text())["tests"]
STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

# What Argo CD's VM lacks, removed after the fact: the libraries it does not open (also from
# package.loaded, so require cannot bring them back), the os functions beyond time and date, lupa's
# own `python` bridge, and the string metatable's __index, through which ("x"):format() reaches the
# string library even when the global `string` is gone.
RESTRICT = """
getmetatable("").__index = nil
os = { time = os.time, date = os.date, clock = os.clock }
for _, name in ipairs({ "string", "math", "io", "debug", "coroutine", "python" }) do
  _G[name] = nil
  package.loaded[name] = nil
end
package.loaded.os = os
"""


def sandbox(open_libs: bool = False) -> Any:
    """A Lua 5.1 runtime with the libraries Argo CD gives a health script (all of them with open_libs)."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True, register_eval=False, register_builtins=False)
    if not open_libs:
        runtime.execute(RESTRICT)
    return runtime


def to_lua(runtime: Any, value: Any) -> Any:
    """Argo CD hands the object over as nested tables: JSON arrays 1-based, numbers as Lua numbers."""
    if isinstance(value, dict):
        return runtime.table_from({k: to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([to_lua(runtime, v) for v in value])
    return value


def run_health(obj: dict[str, Any], open_libs: bool = False) -> dict[str, str]:
    runtime = sandbox(open_libs)
    runtime.globals().obj = to_lua(runtime, obj)
    result = runtime.execute(SCRIPT)
    health = dict(result.items())
    assert set(health) <= {"status", "message"}, health
    assert health["status"] in STATUSES
    return {"status": health["status"], "message": health.get("message", "")}


def load(input_path: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((ARGOCD / input_path).read_text())
    return obj


# -- the sandbox is as strict as Argo CD's -----------------------------------------------------------

@pytest.mark.parametrize(("code", "error"), [
    ('return string.format("%d", 1)', "global 'string'"),
    ('return ("a"):upper()', "attempt to index a string value"),
    ('local s = "a" return s:sub(1, 1)', "a string value"),
    ('return ("%s"):format("x")', "attempt to index a string value"),
    ("return math.floor(1.5)", "global 'math'"),
    ('return io.open("/etc/hostname")', "global 'io'"),
    ('return os.getenv("HOME")', "field 'getenv'"),
    ('return os.execute("true")', "field 'execute'"),
    ('return require("string").format("x")', "module 'string' not found"),
    ('return python.eval("1")', "global 'python'"),
])
def test_sandbox_rejects_what_argo_cd_does_not_open(code: str, error: str) -> None:
    with pytest.raises(lua51.LuaError, match=re.escape(error)):
        sandbox().execute(code)


def test_sandbox_keeps_what_argo_cd_opens() -> None:
    result = sandbox().execute("""
        local t = {}
        table.insert(t, "a" .. 1)
        table.insert(t, tostring(2) .. tonumber("3"))
        for _, v in ipairs({ "x" }) do t[#t + 1] = type(v) end
        for k in pairs({ y = true }) do t[#t + 1] = k end
        return table.concat(t, ","), type(os.time()), type(os.date("!%Y")), type(package), type(pcall)
    """)
    assert result == ("a1,23,string,y", "number", "string", "table", "function")


def test_open_libs_sandbox_has_the_string_library() -> None:
    assert sandbox(open_libs=True).execute('return ("a"):upper() .. string.format("%d", 1)') == "A1"


# -- Argo CD's test cases: argocd/health_test.yaml ------------------------------------------------

@pytest.mark.parametrize("open_libs", [False, True], ids=["default-libs", "useOpenLibs"])
@pytest.mark.parametrize("case", HEALTH_TESTS, ids=[Path(c["inputPath"]).stem for c in HEALTH_TESTS])
def test_health_test_yaml(case: dict[str, Any], open_libs: bool) -> None:
    assert run_health(load(case["inputPath"]), open_libs) == case["healthStatus"]


def test_health_test_yaml_has_argo_cds_shape_and_covers_every_branch() -> None:
    for case in HEALTH_TESTS:
        assert set(case) == {"healthStatus", "inputPath"}, case
        assert set(case["healthStatus"]) == {"status", "message"}, case
        assert case["healthStatus"]["status"] in STATUSES
    used = {case["inputPath"] for case in HEALTH_TESTS}
    on_disk = {f"testdata/{p.name}" for p in (ARGOCD / "testdata").glob("*.yaml")}
    assert used == on_disk
    assert {case["healthStatus"]["status"] for case in HEALTH_TESTS} == {"Healthy", "Progressing", "Degraded",
                                                                         "Suspended"}
    messages = [case["healthStatus"]["message"] for case in HEALTH_TESTS]
    for prefix in ("Waiting for the operator", "Generation ", "spec.suspend is true", "Plan ", "A plan waits",
                   "Ready; drift detected: "):
        assert any(m.startswith(prefix) for m in messages), prefix


def test_testdata_are_full_llmapp_objects() -> None:
    for case in HEALTH_TESTS:
        obj = load(case["inputPath"])
        assert obj["apiVersion"] == "llmops.dev/v1alpha1" and obj["kind"] == "LLMApp"
        assert obj["metadata"]["generation"] >= 1 and obj["spec"]["environment"]


# -- edge cases Argo CD's objects can have -------------------------------------------------------

def cond(kind: str, status: str, reason: str = "R", message: str = "m", generation: int | None = 1) -> dict[str, Any]:
    c: dict[str, Any] = {"type": kind, "status": status, "reason": reason, "message": message}
    if generation is not None:
        c["observedGeneration"] = generation
    return c


def app(status: dict[str, Any] | None = None, generation: int | None = 1, **extra: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "rags", **extra.pop("metadata", {})}
    if generation is not None:
        metadata["generation"] = generation
    obj: dict[str, Any] = {"metadata": metadata, "spec": extra.pop("spec", {})}
    if status is not None:
        obj["status"] = status
    return obj


READY = {"phase": "Ready", "observedGeneration": 1, "url": "http://x.elb.amazonaws.com",
         "conditions": [cond("Ready", "True", "Applied", "applied"), cond("Reconciling", "False"),
                        cond("Stalled", "False")]}

CASES = [
    ("ready", app(READY), "Healthy", "applied (http://x.elb.amazonaws.com)"),
    ("ready without url or message", app({"observedGeneration": 1, "conditions": [cond("Ready", "True", message="")]}),
     "Healthy", "Ready"),
    ("ready without any observedGeneration", app({"conditions": [cond("Ready", "True", generation=None)]}),
     "Healthy", "m"),
    ("ready without metadata.generation", app(READY, generation=None), "Healthy", "applied (http://x.elb.amazonaws.com)"),
    ("ready for an older generation", app(READY, generation=2), "Progressing",
     "Generation 2 not reconciled yet (status is for generation 1)"),
    ("suspend not observed yet", app(READY, generation=2, spec={"suspend": True}), "Progressing",
     "Generation 2 not reconciled yet (status is for generation 1)"),
    ("suspend without status", app(spec={"suspend": True}), "Progressing", "Waiting for the operator"),
    ("suspend: false", app(READY, spec={"suspend": False}), "Healthy", "applied (http://x.elb.amazonaws.com)"),
    ("stalled without reason or message", app({"conditions": [{"type": "Stalled", "status": "True"}]}),
     "Degraded", "Stalled: needs a human"),
    ("drifted false", app({**READY, "conditions": [*READY["conditions"], cond("Drifted", "False", "NoDrift")]}),
     "Healthy", "applied (http://x.elb.amazonaws.com)"),
    ("plan pending without reasons", app({"observedGeneration": 1, "plan": {"id": "0123456789abcdef"},
                                          "conditions": [cond("PlanPending", "True", "ApprovalRequired")]}),
     "Suspended", "Plan 0123456789abcdef waits for approval: set spec.approvePlan: 0123456789abcdef "
     "(ApprovalRequired)"),
    ("plan pending left over while retrying", app({"observedGeneration": 1, "phase": "Planning",
                                                   "plan": {"id": "0123456789abcdef", "pending": True},
                                                   "conditions": [cond("PlanPending", "True", "ApprovalRequired"),
                                                                  cond("Reconciling", "True", "StateLocked", "lock"),
                                                                  cond("Ready", "False", "StateLocked", "lock")]}),
     "Progressing", "StateLocked: lock"),
    ("conditions without Ready or Reconciling", app({"phase": "Pending", "conditions": [cond("Stalled", "False")]}),
     "Progressing", "Waiting for the operator (phase Pending)"),
    ("status without conditions", app({"phase": "Pending"}), "Progressing", "Waiting for the operator"),
    ("no metadata or spec", {"status": READY}, "Healthy", "applied (http://x.elb.amazonaws.com)"),
]


@pytest.mark.parametrize(("obj", "status", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_health(obj: dict[str, Any], status: str, message: str) -> None:
    assert run_health(obj) == {"status": status, "message": message}


def test_script_keeps_to_the_libraries_argo_cd_gives() -> None:
    code = "\n".join(line.split("--", 1)[0] for line in SCRIPT.splitlines())
    code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', code)   # string literals say what they like
    for forbidden in (r"\bstring\.", r"\bmath\.", r"\bos\.", r"\bio\.", r"\bdebug\.", r"\bcoroutine\.",
                      r"\brequire\b", r"\bdofile\b", r"\bloadfile\b", r"\bload\b", r"\bloadstring\b",
                      r"\w\s*:\s*\w+\s*[(\"{]", r"\)\s*:\s*\w+\s*[(\"{]"):
        assert not re.search(forbidden, code), forbidden


def test_script_leaves_deletion_to_argo_cd() -> None:
    # Argo CD never runs a health script on an object with a deletionTimestamp: it reports
    # Progressing "Pending deletion" itself, so a deletion branch would be dead code.
    code = "\n".join(line.split("--", 1)[0] for line in SCRIPT.splitlines())
    assert "deletionTimestamp" not in code


def test_docs_embed_the_script_verbatim() -> None:
    docs = (REPO / "docs" / "argocd.md").read_text()
    assert "resource.customizations.health.llmops.dev_LLMApp: |" in docs
    block = docs.split("resource.customizations.health.llmops.dev_LLMApp: |\n", 1)[1].split("```", 1)[0]
    embedded = "\n".join(line[4:] for line in block.splitlines())
    assert embedded.strip() == SCRIPT.strip()

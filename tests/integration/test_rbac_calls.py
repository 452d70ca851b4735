"""The RBAC the Helm chart grants is exactly what the operator uses.

Every sandbox runs the operator as the chart's ServiceAccount under enforced RBAC (the emulator
refuses what the rendered Roles do not grant, and the fixture fails the test on any refusal). This
file adds the other direction, least privilege: a whole lifecycle (Secret-backed app secret, create
to Ready, spec change, delete to gone) uses every right the chart grants, or the right is there for
a stated reason.
"""

from __future__ import annotations

import base64
import pathlib
from typing import Any

import pytest

from llmapp_operator.runners.jobstep import JOB_USER_AGENT
from llmapp_sandbox.cluster import USER_AGENT, is_ready
from tests.chart_render import render
from tests.conftest import needs_terraform
from tests.integration.conftest import CONSENT, JOB_NS, NS, SandboxFactory, llmapp
from tests.integration.job_player import JOB_SETTINGS, playing
from tests.secrets_scan import secret_for_tests

pytestmark = needs_terraform
helm = pytest.importorskip("helm_python", reason="helm-python-sdk (Helm's engine) is needed to render the chart")

RBAC_VERB = {"GET": "get", "LIST": "list", "WATCH": "watch", "POST": "create", "PATCH": "patch", "PUT": "update",
             "DELETE": "delete"}
# Used on a failure path only: a Job whose request ConfigMap could not be created is deleted
# (tests/integration/test_job_runner.py provokes that).
GRANTED_FOR_FAILURES = {("batch", "jobs", "delete")}
VALUE = secret_for_tests("rbac-test-secret-value-5d1f")
# Read only when a tenant policy selects namespaces by label (tests/integration/test_tenancy.py uses it).
GRANTED_FOR_TENANT_SELECTORS = {("", "namespaces", "get")}


Rule = tuple[str, str, str]   # (api group, resource[/subresource], verb)


def chart_objects(values: dict[str, Any]) -> list[dict[str, Any]]:
    return render(values)


def rules_of(role: dict[str, Any]) -> set[Rule]:
    return {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def chart_cluster_rules(values: dict[str, Any] | None = None) -> set[Rule]:
    return {rule for d in chart_objects(values or {}) if d["kind"] == "ClusterRole" for rule in rules_of(d)}


def calls_by(calls: dict[Any, int], agents: set[str] | None = None, *, but: set[str] = frozenset()) -> set[Rule]:  # type: ignore[assignment]
    return {(group, plural + (f"/{sub}" if sub else ""), RBAC_VERB[verb])
            for (agent, verb, group, plural, sub) in calls
            if (agents is None or agent in agents) and agent not in but}


async def test_operator_calls_match_the_chart_rbac(open_sandbox: SandboxFactory) -> None:
    async with open_sandbox() as sandbox:
        await sandbox.client.create({"apiVersion": "v1", "kind": "Secret",
                                     "metadata": {"name": "openai", "namespace": NS, "annotations": CONSENT},
                                     "data": {"api-key": base64.b64encode(VALUE.encode()).decode()}})
        ref = {"secretKeyRef": {"name": "openai", "key": "api-key"}}
        await sandbox.client.create(llmapp(app={"secrets": [{"name": "OPENAI_API_KEY", "valueFrom": ref}]}))
        await sandbox.client.wait_for(NS, "rags", is_ready)
        await sandbox.client.patch(NS, "rags", {"spec": {"app": {"healthCheckPath": "/healthz"}}})
        await sandbox.client.wait_for(NS, "rags", lambda o: is_ready(o) and o["metadata"]["generation"] == 2)
        await sandbox.client.delete(NS, "rags")
        assert await sandbox.client.wait_for(NS, "rags", lambda o: o is None) is None
        calls: dict[Any, int] = dict(sandbox.api.server.calls)

    used = calls_by(calls, but={USER_AGENT})
    granted = chart_cluster_rules()
    assert used, "no operator calls were recorded"
    assert used <= granted, f"the operator needs rights the chart does not grant: {sorted(used - granted)}"
    # Least privilege: every namespaced right granted was used here, or is there for a stated reason.
    unused = granted - used - GRANTED_FOR_TENANT_SELECTORS
    assert not unused, f"the chart grants rights the operator never used: {sorted(unused)}"


async def test_job_runner_calls_match_the_chart_rbac_for_the_operator_and_the_jobs(
        open_sandbox: SandboxFactory, tmp_path: pathlib.Path) -> None:
    """The operator's rights with jobRunner.enabled, and the Role the chart gives the Jobs."""
    async with open_sandbox(**JOB_SETTINGS) as sandbox, playing(sandbox, tmp_path, fates=["crash"]):
        await sandbox.client.create(llmapp())
        await sandbox.client.wait_for(NS, "rags", is_ready, timeout=90)   # a crashed plan Job, then a good run
        await sandbox.client.delete(NS, "rags")
        assert await sandbox.client.wait_for(NS, "rags", lambda o: o is None, timeout=60) is None
        calls: dict[Any, int] = dict(sandbox.api.server.calls)

    values = {"jobRunner": {"enabled": True}, "watchNamespaces": [NS]}
    objects = chart_objects(values)
    operator_role = next(d for d in objects if d["kind"] == "Role" and d["metadata"]["name"] == "llmapp-operator")
    jobs_role = next(d for d in objects if d["kind"] == "Role" and d["metadata"]["name"] == "llmapp-operator-jobs")
    runner_role = next(d for d in objects if d["kind"] == "Role" and d["metadata"]["name"].endswith("-terraform"))
    assert jobs_role["metadata"]["namespace"] == runner_role["metadata"]["namespace"] == JOB_NS != NS
    operator_used = calls_by(calls, but={USER_AGENT, JOB_USER_AGENT})
    job_used = calls_by(calls, {JOB_USER_AGENT})
    assert job_used == rules_of(runner_role) == {("", "configmaps", "create")}
    granted = rules_of(operator_role) | rules_of(jobs_role)
    assert operator_used <= granted, f"missing from the chart: {sorted(operator_used - granted)}"
    added = rules_of(jobs_role)   # what jobRunner.enabled adds, in the job namespace only
    assert added == {("batch", "jobs", "create"), ("batch", "jobs", "get"), ("batch", "jobs", "list"),
                     ("batch", "jobs", "delete"), ("", "configmaps", "create"), ("", "configmaps", "get"),
                     ("", "pods", "list"), ("", "pods/log", "get")}
    unused = added - operator_used - GRANTED_FOR_FAILURES
    assert not unused, f"the job runner's rights never used: {sorted(unused)}"

"""The Kubernetes Job runner against the API emulator, with the real operator.

No kubelet or Job controller here: tests/integration/job_player.py plays them, running the real
`llmapp-operator job-step` for Jobs that succeed and ending others as Kubernetes would.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from dataclasses import replace
from typing import Any

import pytest

from llmapp_operator.runners.job import (
    ANNOTATION_NONCE,
    DEADLINE_GRACE_SECONDS,
    MAC_SUFFIX,
    REQUEST_KEY,
    RESULT_KEY,
    JobRunner,
)
from llmapp_sandbox.cluster import condition, is_ready
from tests.integration.conftest import JOB_NS, NS, Sandbox, SandboxFactory, llmapp, signing_secret
from tests.integration.job_player import JOB_SETTINGS, playing

pytestmark = pytest.mark.asyncio

def job_sandbox(open_sandbox: SandboxFactory, **overrides: Any) -> contextlib.AbstractAsyncContextManager[Sandbox]:
    return open_sandbox(**JOB_SETTINGS, **overrides)


async def test_each_step_runs_in_a_job_with_the_expected_spec_and_status_follows(
        open_sandbox: SandboxFactory, tmp_path: pathlib.Path, terraform_log: Any) -> None:
    async with job_sandbox(open_sandbox) as sandbox, playing(sandbox, tmp_path) as player:
        created = await sandbox.client.create(llmapp(terraform={"module": "sandbox", "timeout": "10m"}))
        uid = created["metadata"]["uid"]
        obj = await sandbox.client.wait_for(NS, "rags", is_ready, timeout=90)

        # Terraform ran only in the "pods": plan then apply, each in its own Job.
        assert sandbox.deps.runner.processes_started == 0  # type: ignore[attr-defined]
        assert [name.split("-")[1] for name, _ in player.played] == ["plan", "apply"]
        assert obj["status"]["url"].startswith("http://")
        assert obj["status"]["outputs"]["ecs_service_name"]
        assert sandbox.state() != []

        job = player.jobs()[0]
        spec, pod = job["spec"], job["spec"]["template"]["spec"]
        assert spec["backoffLimit"] == 0
        assert spec["activeDeadlineSeconds"] == 600 + DEADLINE_GRACE_SECONDS
        assert spec["ttlSecondsAfterFinished"] == sandbox.settings.job_ttl_seconds
        # In the release namespace, never the tenant's; found again by the uid label, not an owner.
        assert job["metadata"]["namespace"] == JOB_NS and "ownerReferences" not in job["metadata"]
        assert job["metadata"]["annotations"]["llmops.dev/llmapp"] == f"{NS}/rags"
        assert sandbox.api.server.list_objects("jobs", NS) == []
        labels = job["metadata"]["labels"]
        assert labels["llmops.dev/uid"] == uid and labels["llmops.dev/step"] == "plan"
        assert labels["app.kubernetes.io/managed-by"] == "llmapp-operator"
        assert pod["serviceAccountName"] == "llmapp-terraform" and pod["restartPolicy"] == "Never"
        container = pod["containers"][0]
        assert container["image"] == JOB_SETTINGS["job_image"]
        assert container["args"][:2] == ["job-step", "--request"]
        assert container["resources"]["limits"]["memory"] == sandbox.settings.job_memory
        assert container["envFrom"] == [{"secretRef": {"name": "aws-credentials"}}]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["securityContext"]["runAsNonRoot"] is True

        # Request and result: ConfigMaps owned by the Job, the result answers the request's nonce.
        name = job["metadata"]["name"]
        request = sandbox.api.server.get_object("configmaps", JOB_NS, name)
        result = sandbox.api.server.get_object("configmaps", JOB_NS, f"{name}-result")
        assert request is not None and result is not None
        for configmap in (request, result):
            ref = configmap["metadata"]["ownerReferences"][0]
            assert (ref["kind"], ref["name"], ref["uid"]) == ("Job", name, job["metadata"]["uid"])
        assert job["metadata"]["annotations"][ANNOTATION_NONCE] in result["data"][RESULT_KEY]
        assert '"token' not in request["data"][REQUEST_KEY].lower()  # inputs only: names, sizes, ARNs
        assert set(request["data"]) == {REQUEST_KEY, REQUEST_KEY + MAC_SUFFIX}   # authenticated
        assert set(result["data"]) == {RESULT_KEY, RESULT_KEY + MAC_SUFFIX}

        # Deleting the LLMApp destroys in a Job too, then the finalizer goes.
        await sandbox.client.delete(NS, "rags")
        await sandbox.client.wait_for(NS, "rags", lambda o: o is None, timeout=60)
        assert [name.split("-")[1] for name, _ in player.played] == ["plan", "apply", "destroy"]
        assert player.jobs() == []   # the deleted LLMApp's Jobs went with it (by the uid label)
        assert sandbox.state() == []
        assert "destroy" in terraform_log.commands()  # the pod's terraform, through the test wrapper


@pytest.mark.parametrize(("fate", "reason", "words"), [
    ("deadline", "JobDeadlineExceeded", "ran past its deadline"),
    ("evict", "JobEvicted", "evicted"),
    ("crash", "JobFailed", "exec format error"),
])
async def test_a_job_that_ends_without_a_result_is_a_clear_condition_and_a_retry(
        open_sandbox: SandboxFactory, tmp_path: pathlib.Path, fate: str, reason: str, words: str) -> None:
    async with job_sandbox(open_sandbox, retry_base_seconds=1.0) as sandbox, \
            playing(sandbox, tmp_path, fates=[fate]) as player:
        await sandbox.client.create(llmapp())

        def failed(obj: dict[str, Any] | None) -> bool:
            ready = condition(obj, "Ready")
            return ready is not None and ready.get("reason") == reason

        obj = await sandbox.client.wait_for(NS, "rags", failed, timeout=60)
        assert words in obj["status"]["lastError"]
        assert condition(obj, "Reconciling")["status"] == "True"   # retrying, not stalled
        # The retry (after backoff) starts a fresh plan Job, which succeeds this time.
        obj = await sandbox.client.wait_for(NS, "rags", is_ready, timeout=90)
        assert [fate_ for _, fate_ in player.played][:2] == [fate, "run"]
        events = [e["reason"] for e in await sandbox.client.events(NS, "rags")]
        assert reason in events


async def test_a_terraform_failure_inside_the_job_reports_terraform_s_error(
        open_sandbox: SandboxFactory, tmp_path: pathlib.Path) -> None:
    async with job_sandbox(open_sandbox) as sandbox, playing(sandbox, tmp_path) as player:
        # A variable the module declares, with a value its validation rejects: a permanent error.
        await sandbox.client.create(llmapp(terraform={"module": "sandbox", "vars": {"alb_log_retention_days": "oops"}}))

        def stalled(obj: dict[str, Any] | None) -> bool:
            return (condition(obj, "Stalled") or {}).get("status") == "True"

        obj = await sandbox.client.wait_for(NS, "rags", stalled, timeout=60)
        assert condition(obj, "Stalled")["reason"] == "InvalidModuleInput"
        assert "terraform plan" in obj["status"]["lastError"]
        job = player.jobs()[0]
        assert job["status"]["failed"] == 1   # the pod exited non-zero, and said why in its result
        await asyncio.sleep(1.0)
        assert len(player.jobs()) == 1       # permanent: no retry until the spec changes


async def test_a_restarted_operator_adopts_the_running_job_instead_of_starting_another(
        settings: Any, deps: Any, s3: Any, tmp_path: pathlib.Path) -> None:
    from llmapp_sandbox.apiserver.server import running_apiserver
    from llmapp_sandbox.cluster import ApiClient, running_operator, use_kubeconfig
    from tests.chart_render import rbac_objects
    from tests.integration.conftest import CHART_VALUES, CRD

    local = settings.updated(namespaces=(NS,), **JOB_SETTINGS)
    async with running_apiserver([CRD], namespaces=[NS, JOB_NS]) as api:
        api.server.apply_manifests([signing_secret(), *rbac_objects(CHART_VALUES)])   # the runner's account, Role, key
        use_kubeconfig(api.write_kubeconfig(tmp_path / "kubeconfig", NS))
        sandbox = Sandbox(api=api, client=ApiClient(api.url), settings=local, deps=deps, s3=s3)
        async with playing(sandbox, tmp_path, fates=["hold"]) as player:
            first = replace(deps, settings=local, job_runner=JobRunner(local))
            async with running_operator(local, first):
                await sandbox.client.create(llmapp())
                for _ in range(500):
                    if player.played:
                        break
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.3)   # the operator now polls the running plan Job
            # Stopped (as by a rollout) while the plan Job runs; a new operator process takes over.
            second_runner = JobRunner(local)
            async with running_operator(local, replace(deps, settings=local, job_runner=second_runner)):
                await asyncio.sleep(0.5)
                assert second_runner.jobs_created == 0, "the new operator started a second plan Job"
                await player.play(player.jobs()[0], "resume")   # the held pod now does its work
                obj = await sandbox.client.wait_for(NS, "rags", is_ready, timeout=90)
            assert [name.split("-")[1] for name, _ in player.played] == ["plan", "apply"]
            assert second_runner.jobs_created == 1   # only the apply Job
            assert obj["status"]["outputs"]


async def test_jobs_are_refused_with_a_clear_message_when_the_runner_is_not_configured(
        open_sandbox: SandboxFactory) -> None:
    async with open_sandbox(default_runner="job") as sandbox:
        await sandbox.client.create(llmapp())

        def stalled(obj: dict[str, Any] | None) -> bool:
            return (condition(obj, "Stalled") or {}).get("status") == "True"

        obj = await sandbox.client.wait_for(NS, "rags", stalled, timeout=30)
        assert condition(obj, "Stalled")["reason"] == "JobRunnerNotEnabled"
        assert "LLMAPP_JOB_IMAGE" in obj["status"]["lastError"]
        assert sandbox.api.server.list_objects("jobs", JOB_NS) == []


async def test_a_plan_made_in_a_job_waits_for_approval_and_the_apply_job_applies_exactly_it(
        open_sandbox: SandboxFactory, tmp_path: pathlib.Path) -> None:
    async with job_sandbox(open_sandbox) as sandbox, playing(sandbox, tmp_path) as player:
        await sandbox.client.create(llmapp(approvePlan="manual"))

        def waiting(obj: dict[str, Any] | None) -> bool:
            return obj is not None and (obj.get("status") or {}).get("phase") == "AwaitingApproval"

        obj = await sandbox.client.wait_for(NS, "rags", waiting, timeout=60)
        plan_id = obj["status"]["plan"]["id"]
        assert [name.split("-")[1] for name, _ in player.played] == ["plan"]
        await sandbox.client.patch(NS, "rags", {"spec": {"approvePlan": plan_id}})
        obj = await sandbox.client.wait_for(NS, "rags", is_ready, timeout=90)
        assert [name.split("-")[1] for name, _ in player.played] == ["plan", "apply"]   # no second plan
        apply_job = player.jobs()[-1]
        request = sandbox.api.server.get_object("configmaps", JOB_NS, apply_job["metadata"]["name"])
        assert request is not None and f'"plan_id": "{plan_id}"' in request["data"][REQUEST_KEY]
        assert obj["status"]["plan"]["id"] == plan_id and len(sandbox.state()) == 7


def stalled(obj: dict[str, Any] | None) -> bool:
    return (condition(obj, "Stalled") or {}).get("status") == "True"


async def test_a_job_whose_request_cannot_be_created_is_removed_not_left_behind(
        open_sandbox: SandboxFactory, tmp_path: pathlib.Path) -> None:
    """Each retry used to leave a Job waiting forever for its request volume (12 destroy Jobs a minute)."""
    async with job_sandbox(open_sandbox) as sandbox, playing(sandbox, tmp_path):
        sandbox.api.server.fail_next("POST", "configmaps", 500)
        await sandbox.client.create(llmapp())
        await sandbox.client.wait_for(NS, "rags", is_ready, timeout=90)
        assert ("DELETE", "jobs", None) in sandbox.api.server.request_counts
        jobs = sandbox.api.server.list_objects("jobs", JOB_NS)
        assert sorted(job["metadata"]["labels"]["llmops.dev/step"] for job in jobs) == ["apply", "plan"]
        for job in jobs:   # every Job left has its request: none waits for a volume that never comes
            assert sandbox.api.server.get_object("configmaps", JOB_NS, job["metadata"]["name"]) is not None


async def test_jobs_refused_by_rbac_stall_with_the_api_server_s_own_message(open_sandbox: SandboxFactory) -> None:
    """The job image is configured but the chart did not grant the Job rights (jobRunner.enabled is
    false): a distinct reason, the server's words, and no Job."""
    async with job_sandbox(open_sandbox, allow_denied=True, chart_values={}) as sandbox:
        await sandbox.client.create(llmapp())
        obj = await sandbox.client.wait_for(NS, "rags", stalled, timeout=30)
        assert condition(obj, "Stalled")["reason"] == "JobForbidden"
        # The first call is the look for a running Job to adopt (list); it is refused, and says so.
        assert ('jobs.batch is forbidden: User "system:serviceaccount:llmapp-system:llmapp-operator" cannot list '
                'resource "jobs" in API group "batch" in the namespace "llmapp-system"') in obj["status"]["lastError"]
        assert sandbox.api.server.list_objects("jobs", JOB_NS) == []
        denied = {(verb, resource) for _, verb, _, resource, _, _ in sandbox.api.server.denied}
        assert denied == {("list", "jobs")}   # once: Stalled, no retry


async def test_a_terminating_job_namespace_is_its_own_reason(open_sandbox: SandboxFactory,
                                                            tmp_path: pathlib.Path) -> None:
    async with job_sandbox(open_sandbox, allow_denied=True) as sandbox, playing(sandbox, tmp_path):
        await sandbox.client.create(llmapp())
        await sandbox.client.wait_for(NS, "rags", is_ready, timeout=90)
        # Finalizers keep the namespace alive, and the operator's Role there with it: the namespace
        # controller would delete the Role first, and the refusal would then be RBAC's (JobForbidden).
        for plural, name in (("roles", "llmapp-operator-jobs"), ("rolebindings", "llmapp-operator-jobs")):
            held = sandbox.api.server.get_object(plural, JOB_NS, name, group="rbac.authorization.k8s.io")
            assert held is not None
            held["metadata"]["finalizers"] = ["example.com/hold"]
            sandbox.api.server.update_object(plural, held, group="rbac.authorization.k8s.io")
        await sandbox.client._call("DELETE", f"{sandbox.api.url}/api/v1/namespaces/{JOB_NS}")
        await sandbox.client.patch(NS, "rags", {"spec": {"app": {"healthCheckPath": "/healthz"}}})

        def refused(obj: dict[str, Any] | None) -> bool:
            return (condition(obj, "Ready") or {}).get("reason") == "NamespaceTerminating"

        obj = await sandbox.client.wait_for(NS, "rags", refused, timeout=60)
        assert "because it is being terminated" in obj["status"]["lastError"]

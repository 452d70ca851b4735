"""The job runner's pure parts: names, manifests, reading Job status, trusting results."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from llmapp_operator.api.errors import PermanentError, TransientError
from llmapp_operator.api.workspace import render
from llmapp_operator.engine.reconcile import Deps
from llmapp_operator.obs.redaction import Redactor
from llmapp_operator.runners.base import PlanSummary
from llmapp_operator.runners.gate import RunGate
from llmapp_operator.runners.job import (
    RESULT_KEY,
    JobResult,
    JobState,
    failure_error,
    job_manifest,
    job_name,
    job_state,
    request_for,
    summary_from_dict,
    summary_to_dict,
    verify_result,
)
from tests.unit.test_workspace import MODULE, SETTINGS, app

WS = render(app(name="a-rather-long-application-name-for-a-team-that-likes-words"), SETTINGS, MODULE)


def request(step: str = "plan", nonce: str = "n0nce123") -> Any:
    return request_for(WS, step, job_name(WS, step, nonce), nonce)


def test_job_names_fit_pod_labels_and_name_object_step_and_attempt() -> None:
    name = job_name(WS, "destroy", "n0nce123")
    assert len(name) <= 52 and name.endswith("-destroy-n0nce123") and name.startswith("a-rather-long")


def test_the_job_is_one_try_with_a_deadline_ttl_owner_and_the_operator_s_settings_but_its_own_disk() -> None:
    settings = SETTINGS.updated(job_image="img:1", job_ttl_seconds=600, metrics_port=9090)
    job = job_manifest(request(), WS, settings)
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] > WS.timeout_seconds
    assert job["spec"]["ttlSecondsAfterFinished"] == 600
    env = {item["name"]: item["value"] for item in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["LLMAPP_WORKDIR"] == "/work" and env["LLMAPP_METRICS_PORT"] == ""
    assert env["LLMAPP_STATE_BUCKET"] == "bucket"
    assert "envFrom" not in job["spec"]["template"]["spec"]["containers"][0]   # no credentials Secret set
    # job-step forwards SIGTERM and waits the kill grace: the pod's grace covers it with a margin.
    assert env["LLMAPP_KILL_GRACE_SECONDS"] == repr(settings.kill_grace_seconds)
    assert job["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > settings.kill_grace_seconds + 10


@pytest.mark.parametrize(("status", "expected"), [
    ({}, JobState(finished=False)),
    ({"active": 1}, JobState(finished=False)),
    ({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}, JobState(True, True)),
    ({"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                                   "message": "too long"}]}, JobState(True, False, "DeadlineExceeded", "too long")),
    ({"conditions": [{"type": "Failed", "status": "False"}], "active": 1}, JobState(finished=False)),
    ({"failed": 1}, JobState(True, False, "BackoffLimitExceeded")),
])
def test_job_state_reads_conditions_first_then_counters(status: dict[str, Any], expected: JobState) -> None:
    assert job_state({"status": status}) == expected


def answer(req: Any, **changes: Any) -> dict[str, str]:
    result = JobResult(step=req.step, uid=req.uid, digest=req.digest, nonce=req.nonce, ok=True, outputs={"url": "x"})
    return {RESULT_KEY: replace(result, **changes).to_json()}


def test_a_result_is_trusted_only_when_it_answers_this_very_request() -> None:
    req = request()
    assert verify_result(answer(req), req).outputs == {"url": "x"}
    for forged in (answer(req, nonce="other"), answer(req, digest="sha256:old"), answer(req, step="apply")):
        with pytest.raises(TransientError) as caught:
            verify_result(forged, req)
        assert caught.value.reason == "JobResultInvalid"
    with pytest.raises(TransientError, match="without writing its result"):
        verify_result({}, req)
    with pytest.raises(TransientError) as caught:
        verify_result({RESULT_KEY: "{not json"}, req)
    assert caught.value.reason == "JobResultInvalid"


def test_a_recorded_failure_keeps_its_kind_and_reason() -> None:
    req = request()
    base = JobResult(step=req.step, uid=req.uid, digest=req.digest, nonce=req.nonce, ok=False)
    with pytest.raises(PermanentError) as permanent:
        replace(base, error={"kind": "permanent", "reason": "InvalidModuleInput", "message": "bad var"}).raise_error()
    assert (permanent.value.reason, permanent.value.message) == ("InvalidModuleInput", "bad var")
    with pytest.raises(TransientError) as transient:
        replace(base, error={"kind": "transient", "reason": "StateLocked", "message": "held"}).raise_error()
    assert transient.value.reason == "StateLocked"
    replace(base, ok=True).raise_error()   # nothing to raise


def test_plan_summaries_cross_the_wire_unchanged() -> None:
    plan = PlanSummary(has_changes=True, add=2, change=1, destroy=1, replace=1,
                       resources=(("terraform_data.a", "add"), ("terraform_data.b", "replace")), plan_id="abc123")
    assert summary_from_dict(json.loads(json.dumps(summary_to_dict(plan)))) == plan


def test_failures_without_a_result_name_their_cause_and_redact_the_log() -> None:
    req = request()
    redactor = Redactor()
    redactor.register(["s3cr3t-value"])
    deadline = failure_error(req, JobState(True, False, "DeadlineExceeded"), [], "", redactor)
    assert deadline.reason == "JobDeadlineExceeded"
    disrupted = [{"status": {"conditions": [{"type": "DisruptionTarget", "status": "True"}]}}]
    assert failure_error(req, JobState(True, False, "BackoffLimitExceeded"), disrupted, "", redactor).reason \
        == "JobEvicted"
    crashed = failure_error(req, JobState(True, False, "BackoffLimitExceeded"), [{"status": {"phase": "Failed"}}],
                            "token s3cr3t-value\nError: boom", redactor)
    assert crashed.reason == "JobFailed" and "Error: boom" in crashed.message
    assert "s3cr3t-value" not in crashed.message


def test_the_runner_follows_the_spec_then_the_operator_default() -> None:
    local, jobs = object(), object()
    deps = Deps(settings=SETTINGS, runner=local, backend=object(), gate=RunGate(1),  # type: ignore[arg-type]
                job_runner=jobs)  # type: ignore[arg-type]
    assert deps.runner_for(app()) is local
    assert deps.runner_for(app(terraform={"runner": "job"})) is jobs
    assert replace(deps, settings=SETTINGS.updated(default_runner="job")).runner_for(app()) is jobs
    assert deps.runner_for(app(terraform={"runner": "local"})) is local
    with pytest.raises(PermanentError) as caught:
        replace(deps, job_runner=None).runner_for(app(terraform={"runner": "job"}))
    assert caught.value.reason == "JobRunnerUnavailable"

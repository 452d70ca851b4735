"""The job runner's pure parts: names, manifests, reading Job status, trusting results."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from llmapp_operator.api.errors import PermanentError, TransientError
from llmapp_operator.api.tenancy import AssumedRole
from llmapp_operator.api.workspace import render
from llmapp_operator.engine.reconcile import Deps
from llmapp_operator.obs.redaction import Redactor
from llmapp_operator.runners.base import PlanSummary
from llmapp_operator.runners.gate import RunGate
from llmapp_operator.runners.job import (
    MAC_SUFFIX,
    REQUEST_KEY,
    RESULT_KEY,
    JobRequest,
    JobResult,
    JobState,
    failure_error,
    job_manifest,
    job_name,
    job_state,
    request_for,
    role_from_dict,
    signed,
    signing_key,
    summary_from_dict,
    summary_to_dict,
    verify_request,
    verify_result,
)
from tests.unit.test_workspace import MODULE, SETTINGS, app

WS = render(app(name="a-rather-long-application-name-for-a-team-that-likes-words"), SETTINGS, MODULE)


KEY = b"k" * 32
ROLE = AssumedRole(arn="arn:aws:iam::123456789012:role/llmapp-tenant-a", session_name="llmapp-team-a-rags",
                   tags={"llmops.dev/namespace": "team-a"}, external_id="ext-1")


def request(step: str = "plan", nonce: str = "n0nce123") -> Any:
    return request_for(replace(WS, role=ROLE), step, job_name(WS, step, nonce), nonce, "llmapp-system")


def test_job_names_fit_pod_labels_and_name_object_step_and_attempt() -> None:
    name = job_name(WS, "destroy", "n0nce123")
    assert len(name) <= 52 and name.endswith("-destroy-n0nce123") and name.startswith("a-rather-long")


def test_the_job_is_one_try_with_a_deadline_ttl_owner_and_the_operator_s_settings_but_its_own_disk() -> None:
    settings = SETTINGS.updated(job_image="img:1", job_ttl_seconds=600, metrics_port=9090,
                                job_signing_key="k" * 32, job_signing_secret="signing")
    job = job_manifest(request(), WS, settings)
    # In the runner's namespace, not the tenant's, so with no owner reference to the LLMApp.
    assert job["metadata"]["namespace"] == "llmapp-system" and "ownerReferences" not in job["metadata"]
    assert job["metadata"]["annotations"]["llmops.dev/llmapp"] == f"team-a/{WS.name}"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] > WS.timeout_seconds
    assert job["spec"]["ttlSecondsAfterFinished"] == 600
    listed = job["spec"]["template"]["spec"]["containers"][0]["env"]
    env = {item["name"]: item["value"] for item in listed if "value" in item}
    # The signing key comes from its Secret, never as a value in the Job.
    assert "LLMAPP_JOB_SIGNING_KEY" not in env and "k" * 32 not in json.dumps(job)
    assert {"name": "LLMAPP_JOB_SIGNING_KEY",
            "valueFrom": {"secretKeyRef": {"name": "signing", "key": "key"}}} in listed
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


def answer(req: Any, key: bytes = KEY, **changes: Any) -> dict[str, str]:
    result = JobResult(step=req.step, uid=req.uid, digest=req.digest, nonce=req.nonce, ok=True, outputs={"url": "x"})
    return signed(key, "result", RESULT_KEY, replace(result, **changes).to_json())


def test_a_result_is_trusted_only_when_the_key_authenticates_it_and_it_answers_this_very_request() -> None:
    req = request()
    assert verify_result(answer(req), req, KEY).outputs == {"url": "x"}
    for forged in (answer(req, nonce="other"), answer(req, digest="sha256:old"), answer(req, step="apply")):
        with pytest.raises(TransientError) as caught:
            verify_result(forged, req, KEY)
        assert caught.value.reason == "JobResultInvalid"
    # Written by anyone without the key (or edited after the Job wrote it): ignored, whatever it says.
    unsigned = {RESULT_KEY: answer(req)[RESULT_KEY]}
    other_key = answer(req, key=b"x" * 32)
    edited = {**answer(req), RESULT_KEY: answer(req, outputs={"url": "http://attacker.example"})[RESULT_KEY]}
    as_request = signed(KEY, "request", RESULT_KEY, answer(req)[RESULT_KEY])   # a MAC made for another kind
    for forged in (unsigned, other_key, edited, as_request):
        with pytest.raises(TransientError) as caught:
            verify_result(forged, req, KEY)
        assert caught.value.reason == "JobResultForged"
    with pytest.raises(TransientError, match="without writing its result"):
        verify_result({}, req, KEY)
    with pytest.raises(TransientError) as caught:
        verify_result(signed(KEY, "result", RESULT_KEY, "{not json"), req, KEY)
    assert caught.value.reason == "JobResultInvalid"


def test_a_request_is_read_only_when_authenticated_and_strictly_typed() -> None:
    req = request("destroy")
    data = signed(KEY, "request", REQUEST_KEY, req.to_json())
    assert verify_request(data, KEY).to_json() == req.to_json()  # type: ignore[union-attr]
    assert role_from_dict(req.role) == ROLE   # the tenant role crosses the wire whole
    tampered = json.loads(req.to_json()) | {"backend": {**req.backend, "key": "llmapp/team-b/app/terraform.tfstate"}}
    assert verify_request({**data, REQUEST_KEY: json.dumps(tampered, sort_keys=True)}, KEY) is None
    assert verify_request({REQUEST_KEY: req.to_json()}, KEY) is None                       # no MAC
    assert verify_request({**data, REQUEST_KEY + MAC_SUFFIX: "0" * 64}, KEY) is None        # a made-up MAC
    # Authenticated but malformed (a wrong type, an unknown field): refused, not guessed at.
    for bad in ({**json.loads(req.to_json()), "timeout_seconds": "600"},
                {**json.loads(req.to_json()), "extra": 1}):
        assert verify_request(signed(KEY, "request", REQUEST_KEY, json.dumps(bad)), KEY) is None
    with pytest.raises(ValueError):
        JobRequest.from_json(json.dumps({**json.loads(req.to_json()), "extra": 1}))


def test_the_job_runner_needs_a_signing_key_of_some_length() -> None:
    for key in (None, "short"):
        with pytest.raises(PermanentError) as caught:
            signing_key(SETTINGS.updated(job_signing_key=key))
        assert caught.value.reason == "JobRunnerNotEnabled"
    assert signing_key(SETTINGS.updated(job_signing_key="k" * 32)) == KEY


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


def test_what_a_destroy_keeps_travels_to_the_job() -> None:
    kept = replace(WS, keep_on_destroy=("module.app_storage",))
    sent = request_for(kept, "destroy", job_name(kept, "destroy", "n0nce123"), "n0nce123", "llmapp-system")
    back = JobRequest.from_json(sent.to_json())
    assert back.keep_on_destroy == ("module.app_storage",)

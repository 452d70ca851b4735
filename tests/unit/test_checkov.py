"""Checkov: the operator's run fails closed, the stack's default waivers, and the real checkov binary.

The real-binary tests run the Checkov pinned in pyproject.toml ([tool.llmapp]) from its own venv,
`.venv/checkov` (`make install` makes it), or `$CHECKOV`, or `checkov` on PATH; they are skipped when
there is none, except in CI, where they must run. Not from the project's venv: Checkov's bc-python-hcl2
installs a package named `hcl2` over python-hcl2 7's, which the operator reads modules with. The
numbers asserted are Checkov 3.3.30's; another version fails those asserts on purpose (re-derive
the waivers). They scan two things:

- `terraform/stack` as a directory. CI has no registry access, so `terraform init` never downloaded
  the modules: Checkov scans only the root module's own resources, data sources and blocks (the
  deploy role, its policy and policy documents, the AZ data source, the provider, the six module
  blocks), not the module code.
- `tests/fixtures/terraform/stack-plan.json`, a plan JSON with `planned_values` (root and child
  modules), `resource_changes` and `configuration`, shaped like `terraform show -json` of the stack's
  first plan with a certificate and `spec.app.image` set. No AWS provider or registry is reachable
  here, so it is written by hand from the stack and the pinned modules' source (docs/fidelity.md
  says what was checked against terraform 1.11.4 and which parts are inferred).
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import pathlib
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from llmapp_operator.api.errors import PermanentError, TransientError
from llmapp_operator.api.workspace import BackendConfig, ModuleInfo, ReviewOptions, Workspace
from llmapp_operator.config import Settings
from llmapp_operator.review.checkov import (
    WAIVERS_FILE,
    Waiver,
    aws_resource_count,
    checkov_arguments,
    default_skips,
    parse_waivers,
    read_report,
    read_waivers,
)
from llmapp_operator.review.policy import evaluate_policy
from llmapp_operator.runners.local import LocalRunner
from llmapp_operator.runners.modules import load_module
from tests.conftest import CHECKOV, CHECKOV_VERSION, TERRAFORM, needs_checkov, needs_terraform

REPO = pathlib.Path(__file__).resolve().parents[2]
STACK = REPO / "terraform" / "stack"
PLAN_FIXTURE = REPO / "tests" / "fixtures" / "terraform" / "stack-plan.json"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-0b0a-0908-0706-050403020100"
HTTP_LISTENER = 'module.alb.aws_lb_listener.this["http"]'
HTTPS_ONLY = ('module.alb.aws_lb_listener.this["https"]',
              'module.alb.aws_vpc_security_group_ingress_rule.this["https"]')
LIFECYCLE = "module.alb_logs.aws_s3_bucket_lifecycle_configuration.this[0]"


def stack_plan() -> dict[str, Any]:
    plan: dict[str, Any] = json.loads(PLAN_FIXTURE.read_text())
    return plan


def modules(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    pending = [plan["planned_values"]["root_module"]]
    while pending:
        module = pending.pop()
        yield module
        pending.extend(module.get("child_modules", ()))


def planned(plan: dict[str, Any], address: str) -> dict[str, Any]:
    found = [r for m in modules(plan) for r in m["resources"] if r["address"] == address]
    assert len(found) == 1, address
    values: dict[str, Any] = found[0]["values"]
    return values


def without(plan: dict[str, Any], *addresses: str) -> dict[str, Any]:
    plan = copy.deepcopy(plan)
    for module in modules(plan):
        module["resources"] = [r for r in module["resources"] if r["address"] not in addresses]
    plan["resource_changes"] = [c for c in plan["resource_changes"] if c["address"] not in addresses]
    return plan


def edited(plan: dict[str, Any], address: str, **values: Any) -> dict[str, Any]:
    """The same change in planned_values and in resource_changes (Checkov reads the first)."""
    plan = copy.deepcopy(plan)
    planned(plan, address).update(values)
    for change in plan["resource_changes"]:
        if change["address"] == address:
            change["change"]["after"].update(values)
    return plan


FORWARD = [{"type": "forward", "authenticate_cognito": [], "authenticate_oidc": [], "fixed_response": [],
            "forward": [], "jwt_validation": [], "redirect": []}]


def http_only(plan: dict[str, Any]) -> dict[str, Any]:
    """The stack without certificate_arn: one HTTP listener that forwards, port 80 open only."""
    return edited(without(plan, *HTTPS_ONLY), HTTP_LISTENER, default_action=FORWARD)


def no_multipart_abort(plan: dict[str, Any]) -> dict[str, Any]:
    """The lifecycle rule without abort_incomplete_multipart_upload_days, as Terraform plans it: an
    absent nested block is an empty list (terraform 1.11.4 with the aws provider, checked here)."""
    rules = copy.deepcopy(planned(plan, LIFECYCLE)["rule"])
    for rule in rules:
        rule["abort_incomplete_multipart_upload"] = []
    return edited(plan, LIFECYCLE, rule=rules)


# -- the waivers file ---------------------------------------------------------------------------
def test_the_stack_ships_its_waivers_each_with_a_reason_and_conditions_on_real_variables() -> None:
    waivers = read_waivers(STACK)
    assert len(waivers) == 25
    assert all(len(w.reason) > 20 for w in waivers)
    conditional = {w.check: w.while_empty for w in waivers if w.while_empty}
    https = ("certificate_arn", "domain_name")   # either one gives the ALB an HTTPS listener
    assert conditional == {"CKV_AWS_2": https, "CKV_AWS_103": https, "CKV2_AWS_20": https}
    declared = load_module("stack", {"stack": STACK}).variables
    assert {name for names in conditional.values() for name in names} <= set(declared)
    # spec.domain alone turns HTTPS on: none of the HTTP waivers holds then.
    assert not any(w.applies({"domain_name": "rags.example.com"}) for w in waivers if w.while_empty)
    assert all(w.applies({"domain_name": "", "certificate_arn": ""}) for w in waivers)


def test_the_readme_lists_the_stacks_waivers_with_their_reasons() -> None:
    readme = (REPO / "README.md").read_text()
    listed = re.findall(r"^\| `(CKV2?_[A-Z0-9_]+)`( \(only while (.+) (?:is|are) empty\))? \| (.+) \|$", readme, re.M)
    assert [(check, tuple(re.findall(r"`(\w+)`", names)), reason) for check, _, names, reason in listed] == [
        (w.check, w.while_empty, w.reason) for w in read_waivers(STACK)]


def test_the_waivers_are_not_part_of_the_module_digest(tmp_path: pathlib.Path) -> None:
    """Changing a waiver changes the review, not what Terraform builds: no object re-applies."""
    copy_ = tmp_path / "stack"
    copy_.mkdir()
    for path in STACK.glob("*.tf"):
        (copy_ / path.name).write_bytes(path.read_bytes())
    assert not (copy_ / WAIVERS_FILE).exists()
    assert load_module("stack", {"stack": copy_}).digest == load_module("stack", {"stack": STACK}).digest


def test_without_a_certificate_plain_http_is_waived_and_with_one_it_is_not() -> None:
    waivers = read_waivers(STACK)
    without_certificate = set(default_skips(waivers, {}))
    assert {"CKV_AWS_2", "CKV_AWS_103", "CKV2_AWS_20"} <= without_certificate
    assert set(default_skips(waivers, {"certificate_arn": ""})) == without_certificate
    with_certificate = set(default_skips(waivers, {"certificate_arn": CERTIFICATE}))
    assert without_certificate - with_certificate == {"CKV_AWS_2", "CKV_AWS_103", "CKV2_AWS_20"}
    # The real weaknesses Checkov found are fixed in the stack, not waived.
    assert not {"CKV_AWS_300", "CKV_AWS_91", "CKV_AWS_19", "CKV2_AWS_6", "CKV2_AWS_61"} & without_certificate


@pytest.mark.parametrize(("text", "message"), [
    ("waivers: [", "not YAML"),
    ("- check: CKV_AWS_2", "top-level `waivers:` list"),
    ("waivers:\n  - check: AWS_2\n    reason: r", "Checkov check id"),
    ("waivers:\n  - check: CKV_AWS_2", "needs its `reason`"),
    ("waivers:\n  - check: CKV_AWS_2\n    reason: '  '", "needs its `reason`"),
    ("waivers:\n  - check: CKV_AWS_2\n    reason: r\n    why: x", "expected only the keys"),
    ("waivers:\n  - check: CKV_AWS_2\n    reason: r\n    while_empty: 'a b'", "must name a Terraform variable"),
    ("waivers:\n  - check: CKV_AWS_2\n    reason: r\n    while_empty: [a, 'b c']", "must name a Terraform variable"),
    ("waivers:\n  - {check: CKV_AWS_2, reason: r}\n  - {check: CKV_AWS_2, reason: s}", "listed twice"),
])
def test_a_broken_waivers_file_is_named_precisely(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_waivers(text)


def test_a_module_without_waivers_has_none_and_a_broken_file_is_an_invalid_module(tmp_path: pathlib.Path) -> None:
    assert read_waivers(tmp_path) == ()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / WAIVERS_FILE).write_text("waivers: {}")
    with pytest.raises(PermanentError, match="broken.*top-level") as raised:
        read_waivers(broken)
    assert raised.value.reason == "InvalidModule"
    assert parse_waivers("waivers:\n  - check: CKV2_AWS_5\n    reason: |\n      two\n      lines\n") == (
        Waiver(check="CKV2_AWS_5", reason="two lines"),)


def test_the_command_line_skips_by_id_and_never_calls_home(tmp_path: pathlib.Path) -> None:
    plan = tmp_path / "tfplan.json"
    assert checkov_arguments(plan) == ["-f", str(plan), "--framework", "terraform_plan", "-o", "json", "--compact",
                                       "--quiet", "--skip-download"]
    assert checkov_arguments(plan, ("CKV_AWS_2", "CKV2_AWS_5"))[-2:] == ["--skip-check", "CKV_AWS_2,CKV2_AWS_5"]


# -- the report, read fail-closed ---------------------------------------------------------------
FAILED: dict[str, Any] = {"check_type": "terraform_plan",
                          "results": {"failed_checks": [{"check_id": "CKV_AWS_2", "resource": HTTP_LISTENER,
                                                         "check_name": "Ensure ALB protocol is HTTPS"}]},
                          "summary": {"passed": 3, "failed": 1, "skipped": 0, "parsing_errors": 0,
                                      "resource_count": 2}}
NOTHING_SCANNED = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0,
                   "checkov_version": "3.3.30"}   # what checkov prints for a plan it read no resources from


def test_failed_checks_are_findings_and_a_clean_report_is_none() -> None:
    assert read_report(1, json.dumps(FAILED).encode(), stack_plan()) == (
        f"CKV_AWS_2 {HTTP_LISTENER}: Ensure ALB protocol is HTTPS",)
    clean = {**FAILED, "results": {"failed_checks": []}, "summary": {**FAILED["summary"], "failed": 0}}
    assert read_report(0, json.dumps(clean), stack_plan()) == ()
    assert read_report(1, json.dumps([FAILED, {"check_type": "secrets", "results": {}, "summary": {}}]),
                       stack_plan()) == read_report(1, json.dumps(FAILED), stack_plan())
    # A plan with no AWS resources (the sandbox module's terraform_data) really has nothing to scan.
    sandbox = {"planned_values": {"root_module": {"resources": [
        {"address": "terraform_data.alb", "mode": "managed", "type": "terraform_data", "name": "alb"}]}}}
    assert read_report(0, json.dumps(NOTHING_SCANNED), sandbox) == ()


@pytest.mark.parametrize(("code", "stdout", "message"), [
    (2, b"", "checkov exited 2 .*last words.*the plan was not checked"),      # a crash: exit 2, empty stdout
    (2, json.dumps(FAILED).encode(), "checkov exited 2 "),                     # any code but 0/1, report or not
    (-9, b"", "checkov exited -9 "),                                           # killed
    (None, b"", "checkov exited None "),
    (0, b"", "checkov exited 0 without a report"),
    (1, b"  \n", "checkov exited 1 without a report"),                         # a Python traceback exits 1
    (0, b"Traceback (most recent call last):", "output is not JSON"),
    (1, b'{"check_type": "terraform_plan", "results": ', "output is not JSON"),
    (0, b"null", "not a Checkov JSON report"),
    (0, b"[]", "not a Checkov JSON report"),
    (0, b'"ok"', "not a Checkov JSON report"),
    (0, b'{"passed": 1}', "not a Checkov JSON report"),
    (0, json.dumps([FAILED, 3]).encode(), "not a Checkov JSON report"),
    (0, json.dumps({**NOTHING_SCANNED, "parsing_errors": 1}).encode(), r"could not parse the plan JSON \(1 "),
    (0, json.dumps(NOTHING_SCANNED).encode(), "read no resources from a plan with 50 AWS resource"),
    (1, json.dumps({**FAILED, "results": {"failed_checks": []}}).encode(), "exited 1 but reported no failed check"),
])
def test_a_run_that_did_not_check_the_plan_is_an_error_not_a_pass(code: int | None, stdout: bytes,
                                                                   message: str) -> None:
    with pytest.raises(TransientError, match=message) as raised:
        read_report(code, stdout, stack_plan(), stderr_tail="last words")
    assert raised.value.reason == "PolicyCheckFailed"


def test_the_fixture_has_what_checkov_scans() -> None:
    plan = stack_plan()
    assert aws_resource_count(plan) == 50   # + time_sleep: 51 managed resources
    assert aws_resource_count({"resource_changes": plan["resource_changes"]}) == 0   # no planned_values: nothing
    assert evaluate_policy(plan) == ((), ())   # the built-in rules pass it, as they pass the stack


PLAN_SHAPE = """
variable "flag" {
  type    = bool
  default = false
}
resource "terraform_data" "a" {
  input = "x"
}
resource "terraform_data" "b" {
  input = var.flag ? terraform_data.a.output : terraform_data.a.id
}
data "terraform_remote_state" "later" {
  backend = "local"
  config  = { path = "${terraform_data.a.id}.tfstate" }
}
data "terraform_remote_state" "now" {
  backend = "local"
  config  = { path = "other.tfstate" }
}
"""
OTHER_STATE = {"version": 4, "terraform_version": "1.11.4", "serial": 1, "lineage": "l", "outputs": {},
               "resources": []}


@needs_terraform
def test_the_plan_json_shapes_the_fixture_relies_on(tmp_path: pathlib.Path) -> None:
    """What the real terraform writes, on a configuration with the built-in provider only: unknown
    values are left out of planned_values; a data source whose configuration is unknown until apply
    is in planned_values (mode "data") and read at apply, one read at plan only in prior_state;
    `configuration` lists each reference, then
    its shorter forms, in source order (Checkov follows the first one that is not var./local.)."""
    assert TERRAFORM is not None
    (tmp_path / "main.tf").write_text(PLAN_SHAPE)
    (tmp_path / "other.tfstate").write_text(json.dumps(OTHER_STATE))
    for args in (["init", "-input=false", "-no-color"], ["plan", "-input=false", "-no-color", "-out=p"]):
        subprocess.run([TERRAFORM, *args], cwd=tmp_path, check=True, capture_output=True, timeout=120)
    shown = subprocess.run([TERRAFORM, "show", "-json", "p"], cwd=tmp_path, check=True, capture_output=True,
                           text=True, timeout=60)
    plan = json.loads(shown.stdout)
    resources = {r["address"]: r for r in plan["planned_values"]["root_module"]["resources"]}
    assert "input" not in resources["terraform_data.b"]["values"]
    assert resources["data.terraform_remote_state.later"]["mode"] == "data"
    assert resources["data.terraform_remote_state.later"]["values"]["config"] == {}
    assert "data.terraform_remote_state.now" not in resources   # read at plan: in prior_state only
    assert [r["address"] for r in plan["prior_state"]["values"]["root_module"]["resources"]] == [
        "data.terraform_remote_state.now"]
    (read,) = [c for c in plan["resource_changes"] if c["mode"] == "data"]
    assert (read["change"]["actions"], read["action_reason"]) == (["read"], "read_because_config_unknown")
    (b,) = [r for r in plan["configuration"]["root_module"]["resources"] if r["address"] == "terraform_data.b"]
    assert b["expressions"]["input"]["references"] == [
        "var.flag", "terraform_data.a.output", "terraform_data.a", "terraform_data.a.id", "terraform_data.a"]


def test_the_fixture_follows_those_shapes() -> None:
    plan = stack_plan()
    deferred = [c for c in plan["resource_changes"] if c["mode"] == "data"]
    assert {c["address"] for c in deferred} == {
        "data.aws_iam_policy_document.deploy", "module.alb_logs.data.aws_iam_policy_document.combined[0]",
        "module.alb_logs.data.aws_iam_policy_document.elb_log_delivery[0]",
        "module.alb_logs.data.aws_iam_policy_document.lb_log_delivery[0]",
        "module.alb_logs.data.aws_iam_policy_document.deny_insecure_transport[0]",
        "module.ecs_service.data.aws_subnet.this[0]"}
    assert all(c["change"]["actions"] == ["read"] for c in deferred)
    for change in plan["resource_changes"]:   # nothing unknown has a planned value
        unknown = {key for key, value in change["change"]["after_unknown"].items() if value is True}
        assert not unknown & set(planned(plan, change["address"])), change["address"]
    calls = plan["configuration"]["root_module"]["module_calls"]
    (lifecycle,) = [r for r in calls["alb_logs"]["module"]["resources"]
                    if r["address"] == "aws_s3_bucket_lifecycle_configuration.this"]
    assert lifecycle["expressions"]["bucket"]["references"][:2] == [
        "var.is_directory_bucket", "aws_s3_directory_bucket.this[0].bucket"]


# -- the runner: waivers in, failures out -------------------------------------------------------
def workspace(tmp_path: pathlib.Path, module: pathlib.Path, tfvars: dict[str, Any] | None = None,
              timeout: int = 60) -> Workspace:
    info = ModuleInfo(name=module.name, path=module, digest="0" * 32, variables={}, outputs=frozenset())
    return Workspace(uid="uid-1", directory=tmp_path / "ws", module=info, tfvars=tfvars or {},
                     backend=BackendConfig(bucket="b", key="k", region="us-east-1"), timeout_seconds=timeout,
                     lock_timeout_seconds=0, digest="d", review=ReviewOptions(region="us-east-1"))


def runner(tmp_path: pathlib.Path, checkov: str) -> LocalRunner:
    return LocalRunner(Settings(workdir=tmp_path / "workdir", checkov=checkov))


def stand_in(tmp_path: pathlib.Path, body: str) -> str:
    """A checkov executable that records its arguments, then does `body`."""
    script = tmp_path / "checkov"
    script.write_text(f"#!{sys.executable}\nimport json, pathlib, sys, time\n"
                      f"pathlib.Path({str(tmp_path / 'args.json')!r}).write_text(json.dumps(sys.argv[1:]))\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def run(tmp_path: pathlib.Path, checkov: str, module: pathlib.Path, plan: dict[str, Any],
        tfvars: dict[str, Any] | None = None, timeout: int = 60) -> tuple[str, ...]:
    ws = workspace(tmp_path, module, tfvars, timeout)
    ws.directory.mkdir(parents=True, exist_ok=True)
    return asyncio.run(runner(tmp_path, checkov)._checkov(ws, json.dumps(plan), plan))


def test_the_runner_passes_the_modules_waivers_and_reads_the_report(tmp_path: pathlib.Path) -> None:
    report = json.dumps(FAILED)
    checkov = stand_in(tmp_path, f"assert pathlib.Path(sys.argv[2]).is_file()\nprint({report!r})\nsys.exit(1)")
    assert run(tmp_path, checkov, STACK, stack_plan()) == (f"CKV_AWS_2 {HTTP_LISTENER}: Ensure ALB protocol is HTTPS",)
    args = json.loads((tmp_path / "args.json").read_text())
    skipped = args[args.index("--skip-check") + 1].split(",")
    assert skipped == list(default_skips(read_waivers(STACK), {})) and "CKV_AWS_2" in skipped
    assert "--skip-download" in args
    assert not list(tmp_path.rglob("tfplan.json"))   # the plan JSON did not stay on disk
    run(tmp_path, checkov, STACK, stack_plan(), {"certificate_arn": CERTIFICATE})
    args = json.loads((tmp_path / "args.json").read_text())
    assert "CKV_AWS_2" not in args[args.index("--skip-check") + 1].split(",")
    run(tmp_path, checkov, tmp_path, stack_plan())   # a module without a waivers file: no --skip-check
    assert "--skip-check" not in json.loads((tmp_path / "args.json").read_text())


@pytest.mark.parametrize(("body", "message"), [
    ("sys.stderr.write('Traceback ...\\nKeyError: resource\\n'); sys.exit(2)",
     r"checkov exited 2 \(KeyError: resource\); the plan was not checked"),
    ("print('{}'.format('not json')); sys.exit(0)", "checkov exited 0 and its output is not JSON"),
    ("sys.exit(0)", "checkov exited 0 without a report"),
    ("print(json.dumps({'passed': 0, 'failed': 0, 'parsing_errors': 0, 'resource_count': 0}))",
     "read no resources from a plan with 50 AWS resource"),
    ("sys.stderr.write('token=hunter2hunter2\\n'); sys.exit(3)", r"checkov exited 3 \(token=\*\*\*\)"),
])
def test_the_runner_fails_closed(tmp_path: pathlib.Path, body: str, message: str) -> None:
    with pytest.raises(TransientError, match=message) as raised:
        run(tmp_path, stand_in(tmp_path, body), STACK, stack_plan())
    assert raised.value.reason == "PolicyCheckFailed"
    assert not list(tmp_path.rglob("tfplan.json"))


def test_a_missing_or_unrunnable_checkov_is_an_error(tmp_path: pathlib.Path) -> None:
    missing = str(tmp_path / "no" / "checkov")
    with pytest.raises(TransientError, match=f"could not be started .*LLMAPP_CHECKOV={missing}") as raised:
        run(tmp_path, missing, STACK, stack_plan())
    assert raised.value.reason == "PolicyCheckFailed"
    not_executable = tmp_path / "plain"
    not_executable.write_text("#!/bin/sh\n")
    with pytest.raises(TransientError, match="could not be started"):
        run(tmp_path, str(not_executable), STACK, stack_plan())


def test_a_checkov_that_hangs_is_stopped(tmp_path: pathlib.Path) -> None:
    with pytest.raises(TransientError, match="did not finish within 1s and was stopped") as raised:
        run(tmp_path, stand_in(tmp_path, "time.sleep(60)"), STACK, stack_plan(), timeout=1)
    assert raised.value.reason == "PolicyCheckFailed"


# -- the real checkov ---------------------------------------------------------------------------
def _json(stdout: str) -> list[dict[str, Any]]:
    report = json.loads(stdout)
    return report if isinstance(report, list) else [report]


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every real Checkov run of this module, started together (a few seconds each)."""
    assert CHECKOV is not None
    work = tmp_path_factory.mktemp("checkov")
    plan = stack_plan()
    plans = {"certificate": plan, "no-certificate": http_only(plan),
             "certificate-http-forward": edited(plan, HTTP_LISTENER, default_action=FORWARD),
             "no-multipart-abort": no_multipart_abort(plan)}
    for name, document in plans.items():
        (work / f"{name}.json").write_text(json.dumps(document))
    (work / "broken.json").write_text('{"format_version": "1.2", "resource_changes": [')
    waivers = read_waivers(STACK)
    with_cert, without_cert = default_skips(waivers, {"certificate_arn": CERTIFICATE}), default_skips(waivers, {})
    common = ["--compact", "--quiet", "--skip-download", "-o", "json"]
    runs = {
        # all checks on the plan: the numbers below are Checkov 3.3.30's
        "plan": ["-f", str(work / "certificate.json"), "--framework", "terraform_plan", "-o", "json",
                 "--compact", "--skip-download"],
        # the operator's own command line, with the waivers it derives for each case (and see below)
        "broken": checkov_arguments(work / "broken.json"),
        "with-certificate": ["-f", str(work / "certificate.json"), "-f", str(work / "certificate-http-forward.json"),
                             "-f", str(work / "no-multipart-abort.json"), "--framework", "terraform_plan",
                             *common, "--skip-check", ",".join(with_cert)],
        "directory": ["-d", str(STACK), "--framework", "terraform", *common],
        "directory-waived": ["-d", str(STACK), "--framework", "terraform", *common, "--skip-check",
                             ",".join(without_cert)],
    }
    env = {**os.environ, "HOME": str(work)}
    started = {name: subprocess.Popen([CHECKOV, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env=env, cwd=work) for name, args in runs.items()}
    # Meanwhile the runner itself, as a plan of the stack without a certificate runs it.
    try:
        through_runner: tuple[str, ...] | Exception = run(work / "runner", CHECKOV, STACK, plans["no-certificate"])
    except Exception as exc:  # reported by the test that reads it
        through_runner = exc
    done = {}
    for name, process in started.items():
        stdout, stderr = process.communicate(timeout=170)
        done[name] = (process.returncode, stdout, stderr)
    return {"plans": plans, "work": work, "runs": done, "runner": through_runner}


def failed_ids(report: list[dict[str, Any]], file: str | None = None) -> list[str]:
    return sorted(c["check_id"] for r in report for c in (r.get("results") or {}).get("failed_checks", ())
                  if file is None or c.get("file_path", "").endswith(file))


@needs_checkov
def test_real_checkov_sees_the_plans_resources_and_fails_exactly_the_waived_checks(real: dict[str, Any]) -> None:
    code, stdout, stderr = real["runs"]["plan"]
    assert code == 1, stderr[-2000:]
    (report,) = _json(stdout)
    summary = report["summary"]
    assert summary["checkov_version"] == CHECKOV_VERSION, "another Checkov: re-derive the stack's waivers"
    assert (summary["resource_count"], summary["passed"], summary["failed"], summary["parsing_errors"]) == \
        (51, 137, 22, 0), summary
    failed = failed_ids([report])
    waivers = {w.check for w in read_waivers(STACK)}
    # Every failure is waived (with a certificate nothing is waived for plain HTTP, and nothing is
    # needed), and every waiver that applies to a plan is needed by one of these runs.
    assert set(failed) <= waivers
    assert set(failed) == waivers - {"CKV_AWS_2", "CKV_AWS_103", "CKV2_AWS_20", "CKV_TF_1", "CKV_AWS_394"}
    assert failed.count("CKV_AWS_158") == failed.count("CKV_AWS_338") == 2   # both log groups
    passed = {c["check_id"] for c in report["results"]["passed_checks"]}
    # The stack's fixes and its HTTPS listener, as Checkov sees them.
    assert {"CKV_AWS_2", "CKV_AWS_103", "CKV2_AWS_20", "CKV_AWS_300", "CKV_AWS_91", "CKV_AWS_19", "CKV2_AWS_6",
            "CKV2_AWS_61", "CKV2_AWS_12", "CKV_AWS_131"} <= passed


@needs_checkov
def test_real_checkov_through_the_runner_passes_a_correct_plan_without_a_certificate(real: dict[str, Any]) -> None:
    """LocalRunner._checkov end to end: the stack's waivers file, the command line, the report."""
    assert real["runner"] == ()


@needs_checkov
def test_real_checkov_with_the_waivers_flags_plain_http_when_a_certificate_is_given(real: dict[str, Any]) -> None:
    code, stdout, stderr = real["runs"]["with-certificate"]
    assert code == 1, stderr[-2000:]
    report = _json(stdout)
    assert sum(r["summary"]["parsing_errors"] for r in report) == 0
    assert failed_ids(report, "/certificate.json") == []
    assert failed_ids(report, "/certificate-http-forward.json") == ["CKV2_AWS_20", "CKV_AWS_103", "CKV_AWS_2"]
    findings = read_report(code, stdout, real["plans"]["certificate"])
    assert f"CKV_AWS_2 {HTTP_LISTENER}: Ensure ALB protocol is HTTPS" in findings


@needs_checkov
def test_real_checkov_does_not_see_a_missing_multipart_abort_in_a_plan(real: dict[str, Any]) -> None:
    """A known gap, kept here so the docs stay true: CKV_AWS_300 passes on a planned rule whose
    abort_incomplete_multipart_upload is `[]`, which is how Terraform plans the block's absence
    (Checkov 3.3.30 reads the empty list as "set"). The stack's fix is held by the static test
    below instead."""
    code, stdout, _ = real["runs"]["with-certificate"]
    assert failed_ids(_json(stdout), "/no-multipart-abort.json") == []


def test_the_stack_aborts_incomplete_uploads_and_redirects_http_when_it_has_a_certificate() -> None:
    import hcl2

    logs = hcl2.loads((STACK / "logs.tf").read_text())["module"][0]["alb_logs"]  # type: ignore[attr-defined]
    (rule,) = logs["lifecycle_rule"]
    assert rule["enabled"] is True and rule["abort_incomplete_multipart_upload_days"] == 7
    alb = (STACK / "alb.tf").read_text()
    assert 'redirect = local.https ? { port = "443", protocol = "HTTPS", status_code = "HTTP_301" } : null' in alb
    assert 'forward  = local.https ? null : { target_group_key = "app" }' in alb
    assert 'https           = local.own_domain || var.certificate_arn != ""' in (STACK / "providers.tf").read_text()
    assert 'name                 = "${var.name}-${var.container_port}"' in alb


@needs_checkov
def test_real_checkov_on_the_stack_directory_root_resources_only(real: dict[str, Any]) -> None:
    """Without the module code (no registry in CI) Checkov scans the root module only: the module
    blocks (CKV_TF_1, one per module), the AZ data source, the deploy role and its policy, the
    domain's alias record, the autoscaling target, policies and scheduled actions, and the storage
    bucket's policy document, the sign-in user pool and its listener rules."""
    code, stdout, stderr = real["runs"]["directory"]
    assert code == 1, stderr[-2000:]
    (report,) = _json(stdout)
    assert report["summary"]["resource_count"] == 12 and report["summary"]["parsing_errors"] == 0
    assert failed_ids([report]) == ["CKV_AWS_394", *["CKV_TF_1"] * 8]
    code, stdout, stderr = real["runs"]["directory-waived"]
    assert code == 0, stderr[-2000:]
    (report,) = _json(stdout)
    assert report["summary"]["failed"] == 0 and report["summary"]["passed"] > 0, report["summary"]


@needs_checkov
def test_real_checkov_broken_input_is_not_a_pass(real: dict[str, Any]) -> None:
    """Checkov itself answers exit 0 and "0 resources" for a plan file it cannot read; the operator
    does not take that for a pass."""
    code, stdout, _ = real["runs"]["broken"]
    assert code == 0 and json.loads(stdout)["resource_count"] == 0
    with pytest.raises(TransientError, match="read no resources from a plan with 50"):
        read_report(code, stdout, stack_plan())

"""spec.app.scaling and spec.app.models through real Terraform: the stack's own HCL for the Bedrock
statements evaluated by the terraform binary, and the sandbox lifecycle with both features on
(the real S3 backend on moto)."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess

from llmapp_operator.engine.reconcile import Deps, Previous, converge, status_patch
from tests.conftest import REPO, needs_terraform
from tests.integration.conftest import state_resources
from tests.integration.test_reconcile_terraform import SANDBOX_RESOURCES, make_app
from tests.unit.test_app_scaling_and_models import MODELS, SCALING, STACK_STATEMENTS

pytestmark = needs_terraform


def terraform(directory: pathlib.Path, *args: str) -> str:
    done = subprocess.run(["terraform", f"-chdir={directory}", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_stack_s_bedrock_statements_are_what_the_policy_rule_accepts(tmp_path: pathlib.Path) -> None:
    """models.tf as it is, with its two data sources given as values (no provider here)."""
    text = (REPO / "terraform" / "stack" / "models.tf").read_text()
    text = text.replace('data "aws_partition" "current" {}', "")
    text = text.replace("data.aws_partition.current.partition", '"aws"')
    text = text.replace("data.aws_caller_identity.current.account_id", '"123456789012"')
    assert "data." not in re.sub(r"#.*", "", text)
    (tmp_path / "models.tf").write_text(text)
    (tmp_path / "main.tf").write_text(
        'variable "bedrock_models" { type = list(string) }\n'
        'variable "aws_region" { type = string }\n'
        'output "statements" { value = local.bedrock_statements }\n')
    terraform(tmp_path, "init", "-input=false")
    ids = json.dumps([m["id"] for m in MODELS])
    terraform(tmp_path, "apply", "-auto-approve", "-input=false", f"-var=bedrock_models={ids}",
              "-var=aws_region=eu-west-1")
    statements = json.loads(terraform(tmp_path, "output", "-json", "statements"))
    # As aws_iam_policy_document renders them for IAM: the same statements the unit test judges.
    rendered = [{"Sid": s["sid"], "Effect": "Allow", "Action": s["actions"],
                 "Resource": s["resources"][0] if len(s["resources"]) == 1 else s["resources"],
                 **({"Condition": {c["test"]: {c["variable"]: c["values"][0]} for c in s["condition"]}}
                    if s.get("condition") else {})} for s in statements]
    assert rendered == STACK_STATEMENTS
    terraform(tmp_path, "apply", "-auto-approve", "-input=false", "-var=bedrock_models=[]", "-var=aws_region=eu-west-1")
    assert json.loads(terraform(tmp_path, "output", "-json", "statements")) == []


async def test_the_sandbox_lifecycle_with_scaling_and_models(deps: Deps, s3, settings) -> None:  # type: ignore[no-untyped-def]
    app = make_app("featured", app={"scaling": SCALING, "models": MODELS})
    first = await converge(app, deps, Previous())
    assert first.error is None, first.report.message
    key = first.fields["state"].split("/", 3)[3]
    assert state_resources(s3, settings.state_bucket, key) == sorted(
        [*SANDBOX_RESOURCES, "terraform_data.scaling", "terraform_data.task_role_policy"])

    # A wider range is the scalable target updated in place: no new task definition revision.
    status = status_patch(Previous(), first, "t1")
    wider = make_app("featured", generation=2, app={"scaling": {**SCALING, "maxTasks": 10}, "models": MODELS})
    second = await converge(wider, deps, Previous.from_status(status))
    assert second.error is None and second.report.message == "applied: 0 added, 1 changed, 0 destroyed", \
        second.report.message

    # One model less: the task role's policy changes in place, and the environment is a new revision.
    status.update(status_patch(Previous.from_status(status), second, "t2"))
    fewer = make_app("featured", generation=3, app={"scaling": {**SCALING, "maxTasks": 10}, "models": MODELS[:1]})
    third = await converge(fewer, deps, Previous.from_status(status))
    assert third.error is None and third.report.message == "applied: 1 added, 1 changed, 1 destroyed", \
        third.report.message

    # Both off: their resources go, the rest stays.
    status.update(status_patch(Previous.from_status(status), third, "t3"))
    fourth = await converge(make_app("featured", generation=4), deps, Previous.from_status(status))
    assert fourth.error is None, fourth.report.message
    assert state_resources(s3, settings.state_bucket, key) == sorted(SANDBOX_RESOURCES)

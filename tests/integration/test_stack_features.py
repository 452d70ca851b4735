"""spec.app.scaling and spec.app.models through real Terraform: the stack's own HCL for the Bedrock
statements evaluated by the terraform binary, and the sandbox lifecycle with both features on
(the real S3 backend on moto)."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import uuid
from dataclasses import replace
from typing import Any

import boto3
import moto.settings
import pytest

from llmapp_operator.api.errors import PermanentError, TransientError, Waiting
from llmapp_operator.cloud.certificates import AcmCertificates, CertificateState
from llmapp_operator.cloud.sign_in import AlbSignIn
from llmapp_operator.engine.reconcile import Deps, Previous, converge, status_patch
from llmapp_operator.engine.teardown import teardown
from tests.conftest import REPO, needs_terraform
from tests.integration.conftest import TerraformLog, body_of, state_resources
from tests.integration.test_reconcile_terraform import SANDBOX_RESOURCES, MemorySecrets, make_app
from tests.secrets_scan import secret_for_tests
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


DOMAIN = {"name": "rags.example.com", "hostedZoneId": "Z0123456789ABCDEFGHIJ"}


async def test_the_sandbox_lifecycle_with_a_domain(deps: Deps, s3, settings) -> None:  # type: ignore[no-untyped-def]
    first = await converge(make_app("named", domain=DOMAIN), deps, Previous())
    assert first.error is None, first.report.message
    assert first.fields["url"] == "https://rags.example.com"
    assert first.fields["outputs"]["certificate_arn"].startswith("arn:aws:acm:us-east-1:")
    key = first.fields["state"].split("/", 3)[3]
    assert state_resources(s3, settings.state_bucket, key) == sorted(
        [*SANDBOX_RESOURCES, "terraform_data.certificate", "terraform_data.dns_record"])
    conds = {c["type"]: c for c in status_patch(Previous(), first, "t1")["conditions"]}
    assert conds["CertificateIssued"]["status"] == "True"

    # The domain removed: its resources go, the URL is the ALB's again and the condition is gone.
    status = status_patch(Previous(), first, "t1")
    second = await converge(make_app("named", generation=2), deps, Previous.from_status(status))
    assert second.error is None and second.fields["url"].startswith("http://")
    assert state_resources(s3, settings.state_bucket, key) == sorted(SANDBOX_RESOURCES)
    assert "CertificateIssued" not in {c["type"] for c in status_patch(Previous.from_status(status), second,
                                                                        "t2")["conditions"]}


class ValidationTimesOut:
    """The stack's apply when ACM has not validated the certificate within validation_timeout (the
    sandbox has no ACM to wait for): the real runner, whose apply fails as Terraform's does then."""

    def __init__(self, runner: Any) -> None:
        self.runner, self.failing, self.applies = runner, True, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runner, name)

    async def apply(self, ws: Any, plan: Any) -> Any:
        self.applies += 1
        if self.failing:
            raise TransientError("module.acm.aws_acm_certificate_validation.this[0]: waiting for ACM Certificate to "
                                 "be issued: timeout while waiting for state to become 'ISSUED'",
                                 reason="TerraformFailed")
        return await self.runner.apply(ws, plan)


async def test_a_certificate_pending_validation_is_reported_and_waited_for_without_terraform(
        deps: Deps, moto_endpoint: str, terraform_log: TerraformLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto.settings, "ACM_VALIDATION_WAIT", 3600)
    acm: Any = boto3.client("acm", endpoint_url=moto_endpoint, region_name="us-east-1")
    # What the acm module requested (tagged with the stack's tags), and someone else's for the same name.
    ours = acm.request_certificate(DomainName=DOMAIN["name"], ValidationMethod="DNS", Tags=[
        {"Key": "llmops.dev/namespace", "Value": "team-a"}, {"Key": "llmops.dev/name", "Value": "pending"}])
    acm.request_certificate(DomainName=DOMAIN["name"], ValidationMethod="DNS",
                            Tags=[{"Key": "llmops.dev/name", "Value": "other"}])
    runner = ValidationTimesOut(deps.runner)
    deps = replace(deps, runner=runner, certificates=AcmCertificates(moto_endpoint),
                   settings=deps.settings.updated(certificate_recheck_seconds=120))
    app = make_app("pending", domain=DOMAIN)

    first = await converge(app, deps, Previous())
    assert isinstance(first.error, Waiting) and first.error.reason == "CertificatePendingValidation"
    assert first.error.delay == 120 and runner.applies == 1
    status = status_patch(Previous(), first, "t1")
    conds = {c["type"]: c for c in status["conditions"]}
    assert (conds["CertificateIssued"]["status"], conds["CertificateIssued"]["reason"]) == ("False",
                                                                                         "PendingValidation")
    assert DOMAIN["hostedZoneId"] in conds["CertificateIssued"]["message"]
    assert conds["Ready"]["status"] == "False" and conds["Stalled"]["status"] == "False"

    # The recheck asks ACM and runs no Terraform while it is still pending.
    runs = terraform_log.count()
    second = await converge(app, deps, Previous.from_status(status))
    assert isinstance(second.error, Waiting) and terraform_log.count() == runs and runner.applies == 1

    # ACM issued it: Terraform runs again, the apply completes, and the condition turns True.
    monkeypatch.setattr(moto.settings, "ACM_VALIDATION_WAIT", 0)
    assert acm.describe_certificate(CertificateArn=ours["CertificateArn"])["Certificate"]["Status"] == "ISSUED"
    runner.failing = False
    status.update(status_patch(Previous.from_status(status), second, "t2"))
    third = await converge(app, deps, Previous.from_status(status))
    assert third.error is None, third.report.message
    assert runner.applies == 2 and third.fields["url"] == "https://rags.example.com"
    conds = {c["type"]: c for c in status_patch(Previous.from_status(status), third, "t3")["conditions"]}
    assert conds["CertificateIssued"]["status"] == "True" and conds["Ready"]["status"] == "True"


async def test_a_certificate_acm_will_not_issue_stalls_the_object(
        deps: Deps, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    class Refusing(AcmCertificates):
        async def state(self, region: str, domain: str, owner: Any) -> CertificateState:
            found = await super().state(region, domain, owner)
            return replace(found, status="VALIDATION_TIMED_OUT", reason="") if found.status else found

    acm: Any = boto3.client("acm", endpoint_url=moto_endpoint, region_name="us-east-1")
    acm.request_certificate(DomainName="late.example.com", ValidationMethod="DNS", Tags=[
        {"Key": "llmops.dev/namespace", "Value": "team-a"}, {"Key": "llmops.dev/name", "Value": "late"}])
    deps = replace(deps, runner=ValidationTimesOut(deps.runner), certificates=Refusing(moto_endpoint))
    result = await converge(make_app("late", domain={**DOMAIN, "name": "late.example.com"}), deps, Previous())
    assert isinstance(result.error, PermanentError) and result.error.reason == "CertificateValidationFailed"
    assert "VALIDATION_TIMED_OUT" in result.report.message


async def test_storage_is_kept_on_delete_unless_the_spec_says_otherwise(
        deps: Deps, s3, settings, terraform_log: TerraformLog) -> None:  # type: ignore[no-untyped-def]
    kept = make_app("kept", app={"storage": {}})
    first = await converge(kept, deps, Previous())
    assert first.error is None, first.report.message
    assert first.fields["outputs"]["keep_on_destroy"] == ["terraform_data.app_storage"]
    bucket = first.fields["outputs"]["storage_bucket"]
    assert bucket.startswith(first.fields["outputs"]["ecr_repository_name"] + "-data-")
    key = first.fields["state"].split("/", 3)[3]
    assert "terraform_data.app_storage" in state_resources(s3, settings.state_bucket, key)

    result = await teardown(body_of(kept), deps)
    assert result.error is None, result.report.message
    # Left out of the destroy: removed from the state first (state list, state rm), then the rest destroyed.
    commands = terraform_log.commands()
    assert commands.count("state") == 2 and commands.index("state") < commands.index("destroy")
    assert state_resources(s3, settings.state_bucket, key) == []
    assert any(bucket in w and "kept, not destroyed" in w for w in result.warnings), result.warnings
    assert bucket in result.report.message

    gone = make_app("gone", app={"storage": {"keepOnDelete": False}})
    applied = await converge(gone, deps, Previous())
    assert applied.error is None and applied.fields["outputs"]["keep_on_destroy"] == []
    before = terraform_log.commands().count("state")
    result = await teardown(body_of(gone), deps)
    assert result.error is None and not any("kept" in w for w in result.warnings)
    assert terraform_log.commands().count("state") == before   # nothing to keep: a plain destroy


def test_the_stack_s_scaling_resources_follow_the_spec(tmp_path: pathlib.Path) -> None:
    """scaling.tf's locals, counts and for_each keys as terraform evaluates them, with the three App
    Auto Scaling resource types stood in by terraform_data carrying the same arguments."""
    text = (REPO / "terraform" / "stack" / "scaling.tf").read_text()
    text = text.replace("module.ecs_cluster.name", '"c"').replace("module.ecs_service.name", '"s"')
    text = text.replace('${module.alb.arn_suffix}/${module.alb.target_groups["app"].arn_suffix}',
                        "app/a/1/targetgroup/t/2")
    text = re.sub(r'resource "aws_appautoscaling_target" "app" \{.*?\n\}\n', '''resource "terraform_data" "target" {
  count = local.scaling_on ? 1 : 0
  input = { min = var.scaling.min_tasks, max = var.scaling.max_tasks, id = local.scaling_resource_id }
}
''', text, flags=re.S)
    text = re.sub(r'resource "aws_appautoscaling_policy" "app" \{.*?\n\}\n', '''resource "terraform_data" "policy" {
  for_each = { for key, metric in local.scaling_metrics : key => metric if metric.target != null }
  input    = each.value
}
''', text, flags=re.S)
    text = re.sub(r'resource "aws_appautoscaling_scheduled_action" "app" \{.*', '''resource "terraform_data" "action" {
  for_each = local.scaling_actions
  input    = merge(each.value, { timezone = var.scaling.schedule.timezone })
}
''', text, flags=re.S)
    assert "aws_appautoscaling" not in text
    (tmp_path / "scaling.tf").write_text(text)
    (tmp_path / "main.tf").write_text((REPO / "terraform" / "stack" / "variables.tf").read_text())
    terraform(tmp_path, "init", "-input=false")
    common = ["-var=name=n", "-var=environment=dev", "-var=aws_region=us-east-1", "-var=github_repository=a/b",
              "-var=github_environment=dev"]
    assert "No changes" in terraform(tmp_path, "plan", "-input=false", "-no-color", *common)
    scaling = ('{min_tasks=2,max_tasks=6,requests_per_target=100,schedule={stop="cron(0 20 ? * MON-FRI *)",'
               'start="cron(0 7 ? * MON-FRI *)",timezone="Europe/Berlin"}}')
    terraform(tmp_path, "apply", "-auto-approve", "-input=false", *common, f"-var=scaling={scaling}")
    state = json.loads(terraform(tmp_path, "show", "-json"))
    made = {r["address"]: r["values"]["input"] for r in state["values"]["root_module"]["resources"]}
    assert made['terraform_data.target[0]'] == {"min": 2, "max": 6, "id": "service/c/s"}
    assert made['terraform_data.policy["requests"]'] == {"type": "ALBRequestCountPerTarget", "target": 100,
                                                          "label": "app/a/1/targetgroup/t/2"}
    assert 'terraform_data.policy["cpu"]' not in made   # no cpuTarget, no CPU policy
    assert made['terraform_data.action["stop"]'] == {"schedule": "cron(0 20 ? * MON-FRI *)", "min": 0, "max": 0,
                                                     "timezone": "Europe/Berlin"}
    assert made['terraform_data.action["start"]']["min"] == 2 and made['terraform_data.action["start"]']["max"] == 6


CLIENT_SECRET = secret_for_tests("oidc-client-secret-of-the-app")
OIDC = {"issuer": "https://login.example.com", "authorizationEndpoint": "https://login.example.com/authorize",
        "tokenEndpoint": "https://login.example.com/token", "userInfoEndpoint": "https://login.example.com/userinfo",
        "clientId": "rags-app", "clientSecretRef": {"name": "oidc", "key": "secret"}}


class StackOutputs:
    """The sandbox runner, with the outputs the stack would add: the ALB, its target group and the
    OIDC rule exist in moto here (the sandbox module has no ALB)."""

    def __init__(self, runner: Any, extra: dict[str, Any]) -> None:
        self.runner, self.extra = runner, extra

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runner, name)

    async def apply(self, ws: Any, plan: Any) -> Any:
        return {**(await self.runner.apply(ws, plan)), **self.extra}


def alb_with_a_sign_in_rule(endpoint: str) -> tuple[str, str]:
    """What the stack makes for spec.auth.oidc: an HTTPS listener and the 503 rule at priority 1."""
    ec2: Any = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1")
    elbv2: Any = boto3.client("elbv2", endpoint_url=endpoint, region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"][
        "SubnetId"] for i, z in ((1, "a"), (2, "b"))]
    lb = elbv2.create_load_balancer(Name=f"alb-{uuid.uuid4().hex[:8]}", Subnets=subnets)["LoadBalancers"][0]
    group = elbv2.create_target_group(Name=f"tg-{uuid.uuid4().hex[:8]}", Protocol="HTTP", Port=8501, VpcId=vpc,
                                      TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    listener = elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=443,
                                     DefaultActions=[{"Type": "forward", "TargetGroupArn": group}]
                                     )["Listeners"][0]["ListenerArn"]
    rule = elbv2.create_rule(ListenerArn=listener, Priority=1,
                             Conditions=[{"Field": "path-pattern", "Values": ["/*"]}],
                             Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
                                 "StatusCode": "503", "ContentType": "text/plain",
                                 "MessageBody": "Sign-in is being set up."}}])["Rules"][0]["RuleArn"]
    return rule, group


async def test_oidc_sign_in_is_set_by_the_operator_and_its_secret_reaches_no_terraform_status_or_log(
        deps: Deps, moto_endpoint: str, terraform_log: TerraformLog, tmp_path: pathlib.Path,
        caplog: pytest.LogCaptureFixture) -> None:
    rule, group = alb_with_a_sign_in_rule(moto_endpoint)
    values = {("oidc", "secret"): CLIENT_SECRET}
    deps = replace(deps, runner=StackOutputs(deps.runner, {"sign_in_oidc_rule_arn": rule, "target_group_arn": group}),
                   secrets=MemorySecrets(values), sign_in=AlbSignIn(moto_endpoint))
    app = make_app("oidc", domain=DOMAIN, auth={"oidc": OIDC})
    elbv2: Any = boto3.client("elbv2", endpoint_url=moto_endpoint, region_name="us-east-1")

    first = await converge(app, deps, Previous())
    assert first.error is None, first.report.message
    actions = sorted(elbv2.describe_rules(RuleArns=[rule])["Rules"][0]["Actions"], key=lambda a: a["Order"])
    assert [a["Type"] for a in actions] == ["authenticate-oidc", "forward"] and actions[1]["TargetGroupArn"] == group
    config = actions[0]["AuthenticateOidcConfig"]
    assert (config["Issuer"], config["ClientId"], config["OnUnauthenticatedRequest"]) == (
        OIDC["issuer"], "rags-app", "authenticate")
    status = status_patch(Previous(), first, "t1")
    assert status["signIn"]["clientId"] == "rags-app" and status["signIn"]["digest"]
    # The secret went to the ALB only: not to Terraform's inputs or state, not to status, not to a log.
    tfvars = (deps.settings.workdir / "workspaces" / app.ref.uid / "terraform.tfvars.json").read_text()
    state = json.dumps(state_resources_full(deps, app))
    for text in (tfvars, state, json.dumps(status), caplog.text):
        assert CLIENT_SECRET not in text

    # Nothing changed: the rule is left alone (no ModifyRule).
    calls: list[str] = []
    original = deps.sign_in.set_up   # type: ignore[union-attr]

    async def counting(*args: Any, **kwargs: Any) -> None:
        calls.append("set_up")
        await original(*args, **kwargs)
    deps.sign_in.set_up = counting   # type: ignore[union-attr,method-assign]
    again = await converge(app, deps, Previous.from_status(status))
    assert again.error is None and calls == []
    # A rotated secret is set again, and so is a rule someone changed by hand.
    values[("oidc", "secret")] = secret_for_tests("the-rotated-oidc-secret")
    rotated = await converge(app, deps, Previous.from_status(status))
    assert rotated.error is None and calls == ["set_up"]
    status.update(status_patch(Previous.from_status(status), rotated, "t2"))
    assert status["signIn"]["digest"] != first.fields["signIn"]["digest"]
    elbv2.modify_rule(RuleArn=rule, Actions=[{"Type": "forward", "TargetGroupArn": group}])   # sign-in removed by hand
    mended = await converge(app, deps, Previous.from_status(status))
    assert mended.error is None and calls == ["set_up", "set_up"]
    assert [a["Type"] for a in elbv2.describe_rules(RuleArns=[rule])["Rules"][0]["Actions"]][0] == "authenticate-oidc"


def state_resources_full(deps: Deps, app: Any) -> Any:
    s3: Any = boto3.client("s3", endpoint_url=deps.settings.aws_endpoint_url, region_name="us-east-1")
    key = f"{deps.settings.state_key_prefix}/{app.ref.namespace}/{app.ref.name}/terraform.tfstate"
    return json.loads(s3.get_object(Bucket=deps.settings.state_bucket, Key=key)["Body"].read())


def test_the_shared_variables_refuse_what_the_stack_cannot_build(tmp_path: pathlib.Path) -> None:
    """terraform/stack/variables.tf, which the sandbox links: its validations, as terraform runs them."""
    (tmp_path / "variables.tf").write_text((REPO / "terraform" / "stack" / "variables.tf").read_text())
    terraform(tmp_path, "init", "-input=false")
    common = ["plan", "-input=false", "-no-color", "-var=name=n", "-var=environment=dev", "-var=aws_region=us-east-1",
              "-var=github_repository=a/b", "-var=github_environment=dev"]
    domain = ["-var=domain_name=rags.example.com", "-var=domain_zone_id=Z123"]
    refused = {
        "sign_in needs domain_name": ['-var=sign_in={oidc=true}'],
        "either a Cognito pool": [*domain, '-var=sign_in={cognito_domain_prefix="p",oidc=true}'],
        "without aws, amazon or cognito": [*domain, '-var=sign_in={cognito_domain_prefix="my-aws-app"}'],
        "no wildcard": ["-var=domain_name=*.example.com", "-var=domain_zone_id=Z123"],
        "set exactly when domain_name is": ["-var=domain_zone_id=Z123"],
    }
    for message, args in refused.items():
        done = subprocess.run(["terraform", f"-chdir={tmp_path}", *common, *args], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 1 and message in " ".join(done.stderr.split()), (message, done.stderr[-600:])
    assert "No changes" in terraform(tmp_path, *common, *domain, '-var=sign_in={cognito_domain_prefix="p"}')

"""Contract tests: terraform/stack against what the pinned terraform-aws-modules do at their tags.

Each fact is recorded here with its source (file @ tag; docs/module-facts.md has the lines), so a
test fails when the stack stops honouring it, and the facts must be re-read when a pin moves.
No provider can be downloaded here: these read the stack's HCL (python-hcl2)."""

from __future__ import annotations

import json
import re
from typing import Any

import hcl2
import pytest

from llmapp_operator.api.workspace import NAME_MAX
from tests.conftest import REPO
from tests.unit.test_stack_static import EXPECTED_MODULE_VERSIONS, STACK

# Provider floors of each pinned module (versions.tf @ tag).
PROVIDER_FLOORS = {
    "aws": {"vpc 6.6.0": (6, 28), "alb 10.5.0": (6, 28), "ecr 3.2.0": (6, 28), "ecs 7.5.0": (6, 34),
            "s3-bucket 5.15.4": (6, 42)},
    "time": {"ecs 7.5.0 modules/cluster": (0, 13)},   # time_sleep for the capacity providers
}
# IAM: a role's name_prefix may hold at most 38 characters (64 less the 26 Terraform appends).
IAM_NAME_PREFIX_MAX = 38


def modules() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in STACK.glob("*.tf"):
        for block in hcl2.loads(path.read_text()).get("module", []):  # type: ignore[attr-defined]
            found.update(block)
    return found


def required_providers() -> dict[str, dict[str, str]]:
    terraform = hcl2.loads((STACK / "versions.tf").read_text())["terraform"][0]  # type: ignore[attr-defined]
    return {name: spec for block in terraform["required_providers"] for name, spec in block.items()}


def lower_bound(constraint: str) -> tuple[int, ...]:
    match = re.search(r">=\s*([0-9.]+)", constraint)
    assert match, f"no lower bound in {constraint!r}"
    return tuple(int(part) for part in match.group(1).split("."))


def test_the_facts_are_for_the_pinned_versions() -> None:
    assert EXPECTED_MODULE_VERSIONS["terraform-aws-modules/ecs/aws//modules/cluster"] == "7.5.0"
    assert EXPECTED_MODULE_VERSIONS["terraform-aws-modules/s3-bucket/aws"] == "5.15.4"
    assert EXPECTED_MODULE_VERSIONS["terraform-aws-modules/ecr/aws"] == "3.2.0"


@pytest.mark.parametrize("provider", sorted(PROVIDER_FLOORS))
def test_the_stack_declares_every_provider_at_or_above_each_module_s_floor(provider: str) -> None:
    declared = required_providers()
    assert provider in declared, f"hashicorp/{provider} is required by {sorted(PROVIDER_FLOORS[provider])}"
    floor = lower_bound(declared[provider]["version"])
    for module, needed in PROVIDER_FLOORS[provider].items():
        assert floor >= needed, f"{provider} {declared[provider]['version']}: {module} needs >= {needed}"


def test_the_cluster_lists_every_capacity_provider_its_strategy_names() -> None:
    """ecs 7.x no longer infers them (docs/UPGRADE-7.0.md @ v7.5.0); AWS refuses the strategy."""
    cluster = modules()["ecs_cluster"]
    strategy = cluster["default_capacity_provider_strategy"]
    assert set(strategy) <= set(cluster.get("cluster_capacity_providers", [])), (
        f"strategy names {sorted(strategy)}, cluster_capacity_providers lists "
        f"{cluster.get('cluster_capacity_providers')}")


def test_ecr_attaches_no_repository_policy_without_one() -> None:
    """ecr 3.2.0 main.tf: aws_ecr_repository_policy.this counts on attach_repository_policy (default
    true) and takes var.repository_policy (null) when create_repository_policy is false."""
    ecr = modules()["ecr"]
    if ecr.get("create_repository_policy") is False and ecr.get("repository_policy") is None:
        assert ecr.get("attach_repository_policy") is False


def test_the_service_s_role_name_prefixes_fit_iam() -> None:
    """ecs 7.5.0 modules/service main.tf: name_prefix = "<role name>-", the role name defaulting to
    "<name>-task-exec" / "<name>-tasks" with name = "<var.name>-service"."""
    service = modules()["ecs_service"]
    longest = "n" * NAME_MAX
    defaults = (("task_exec_iam_role_name", "${name}-task-exec"), ("tasks_iam_role_name", "${name}-tasks"))
    for argument, default in defaults:
        template = service.get(argument) or default.replace("${name}", service["name"])
        prefix = template.replace("${var.name}", longest) + "-"
        assert len(prefix) <= IAM_NAME_PREFIX_MAX, f"{argument}: {prefix!r} is {len(prefix)} characters"


@pytest.mark.parametrize(("module", "waits_for", "why"), [
    ("alb", "module.alb_logs", "access logs need the log bucket's policy first"),
    ("ecs_service", "module.alb", "a target group without a listener is refused for a service"),
])
def test_ordering_aws_needs_is_explicit(module: str, waits_for: str, why: str) -> None:
    depends = [str(item) for item in modules()[module].get("depends_on", [])]
    assert any(waits_for in item for item in depends), f"{module} must depend on {waits_for}: {why}"


# ecs 7.5.0 modules/service/main.tf: both aws_ecs_service variants have
# `lifecycle { ignore_changes = [desired_count] }` ("Always ignored"; README: "desired_count/scale is
# always ignored"); the `ignore_task_definition` variant (ignore_task_definition_changes = true) also
# ignores task_definition and load_balancer. variables.tf: track_latest defaults to true and is passed
# to aws_ecs_task_definition.track_latest (a refresh reads the family's latest ACTIVE revision).
def test_the_service_is_created_with_no_tasks_since_the_module_ignores_the_count_after() -> None:
    service = modules()["ecs_service"]
    # A first apply must not start tasks on an image that may not exist: the operator scales later.
    assert service["desired_count"] == 0
    assert service.get("enable_autoscaling") is False   # min/max would fight the operator's count


def test_terraform_never_points_the_service_at_a_revision() -> None:
    service = modules()["ecs_service"]
    # false would roll every CD deploy back on the next apply (the module's `this` variant manages
    # task_definition); true leaves deploying to the operator (engine/rollout.py).
    assert service["ignore_task_definition_changes"] is True
    assert service["track_latest"] is True


def test_empty_env_values_are_left_out_of_the_container_definition() -> None:
    container = next(iter(modules()["ecs_service"]["container_definitions"].values()))
    assert 'if value != ""' in str(container["environment"])


# ecs 7.5.0 modules/container-definition/variables.tf: versionConsistency defaults to "disabled"
# (ECS's own default is enabled); modules/service/variables.tf: health_check_grace_period_seconds null.
def test_deployments_pin_the_image_digest_and_give_the_app_time_to_start() -> None:
    service = modules()["ecs_service"]
    container = next(iter(service["container_definitions"].values()))
    assert container["versionConsistency"] == "enabled"
    assert service["health_check_grace_period_seconds"] >= 30


# ecs 7.5.0 modules/service/main.tf: `aws_ecs_service.this` (count: !ignore_task_definition_changes)
# and `aws_ecs_service.ignore_task_definition` (count: ignore_task_definition_changes) are the two
# variants. A moved block from the root into a child module's resources is refactoring Terraform
# supports (checked with terraform 1.11 on terraform_data stand-ins: plan 0 to add, 0 to destroy).
def test_a_stack_applied_with_the_other_service_variant_keeps_its_service() -> None:
    blocks = [block for path in STACK.glob("*.tf")
              for block in hcl2.loads(path.read_text()).get("moved", [])]  # type: ignore[attr-defined]
    moves = {(b["from"], b["to"]) for b in blocks}
    assert ("${module.ecs_service.aws_ecs_service.this[0]}",
            "${module.ecs_service.aws_ecs_service.ignore_task_definition[0]}") in moves, moves


def blocks(kind: str = "resource") -> dict[str, dict[str, Any]]:
    """type.name -> arguments of every resource (or data source) the stack writes itself."""
    found: dict[str, dict[str, Any]] = {}
    for path in STACK.glob("*.tf"):
        for block in hcl2.loads(path.read_text()).get(kind, []):  # type: ignore[attr-defined]
            for rtype, named in block.items():
                for name, body in named.items():
                    found[f"{rtype}.{name}"] = body
    return found


# ecs 7.5.0 modules/service/main.tf (Autoscaling): aws_appautoscaling_target.this registers
# min_capacity = min(var.autoscaling_min_capacity, var.desired_count) and max_capacity =
# max(var.autoscaling_max_capacity, var.desired_count). With desired_count = 0 (above) every minimum
# would be 0, so the stack registers the target itself with the spec's range.
def test_autoscaling_is_the_stack_s_own_so_the_minimum_is_the_spec_s() -> None:
    written = blocks()
    target = written["aws_appautoscaling_target.app"]
    assert target["min_capacity"] == "${var.scaling.min_tasks}" and target["max_capacity"] == "${var.scaling.max_tasks}"
    assert target["scalable_dimension"] == "ecs:service:DesiredCount" and target["service_namespace"] == "ecs"
    assert target["resource_id"] == "${local.scaling_resource_id}"
    assert 'scaling_resource_id = "service/${module.ecs_cluster.name}/${module.ecs_service.name}"' in (
        STACK / "scaling.tf").read_text()
    policy = written["aws_appautoscaling_policy.app"]["target_tracking_scaling_policy_configuration"][0]
    assert policy["predefined_metric_specification"][0]["resource_label"] == "${each.value.label}"
    text = (STACK / "scaling.tf").read_text()
    # CloudWatch's pair: app/<alb>/<id>/targetgroup/<tg>/<id>, both arn_suffix outputs of alb 10.5.0.
    assert 'label = "${module.alb.arn_suffix}/${module.alb.target_groups["app"].arn_suffix}"' in text
    assert "stop  = { schedule = var.scaling.schedule.stop, min = 0, max = 0 }" in text


# ecs 7.5.0 modules/service/main.tf: data.aws_iam_policy_document.tasks, aws_iam_policy.tasks and
# its attachment have count `create_tasks_iam_role && (var.tasks_iam_role_statements != null ||
# enable_execute_command)`: [] would create a policy with no statement, which IAM refuses.
def test_the_task_role_gets_a_policy_only_when_there_are_models_or_storage() -> None:
    statements = modules()["ecs_service"]["tasks_iam_role_statements"]
    assert statements == "${length(local.task_statements) > 0 ? local.task_statements : null}"
    assert "task_statements = concat(local.bedrock_statements, local.storage_statements)" in (
        STACK / "providers.tf").read_text()


# -- the interface of every pinned module ------------------------------------------------------------
INTERFACES = json.loads((REPO / "tests" / "fixtures" / "terraform" / "module-interfaces.json").read_text())
META_ARGUMENTS = {"source", "version", "count", "for_each", "depends_on", "providers"}


def test_the_recorded_interfaces_are_those_of_the_pinned_versions() -> None:
    """scripts/module_interfaces.py wrote them from each repository at its tag."""
    assert set(INTERFACES) == {f"{source}@{version}" for source, version in EXPECTED_MODULE_VERSIONS.items()}
    assert all(re.fullmatch(r"[0-9a-f]{40}", entry["commit"]) and entry["variables"] and entry["outputs"]
               for entry in INTERFACES.values())


def test_every_module_argument_is_a_variable_of_the_pinned_module() -> None:
    for name, block in modules().items():
        declared = set(INTERFACES[f"{block['source']}@{block['version']}"]["variables"])
        unknown = sorted(set(block) - META_ARGUMENTS - declared)
        assert not unknown, f"module {name}: not variables of {block['source']} {block['version']}: {unknown}"


def test_every_module_output_the_stack_reads_is_declared_by_the_pinned_module() -> None:
    text = "\n".join(path.read_text() for path in sorted(STACK.glob("*.tf")))
    # Comments, and `moved` blocks (their addresses are resources inside a module, not outputs).
    text = re.sub(r"^moved \{.*?^\}", "", re.sub(r"#.*", "", text), flags=re.M | re.S)
    blocks = modules()
    for name, output in sorted(set(re.findall(r"\bmodule\.([a-z0-9_]+)\.([a-z0-9_]+)", text))):
        block = blocks[name]
        declared = INTERFACES[f"{block['source']}@{block['version']}"]["outputs"]
        assert output in declared, f"module.{name}.{output}: no such output of {block['source']} {block['version']}"


# acm 6.3.0 main.tf: aws_route53_record.validation and aws_acm_certificate_validation.this are both
# counted on `var.validation_method` ("DNS" / != null), whose default is null: without it the
# certificate is requested but never validated. outputs.tf: acm_certificate_arn is
# try(aws_acm_certificate_validation.this[0].certificate_arn, ...), so with wait_for_validation the
# listener that uses it waits for the certificate to be issued.
def test_the_certificate_is_validated_through_dns_before_the_https_listener_uses_it() -> None:
    acm = modules()["acm"]
    assert acm["validation_method"] == "DNS" and acm["wait_for_validation"] is True
    assert re.fullmatch(r"[0-9]+m", acm["validation_timeout"])
    assert acm["create_certificate"] == "${local.own_domain}"
    providers = (STACK / "providers.tf").read_text()
    assert "certificate_arn = local.own_domain ? module.acm.acm_certificate_arn : var.certificate_arn" in providers
    # The listeners' for_each keys come from variables only (a new certificate's ARN is unknown at plan).
    assert 'https           = local.own_domain || var.certificate_arn != ""' in providers


# s3-bucket 5.15.4: attach_policy puts var.policy into the bucket policy beside the TLS-only one
# (attach_deny_insecure_transport_policy); force_destroy empties every object version on destroy.
def test_the_storage_bucket_is_private_encrypted_versioned_and_the_app_s_alone() -> None:
    bucket = modules()["app_storage"]
    assert all(bucket[key] is True for key in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                               "restrict_public_buckets", "attach_deny_insecure_transport_policy",
                                               "attach_policy"))
    assert bucket["versioning"] == {"enabled": True}
    rule = bucket["server_side_encryption_configuration"]["rule"]
    assert rule["apply_server_side_encryption_by_default"]["sse_algorithm"] == "aws:kms"
    force_destroy = bucket["force_destroy"].replace("False", "false")   # python-hcl2 spells the literal
    assert force_destroy == "${local.storage_on ? !var.storage.keep_on_delete : false}"
    (deny,) = blocks("data")["aws_iam_policy_document.app_storage"]["statement"]
    assert deny["effect"] == "Deny" and deny["principals"][0]["identifiers"] == ["*"]
    assert {"s3:GetObject*", "s3:PutObject*", "s3:DeleteObject*", "s3:ListBucket*"} <= set(deny["actions"])
    (only,) = deny["condition"]
    assert (only["test"], only["variable"]) == ("StringNotEquals", "aws:PrincipalArn")
    assert only["values"] == ["${module.ecs_service.tasks_iam_role_arn}",
                              "${data.aws_iam_session_context.terraform.issuer_arn}"]
    text = (STACK / "storage.tf").read_text()
    kept = 'keep_on_destroy = local.storage_on ? (var.storage.keep_on_delete ? ["module.app_storage"] : []) : []'
    assert kept in text


def test_sign_in_authenticates_every_request_before_the_app() -> None:
    written = blocks()
    rule = written["aws_lb_listener_rule.sign_in"]
    assert rule["listener_arn"] == '${module.alb.listeners["https"].arn}' and rule["priority"] == 1
    assert rule["condition"][0]["path_pattern"][0]["values"] == ["/*"]
    first, then = sorted(rule["action"], key=lambda action: action["order"])
    assert first["type"] == "authenticate-cognito" and then["type"] == "forward"
    assert first["authenticate_cognito"][0]["on_unauthenticated_request"] == "authenticate"
    pool = written["aws_cognito_user_pool.sign_in"]
    assert pool["admin_create_user_config"][0]["allow_admin_create_user_only"] is True
    client = written["aws_cognito_user_pool_client.sign_in"]
    assert client["generate_secret"] is True
    assert client["callback_urls"] == ["https://${var.domain_name}/oauth2/idpresponse"]
    # The generated secret stays in the state: no output of the stack names it.
    assert "client_secret" not in (STACK / "outputs.tf").read_text()

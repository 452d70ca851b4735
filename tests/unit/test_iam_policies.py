"""The IAM documents in docs/iam/ against the code and the stack: each is an IAM policy, none grants
writes on every resource, the operator's policy allows every AWS call the operator's code makes
(found by reading the code, so a new call needs a new permission or fails here), and every IAM role
the stack creates carries the platform's permissions boundary."""

from __future__ import annotations

import ast
import fnmatch
import functools
import json
import pathlib
from collections.abc import Iterator
from typing import Any

import botocore
import hcl2
import pytest

from tests.conftest import REPO

IAM_DOCS = REPO / "docs" / "iam"
DOCUMENTS = ("operator-policy.json", "runner-policy.json", "tenant-permissions-boundary.json", "tenant-role-trust.json")
TRUST_DOCUMENTS = {"tenant-role-trust.json"}
PACKAGE = REPO / "operator" / "llmapp_operator"
STACK = REPO / "terraform" / "stack"
TENANT_ROLES = "arn:aws:iam::*:role/llmapp-tenant-*"

# The boto3 clients the operator makes (cloud/clients.py `client("<service>", ...)`).
SERVICES = frozenset({"s3", "dynamodb", "secretsmanager", "ecs", "elbv2", "sts", "ecr"})
# Client methods that are no AWS call.
NOT_CALLS = frozenset({"get_paginator", "get_waiter", "can_paginate", "close", "meta", "exceptions"})
# Where an AWS call's IAM action is not `<prefix>:<PascalCase operation>` (or takes more than one).
IAM_ACTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("s3", "head_bucket"): ("s3:ListBucket",),
    ("s3", "head_object"): ("s3:GetObject",),
    ("s3", "get_object"): ("s3:GetObject",),
    ("s3", "list_objects"): ("s3:ListBucket",),
    ("s3", "list_objects_v2"): ("s3:ListBucket",),
    ("s3", "delete_objects"): ("s3:DeleteObject",),
    ("s3", "put_bucket_encryption"): ("s3:PutEncryptionConfiguration",),
    ("s3", "put_public_access_block"): ("s3:PutBucketPublicAccessBlock",),
    ("s3", "get_public_access_block"): ("s3:GetBucketPublicAccessBlock",),
    ("s3", "get_bucket_encryption"): ("s3:GetEncryptionConfiguration",),
    # Tags on create are authorised as TagResource too; the operator always tags its secrets.
    ("secretsmanager", "create_secret"): ("secretsmanager:CreateSecret", "secretsmanager:TagResource"),
    # The tenant role's session is always tagged (namespace, name, uid).
    ("sts", "assume_role"): ("sts:AssumeRole", "sts:TagSession"),
    ("sts", "get_caller_identity"): (),   # needs no permission
}
# Writes that have no resource-level permissions: the only ones allowed on "Resource": "*".
NO_RESOURCE_LEVEL_WRITES = frozenset({"ecs:RegisterTaskDefinition"})
READ_VERBS = ("Describe", "Get", "List", "BatchGet", "BatchCheck")


def document(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((IAM_DOCS / name).read_text())
    return loaded


def as_list(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def allowed(policy: dict[str, Any], action: str) -> bool:
    """Whether some Allow statement names the action (IAM actions ignore case; `*` and `?` match)."""
    def matches(statement: dict[str, Any]) -> bool:
        return any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in as_list(statement.get("Action")))
    statements = policy["Statement"]
    return (any(s["Effect"] == "Allow" and matches(s) for s in statements)
            and not any(s["Effect"] == "Deny" and matches(s) for s in statements))


# -- the calls the operator's code makes -------------------------------------------------------------


def scanned_files() -> list[pathlib.Path]:
    """cloud/*.py, and any other module of the operator that makes boto3 clients."""
    files = set(PACKAGE.glob("cloud/*.py"))
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "plugin":
            continue   # kubectl llmapp runs with the user's own AWS credentials, not the operator's
        text = path.read_text()
        if "import boto3" in text or "cloud.clients import" in text:
            files.add(path)
    return sorted(files)


def _service_of_client_call(node: ast.expr) -> str | None:
    """`client("s3", ...)`, `boto3.client("s3")`, `session.client("s3")` -> "s3"."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    named = (isinstance(func, ast.Name) and func.id == "client") or (
        isinstance(func, ast.Attribute) and func.attr == "client")
    first = node.args[0]
    # Any service named as a string: a client of a service this file has not heard of is scanned too.
    if named and isinstance(first, ast.Constant) and isinstance(first.value, str):
        return str(first.value)
    return None


def _calls_in(tree: ast.AST) -> Iterator[tuple[str, str]]:
    """(service, method) for each AWS call: on a client bound to a name, on a parameter named after
    its service (`ecs`, `elbv2`), or on `client("svc", ...)` directly; paginators and waiters give
    the operation they call."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            service = _service_of_client_call(node.value)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if service and isinstance(target, ast.Name):
                    bound[target.id] = service
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = node.func.value
        if isinstance(receiver, ast.Name):
            service = bound.get(receiver.id) or (receiver.id if receiver.id in SERVICES else None)
        else:
            service = _service_of_client_call(receiver)
        if service is None:
            continue
        method = node.func.attr
        first = node.args[0] if node.args else None
        if method == "get_paginator" and isinstance(first, ast.Constant):
            yield service, str(first.value)
        elif method == "get_waiter" and isinstance(first, ast.Constant):
            operation = _boto_client(service).get_waiter(str(first.value)).config.operation
            yield service, botocore.xform_name(operation)
        elif method not in NOT_CALLS:
            yield service, method


@functools.cache
def _boto_client(service: str) -> Any:
    import boto3

    return boto3.session.Session().client(service, region_name="us-east-1")  # type: ignore[call-overload]


@functools.cache
def operator_calls() -> frozenset[tuple[str, str]]:
    return frozenset(call for path in scanned_files() for call in _calls_in(ast.parse(path.read_text())))


def iam_actions(service: str, method: str) -> tuple[str, ...]:
    if (service, method) in IAM_ACTIONS:
        return IAM_ACTIONS[(service, method)]
    meta = _boto_client(service).meta
    operation = meta.method_to_api_mapping[method]
    return (f"{meta.service_model.signing_name}:{operation}",)


# -- the documents -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DOCUMENTS)
def test_each_document_is_an_iam_policy(name: str) -> None:
    policy = document(name)
    assert set(policy) == {"Version", "Statement"} and policy["Version"] == "2012-10-17"
    statements = policy["Statement"]
    assert isinstance(statements, list) and statements
    sids = [s.get("Sid") for s in statements]
    assert all(sids) and len(set(sids)) == len(sids), "every statement has its own Sid"
    for statement in statements:
        assert statement["Effect"] in {"Allow", "Deny"}
        actions = as_list(statement["Action"])
        assert actions and all(a.count(":") == 1 and a.split(":")[1] for a in actions), actions
        if name in TRUST_DOCUMENTS:
            assert "Principal" in statement and "Resource" not in statement
        else:
            assert "Resource" in statement and "Principal" not in statement
            assert as_list(statement["Resource"])
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Principal", "Condition"}


def _is_write(action: str) -> bool:
    return not action.split(":", 1)[1].startswith(READ_VERBS)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_no_wildcard_actions_and_no_writes_on_every_resource(name: str) -> None:
    for statement in document(name)["Statement"]:
        actions = as_list(statement["Action"])
        assert "*" not in actions and not any(a.endswith(":*") for a in actions), statement["Sid"]
        if "*" in as_list(statement.get("Resource")):
            writes = {a for a in actions if _is_write(a)} - NO_RESOURCE_LEVEL_WRITES
            assert not writes, f"{name} {statement['Sid']}: writes on every resource: {sorted(writes)}"


def test_the_scan_finds_the_calls_it_must() -> None:
    """The scanner itself: a broken one would find nothing and pass everything."""
    calls = operator_calls()
    assert {("s3", "head_bucket"), ("s3", "put_object"), ("s3", "list_objects_v2"), ("dynamodb", "describe_table"),
            ("dynamodb", "get_item"), ("secretsmanager", "list_secrets"), ("secretsmanager", "create_secret"),
            ("ecs", "describe_services"), ("ecs", "update_service"), ("elbv2", "describe_target_health"),
            ("application-autoscaling", "describe_scalable_targets")} <= calls
    assert {service for service, _ in calls} >= {"s3", "dynamodb", "secretsmanager", "ecs", "elbv2"}
    source = ast.parse('s3 = client("s3", r, e)\nx = client("sts", r, e)\n'
                       'x.assume_role(RoleArn=a)\nclient("ecs", r, e).list_tasks()\ns3.get_waiter("bucket_exists")\n'
                       'other.put_object()\n')
    assert set(_calls_in(source)) == {("sts", "assume_role"), ("ecs", "list_tasks"), ("s3", "head_bucket")}


def test_every_call_the_operator_makes_is_a_real_boto3_method() -> None:
    for service, method in operator_calls():
        if (service, method) not in IAM_ACTIONS:
            assert method in _boto_client(service).meta.method_to_api_mapping, (service, method)


def test_the_operator_policy_allows_every_call_the_operator_makes() -> None:
    policy = document("operator-policy.json")
    missing = sorted(f"{action} ({service}.{method})" for service, method in operator_calls()
                     for action in iam_actions(service, method) if not allowed(policy, action))
    assert not missing, f"docs/iam/operator-policy.json does not allow: {', '.join(missing)}"


def test_the_operator_and_the_runner_assume_tenant_roles_only() -> None:
    for name in ("operator-policy.json", "runner-policy.json"):
        for statement in document(name)["Statement"]:
            if any(a.startswith("sts:") for a in as_list(statement["Action"])):
                assert set(as_list(statement["Action"])) == {"sts:AssumeRole", "sts:TagSession"}, name
                assert as_list(statement["Resource"]) == [TENANT_ROLES], name
        assert allowed(document(name), "sts:AssumeRole") and allowed(document(name), "sts:TagSession")


def test_the_runner_policy_covers_terraform_s_state_backend_only() -> None:
    policy = document("runner-policy.json")
    for action in ("s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                   "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"):
        assert allowed(policy, action), action
    services = {a.split(":")[0] for s in policy["Statement"] for a in as_list(s["Action"])}
    assert services == {"s3", "dynamodb", "sts"}
    objects = [s for s in policy["Statement"] if "s3:PutObject" in as_list(s["Action"])]
    assert [as_list(s["Resource"]) for s in objects] == [["arn:aws:s3:::STATE_BUCKET/KEY_PREFIX/*"]]


def test_the_tenant_role_trusts_the_operator_and_the_runner_with_an_external_id() -> None:
    statements = document("tenant-role-trust.json")["Statement"]
    assume = next(s for s in statements if as_list(s["Action"]) == ["sts:AssumeRole"])
    assert assume["Condition"]["StringEquals"]["sts:ExternalId"] == "EXTERNAL_ID"
    principals = as_list(assume["Principal"]["AWS"])
    assert len(principals) == 2 and all(p.startswith("arn:aws:iam::") for p in principals)
    tag = next(s for s in statements if as_list(s["Action"]) == ["sts:TagSession"])
    assert as_list(tag["Principal"]["AWS"]) == principals
    assert set(tag["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]) == {
        "llmops.dev/namespace", "llmops.dev/name", "llmops.dev/uid"}


def test_the_session_tags_are_the_ones_the_operator_sends() -> None:
    tenancy = pytest.importorskip("llmapp_operator.api.tenancy")
    role = tenancy.assumed_role(tenancy.CloudRole(arn="arn:aws:iam::123456789012:role/llmapp-tenant-team-a"),
                                "team-a", "rags", "uid-1")
    tag = next(s for s in document("tenant-role-trust.json")["Statement"] if as_list(s["Action"]) == ["sts:TagSession"])
    assert set(role.tags) == set(tag["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"])
    assert fnmatch.fnmatchcase(role.arn.replace("123456789012", "*"), TENANT_ROLES)


# -- the stack's roles and the boundary --------------------------------------------------------------


def parsed(path: pathlib.Path) -> dict[str, Any]:
    loaded: dict[str, Any] = hcl2.loads(path.read_text())  # type: ignore[attr-defined]
    return loaded


BOUNDARY = "${var.permissions_boundary_arn}"
# The inputs of the pinned ECS modules (7.5.0) that set a role's permissions boundary.
MODULE_BOUNDARY_INPUTS = {
    "terraform-aws-modules/ecs/aws//modules/service": {
        "task_exec_iam_role_permissions_boundary", "tasks_iam_role_permissions_boundary",
        "iam_role_permissions_boundary", "infrastructure_iam_role_permissions_boundary"},
    "terraform-aws-modules/ecs/aws//modules/cluster": {
        "task_exec_iam_role_permissions_boundary", "infrastructure_iam_role_permissions_boundary",
        "node_iam_role_permissions_boundary"},
}
# What the ECS service module's task execution role is granted (modules/service/main.tf, 7.5.0).
TASK_EXEC_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents", "ecr:GetAuthorizationToken",
                     "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage",
                     "secretsmanager:GetSecretValue")


def test_the_stack_declares_the_boundary_variable() -> None:
    variables = {name: body for block in parsed(STACK / "variables.tf")["variable"] for name, body in block.items()}
    body = variables["permissions_boundary_arn"]
    assert body["default"] is None and body["type"].strip("${}") == "string" and body["description"]


def test_every_iam_role_the_stack_creates_has_the_boundary() -> None:
    roles = 0
    for path in sorted(STACK.glob("*.tf")):
        for block in parsed(path).get("resource", []):
            for name, body in block.get("aws_iam_role", {}).items():
                roles += 1
                assert body.get("permissions_boundary") == BOUNDARY, f"{path.name}: aws_iam_role.{name}"
    assert roles >= 1


def test_the_ecs_modules_pass_the_boundary_to_every_role_they_may_create() -> None:
    seen = set()
    for path in sorted(STACK.glob("*.tf")):
        for block in parsed(path).get("module", []):
            for name, body in block.items():
                inputs = MODULE_BOUNDARY_INPUTS.get(body["source"])
                if inputs is None:
                    continue
                seen.add(body["source"])
                wrong = sorted(i for i in inputs if body.get(i) != BOUNDARY)
                assert not wrong, f"module.{name} does not pass the boundary to {', '.join(wrong)}"
    assert seen == set(MODULE_BOUNDARY_INPUTS)


def test_the_boundary_allows_what_the_stack_s_roles_are_granted() -> None:
    boundary = document("tenant-permissions-boundary.json")
    deploy = [body for block in parsed(STACK / "iam.tf")["data"]
              for body in block.get("aws_iam_policy_document", {}).get("deploy", {}).get("statement", [])]
    granted = {action for statement in deploy for action in statement["actions"]} | set(TASK_EXEC_ACTIONS)
    assert len(granted) > len(TASK_EXEC_ACTIONS)
    assert not sorted(a for a in granted if not allowed(boundary, a))
    pass_role = next(s for s in boundary["Statement"] if as_list(s["Action"]) == ["iam:PassRole"])
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    # Nothing that would let a bounded role change IAM beyond passing the task roles to ECS.
    iam_actions_ = {a for s in boundary["Statement"] for a in as_list(s["Action"]) if a.startswith("iam:")}
    assert iam_actions_ == {"iam:PassRole"}

"""Pure rendering: names, variables, backend config and the input digest."""

from __future__ import annotations

import pathlib
import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmapp_operator.api.errors import PermanentError
from llmapp_operator.api.spec import InvalidSpec, LLMApp
from llmapp_operator.api.tenancy import NamedBackend, TenantPolicy, grant
from llmapp_operator.api.workspace import ModuleInfo, render, resource_name, state_key
from llmapp_operator.config import Settings

CONTRACT = {"name": True, "environment": True, "aws_region": True, "github_repository": True,
            "github_environment": True, "container_port": False, "task_cpu": False, "task_memory": False,
            "rollout": False, "health_check_path": False, "image": False, "app_environment": False,
            "app_secret_arns": False, "vpc_cidr": False, "az_count": False, "single_nat_gateway": False,
            "certificate_arn": False, "tags": False, "extra_knob": False}
MODULE = ModuleInfo(name="stack", path=pathlib.Path("/m"), digest="d1", variables=CONTRACT,
                    outputs=frozenset({"alb_dns"}))
SETTINGS = Settings(workdir=pathlib.Path("/work"), state_bucket="bucket", state_region="eu-west-1")


def app(name: str = "rags", namespace: str = "team-a", **spec: object) -> LLMApp:
    return LLMApp.from_body({
        "metadata": {"name": name, "namespace": namespace, "uid": "uid-1"},
        "spec": {"environment": "dev", "aws": {"region": "us-east-1"}, "github": {"repository": "acme/rags"},
                 **spec},
    })


def test_render_variables_backend_directory() -> None:
    ws = render(app(app={"env": {"B": "2", "A": "1"}}), SETTINGS, MODULE)
    assert ws.directory == pathlib.Path("/work/workspaces/uid-1")
    assert ws.tfvars["aws_region"] == "us-east-1"
    assert ws.tfvars["github_repository"] == "acme/rags"
    assert ws.tfvars["github_environment"] == "dev"
    assert ws.tfvars["task_cpu"] == 1024 and ws.tfvars["container_port"] == 8501
    assert list(ws.tfvars["app_environment"]) == ["A", "B"]
    assert ws.backend.bucket == "bucket" and ws.backend.region == "eu-west-1"
    assert ws.backend.key == "llmapp/team-a/rags/terraform.tfstate"
    assert "use_lockfile = true" in ws.backend.as_tfbackend()
    assert "endpoints" not in ws.backend.as_tfbackend()


def test_a_named_backend_with_dynamodb_and_an_endpoint() -> None:
    settings = SETTINGS.updated(aws_endpoint_url="http://127.0.0.1:5000")
    policy = TenantPolicy(name="team-a", namespaces=["team-a"], backends={
        "default": NamedBackend(bucket="bucket", region="eu-west-1"),
        "locked": NamedBackend(bucket="other", region="eu-west-1", key_prefix="p", dynamodb_table="locks")})
    target = app(terraform={"backendRef": "locked"})
    ws = render(target, settings, MODULE, grant(policy, target, tuple(MODULE.variables)))
    text = ws.backend.as_tfbackend()
    assert 'bucket = "other"' in text and 'dynamodb_table = "locks"' in text
    assert "use_lockfile" not in text and "use_path_style = true" in text
    assert ws.backend.key == "p/team-a/rags/terraform.tfstate"
    # The deprecated free-form backend is taken only where it is one of the named ones.
    legacy = app(terraform={"backend": {"bucket": "other", "dynamodbTable": "locks", "keyPrefix": "p"}})
    assert render(legacy, settings, MODULE, grant(policy, legacy, tuple(MODULE.variables))).backend == ws.backend
    with pytest.raises(PermanentError) as refused:
        render(app(terraform={"backend": {"bucket": "tenant-bucket"}}), settings, MODULE)
    assert refused.value.reason == "BackendNotAllowed" and "tenant-bucket" in refused.value.message


def test_digest_is_stable_and_sensitive_to_inputs() -> None:
    first = render(app(), SETTINGS, MODULE).digest
    assert render(app(), SETTINGS, MODULE).digest == first
    assert render(app(app={"containerPort": 8080}), SETTINGS, MODULE).digest != first
    # The task count is no Terraform input (the operator sets it through the ECS API): no plan for it.
    assert render(app(app={"desiredCount": 2}), SETTINGS, MODULE).digest == first
    assert render(app(), SETTINGS, replace(MODULE, digest="d2")).digest != first
    assert render(app(), SETTINGS.updated(state_bucket="bucket-2"), MODULE).digest != first
    # Run knobs do not change what Terraform would produce: no re-apply for them.
    assert render(app(terraform={"timeout": "5m"}), SETTINGS, MODULE).digest == first
    assert render(app(suspend=True), SETTINGS, MODULE).digest == first


def test_env_order_does_not_change_the_digest() -> None:
    a = render(app(app={"env": {"A": "1", "B": "2"}}), SETTINGS, MODULE).digest
    b = render(app(app={"env": {"B": "2", "A": "1"}}), SETTINGS, MODULE).digest
    assert a == b


def test_passthrough_vars_are_checked_against_the_module() -> None:
    # A platform module (unknown to the CRD): its variables are checked here, before any run.
    ws = render(app(terraform={"module": "custom", "vars": {"extra_knob": "7"}}), SETTINGS, MODULE)
    assert ws.tfvars["extra_knob"] == "7"   # a string; Terraform converts it to the variable's type
    with pytest.raises(InvalidSpec, match="declares no variable nope"):
        render(app(terraform={"module": "custom", "vars": {"nope": "1"}}), SETTINGS, MODULE)
    with pytest.raises(InvalidSpec, match="task_cpu"):   # refused by the spec model (and the CRD) already
        render(app(terraform={"module": "custom", "vars": {"task_cpu": "1"}}), SETTINGS, MODULE)


def test_module_required_variable_must_be_provided() -> None:
    module = replace(MODULE, variables={**CONTRACT, "hosted_zone": True})
    with pytest.raises(InvalidSpec, match="hosted_zone"):
        render(app(), SETTINGS, module)


def test_only_declared_standard_variables_are_passed() -> None:
    module = replace(MODULE, variables={"name": True, "aws_region": True})
    assert set(render(app(), SETTINGS, module).tfvars) == {"name", "aws_region"}


def test_names_never_collide_and_are_compliant() -> None:
    assert resource_name("a-b", "c") != resource_name("a", "b-c")
    long = resource_name("a-very-long-namespace-name", "and-an-even-longer-app-name-1234567890")
    assert len(long) <= 24
    assert state_key("llmapp/", "ns", "n") == "llmapp/ns/n/terraform.tfstate"


@given(st.text(min_size=1, max_size=63), st.text(min_size=1, max_size=253))
def test_resource_name_is_always_aws_compliant(namespace: str, name: str) -> None:
    derived = resource_name(namespace, name)
    assert re.fullmatch(r"[a-z][a-z0-9-]{0,23}", derived), derived
    assert resource_name(namespace, name) == derived


def test_backend_file_carries_retry_limit_only_when_set() -> None:
    from llmapp_operator.api.workspace import BackendConfig

    assert "max_retries" not in BackendConfig(bucket="b", key="k", region="us-east-1").as_tfbackend()
    assert "max_retries = 1\n" in BackendConfig(bucket="b", key="k", region="us-east-1", max_retries=1).as_tfbackend()

"""Tenant policies, pure: parsing, which policy governs a namespace, what it grants an object."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import pytest
import yaml

from llmapp_operator.api.errors import PermanentError, TransientError
from llmapp_operator.api.spec import LLMApp
from llmapp_operator.api.tenancy import TenantPolicies, grant, session_name, single_tenant
from llmapp_operator.engine.reconcile import check_cost_ceiling
from llmapp_operator.kube.tenants import PolicyFile, read_policies
from llmapp_operator.review.verdict import PlanReview
from llmapp_operator.runners.base import PlanSummary
from tests.conftest import REPO
from tests.unit.test_workspace import SETTINGS

BACKEND = {"bucket": "acme-tfstate", "region": "eu-west-1"}
VARIABLES = ("alb_log_retention_days", "certificate_arn", "create_github_oidc_provider", "ecr_keep_images")


def policies(*items: dict[str, Any]) -> TenantPolicies:
    return TenantPolicies.parse({"policies": list(items)}, "test")


def app(namespace: str = "team-a", **terraform: Any) -> LLMApp:
    return LLMApp.from_body({
        "metadata": {"name": "rags", "namespace": namespace, "uid": "uid-1"},
        "spec": {"environment": "dev", "aws": {"region": "eu-west-1"}, "github": {"repository": "acme/rags"},
                 "terraform": terraform},
    })


def test_the_first_policy_that_selects_the_namespace_governs_it() -> None:
    found = policies(
        {"name": "by-name", "namespaces": ["team-a"], "backends": {"default": BACKEND}},
        {"name": "by-label", "namespaceSelector": {"matchLabels": {"tier": "gold"},
                                                   "matchExpressions": [{"key": "frozen", "operator": "DoesNotExist"}]},
         "backends": {"default": BACKEND}},
        {"name": "rest", "namespaceSelector": {}, "backends": {"default": BACKEND}},
    )
    assert found.uses_labels
    assert found.select("team-a", {"tier": "gold"}).name == "by-name"
    assert found.select("team-b", {"tier": "gold"}).name == "by-label"
    assert found.select("team-b", {"tier": "gold", "frozen": "yes"}).name == "rest"
    only = policies({"name": "only", "namespaces": ["team-a"], "backends": {"default": BACKEND}})
    assert not only.uses_labels   # no namespace reads needed
    with pytest.raises(PermanentError) as caught:
        only.select("team-b", {})
    assert caught.value.reason == "NoPolicy" and "'team-b'" in caught.value.message


@pytest.mark.parametrize(("policy", "words"), [
    ({"name": "p", "namespaces": ["a"]}, "backends"),
    ({"name": "p", "backends": {"default": BACKEND}}, "namespaces or namespaceSelector"),
    ({"name": "p", "namespaces": ["a"], "backends": {"default": BACKEND}, "defaultBackend": "other"}, "defaultBackend"),
    ({"name": "p", "namespaces": ["a"], "backends": {"default": BACKEND}, "variables": {"name": "x"}},
     "set by the operator"),
    ({"name": "p", "namespaces": ["a"], "backends": {"default": BACKEND}, "variables": {"certificate_arn": "x"},
      "tenantVariables": ["certificate_arn"]}, "not a tenant variable"),
    ({"name": "p", "namespaces": ["a"], "backends": {"default": BACKEND}, "role": {"arn": "arn:aws:iam::1:role/x"}},
     "role.arn"),
    ({"name": "p", "namespaces": ["a"], "backends": {"default": BACKEND}, "namespaceSelector": {
        "matchExpressions": [{"key": "k", "operator": "In"}]}}, "In needs values"),
])
def test_a_policy_that_cannot_mean_one_thing_is_refused_with_where(policy: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError) as caught:
        policies(policy)
    assert words in str(caught.value) and "tenant policies in test are invalid" in str(caught.value)


def test_names_used_twice_are_refused() -> None:
    with pytest.raises(ValueError, match=r"policy name\(s\) used twice: p"):
        policies(*[{"name": "p", "namespaces": ["a"], "backends": {"default": BACKEND}}] * 2)


def test_the_single_tenant_default_is_today_s_behaviour() -> None:
    default = single_tenant(SETTINGS.updated(state_bucket="bucket")).select("any-namespace", {})
    granted = grant(default, app(vars={"certificate_arn": "arn:x"}), VARIABLES)
    assert granted.role is None and granted.max_monthly_cost is None and granted.platform_variables == {}
    assert (granted.backend.bucket, granted.backend.key_prefix) == ("bucket", "llmapp")


def test_a_grant_carries_the_role_session_platform_variables_and_backend() -> None:
    policy = policies({"name": "team-a", "namespaces": ["team-a"],
                       "role": {"arn": "arn:aws:iam::123456789012:role/llmapp-tenant-a", "externalId": "x-1",
                                "sessionDurationSeconds": 900},
                       "backends": {"default": BACKEND, "eu": {**BACKEND, "keyPrefix": "eu"}},
                       "variables": {"create_github_oidc_provider": "false", "not_in_this_module": "1"},
                       "maxMonthlyCost": 100}).policies[0]
    granted = grant(policy, app(backendRef="eu"), VARIABLES)
    assert granted.backend.key_prefix == "eu"
    assert granted.platform_variables == {"create_github_oidc_provider": "false"}   # only what the module declares
    assert granted.role is not None
    assert (granted.role.arn, granted.role.external_id, granted.role.duration_seconds) == (
        "arn:aws:iam::123456789012:role/llmapp-tenant-a", "x-1", 900)
    assert granted.role.session_name == "llmapp-team-a-rags"
    assert granted.role.tags == {"llmops.dev/namespace": "team-a", "llmops.dev/name": "rags", "llmops.dev/uid": "uid-1"}


def test_session_names_fit_sts() -> None:
    name = session_name("a" * 63, "b" * 200)
    assert len(name) == 64 and name.startswith("llmapp-aaa")
    assert session_name("ns", "name.with.dots") == "llmapp-ns-name.with.dots"


def test_a_plan_above_the_policy_ceiling_never_applies() -> None:
    policy = policies({"name": "p", "namespaces": ["team-a"], "backends": {"default": BACKEND},
                       "maxMonthlyCost": 100}).policies[0]
    granted = grant(policy, app(), VARIABLES)

    def plan(cost: float, changes: bool = True) -> PlanSummary:
        return PlanSummary(has_changes=changes, review=PlanReview(monthly_cost=cost, currency="USD"))

    check_cost_ceiling(plan(99.5), granted)
    check_cost_ceiling(plan(500, changes=False), granted)   # nothing to apply: nothing to refuse
    with pytest.raises(PermanentError) as caught:
        check_cost_ceiling(plan(120.25), granted)
    assert caught.value.reason == "CostCeilingExceeded" and "120.25" in caught.value.message
    assert "'p'" in caught.value.message


def test_the_policy_file_is_read_again_when_it_changes_and_a_broken_one_is_a_retry(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "policies.yaml"
    path.write_text("- {name: one, namespaces: [team-a], backends: {default: {bucket: acme-tfstate, "
                    "region: eu-west-1}}}\n")
    source = PolicyFile(SETTINGS.updated(tenant_policies=path))
    assert source.current().policies[0].name == "one"
    path.write_text("policies: [{name: two, namespaces: [team-a], backends: {default: {bucket: acme-tfstate, "
                    "region: eu-west-1}}}]\n")
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
    assert source.current().policies[0].name == "two"
    path.write_text("policies: [{name: three}]\n")
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 10))
    with pytest.raises(TransientError) as caught:
        source.current()
    assert caught.value.reason == "TenantPolicyInvalid"
    with pytest.raises(ValueError, match="cannot be read"):
        read_policies(tmp_path / "missing.yaml")


def test_the_readme_s_example_policy_is_one_the_operator_accepts() -> None:
    readme = (REPO / "README.md").read_text()
    block = next(part.split("```", 1)[0] for part in readme.split("```yaml\n")[1:] if part.startswith("tenants:"))
    policies = TenantPolicies.parse(yaml.safe_load(block)["tenants"], "README.md")
    policy = policies.select("team-a", {"llmops.dev/tenant": "team-a"})
    assert policy.role is not None and policy.max_monthly_cost == 500
    granted = grant(policy, app(vars={"ecr_keep_images": "5"}), VARIABLES)
    assert granted.platform_variables == {"create_github_oidc_provider": "false"}

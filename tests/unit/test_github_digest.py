"""Pure parts of the GitHub glue: the digest and name rules."""

from __future__ import annotations

import pytest

from llmapp_operator.api.errors import PermanentError
from llmapp_operator.engine.reconcile import github_variables
from llmapp_operator.github.sync import DesiredGitHubState, desired_digest, validate_names


def test_digest_ignores_order_and_sees_every_value() -> None:
    a = DesiredGitHubState(variables={"A": "1", "B": "2"}, secrets={"S": "x"})
    b = DesiredGitHubState(variables={"B": "2", "A": "1"}, secrets={"S": "x"})
    assert desired_digest(a, "dev") == desired_digest(b, "dev")
    assert desired_digest(a, "dev") != desired_digest(a, "prod")
    assert desired_digest(a, "dev") != desired_digest(DesiredGitHubState({"A": "1", "B": "2"}, {"S": "y"}), "dev")


def test_with_the_install_key_the_digest_is_keyed_and_says_so() -> None:
    desired = DesiredGitHubState(variables={"A": "1"}, secrets={"S": "guess-me"})
    keyed = desired_digest(desired, "dev", b"k" * 32)
    assert keyed.startswith("hmac-sha256:") and keyed != desired_digest(desired, "dev")
    # Another install (another key) cannot test a guess against this digest.
    assert desired_digest(desired, "dev", b"j" * 32) != keyed
    assert desired_digest(desired, "dev", b"k" * 32) == keyed


@pytest.mark.parametrize("name", ["GITHUB_TOKEN", "github_x", "1ABC", "A-B", ""])
def test_invalid_names(name: str) -> None:
    with pytest.raises(PermanentError):
        validate_names(DesiredGitHubState(variables={name: "v"}, secrets={}))


def test_variables_from_outputs_use_the_configured_names() -> None:
    outputs = {"ecs_cluster_name": "c", "ecs_service_name": "s", "deploy_role_arn": "", "vpc_id": "v"}
    names = {"ECS_CLUSTER": "ecs_cluster_name", "ECS_SERVICE": "ecs_service_name", "ROLE_TO_ASSUME": "deploy_role_arn"}
    assert github_variables(outputs, names, {"EXTRA": "1"}) == {"ECS_CLUSTER": "c", "ECS_SERVICE": "s", "EXTRA": "1"}

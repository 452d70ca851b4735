"""Static checks of the Terraform modules (no provider can be downloaded here) and the contract
between what the operator renders/reads and what the modules declare."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess

import hcl2
import pytest

from llmapp_operator.api.spec import LLMApp
from llmapp_operator.api.workspace import standard_variables
from llmapp_operator.config import GITHUB_VARIABLE_OUTPUTS, Settings
from llmapp_operator.runners.modules import load_module
from tests.conftest import REPO, TERRAFORM

STACK = REPO / "terraform" / "stack"
SANDBOX = REPO / "terraform" / "sandbox"
ALL_TF = sorted({*REPO.glob("terraform/**/*.tf"), *REPO.glob("tests/fixtures/terraform/**/*.tf")})
MODULES = {"stack": STACK, "sandbox": SANDBOX}
# Outputs the operator itself reads: status.url and the GitHub environment variables.
OPERATOR_READS = {"url", "alb_dns", *GITHUB_VARIABLE_OUTPUTS.values(),
                  "ecs_task_definition_arn", "target_group_arn", "container_port",   # engine/rollout.py
                  "keep_on_destroy", "storage_bucket",   # engine/teardown.py
                  "sign_in_oidc_rule_arn"}   # engine/reconcile.py (spec.auth.oidc)
EXPECTED_MODULE_VERSIONS = {
    "terraform-aws-modules/vpc/aws": "6.6.0",
    "terraform-aws-modules/s3-bucket/aws": "5.15.4",
    "terraform-aws-modules/alb/aws": "10.5.0",
    "terraform-aws-modules/ecs/aws//modules/cluster": "7.5.0",
    "terraform-aws-modules/ecs/aws//modules/service": "7.5.0",
    "terraform-aws-modules/ecr/aws": "3.2.0",
    "terraform-aws-modules/acm/aws": "6.3.0",
}


def parsed(path: pathlib.Path) -> dict:  # type: ignore[type-arg]
    return hcl2.loads(path.read_text())  # type: ignore[attr-defined,no-any-return]


@pytest.mark.skipif(TERRAFORM is None, reason="terraform binary not on PATH")
def test_terraform_fmt_is_clean() -> None:
    done = subprocess.run([str(TERRAFORM), "fmt", "-check", "-recursive", "terraform", "tests/fixtures"],
                          cwd=REPO, capture_output=True, text=True, env={**os.environ})
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", ALL_TF, ids=lambda p: str(p.relative_to(REPO)))
def test_every_file_parses(path: pathlib.Path) -> None:
    parsed(path)


def test_every_variable_and_output_is_described() -> None:
    for module in MODULES.values():
        for path in module.glob("*.tf"):
            for kind in ("variable", "output"):
                for block in parsed(path).get(kind, []):
                    for name, body in block.items():
                        assert body.get("description"), f"{path.name}: {kind} {name} has no description"


def test_sandbox_and_stack_share_the_contract() -> None:
    modules = {**Settings().modules, "sandbox": SANDBOX}
    stack, sandbox = load_module("stack", modules), load_module("sandbox", modules)
    assert stack.variables == sandbox.variables
    assert stack.outputs == sandbox.outputs


def test_renderer_matches_the_declared_variables() -> None:
    app = LLMApp.from_body({"metadata": {"name": "a", "namespace": "b", "uid": "u"},
                            "spec": {"environment": "dev", "aws": {"region": "us-east-1"},
                                     "github": {"repository": "acme/rags"}}})
    stack = load_module("stack", Settings().modules)
    rendered = set(standard_variables(app, {}))
    assert rendered <= set(stack.variables), rendered - set(stack.variables)
    required = {name for name, is_required in stack.variables.items() if is_required}
    assert required == {"name", "environment", "aws_region", "github_repository", "github_environment"}
    assert required <= rendered
    # What the stack declares but the operator does not render has a default (certificate, OIDC …).
    assert all(not stack.variables[name] for name in set(stack.variables) - rendered)


def test_every_output_the_operator_reads_is_declared() -> None:
    stack = load_module("stack", Settings().modules)
    assert stack.outputs >= OPERATOR_READS, OPERATOR_READS - stack.outputs


def test_the_stack_readme_lists_every_output() -> None:
    readme = (STACK / "README.md").read_text()
    listed = set(re.findall(r"`([a-z_]+)`", readme[readme.index("Outputs:"):readme.index("What each spec field")]))
    assert listed == set(load_module("stack", Settings().modules).outputs)


def test_backend_is_s3_and_empty() -> None:
    for module in (STACK, SANDBOX):
        backends = [b for path in module.glob("*.tf") for t in parsed(path).get("terraform", [])
                    for b in t.get("backend", [])]
        assert backends == [{"s3": {}}] or backends == [{'"s3"': {}}], backends


def test_modules_are_pinned_exactly_to_the_reviewed_versions() -> None:
    found = {}
    for path in STACK.glob("*.tf"):
        for block in parsed(path).get("module", []):
            for name, body in block.items():
                assert body["source"].startswith("terraform-aws-modules/"), name
                assert re.fullmatch(r"\d+\.\d+\.\d+", body["version"]), f"{name}: {body['version']} is not exact"
                found[body["source"]] = body["version"]
    assert found == EXPECTED_MODULE_VERSIONS

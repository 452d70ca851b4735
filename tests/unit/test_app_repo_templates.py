"""The app-repo workflows use exactly what the operator syncs, and no stored AWS keys."""

from __future__ import annotations

import re

import yaml

from llmapp_operator.config import GITHUB_VARIABLE_OUTPUTS
from tests.conftest import REPO

WORKFLOWS = sorted((REPO / "examples" / "app-repo" / ".github" / "workflows").glob("*.yml"))
EXAMPLE = yaml.safe_load((REPO / "examples" / "llmapp.yaml").read_text())
SYNCED_SECRETS = {item["name"] for item in EXAMPLE["spec"]["github"].get("secrets", [])}


def references(kind: str) -> set[str]:
    return {name for path in WORKFLOWS for name in re.findall(rf"\b{kind}\.([A-Za-z_][A-Za-z0-9_]*)", path.read_text())}


def test_there_are_ci_and_cd_workflows() -> None:
    assert [path.name for path in WORKFLOWS] == ["cd.yml", "ci.yml"]
    for path in WORKFLOWS:
        workflow = yaml.safe_load(path.read_text())
        assert workflow["permissions"]["id-token"] == "write"
        assert all(job.get("environment") == "dev" for job in workflow["jobs"].values())


def test_every_variable_is_one_the_operator_writes() -> None:
    used = references("vars")
    assert used and used <= set(GITHUB_VARIABLE_OUTPUTS), used - set(GITHUB_VARIABLE_OUTPUTS)


def test_every_secret_is_synced_from_the_spec_and_no_aws_keys() -> None:
    assert references("secrets") <= SYNCED_SECRETS
    text = "".join(path.read_text() for path in WORKFLOWS)
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text


def test_no_secret_goes_into_the_image() -> None:
    dockerfile = (REPO / "examples" / "app-repo" / "Dockerfile").read_text()
    assert "ARG" not in dockerfile and "secrets.toml" not in dockerfile
    assert "USER app" in dockerfile and "8501" in dockerfile

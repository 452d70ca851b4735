"""The Dockerfile's pins agree with the project (no engine here to build it)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()


def arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE, re.M)
    assert match, f"ARG {name} is not pinned"
    return match.group(1)


def stages() -> list[str]:
    return re.split(r"^FROM ", DOCKERFILE, flags=re.M)[1:]


def test_python_matches_pyproject() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'target-version = "py{arg("PYTHON_VERSION").replace(".", "")}"' in pyproject
    assert f'requires-python = ">={arg("PYTHON_VERSION")}' in pyproject
    assert all(stage.startswith("python:${PYTHON_VERSION}-slim") for stage in stages())


def test_terraform_is_pinned_verified_and_allowed_by_the_stack() -> None:
    version, checksum = arg("TERRAFORM_VERSION"), arg("TERRAFORM_SHA256")
    assert re.fullmatch(r"\d+\.\d+\.\d+", version) and re.fullmatch(r"[0-9a-f]{64}", checksum)
    assert "ADD --checksum=sha256:${TERRAFORM_SHA256}" in DOCKERFILE
    required = re.search(r'required_version\s*=\s*">=\s*([\d.]+)"', (REPO / "terraform/stack/versions.tf").read_text())
    assert required and tuple(map(int, version.split("."))) >= tuple(map(int, required.group(1).split(".")))


def test_terraform_version_is_the_one_the_tests_run() -> None:
    if shutil.which("terraform") is None:
        pytest.skip("terraform binary not on PATH")
    output = subprocess.run(["terraform", "version"], capture_output=True, text=True, check=True).stdout
    assert output.splitlines()[0] == f"Terraform v{arg('TERRAFORM_VERSION')}"


def test_final_stage_is_non_root_without_build_tools() -> None:
    final = stages()[-1]
    assert re.search(r"^USER 10001:10001$", final, re.M)
    assert not re.search(r"apt-get|apk add|gcc|build-essential|pip wheel", final)
    assert "--no-index" in final and "rm -rf /tmp/wheels" in final
    for path in ("terraform/stack", "terraform/sandbox", "crds/llmapp.yaml"):
        assert f"COPY {path} " in final
    assert "LLMAPP_TERRAFORM_DIR=/opt/llmapp-operator/terraform" in final


def test_chart_runs_the_image_as_its_user() -> None:
    import yaml

    values = yaml.safe_load((REPO / "charts/llmapp-operator/values.yaml").read_text())
    chart = yaml.safe_load((REPO / "charts/llmapp-operator/Chart.yaml").read_text())
    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert version and chart["appVersion"] == version.group(1)
    assert values["image"]["tag"] == ""  # defaults to appVersion
    deployment = (REPO / "charts/llmapp-operator/templates/deployment.yaml").read_text()
    assert "runAsUser: 10001" in deployment and "path: /healthz" in deployment

"""Real parts on loopback: moto in server mode (S3 state + locks) and the real terraform binary.

Terraform runs go through a tiny wrapper script that logs each invocation, so tests count the
processes an operation started without touching the operator's internals.
"""

from __future__ import annotations

import os
import pathlib
import re
import stat
from collections.abc import Iterator
from dataclasses import replace

import boto3
import pytest

from llmapp_operator import github_sync
from llmapp_operator.aws import AppSecrets, StateBackend
from llmapp_operator.config import Settings
from llmapp_operator.kube_secrets import KubeSecrets
from llmapp_operator.reconcile import Deps
from llmapp_operator.sandbox.cloud import running_moto, sandbox_aws_env
from llmapp_operator.terraform import LocalRunner, RunGate
from tests.conftest import REPO, TERRAFORM

FIXTURES = REPO / "tests" / "fixtures" / "terraform"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with sandbox_aws_env(), running_moto() as endpoint:
        yield endpoint


@pytest.fixture
def s3(moto_endpoint: str):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")


class TerraformLog:
    """Reads the wrapper's invocation log: one line per terraform process."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def commands(self) -> list[str]:
        if not self.path.exists():
            return []
        return [line.split()[1] if len(line.split()) > 1 else "" for line in self.path.read_text().splitlines()]

    def count(self) -> int:
        return len(self.commands())


@pytest.fixture
def terraform_log(tmp_path: pathlib.Path) -> TerraformLog:
    return TerraformLog(tmp_path / "terraform-invocations.log")


@pytest.fixture
def settings(tmp_path: pathlib.Path, moto_endpoint: str, terraform_log: TerraformLog,
             request: pytest.FixtureRequest) -> Settings:
    if TERRAFORM is None:
        pytest.skip("terraform binary not on PATH: integration tests need the real CLI")
    wrapper = tmp_path / "terraform"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {terraform_log.path}\nexec {TERRAFORM} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    base = Settings()
    # Each test gets its own bucket, so state from one test never leaks into another.
    bucket = "tfstate-" + re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:40].strip("-")
    return replace(
        base,
        workdir=tmp_path / "work",
        terraform_binary=str(wrapper),
        modules={**base.modules, "failing-destroy": FIXTURES / "failing-destroy"},
        state_bucket=bucket,
        aws_endpoint_url=moto_endpoint,
        retry_base_seconds=0.2,
        retry_max_seconds=1.0,
        liveness_endpoint=None,
    )


@pytest.fixture
def deps(settings: Settings) -> Deps:
    return Deps(settings=settings, runner=LocalRunner(settings), backend=StateBackend(settings.aws_endpoint_url),
                gate=RunGate(settings.max_concurrent_runs), secrets=KubeSecrets(),
                app_secrets=AppSecrets(settings.aws_endpoint_url), github=github_sync)


def state_resources(s3, bucket: str, key: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Addresses of the managed resources recorded in the remote state."""
    import json

    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    state = json.loads(body)
    return sorted(f"{r['type']}.{r['name']}" for r in state.get("resources", []) if r.get("mode") == "managed")


os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

"""Opt-in: the real terraform/stack against a real AWS account (`make e2e-aws`).

Needs LLMAPP_E2E_AWS=1, AWS credentials for an account you may create a VPC, ALB and ECS service
in, LLMAPP_E2E_REPOSITORY=owner/name, and registry access for Terraform providers and modules.
It converges the stack with the operator's own reconcile code, checks the URL answers through
the ALB, then destroys everything. Costs a few cents and takes ~10 minutes.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import time
import urllib.error
import urllib.request
from typing import Any

import boto3
import pytest

from llmapp_operator.api.errors import Waiting
from llmapp_operator.api.spec import LLMApp
from llmapp_operator.cloud.app_secrets import AppSecrets
from llmapp_operator.cloud.ecs_service import EcsService
from llmapp_operator.cloud.state import StateBackend
from llmapp_operator.config import Settings
from llmapp_operator.engine.reconcile import Deps, Previous, converge
from llmapp_operator.engine.teardown import teardown
from llmapp_operator.runners.gate import RunGate
from llmapp_operator.runners.local import LocalRunner
from tests.integration.conftest import body_of

pytestmark = pytest.mark.e2e


def _why_not() -> str | None:
    if os.environ.get("LLMAPP_E2E_AWS") != "1":
        return "set LLMAPP_E2E_AWS=1 to run the real AWS stack (creates billable resources)"
    if not os.environ.get("LLMAPP_E2E_REPOSITORY"):
        return "set LLMAPP_E2E_REPOSITORY=owner/name (the app repository the deploy role trusts)"
    try:
        boto3.client("sts").get_caller_identity()
    except Exception as exc:  # no credentials, no network
        return f"no usable AWS credentials: {type(exc).__name__}"
    return None


WHY_NOT = _why_not()  # probed once at collection: it may call AWS STS


@pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")
async def test_real_stack_converges_serves_and_is_destroyed(tmp_path: pathlib.Path) -> None:
    region = os.environ.get("AWS_REGION", "us-east-1")
    settings = Settings.from_env().updated(workdir=tmp_path,
                       state_bucket=os.environ.get("LLMAPP_STATE_BUCKET", "llmapp-e2e-tfstate"),
                       state_region=region)
    # As the operator wires them (kopf_app/wiring.py): the service is created with 0 tasks, and the
    # operator sets the count through the ECS API once the image exists (docs/stack.md).
    deps = Deps(settings=settings, runner=LocalRunner(settings), backend=StateBackend(),
                gate=RunGate(1), app_secrets=AppSecrets(), service=EcsService())
    app = LLMApp.from_body({
        "metadata": {"name": "e2e", "namespace": "llmapp-e2e", "uid": "e2e-uid", "generation": 1},
        "spec": {"environment": "dev", "aws": {"region": region},
                 "app": {"image": "public.ecr.aws/docker/library/nginx:stable", "containerPort": 80,
                         "healthCheckPath": "/", "cpu": 256, "memory": 512},
                 "github": {"repository": os.environ["LLMAPP_E2E_REPOSITORY"]}},
    })
    status: dict[str, Any] = {}
    result = await converge(app, deps, Previous())
    try:
        # RollingOut (and app health) are looked at again, as the operator's worker does.
        for _ in range(40):
            if not isinstance(result.error, Waiting):
                break
            status.update(result.fields)
            await asyncio.sleep(result.error.delay or 15)
            result = await converge(app, deps, Previous.from_status(status))
        assert result.error is None, result.report.message
        assert result.report.deployed is not None and result.report.deployed[0], result.report.deployed
        url = result.fields["url"]
        deadline = time.monotonic() + 600
        while True:
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    assert response.status == 200
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(15)
    finally:
        done = await teardown(body_of(app), deps)
        assert done.error is None, done.report.message

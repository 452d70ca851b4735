"""The operator process is SIGKILLed (with its Terraform children, as a node failure would) at a
random moment during plan, apply or destroy, and started again.

Each kill point asserts: the object converges (Ready, or gone after a delete), the Terraform state
keeps one lineage with growing serials, every resource instance exists exactly once, no lock is
left held, and the app secret appears in no log, status, Event, state version or workspace file.

`make test` runs 3 kill points (one per step); `make soak` runs LLMAPP_FAULT_KILLS (20) of them.
The seed is printed so a failing kill point can be replayed (LLMAPP_FAULT_SEED).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmapp_operator.api.record import record_key
from llmapp_operator.api.workspace import state_key
from llmapp_operator.config import Settings
from llmapp_sandbox.apiserver.server import running_apiserver
from llmapp_sandbox.cluster import ApiClient, is_ready
from tests.conftest import needs_terraform
from tests.integration.conftest import CONSENT, CRD, TerraformHooks, TerraformLog, assert_state_sound, state_versions
from tests.integration.operator_process import OperatorProcess
from tests.secrets_scan import secret_for_tests

pytestmark = needs_terraform

NS = "team-k"
SECRET_VALUE = secret_for_tests("kill-test-secret-7f3a9c1e")
KILLS = int(os.environ.get("LLMAPP_FAULT_KILLS", "3"))
SEED = int(os.environ.get("LLMAPP_FAULT_SEED", "20261125"))
STEPS = ("plan", "apply", "destroy")
SANDBOX_INSTANCES = 7


def kill_points() -> list[tuple[str, float]]:
    rng = random.Random(SEED)
    # Up to 0.6 s into a step: before the lock, while holding it, after the state write.
    return [(STEPS[i % len(STEPS)], round(rng.uniform(0.0, 0.6), 3)) for i in range(KILLS)]


def llmapp() -> dict[str, Any]:
    ref = {"secretKeyRef": {"name": "openai", "key": "api-key"}}
    return {"apiVersion": "llmops.dev/v1alpha1", "kind": "LLMApp", "metadata": {"name": "rags", "namespace": NS},
            "spec": {"environment": "dev", "aws": {"region": "us-east-1"}, "github": {"repository": "acme/rags"},
                     "terraform": {"module": "sandbox"},
                     "app": {"secrets": [{"name": "OPENAI_API_KEY", "valueFrom": ref}]}}}


@contextlib.asynccontextmanager
async def operator_and_cluster(settings: Settings, tmp_path: pathlib.Path
                               ) -> AsyncIterator[tuple[ApiClient, OperatorProcess]]:
    """An API server with the app's Secret, and the operator as a process that can be killed."""
    async with running_apiserver([CRD], namespaces=[NS]) as api:
        client = ApiClient(api.url)
        await client.create({"apiVersion": "v1", "kind": "Secret",
                             "metadata": {"name": "openai", "namespace": NS, "annotations": CONSENT},
                             "stringData": {"api-key": SECRET_VALUE}})
        yield client, OperatorProcess(settings, api, tmp_path)


@pytest.mark.parametrize(("step", "delay"), kill_points(),
                         ids=[f"kill{i}-{step}-{delay}s" for i, (step, delay) in enumerate(kill_points())])
async def test_sigkill_and_restart_converges_without_loss(
    step: str, delay: float, settings: Settings, terraform_hooks: TerraformHooks, s3: Any, tmp_path: pathlib.Path
) -> None:
    print(f"kill point: {step} + {delay}s (LLMAPP_FAULT_SEED={SEED})")
    settings = settings.updated(namespaces=(NS,))
    key = state_key(settings.state_key_prefix, NS, "rags")
    async with operator_and_cluster(settings, tmp_path) as (client, operator):
        try:
            await operator.start()
            await client.create(llmapp())
            if step == "destroy":
                await client.wait_for(NS, "rags", is_ready, timeout=60)
                await client.delete(NS, "rags")
            await terraform_hooks.wait(f"started-{step}")
            await asyncio.sleep(delay)
            await operator.kill()

            await operator.start()  # the second life must finish the job
            if step == "destroy":
                assert await client.wait_for(NS, "rags", lambda obj: obj is None, timeout=90) is None
                assert_state_sound(s3, settings.state_bucket, key, expected_instances=0)
            else:
                obj = await client.wait_for(NS, "rags", is_ready, timeout=90)
                assert obj is not None and obj["status"]["phase"] == "Ready", operator.log_tail()
                assert_state_sound(s3, settings.state_bucket, key, expected_instances=SANDBOX_INSTANCES)
                status, events = obj["status"], await client.events(NS, "rags")
                await client.delete(NS, "rags")  # teardown still works after the recovery
                assert await client.wait_for(NS, "rags", lambda o: o is None, timeout=90) is None
                assert_state_sound(s3, settings.state_bucket, key, expected_instances=0)
                for where, text in (("status", str(status)), ("events", str(events))):
                    assert SECRET_VALUE not in text, f"secret leaked into {where}"
        finally:
            await operator.stop()
    assert SECRET_VALUE not in operator.log_text(), "secret leaked into the operator log"
    assert all(SECRET_VALUE not in str(doc) for doc in state_versions(s3, settings.state_bucket, key))
    for file in settings.workdir.rglob("*"):
        if file.is_file():
            assert SECRET_VALUE.encode() not in file.read_bytes(), f"secret leaked into {file}"


async def test_killed_during_the_first_apply_then_deleted_while_down_still_destroys(
    settings: Settings, s3: Any, tmp_path: pathlib.Path, terraform_log: TerraformLog
) -> None:
    """Status never recorded anything (the first apply was running): the applied record, written
    before the apply started, tells the teardown what to destroy; the dead run's lock is its own."""
    settings = settings.updated(namespaces=(NS,))
    key = state_key(settings.state_key_prefix, NS, "rags")
    marker = tmp_path / "hold"
    marker.touch()
    app = llmapp()
    app["spec"]["terraform"] = {"module": "slow-apply", "vars": {"hold_marker": str(marker)}}
    async with operator_and_cluster(settings, tmp_path) as (client, operator):
        try:
            await operator.start()
            await client.create(app)
            for _ in range(1200):
                if (tmp_path / "hold.reached").exists():
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)   # the runner notes the lock it holds
            await operator.kill()
            assert s3.head_object(Bucket=settings.state_bucket, Key=record_key(key))   # written before the apply
            obj = await client.get(NS, "rags")
            assert obj is not None and not (obj.get("status") or {}).get("lastAppliedDigest")

            await client.delete(NS, "rags")   # while no operator runs: the finalizer holds it
            marker.unlink()
            await operator.start()
            assert await client.wait_for(NS, "rags", lambda o: o is None, timeout=90) is None, operator.log_tail()
        finally:
            await operator.stop()
    assert "destroy" in terraform_log.commands() and "force-unlock" in terraform_log.commands()
    locks = [o["Key"] for o in s3.list_objects_v2(Bucket=settings.state_bucket).get("Contents", [])
             if o["Key"].endswith(".tflock") or o["Key"] == record_key(key)]
    assert locks == [], f"left behind: {locks}"
    if any(o["Key"] == key for o in s3.list_objects_v2(Bucket=settings.state_bucket).get("Contents", [])):
        assert_state_sound(s3, settings.state_bucket, key, expected_instances=0)

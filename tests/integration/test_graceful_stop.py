"""SIGTERM in the middle of an apply: the operator's pod stopped (local runner), or a Job's pod
stopped (job-step as the container's process). Terraform gets SIGTERM, saves what it did and
releases its lock; nothing is lost, and the next pass converges.

Settings in these tests: shutdown grace 3 s (running passes may finish), kill grace 5 s
(Terraform's time between SIGTERM and SIGKILL). The resource `held` of the slow-apply module
waits in its provisioner while a marker file exists: the apply is stopped while it holds the lock.
"""

from __future__ import annotations

import asyncio
import pathlib
import time
from typing import Any

from llmapp_operator.api.workspace import state_key
from llmapp_operator.config import Settings
from llmapp_sandbox.apiserver.server import running_apiserver
from llmapp_sandbox.cluster import ApiClient, is_ready
from tests.conftest import needs_terraform
from tests.integration.conftest import CRD, NS, SandboxFactory, assert_state_sound, llmapp
from tests.integration.job_player import JOB_SETTINGS, playing
from tests.integration.operator_process import OperatorProcess, descendants

pytestmark = needs_terraform

SLOW_APPLY_INSTANCES = 2


def held_app(marker: pathlib.Path) -> dict[str, Any]:
    return llmapp(terraform={"module": "slow-apply", "vars": {"hold_marker": str(marker)}})


async def reached(path: pathlib.Path, timeout: float = 60) -> None:
    for _ in range(int(timeout / 0.05)):
        if path.exists():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the apply never reached the held resource ({path})")


def locks(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []) if o["Key"].endswith(".tflock")]


async def test_sigterm_to_the_operator_during_an_apply_leaves_no_lock_and_the_next_life_converges(
    settings: Settings, s3: Any, tmp_path: pathlib.Path
) -> None:
    settings = settings.updated(namespaces=(NS,))
    marker = tmp_path / "hold"
    marker.touch()
    async with running_apiserver([CRD], namespaces=[NS]) as api:
        client = ApiClient(api.url)
        operator = OperatorProcess(settings, api, tmp_path)
        try:
            await operator.start()
            await client.create(held_app(marker))
            await reached(tmp_path / "hold.reached")
            assert operator.process is not None
            terraform = descendants(operator.process.pid)
            assert terraform, "no terraform process under the operator"

            started = time.monotonic()
            operator.process.terminate()   # the kubelet stopping the pod
            code = await asyncio.wait_for(operator.process.wait(), 30)
            stopped_in = time.monotonic() - started
            assert code == 0, operator.log_tail()
            # Within Kopf's exit timeout (shutdown + kill grace + 5 s): before the kubelet's SIGKILL.
            assert stopped_in < settings.shutdown_grace_seconds + settings.kill_grace_seconds + 5, stopped_in
            assert not any(pathlib.Path(f"/proc/{pid}").exists() for pid in terraform), "terraform outlived it"
            assert locks(s3, settings.state_bucket) == [], "the stopped apply left its lock"
            journal = list((settings.workdir / "workspaces").glob("*/runs/*.json"))
            assert journal == [], "a run that stopped cleanly is not a dead run"

            marker.unlink()
            await operator.start()
            obj = await client.wait_for(NS, "rags", is_ready, timeout=90)
            assert obj is not None, operator.log_tail()
            key = state_key(settings.state_key_prefix, NS, "rags")
            assert_state_sound(s3, settings.state_bucket, key, expected_instances=SLOW_APPLY_INSTANCES)
        finally:
            await operator.stop()


async def test_sigterm_to_a_job_s_pod_during_an_apply_stops_terraform_and_the_retry_converges(
    open_sandbox: SandboxFactory, tmp_path: pathlib.Path
) -> None:
    marker = tmp_path / "hold"
    marker.touch()
    async with open_sandbox(**JOB_SETTINGS) as sandbox, playing(
            sandbox, tmp_path, fates=["run", "sigterm"], sigterm_when=tmp_path / "hold.reached") as player:
        await sandbox.client.create(held_app(marker))
        for _ in range(1200):
            if len(player.exits) >= 2:
                break
            await asyncio.sleep(0.05)
        marker.unlink()   # the retry's apply goes through
        (apply_job, fate), code = player.played[1], player.exits.get(player.played[1][0])
        assert fate == "sigterm" and "-apply-" in apply_job
        # job-step handled SIGTERM itself: it stopped Terraform and answered (exit 1, not killed by it).
        assert code == 1, code
        pod_log = (player.workdir / apply_job / "pod.log").read_text()
        assert "JobStopped" in pod_log, pod_log[-2000:]
        assert locks(sandbox.s3, sandbox.settings.state_bucket) == []

        obj = await sandbox.client.wait_for(NS, "rags", is_ready, timeout=120)
        assert obj is not None
        key = state_key(sandbox.settings.state_key_prefix, NS, "rags")
        assert_state_sound(sandbox.s3, sandbox.settings.state_bucket, key, expected_instances=SLOW_APPLY_INSTANCES)

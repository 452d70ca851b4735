"""The S3 state backend (moto) goes away in the middle of an apply and comes back.

Terraform has created resources but cannot save the state or release its lock. The next pass
must push the state Terraform kept in errored.tfstate (so nothing is created twice), release
the lock this dead run left (provably ours), and converge; the state keeps one lineage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import socket
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3

from llmapp_operator.api.conditions import Outcome
from llmapp_operator.api.workspace import state_key
from llmapp_operator.cloud.app_secrets import AppSecrets
from llmapp_operator.cloud.state import StateBackend
from llmapp_operator.config import Settings
from llmapp_operator.engine.reconcile import Deps, Previous, converge
from llmapp_operator.engine.teardown import teardown
from llmapp_operator.runners.local import ERRORED_STATE_FILE, LocalRunner
from tests.conftest import needs_terraform
from tests.integration.conftest import TerraformLog, assert_state_sound, body_of
from tests.integration.test_reconcile_terraform import after, make_app

pytestmark = needs_terraform


class RestartableMoto:
    """moto on one fixed loopback port that can be stopped and started again; its data lives in
    the process (moto's backends), so it survives the outage as S3's would."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server: Any = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


@contextlib.contextmanager
def restartable_moto() -> Iterator[RestartableMoto]:
    moto = RestartableMoto()
    moto.start()
    try:
        yield moto
    finally:
        moto.stop()


def instance_ids(state: dict[str, Any]) -> dict[str, str]:
    return {f"{r['type']}.{r['name']}": i["attributes"]["id"] for r in state.get("resources", [])
            if r.get("mode") == "managed" for i in r.get("instances", [])}


async def test_backend_outage_mid_apply_loses_nothing(
    settings: Settings, deps: Deps, tmp_path: pathlib.Path, terraform_log: TerraformLog, moto_endpoint: str
) -> None:
    with restartable_moto() as moto:
        # One S3 retry: the outage then fails the run in seconds rather than after the default backoff.
        settings = settings.updated(aws_endpoint_url=moto.endpoint, state_max_retries=1)
        deps = replace(deps, settings=settings, runner=LocalRunner(settings), backend=StateBackend(moto.endpoint),
                       app_secrets=AppSecrets(moto.endpoint))
        s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1")
        hold = tmp_path / "hold"
        hold.touch()
        app = make_app(terraform={"module": "slow-apply", "vars": {"hold_marker": str(hold)}})

        running = asyncio.create_task(converge(app, deps, Previous()))
        reached = pathlib.Path(f"{hold}.reached")
        for _ in range(1500):
            if reached.exists() or running.done():
                break
            await asyncio.sleep(0.02)
        assert reached.exists(), "apply never reached the held resource"
        moto.stop()  # S3 goes away while terraform is creating resources
        hold.unlink()
        failed = await running
        assert failed.transient, failed.report.message
        assert failed.report.outcome is Outcome.RETRYING

        workspace = next(settings.workdir.rglob(ERRORED_STATE_FILE))
        created = instance_ids(json.loads(workspace.read_text()))
        assert set(created) == {"terraform_data.first", "terraform_data.held"}

        moto.start()  # S3 is back
        done = await converge(app, deps, after(Previous(), failed))
        assert done.error is None, done.report.message
        assert done.report.outcome is Outcome.APPLIED

        key = state_key(settings.state_key_prefix, "team-a", "rags")
        assert_state_sound(s3, settings.state_bucket, key, expected_instances=2)
        final = json.loads(s3.get_object(Bucket=settings.state_bucket, Key=key)["Body"].read())
        assert instance_ids(final) == created, "a resource was created twice"
        assert "state" in terraform_log.commands()  # the saved state was pushed (`state push`)

        gone = await teardown(body_of(app), deps)
        assert gone.error is None, gone.report.message
        assert_state_sound(s3, settings.state_bucket, key, expected_instances=0)

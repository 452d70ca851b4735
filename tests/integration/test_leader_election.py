"""High availability with two operator processes: exactly one reconciles (it holds the leader
Lease), the other stands by; after the leader is SIGKILLed the standby takes over within the lease
bound, and no object is handled twice (no Terraform run is repeated for an applied object).

Both run as the chart's ServiceAccount under enforced RBAC (the Lease rights come from the chart's
leader Role), as separate processes with their own workspaces, as two Pods would."""

from __future__ import annotations

import asyncio
import pathlib
import time
from typing import Any

from llmapp_operator.config import Settings
from llmapp_sandbox.apiserver.server import RunningApiServer, running_apiserver
from llmapp_sandbox.cluster import ApiClient, is_ready
from tests.chart_render import RELEASE, RELEASE_NAMESPACE, rbac_objects
from tests.conftest import needs_terraform
from tests.integration.conftest import CRD, NS, TerraformLog, llmapp
from tests.integration.operator_process import OperatorProcess

pytestmark = needs_terraform

LEASE_SECONDS, RENEW_SECONDS, RETRY_SECONDS = 3.0, 2.0, 0.5


def holder(api: RunningApiServer) -> str | None:
    lease = api.server.get_object("leases", RELEASE_NAMESPACE, RELEASE)
    return None if lease is None else lease["spec"].get("holderIdentity")


async def until(predicate: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} within {timeout} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def probe(port: int) -> int:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/healthz") as response:
        return response.status


def runs_per_object(log: TerraformLog, uids: dict[str, str], step: str) -> dict[str, int]:
    lines = log.path.read_text().splitlines() if log.path.exists() else []
    return {name: sum(1 for line in lines if uid in line and line.split()[1] == step) for name, uid in uids.items()}


async def test_one_replica_reconciles_and_the_standby_takes_over_after_sigkill(
        settings: Settings, terraform_log: TerraformLog, tmp_path: pathlib.Path) -> None:
    base = settings.updated(namespaces=(NS,), leader_election=True, leader_election_namespace=RELEASE_NAMESPACE,
                   leader_election_name=RELEASE, lease_duration_seconds=LEASE_SECONDS,
                   lease_renew_deadline_seconds=RENEW_SECONDS, lease_retry_seconds=RETRY_SECONDS)
    async with running_apiserver([CRD], namespaces=[NS], rbac=True, owner_references_enforcement=True) as api:
        api.server.apply_manifests(rbac_objects({"replicas": 2}))
        token = api.server.tokens.mint_service_account_token(RELEASE_NAMESPACE, RELEASE)
        client = ApiClient(api.url, token=api.admin_token)
        first = OperatorProcess(base.updated(workdir=tmp_path / "a"), api, tmp_path, token=token, name="replica-a")
        port = free_port()
        standby = base.updated(workdir=tmp_path / "b", liveness_endpoint=f"http://127.0.0.1:{port}/healthz")
        second = OperatorProcess(standby,
                                 api, tmp_path, token=token, name="replica-b")
        try:
            await first.start()                      # takes the Lease, then watches LLMApps
            assert holder(api) == "replica-a"
            watches = api.server.request_counts[("WATCH", "llmapps", None)]
            await second.start(wait=False)
            await asyncio.sleep(2 * LEASE_SECONDS)   # long enough to take an unrenewed lease
            assert holder(api) == "replica-a", "the standby took the lease from a live leader"
            assert api.server.request_counts[("WATCH", "llmapps", None)] == watches, "the standby watches LLMApps"
            assert await probe(port) == 200, "a standby must pass its probes (or rolling updates never finish)"

            uids = {}
            for name in ("app-1", "app-2", "app-3"):
                uids[name] = (await client.create(llmapp(name)))["metadata"]["uid"]
            for name in uids:
                await client.wait_for(NS, name, is_ready, timeout=90)
            assert runs_per_object(terraform_log, uids, "apply") == dict.fromkeys(uids, 1)

            await first.kill()                       # SIGKILL, Terraform children included: no release
            took = await until(lambda: holder(api) == "replica-b", LEASE_SECONDS + 4 * RETRY_SECONDS + 5,
                               "the standby took over")
            assert took <= LEASE_SECONDS + 4 * RETRY_SECONDS + 5
            await until(lambda: api.server.request_counts[("WATCH", "llmapps", None)] > watches, 30,
                        "the new leader watches LLMApps")

            uids["app-4"] = (await client.create(llmapp("app-4")))["metadata"]["uid"]
            await client.wait_for(NS, "app-4", is_ready, timeout=90)
            await asyncio.sleep(1.0)                 # the resumed objects had their chance to run again
            for name in uids:
                assert is_ready(await client.get(NS, name)), name
            # Every object applied exactly once: the new leader resumed the old ones without Terraform.
            assert runs_per_object(terraform_log, uids, "apply") == dict.fromkeys(uids, 1)
            assert runs_per_object(terraform_log, uids, "plan") == dict.fromkeys(uids, 1)
            assert not api.server.denied, f"RBAC refused: {api.server.denied}"

            await second.stop()                      # SIGTERM: a clean stop releases the Lease
            assert holder(api) == ""
        finally:
            await first.stop()
            await second.stop()
        print(f"failover after SIGKILL: {took:.1f} s (lease {LEASE_SECONDS} s, retry {RETRY_SECONDS} s)")

"""The operator converges through Kubernetes API faults: conflicts, dropped watches, 410 Gone."""

from __future__ import annotations

import pytest

from llmapp_sandbox.cluster import is_ready
from tests.conftest import needs_terraform
from tests.integration.conftest import NS, SandboxFactory, llmapp

pytestmark = needs_terraform


@pytest.mark.parametrize("status", [409, 500])
async def test_failed_status_patches_are_retried(open_sandbox: SandboxFactory, status: int) -> None:
    async with open_sandbox() as sandbox:
        sandbox.api.server.fail_next("PATCH", "llmapps", status, subresource="status", times=2)
        await sandbox.client.create(llmapp())
        obj = await sandbox.client.wait_for(NS, "rags", is_ready, timeout=60)
        assert obj is not None and obj["status"]["url"]


async def test_dropped_watch_and_410_gone_do_not_lose_changes(open_sandbox: SandboxFactory) -> None:
    async with open_sandbox() as sandbox:
        api, client = sandbox.api, sandbox.client
        await client.create(llmapp())
        await client.wait_for(NS, "rags", is_ready)

        # The stream breaks and, while it is down, the history it would resume from expires.
        lists_before = api.server.request_counts[("LIST", "llmapps", None)]
        api.server.expire_history()
        api.server.drop_watches()
        await client.patch(NS, "rags", {"spec": {"app": {"healthCheckPath": "/healthz"}}})
        obj = await client.wait_for(
            NS, "rags", lambda o: is_ready(o) and o["metadata"]["generation"] == 2, timeout=90
        )
        assert obj is not None and obj["status"]["plan"]["change"] == 1
        # The resumed watch got 410 Gone and Kopf listed again instead of missing the change.
        assert api.server.request_counts[("LIST", "llmapps", None)] > lists_before

"""The operator converges through Kubernetes API faults: conflicts, dropped watches, 410 Gone."""

from __future__ import annotations

import pathlib
from dataclasses import replace

import pytest

from llmapp_operator.config import Settings
from llmapp_operator.reconcile import Deps
from llmapp_operator.sandbox.cluster import ApiClient, is_ready, running_operator, use_kubeconfig
from llmapp_operator.sandbox.kube_emulator import running_apiserver
from tests.conftest import needs_terraform
from tests.integration.conftest import TerraformLog
from tests.integration.test_operator import CRD, NS, llmapp

pytestmark = needs_terraform


@pytest.mark.parametrize("status", [409, 500])
async def test_failed_status_patches_are_retried(
    settings: Settings, deps: Deps, tmp_path: pathlib.Path, status: int
) -> None:
    settings = replace(settings, namespaces=(NS,))
    async with running_apiserver([CRD]) as api:
        use_kubeconfig(api.write_kubeconfig(tmp_path / "kubeconfig", NS))
        api.server.fail_next("PATCH", "llmapps", status, subresource="status", times=2)
        async with running_operator(settings, replace(deps, settings=settings)):
            client = ApiClient(api.url)
            await client.create(llmapp())
            obj = await client.wait_for(NS, "rags", is_ready, timeout=60)
            assert obj is not None and obj["status"]["url"]


async def test_dropped_watch_and_410_gone_do_not_lose_changes(
    settings: Settings, deps: Deps, tmp_path: pathlib.Path, terraform_log: TerraformLog
) -> None:
    settings = replace(settings, namespaces=(NS,))
    async with running_apiserver([CRD]) as api:
        use_kubeconfig(api.write_kubeconfig(tmp_path / "kubeconfig", NS))
        async with running_operator(settings, replace(deps, settings=settings)):
            client = ApiClient(api.url)
            await client.create(llmapp())
            await client.wait_for(NS, "rags", is_ready)

            # The stream breaks and, while it is down, the history it would resume from expires.
            lists_before = api.server.request_counts[("LIST", "llmapps", None)]
            api.server.expire_history()
            api.server.drop_watches()
            await client.patch(NS, "rags", {"spec": {"app": {"desiredCount": 2}}})
            obj = await client.wait_for(
                NS, "rags", lambda o: is_ready(o) and o["metadata"]["generation"] == 2, timeout=90
            )
            assert obj is not None and obj["status"]["plan"]["change"] == 1
            # The resumed watch got 410 Gone and Kopf listed again instead of missing the change.
            assert api.server.request_counts[("LIST", "llmapps", None)] > lists_before

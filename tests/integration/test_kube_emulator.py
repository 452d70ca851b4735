"""The sandbox API server behaves like a real one where Kopf and the status logic depend on it."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import yaml

from llmapp_sandbox.apiserver.server import running_apiserver
from tests.conftest import REPO

CRD = yaml.safe_load((REPO / "crds" / "llmapp.yaml").read_text())
PATH = "/apis/llmops.dev/v1alpha1/namespaces/ns/llmapps"
OBJ = {
    "apiVersion": "llmops.dev/v1alpha1",
    "kind": "LLMApp",
    "metadata": {"name": "a"},
    "spec": {"x": 1},
    "status": {"ignored": True},
}


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    body: Any = None,
    content_type: str = "application/merge-patch+json",
) -> tuple[int, Any]:
    async with session.request(method, url, json=body, headers={"Content-Type": content_type}) as response:
        return response.status, await response.json()


async def test_create_generation_status_subresource_and_conflicts() -> None:
    async with running_apiserver([CRD]) as api, aiohttp.ClientSession() as session:
        status, created = await call(session, "POST", api.url + PATH, OBJ)
        assert status == 201 and "status" not in created
        meta = created["metadata"]
        assert meta["uid"] and meta["generation"] == 1 and meta["creationTimestamp"]
        assert (await call(session, "POST", api.url + PATH, OBJ))[0] == 409

        _, patched = await call(
            session, "PATCH", f"{api.url}{PATH}/a/status", {"status": {"phase": "Ready"}, "spec": {"x": 9}}
        )
        assert patched["status"] == {"phase": "Ready"} and patched["spec"] == {"x": 1}
        assert patched["metadata"]["generation"] == 1  # status writes never bump generation
        _, patched = await call(session, "PATCH", f"{api.url}{PATH}/a", {"spec": {"x": 2}, "status": {"phase": "X"}})
        assert patched["metadata"]["generation"] == 2 and patched["status"] == {"phase": "Ready"}
        rv = patched["metadata"]["resourceVersion"]
        _, same = await call(session, "PATCH", f"{api.url}{PATH}/a", {"spec": {"x": 2}})
        assert same["metadata"]["resourceVersion"] == rv  # no-op writes are elided

        bad_test = [{"op": "test", "path": "/metadata/resourceVersion", "value": "0"}]
        status, _ = await call(session, "PATCH", f"{api.url}{PATH}/a", bad_test, "application/json-patch+json")
        assert status == 422

        status, _ = await call(session, "POST", api.url + PATH, {**OBJ, "metadata": {"generateName": "gen-"}})
        assert status == 201


async def test_watch_replays_what_happened_after_the_list() -> None:
    async with running_apiserver([CRD]) as api, aiohttp.ClientSession() as session:
        await call(session, "POST", api.url + PATH, OBJ)
        _, listing = await call(session, "GET", api.url + PATH)
        since = listing["metadata"]["resourceVersion"]
        await call(session, "POST", api.url + PATH, {**OBJ, "metadata": {"name": "b"}})  # between LIST and WATCH
        url = f"{api.url}{PATH}?watch=true&resourceVersion={since}&timeoutSeconds=1"
        async with session.get(url) as response:
            events = [json.loads(line) for line in (await response.read()).splitlines() if line.strip()]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "b")]


async def test_finalizers_hold_deletion_until_released() -> None:
    async with running_apiserver([CRD]) as api, aiohttp.ClientSession() as session:
        await call(session, "POST", api.url + PATH, {**OBJ, "metadata": {"name": "a", "finalizers": ["x/y"]}})
        status, deleting = await call(session, "DELETE", f"{api.url}{PATH}/a")
        assert status == 200 and deleting["metadata"]["deletionTimestamp"]
        await call(session, "PATCH", f"{api.url}{PATH}/a", {"metadata": {"finalizers": None}})
        assert (await call(session, "GET", f"{api.url}{PATH}/a"))[0] == 404

"""Run the real operator in this event loop against the sandbox API server, and talk to it.

Shared by `make demo` and the integration tests, so both exercise the same path users get:
Kopf's own login from a kubeconfig, watch streams, finalizers, status patches and Events.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from llmapp_operator import GROUP, PLURAL, VERSION
from llmapp_operator.config import Settings

USER_AGENT = "llmapp-sandbox-client"
"""How the emulator tells this test/demo client from the operator (Kopf, the kubernetes client)."""


class ApiRefused(Exception):
    """The API server refused a request; `message` is its own explanation (what kubectl prints)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message


class ApiClient:
    """The few REST calls `kubectl apply/get/delete` make, over aiohttp (no kubeconfig parsing)."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def _path(self, namespace: str, name: str | None = None, *, plural: str = PLURAL,
              group: str | None = GROUP, version: str = VERSION) -> str:
        base = f"/apis/{group}/{version}" if group else f"/api/{version}"
        path = f"{self.url}{base}/namespaces/{namespace}/{plural}"
        return f"{path}/{name}" if name else path

    async def _call(self, method: str, url: str, body: Any = None, content_type: str | None = None) -> Any:
        headers = {"User-Agent": USER_AGENT, **({"Content-Type": content_type} if content_type else {}),
                   **({"Authorization": f"Bearer {self.token}"} if self.token else {})}
        async with aiohttp.ClientSession() as session, session.request(
            method, url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
        ) as response:
            if response.status == 404:
                return None
            if response.status >= 400:
                body = await response.json(content_type=None)
                body = body if isinstance(body, dict) else {}
                raise ApiRefused(response.status, str(body.get("reason", "")), str(body.get("message", "")))
            return await response.json()

    async def create(self, obj: Mapping[str, Any]) -> Any:
        namespace = obj["metadata"].get("namespace", "default")
        if obj.get("kind") == "Secret":
            return await self._call("POST", self._path(namespace, plural="secrets", group=None, version="v1"),
                                    dict(obj))
        return await self._call("POST", self._path(namespace), dict(obj))

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        result = await self._call("GET", self._path(namespace, name))
        return result if isinstance(result, dict) else None

    async def patch(self, namespace: str, name: str, patch: Mapping[str, Any]) -> Any:
        return await self._call("PATCH", self._path(namespace, name), dict(patch), "application/merge-patch+json")

    async def delete(self, namespace: str, name: str) -> Any:
        return await self._call("DELETE", self._path(namespace, name))

    async def events(self, namespace: str, name: str | None = None) -> list[dict[str, Any]]:
        result = await self._call("GET", self._path(namespace, plural="events", group=None, version="v1"))
        items = (result or {}).get("items", [])
        # An API server lists in key (name) order; Event names are random: order them as they happened.
        items.sort(key=lambda e: int(e["metadata"].get("resourceVersion") or 0))
        return [e for e in items if name is None or e.get("involvedObject", {}).get("name") == name]

    async def wait_for(self, namespace: str, name: str, predicate: Any, timeout: float = 60.0,
                       interval: float = 0.1) -> dict[str, Any] | None:
        """Poll until predicate(obj) is true (obj may be None: gone); return the last object."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            obj = await self.get(namespace, name)
            if predicate(obj):
                return obj
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{namespace}/{name} did not reach the expected state; last: {obj}")
            await asyncio.sleep(interval)


def condition(obj: Mapping[str, Any] | None, cond_type: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == cond_type:
            return dict(cond)
    return None


def is_ready(obj: Mapping[str, Any] | None) -> bool:
    """kstatus: Ready=True for the current generation."""
    cond = condition(obj, "Ready")
    generation = ((obj or {}).get("metadata") or {}).get("generation")
    return bool(cond and cond.get("status") == "True" and cond.get("observedGeneration") == generation)


def use_kubeconfig(path: pathlib.Path) -> None:
    """Point Kopf's login (via the kubernetes client) and the client itself at this kubeconfig."""
    import kubernetes

    os.environ["KUBECONFIG"] = str(path)
    kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(path)
    kubernetes.client.Configuration.set_default(kubernetes.client.Configuration())


@dataclass
class RunningOperator:
    task: asyncio.Task[None]
    deps: Any


@contextlib.asynccontextmanager
async def running_operator(settings: Settings, deps: Any = None) -> AsyncIterator[RunningOperator]:
    """The real operator (`serve`) as a task in this loop; stopped cleanly on exit."""
    from llmapp_operator.kopf_app.wiring import build_deps, serve

    deps = deps or build_deps(settings)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(settings, stop_flag=stop, ready_flag=ready, deps=deps))
    ready_wait = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait({task, ready_wait}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready_wait.cancel()
        task.result()  # raises what stopped the operator
        raise RuntimeError("the operator exited before it was ready")
    if ready_wait not in done:
        stop.set()
        raise TimeoutError("the operator did not become ready within 30 s")
    try:
        yield RunningOperator(task=task, deps=deps)
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 30)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

"""The health endpoint the Pod's liveness and readiness probes call.

Ours rather than Kopf's: a standby replica (waiting for the leader Lease) runs no Kopf, yet it is
healthy and must stay Ready, or a rolling update would wait forever for it.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

import aiohttp.web


class HealthServer:
    def __init__(self, endpoint: str, healthy: Callable[[], str | None]) -> None:
        """`endpoint` like http://0.0.0.0:8080/healthz; `healthy()` returns None when healthy, else why not."""
        url = urllib.parse.urlsplit(endpoint)
        self.host, self.port, self.path = url.hostname or "0.0.0.0", url.port or 8080, url.path or "/healthz"
        self._healthy = healthy
        self._runner: aiohttp.web.AppRunner | None = None

    async def _probe(self, _: aiohttp.web.Request) -> aiohttp.web.Response:
        problem = self._healthy()
        return aiohttp.web.Response(text=problem or "ok", status=500 if problem else 200)

    async def start(self) -> None:
        app = aiohttp.web.Application()
        app.router.add_get(self.path, self._probe)
        self._runner = aiohttp.web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await aiohttp.web.TCPSite(self._runner, self.host, self.port, shutdown_timeout=0.5).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

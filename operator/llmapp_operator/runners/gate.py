"""The global bound on concurrent Terraform runs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from llmapp_operator.obs import metrics


@dataclass
class RunGate:
    """The global bound on objects running Terraform at once, with figures for benchmarks."""

    limit: int
    in_flight: int = 0
    max_in_flight: int = 0
    waiting: int = 0
    _semaphore: asyncio.Semaphore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._semaphore = asyncio.Semaphore(self.limit)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        self.waiting += 1
        metrics.RUNS_QUEUED.inc()
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
            metrics.RUNS_QUEUED.dec()
        self.in_flight += 1
        metrics.RUNS_IN_FLIGHT.inc()
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            self.in_flight -= 1
            metrics.RUNS_IN_FLIGHT.dec()
            self._semaphore.release()



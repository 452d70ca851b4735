"""The global bound on concurrent Terraform runs, and the drift checks' share of it.

`limit` runs at once in all. Drift checks (a plan nobody asked for) may hold at most `drift_limit`
of the slots, and whenever a slot frees up, a waiting spec change, retry or teardown gets it before
a waiting drift check: with every object's drift check due at once, spec changes still start as
soon as any run ends, and never wait behind the whole drift queue. Waiters of one kind are served
first come, first served.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from llmapp_operator.obs import metrics


@dataclass
class RunGate:
    """The bound on objects running Terraform at once, with figures for benchmarks."""

    limit: int
    drift_limit: int | None = None      # None: drift checks may use every slot (still served last)
    in_flight: int = 0
    max_in_flight: int = 0
    drift_in_flight: int = 0
    max_drift_in_flight: int = 0
    _waiting: collections.deque[asyncio.Future[None]] = field(init=False, repr=False,
                                                            default_factory=collections.deque)
    _drift_waiting: collections.deque[asyncio.Future[None]] = field(init=False, repr=False,
                                                                  default_factory=collections.deque)

    @property
    def waiting(self) -> int:
        return len(self._waiting) + len(self._drift_waiting)

    @property
    def drift_waiting(self) -> int:
        return len(self._drift_waiting)

    @contextlib.asynccontextmanager
    async def slot(self, *, drift: bool = False) -> AsyncIterator[None]:
        kind = "drift" if drift else "change"
        started = time.monotonic()
        await self._acquire(drift)
        metrics.RUN_SLOT_WAIT_SECONDS.labels(kind=kind).observe(time.monotonic() - started)
        try:
            yield
        finally:
            self._release(drift)

    def _free_for(self, drift: bool) -> bool:
        if self.in_flight >= self.limit:
            return False
        if not drift:
            return True
        return not self._waiting and (self.drift_limit is None or self.drift_in_flight < self.drift_limit)

    async def _acquire(self, drift: bool) -> None:
        queue = self._drift_waiting if drift else self._waiting
        if not queue and self._free_for(drift):
            self._take(drift)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(future)
        self._gauges()
        try:
            await future       # _hand_over has taken the slot for us when it resolves the future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release(drift)      # granted and cancelled in the same tick: give it back
            else:
                queue.remove(future)
                self._gauges()
            raise

    def _take(self, drift: bool) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if drift:
            self.drift_in_flight += 1
            self.max_drift_in_flight = max(self.max_drift_in_flight, self.drift_in_flight)
        self._gauges()

    def _release(self, drift: bool) -> None:
        self.in_flight -= 1
        if drift:
            self.drift_in_flight -= 1
        self._hand_over()
        self._gauges()

    def _hand_over(self) -> None:
        """Give free slots to waiters: spec changes first, then drift checks within their share."""
        for drift, queue in ((False, self._waiting), (True, self._drift_waiting)):
            while queue and self._free_for(drift):
                future = queue.popleft()
                if future.done():
                    continue
                self._take(drift)
                future.set_result(None)

    def _gauges(self) -> None:
        metrics.RUNS_IN_FLIGHT.set(self.in_flight)
        metrics.RUNS_QUEUED.set(self.waiting)
        metrics.DRIFT_CHECKS_RUNNING.set(self.drift_in_flight)
        metrics.DRIFT_CHECKS_WAITING.set(len(self._drift_waiting))

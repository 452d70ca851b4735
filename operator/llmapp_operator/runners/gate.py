"""The global bound on concurrent Terraform runs, and the drift checks' share of it.

`limit` runs at once in all. Drift checks (a plan nobody asked for) may hold at most `drift_limit`
of the slots, and whenever a slot frees up, a waiting spec change, retry or teardown gets it before
a waiting drift check: with every object's drift check due at once, spec changes still start as
soon as any run ends, and never wait behind the whole drift queue. Waiters of one kind are served
first come, first served.

A drift check still waiting for its slot gives way when a spec change (or a request, or the
deletion) arrives for the same object: the object's worker sets the event in `PREEMPT`, and the
wait ends with `Preempted`, so the worker runs the change at once instead of after the queue.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from llmapp_operator.obs import metrics

PREEMPT: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar("llmapp_drift_preempt", default=None)
"""Set by an object's worker for its passes: when the event is set, a drift check of that object
that has not got its slot yet stops waiting (engine/worker.py sets it on a spec change)."""


class Preempted(BaseException):
    """A drift check that was waiting for its slot gave way to newer work on the same object.

    A BaseException, like CancelledError: nothing had started, nothing is to be reported, and no
    `except Exception` on the way may turn it into a failure."""


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
        preempt = PREEMPT.get() if drift else None
        if preempt is not None and preempt.is_set():
            raise Preempted
        queue = self._drift_waiting if drift else self._waiting
        if not queue and self._free_for(drift):
            self._take(drift)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(future)
        self._gauges()
        try:
            # _hand_over has taken the slot for us when it resolves the future.
            if preempt is None:
                await future
            else:
                await _first_of(future, preempt)
                if not future.done():
                    raise Preempted
        except (asyncio.CancelledError, Preempted):
            if future.done() and not future.cancelled():
                self._release(drift)      # granted and given up in the same tick: give it back
            else:
                future.cancel()
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


async def _first_of(future: asyncio.Future[None], event: asyncio.Event) -> None:
    """Wait until the slot is granted or the event is set, whichever comes first."""
    waiter: asyncio.Future[Any] = asyncio.ensure_future(event.wait())
    watched: set[asyncio.Future[Any]] = {future, waiter}
    try:
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()

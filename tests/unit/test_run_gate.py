"""The run gate: a global bound, a drift share of it, and spec changes served first."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llmapp_operator.runners.gate import RunGate


async def hold(gate: RunGate, log: list[str], name: str, release: asyncio.Event, *, drift: bool) -> None:
    async with gate.slot(drift=drift):
        log.append(name)
        await release.wait()


async def test_drift_checks_never_exceed_their_share_and_changes_go_first() -> None:
    gate, log, release = RunGate(4, drift_limit=1), [], asyncio.Event()
    drifts = [asyncio.create_task(hold(gate, log, f"drift-{n}", release, drift=True)) for n in range(20)]
    await asyncio.sleep(0.01)
    assert gate.drift_in_flight == 1 and gate.drift_waiting == 19
    # Spec changes arriving behind twenty waiting drift checks start at once: the share leaves room.
    changes = [asyncio.create_task(hold(gate, log, f"change-{n}", release, drift=False)) for n in range(5)]
    await asyncio.sleep(0.01)
    assert gate.in_flight == 4 and log[:4] == ["drift-0", "change-0", "change-1", "change-2"]
    release.set()
    await asyncio.gather(*drifts, *changes)
    assert gate.max_in_flight == 4 and gate.max_drift_in_flight == 1
    # change-3 and change-4 got the first freed slots, before any waiting drift check.
    assert log.index("change-4") < log.index("drift-1")
    assert gate.in_flight == gate.drift_in_flight == gate.waiting == 0


async def test_a_freed_slot_goes_to_a_waiting_change_before_a_waiting_drift_check() -> None:
    gate, log = RunGate(1, drift_limit=1), []
    first = asyncio.Event()
    running = asyncio.create_task(hold(gate, log, "change-0", first, drift=False))
    await asyncio.sleep(0.01)
    done = asyncio.Event()
    done.set()
    drift = asyncio.create_task(hold(gate, log, "drift", done, drift=True))          # waits first
    await asyncio.sleep(0.01)
    change = asyncio.create_task(hold(gate, log, "change-1", done, drift=False))     # waits second
    await asyncio.sleep(0.01)
    first.set()
    await asyncio.gather(running, drift, change)
    assert log == ["change-0", "change-1", "drift"]


@pytest.mark.parametrize("drift", [False, True])
async def test_a_waiter_cancelled_leaves_no_slot_taken_and_no_place_in_the_queue(drift: bool) -> None:
    gate, log, release = RunGate(1, drift_limit=1), [], asyncio.Event()
    running = asyncio.create_task(hold(gate, log, "first", release, drift=False))
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(hold(gate, log, "cancelled", release, drift=drift))
    await asyncio.sleep(0.01)
    assert gate.waiting == 1
    waiter.cancel()
    await asyncio.sleep(0.01)
    assert gate.waiting == 0
    release.set()
    await running
    assert gate.in_flight == 0 and log == ["first"]
    async with gate.slot(drift=drift):   # the slot is free again
        assert gate.in_flight == 1


async def test_a_queued_drift_check_gives_way_to_a_spec_change_of_its_object() -> None:
    """The object's worker folds the drift check into the change instead of queueing the change
    behind every other object's drift check."""
    from llmapp_operator.api.conditions import Outcome, Report
    from llmapp_operator.config import Settings
    from llmapp_operator.engine.worker import Reason, Scheduler

    gate, busy = RunGate(2, drift_limit=1), asyncio.Event()
    passes: list[tuple[frozenset[Reason], bool]] = []

    class Result:
        def __init__(self, generation: int) -> None:
            self.report = Report(Outcome.APPLIED, "Applied", "applied", generation)
            self.error, self.fields, self.warnings = None, {}, ()

    async def run(body: Any, reasons: frozenset[Reason], progress: Any) -> Result:
        drift = reasons == {Reason.DRIFT}
        async with gate.slot(drift=drift):
            passes.append((reasons, drift))
        return Result(int(body["metadata"]["generation"]))

    class Publisher:
        async def status(self, body: Any, result: Any, *, final: bool) -> None:
            return None

        async def forget(self, body: Any) -> None:
            return None

    async def teardown(body: Any) -> Result:
        return Result(1)

    scheduler = Scheduler(Settings().updated(resync_seconds=0, progress_delay_seconds=0), run, teardown, Publisher())
    body = {"metadata": {"uid": "u1", "namespace": "ns", "name": "a", "generation": 1},
            "spec": {"driftDetection": {"interval": "1h"}}}
    scheduler.observe(body)
    await asyncio.sleep(0.05)
    holder = asyncio.create_task(hold(gate, [], "other-drift", busy, drift=True))   # the drift share is taken
    await asyncio.sleep(0.01)
    state = scheduler.objects["u1"]
    state.due[Reason.DRIFT] = 0.0
    scheduler.poke("u1")
    await asyncio.sleep(0.05)
    assert gate.drift_waiting == 1                  # our drift check waits behind the other one
    scheduler.observe({**body, "metadata": {**body["metadata"], "generation": 2}})
    await asyncio.sleep(0.05)
    assert gate.drift_waiting == 0, "the drift check still waits"
    assert passes[-1][0] == {Reason.DRIFT, Reason.SPEC} and not passes[-1][1], passes
    busy.set()
    await holder
    await scheduler.stop(1)

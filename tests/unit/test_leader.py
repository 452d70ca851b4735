"""Leader election on a Lease (kube/leader.py) with client-go's rules, against an in-memory API
that answers like the API server (404, 409 on a stale resourceVersion)."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from llmapp_operator.kube.leader import LeaderElector, LeaseConfig, LeaseConflict


class FakeLeases:
    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.down = False

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        if self.down:
            raise OSError("connection refused")
        return copy.deepcopy(self.lease)

    async def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.lease is not None:
            raise LeaseConflict("AlreadyExists")
        self.version += 1
        self.lease = {**copy.deepcopy(body), "metadata": {**body["metadata"], "resourceVersion": str(self.version)}}
        return copy.deepcopy(self.lease)

    async def replace(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self.lease is not None
        if body["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            raise LeaseConflict("Conflict")
        self.version += 1
        self.lease = {**copy.deepcopy(body), "metadata": {**body["metadata"], "resourceVersion": str(self.version)}}
        return copy.deepcopy(self.lease)

    @property
    def holder(self) -> str | None:
        return None if self.lease is None else self.lease["spec"]["holderIdentity"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(api: FakeLeases, identity: str, clock: Clock) -> LeaderElector:
    config = LeaseConfig(namespace="ops", name="llmapp-operator", identity=identity, lease_seconds=15,
                         renew_deadline_seconds=10, retry_seconds=2)
    start = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    return LeaderElector(config, api, clock=clock, wall=lambda: start + datetime.timedelta(seconds=clock.now))


async def test_first_candidate_creates_the_lease_and_the_second_waits_for_it_to_expire() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    assert await a.try_acquire_or_renew() and api.holder == "a"
    assert not await b.try_acquire_or_renew()          # held, just renewed
    clock.now += 14
    assert not await b.try_acquire_or_renew()          # b saw the record 14 s ago: not expired yet
    assert await a.try_acquire_or_renew()               # a renews: the record changes ...
    clock.now += 14
    assert not await b.try_acquire_or_renew()          # ... so b starts counting again
    clock.now += 16                                     # a died: no renewal for longer than the lease
    assert await b.try_acquire_or_renew() and api.holder == "b"
    assert api.lease is not None and api.lease["spec"]["leaseTransitions"] == 1


async def test_expiry_is_judged_on_the_candidate_s_own_clock_not_on_the_holder_s_timestamps() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    await a.try_acquire_or_renew()
    assert api.lease is not None
    api.lease["spec"]["renewTime"] = "2000-01-01T00:00:00.000000Z"   # a holder whose clock is far behind
    assert not await b.try_acquire_or_renew()


async def test_two_candidates_racing_for_an_expired_lease_one_wins() -> None:
    api, clock = FakeLeases(), Clock()
    a, b, c = elector(api, "a", clock), elector(api, "b", clock), elector(api, "c", clock)
    await a.try_acquire_or_renew()
    await b.try_acquire_or_renew()
    await c.try_acquire_or_renew()
    clock.now += 20
    stale = await api.get("ops", "llmapp-operator")
    assert await b.try_acquire_or_renew()
    api_replace = api.replace

    async def replace_with_stale_version(namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        assert stale is not None
        body["metadata"]["resourceVersion"] = stale["metadata"]["resourceVersion"]   # c read before b wrote
        return await api_replace(namespace, name, body)

    api.replace = replace_with_stale_version  # type: ignore[method-assign]
    assert not await c.try_acquire_or_renew()            # 409: c stays a candidate
    assert api.holder == "b"


async def test_a_released_lease_is_taken_at_once() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    await a.release()
    assert api.holder == "" and not a.is_leader
    assert await b.try_acquire_or_renew() and api.holder == "b"


async def test_a_holder_that_cannot_renew_gives_up_after_the_renew_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    api, clock = FakeLeases(), Clock()
    a = elector(api, "a", clock)
    await a.try_acquire_or_renew()

    async def tick(_: float) -> None:
        clock.now += 2

    monkeypatch.setattr("asyncio.sleep", tick)
    api.down = True
    await a.hold()      # returns once 10 s passed without a renewal
    assert not a.is_leader and 1010 <= clock.now <= 1012


def test_timings_must_nest() -> None:
    with pytest.raises(ValueError, match="retry < renew deadline < lease duration"):
        LeaseConfig(namespace="n", name="l", identity="i", lease_seconds=10, renew_deadline_seconds=10)

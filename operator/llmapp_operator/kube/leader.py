"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

Several operator replicas may run; exactly one (the Lease's holder) runs Kopf and reconciles.
Kopf's own peering cannot do this: peers of equal priority pause each other, all of them. The
rules, from client-go (tools/leaderelection/leaderelection.go):

- A candidate takes the Lease when it does not exist, when its holder is empty (released), or when
  the record has not changed for `leaseDurationSeconds` as observed on the candidate's own clock
  (never the holder's timestamps: clocks differ between nodes). Every write carries the Lease's
  resourceVersion, so of two candidates racing, one gets 409 and stays a candidate.
- The holder renews every `retry` seconds. If it cannot renew for `renew_deadline` (shorter than
  the lease), it stops reconciling before anyone else may take over, and the process exits so its
  Pod restarts as a candidate.
- A holder that stops cleanly releases the Lease (empty holder), so a standby takes over at once
  instead of after the lease duration.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from llmapp_operator.api.errors import TransientError
from llmapp_operator.kube.client import Answer, KubeClient, namespaced

log = logging.getLogger("llmapp_operator.leader")
LEASES = "coordination.k8s.io/v1"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"   # metav1.MicroTime


@dataclass(frozen=True)
class LeaseConfig:
    namespace: str
    name: str
    identity: str
    lease_seconds: float = 15.0
    renew_deadline_seconds: float = 10.0
    retry_seconds: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_seconds < self.renew_deadline_seconds < self.lease_seconds:
            raise ValueError("leader election needs retry < renew deadline < lease duration")


class LeaseConflict(Exception):
    """Someone else wrote the Lease first (409), or created it (409 AlreadyExists)."""


class LeaseApi(Protocol):
    async def get(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...
    async def replace(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]: ...


def micro_time(moment: datetime.datetime) -> str:
    return moment.strftime(TIME_FORMAT)


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class LeaderElector:
    def __init__(self, config: LeaseConfig, api: LeaseApi, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime.datetime] = _utc_now) -> None:
        self.config, self.api = config, api
        self._clock, self._wall = clock, wall
        self._observed: dict[str, Any] | None = None     # the Lease spec as last seen
        self._observed_at = 0.0                            # when it last changed, on our clock
        self._last_renewed = 0.0
        self.is_leader = False

    async def try_acquire_or_renew(self) -> bool:
        now = self._wall()
        spec = {"holderIdentity": self.config.identity, "leaseDurationSeconds": int(self.config.lease_seconds),
                "acquireTime": micro_time(now), "renewTime": micro_time(now), "leaseTransitions": 0}
        try:
            current = await self.api.get(self.config.namespace, self.config.name)
            if current is None:
                await self.api.create(self.config.namespace, {
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.config.name, "namespace": self.config.namespace}, "spec": spec})
                return self._won()
            old = dict(current.get("spec") or {})
            if old != self._observed:
                self._observed, self._observed_at = old, self._clock()
            holder = old.get("holderIdentity") or ""
            duration = float(old.get("leaseDurationSeconds") or self.config.lease_seconds)
            if holder and holder != self.config.identity and self._observed_at + duration > self._clock():
                return False   # held, and its holder renewed within the lease as far as we have seen
            if holder == self.config.identity:
                spec["acquireTime"] = old.get("acquireTime") or spec["acquireTime"]
                spec["leaseTransitions"] = int(old.get("leaseTransitions") or 0)
            else:
                spec["leaseTransitions"] = int(old.get("leaseTransitions") or 0) + 1
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.config.name, "namespace": self.config.namespace,
                                 "resourceVersion": current["metadata"]["resourceVersion"]}, "spec": spec}
            await self.api.replace(self.config.namespace, self.config.name, body)
            if holder != self.config.identity:
                log.info("took over the lease %s/%s from %r", self.config.namespace, self.config.name, holder or None)
            return self._won()
        except LeaseConflict:
            return False
        except Exception as exc:  # the API server is unreachable or refuses: try again next round
            log.warning("lease %s/%s: %s", self.config.namespace, self.config.name, exc)
            return False

    def _won(self) -> bool:
        self._last_renewed = self._clock()
        self.is_leader = True
        return True

    def _sleep(self) -> float:
        return self.config.retry_seconds * random.uniform(1.0, 1.2)   # client-go's JitterFactor 1.2

    async def acquire(self) -> None:
        """Wait until this candidate holds the Lease."""
        log.info("waiting for the lease %s/%s as %s", self.config.namespace, self.config.name, self.config.identity)
        while not await self.try_acquire_or_renew():
            await asyncio.sleep(self._sleep())
        log.info("holding the lease %s/%s as %s: reconciling", self.config.namespace, self.config.name,
                 self.config.identity)

    async def hold(self) -> None:
        """Renew until a renewal has failed for the renew deadline; then return (leadership lost)."""
        while True:
            await asyncio.sleep(self.config.retry_seconds)
            if await self.try_acquire_or_renew():
                continue
            if self._clock() - self._last_renewed >= self.config.renew_deadline_seconds:
                self.is_leader = False
                log.error("lost the lease %s/%s: no renewal for %.0f s; stopping", self.config.namespace,
                          self.config.name, self.config.renew_deadline_seconds)
                return

    async def release(self) -> None:
        """Give the Lease up (empty holder) so a standby takes over without waiting for it to expire."""
        if not self.is_leader:
            return
        self.is_leader = False
        try:
            current = await self.api.get(self.config.namespace, self.config.name)
            if current is None or (current.get("spec") or {}).get("holderIdentity") != self.config.identity:
                return
            now = micro_time(self._wall())
            spec = {**current["spec"], "holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": now,
                    "acquireTime": now}
            await self.api.replace(self.config.namespace, self.config.name, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.config.name, "namespace": self.config.namespace,
                             "resourceVersion": current["metadata"]["resourceVersion"]}, "spec": spec})
            log.info("released the lease %s/%s", self.config.namespace, self.config.name)
        except Exception as exc:  # it expires by itself
            log.warning("could not release the lease %s/%s: %s", self.config.namespace, self.config.name, exc)


class KubeLeaseApi:
    """coordination.k8s.io/v1 Leases through the operator's one Kubernetes client."""

    def __init__(self, client: KubeClient | None = None) -> None:
        self.client = client or KubeClient(timeout=5)

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        answer = await self.client.request("GET", namespaced(LEASES, namespace, "leases", name))
        if answer.status == 404:
            return None
        return self._checked(answer, "read")

    async def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._checked(await self.client.request("POST", namespaced(LEASES, namespace, "leases"), body=body),
                             "create")

    async def replace(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._checked(await self.client.request("PUT", namespaced(LEASES, namespace, "leases", name),
                                                       body=body), "update")

    @staticmethod
    def _checked(answer: Answer, verb: str) -> dict[str, Any]:
        if answer.status == 409:
            raise LeaseConflict(answer.message())
        if not answer.ok:
            raise TransientError(f"cannot {verb} the leader Lease: {answer.status} {answer.message()}",
                                 reason="LeaseUnavailable")
        return dict(answer.json() or {})

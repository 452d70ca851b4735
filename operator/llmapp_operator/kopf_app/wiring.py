"""Build the operator's dependencies and run Kopf with them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from llmapp_operator.config import Settings, own_identity, own_namespace


def build_deps(settings: Settings) -> Any:
    from llmapp_operator.cloud.app_health import check_app_health
    from llmapp_operator.cloud.app_secrets import AppSecrets
    from llmapp_operator.cloud.certificates import AcmCertificates
    from llmapp_operator.cloud.ecs_service import EcsService
    from llmapp_operator.cloud.sign_in import AlbSignIn
    from llmapp_operator.cloud.state import RecordStore, StateBackend
    from llmapp_operator.engine.reconcile import Deps
    from llmapp_operator.github import sync as github_sync
    from llmapp_operator.kube.secrets import KubeSecrets
    from llmapp_operator.kube.tenants import PolicyFile
    from llmapp_operator.runners.gate import RunGate
    from llmapp_operator.runners.job import JobRunner
    from llmapp_operator.runners.local import LocalRunner

    return Deps(
        settings=settings,
        runner=LocalRunner(settings),
        backend=StateBackend(settings.aws_endpoint_url),
        gate=RunGate(settings.max_concurrent_runs, settings.drift_slots),
        secrets=KubeSecrets(),
        app_secrets=AppSecrets(settings.aws_endpoint_url),
        github=github_sync,
        job_runner=JobRunner(settings),
        health=check_app_health,
        records=RecordStore(settings.aws_endpoint_url),
        tenants=PolicyFile(settings),
        service=EcsService(settings.aws_endpoint_url) if settings.service_control else None,
        certificates=AcmCertificates(settings.aws_endpoint_url),
        # The same switch as the ECS service: what the operator sets on the app's AWS resources itself.
        sign_in=AlbSignIn(settings.aws_endpoint_url) if settings.service_control else None,
    )


class LeadershipLost(RuntimeError):
    """This replica could not renew the leader Lease in time and stopped reconciling."""


async def serve(settings: Settings, *, stop_flag: asyncio.Event | None = None,
                ready_flag: asyncio.Event | None = None, deps: Any = None) -> None:
    """Run the operator until `stop_flag` (or Kopf's own signal handling) stops it. With leader
    election, wait for the Lease first and stop reconciling as soon as it is lost."""
    from llmapp_operator.obs.health import HealthServer
    from llmapp_operator.obs.metrics import serve_metrics

    log = logging.getLogger("llmapp_operator")
    stop_flag = stop_flag or asyncio.Event()
    metrics_server = None
    if settings.metrics_port:
        try:
            metrics_server = serve_metrics(settings.metrics_port)
        except OSError as exc:  # metrics matter, but not more than reconciling
            log.error("metrics server on port %s: %s", settings.metrics_port, exc)
    kopf_task: asyncio.Task[None] | None = None

    def healthy() -> str | None:
        if kopf_task is not None and kopf_task.done():
            return "the operator has stopped"
        return None

    health = HealthServer(settings.liveness_endpoint, healthy) if settings.liveness_endpoint else None
    elector = _elector(settings) if settings.leader_election else None
    try:
        if health is not None:
            await health.start()
        if elector is not None and not await _first(elector.acquire(), stop_flag.wait()):
            return   # stopped while standing by
        if settings.shards > 1 and settings.shard_by == "uid":
            await _require_server_sharding(settings)
        kopf_stop = asyncio.Event()
        memo_deps = deps or build_deps(settings)
        kopf_task = asyncio.create_task(_run_kopf(settings, memo_deps, kopf_stop, ready_flag))
        waits = {kopf_task, asyncio.create_task(stop_flag.wait())}
        if elector is not None:
            waits.add(asyncio.create_task(elector.hold()))
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        kopf_stop.set()
        for task in pending - {kopf_task}:
            task.cancel()
        await kopf_task
        if elector is not None and not elector.is_leader and kopf_task not in done and not stop_flag.is_set():
            raise LeadershipLost("lost the leader lease; exiting so that the Pod restarts as a candidate")
    finally:
        if elector is not None:
            await elector.release()
        if health is not None:
            await health.stop()
        if metrics_server is not None:
            metrics_server.shutdown()


async def _first(wanted: Any, stop: Any) -> bool:
    """Run `wanted` until it finishes (True) or `stop` does first (False)."""
    wanted_task, stop_task = asyncio.ensure_future(wanted), asyncio.ensure_future(stop)
    done, pending = await asyncio.wait({wanted_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return wanted_task in done and not wanted_task.cancelled()


def _elector(settings: Settings) -> Any:
    from llmapp_operator.kube.client import load_config
    from llmapp_operator.kube.leader import KubeLeaseApi, LeaderElector, LeaseConfig

    load_config()   # the election runs before Kopf's login
    config = LeaseConfig(namespace=settings.leader_election_namespace or own_namespace(),
                         name=settings.lease_name, identity=settings.leader_identity or own_identity(),
                         lease_seconds=settings.lease_duration_seconds,
                         renew_deadline_seconds=settings.lease_renew_deadline_seconds,
                         retry_seconds=settings.lease_retry_seconds)
    return LeaderElector(config, KubeLeaseApi())


async def _require_server_sharding(settings: Settings) -> None:
    from llmapp_operator.kube.client import KubeClient, load_config
    from llmapp_operator.kube.shards import require_server_sharding

    load_config()
    namespace = settings.namespaces[0] if settings.namespaces else None
    await require_server_sharding(KubeClient(), settings.shard, settings.shards, namespace)


async def _run_kopf(settings: Settings, deps: Any, stop_flag: asyncio.Event, ready_flag: asyncio.Event | None) -> None:
    import kopf

    from llmapp_operator.kopf_app.handlers import registry

    await kopf.operator(
        registry=registry,
        memo=kopf.Memo(deps=deps),
        standalone=True,   # no Kopf peering: replicas coordinate through the leader Lease
        namespaces=list(settings.namespaces),
        clusterwide=not settings.namespaces,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )

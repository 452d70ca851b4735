"""Build the operator's dependencies and run Kopf with them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from llmapp_operator.config import Settings


def build_deps(settings: Settings) -> Any:
    from llmapp_operator.cloud.app_health import check_app_health
    from llmapp_operator.cloud.app_secrets import AppSecrets
    from llmapp_operator.cloud.state import StateBackend
    from llmapp_operator.engine.reconcile import Deps
    from llmapp_operator.github import sync as github_sync
    from llmapp_operator.kube.secrets import KubeSecrets
    from llmapp_operator.runners.gate import RunGate
    from llmapp_operator.runners.job import JobRunner
    from llmapp_operator.runners.local import LocalRunner

    return Deps(
        settings=settings,
        runner=LocalRunner(settings),
        backend=StateBackend(settings.aws_endpoint_url),
        gate=RunGate(settings.max_concurrent_runs),
        secrets=KubeSecrets(),
        app_secrets=AppSecrets(settings.aws_endpoint_url),
        github=github_sync,
        job_runner=JobRunner(settings),
        health=check_app_health,
    )


async def serve(settings: Settings, *, stop_flag: asyncio.Event | None = None,
                ready_flag: asyncio.Event | None = None, deps: Any = None) -> None:
    import kopf

    from llmapp_operator.kopf_app.handlers import registry
    from llmapp_operator.obs.metrics import serve_metrics

    metrics_server = None
    if settings.metrics_port:
        try:
            metrics_server = serve_metrics(settings.metrics_port)
        except OSError as exc:  # metrics matter, but not more than reconciling
            logging.getLogger("llmapp_operator").error("metrics server on port %s: %s", settings.metrics_port, exc)
    memo = kopf.Memo(deps=deps or build_deps(settings))
    try:
        await _run_kopf(settings, memo, registry, stop_flag, ready_flag)
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()


async def _run_kopf(settings: Settings, memo: Any, registry: Any, stop_flag: asyncio.Event | None,
                    ready_flag: asyncio.Event | None) -> None:
    import kopf

    await kopf.operator(
        registry=registry,
        memo=memo,
        standalone=not settings.peering,
        priority=0,
        peering_name=settings.peering_name if settings.peering else None,
        namespaces=list(settings.namespaces),
        clusterwide=not settings.namespaces,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
        liveness_endpoint=settings.liveness_endpoint,
    )



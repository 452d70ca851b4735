"""`llmapp-operator run|install-crd|demo|job-step` (also `python -m llmapp_operator`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import pathlib
import sys
from typing import Any

from .config import PACKAGE_DIR, Settings
from .logs import setup_logging

CRD_PATH = pathlib.Path(
    next((str(p) for p in (PACKAGE_DIR.parent.parent / "crds" / "llmapp.yaml",
                           pathlib.Path("/opt/llmapp-operator/crds/llmapp.yaml")) if p.exists()),
         PACKAGE_DIR.parent.parent / "crds" / "llmapp.yaml")
)


def build_deps(settings: Settings) -> Any:
    from .app_health import check_app_health
    from .aws import AppSecrets, StateBackend
    from .jobrunner import JobRunner
    from .kube_secrets import KubeSecrets
    from .reconcile import Deps
    from .terraform import LocalRunner, RunGate

    return Deps(
        settings=settings,
        runner=LocalRunner(settings),
        backend=StateBackend(settings.aws_endpoint_url),
        gate=RunGate(settings.max_concurrent_runs),
        secrets=KubeSecrets(),
        app_secrets=AppSecrets(settings.aws_endpoint_url),
        github=_github_glue(),
        job_runner=JobRunner(settings),
        health=check_app_health,
    )


def _github_glue() -> Any:
    try:
        from . import github_sync
    except ImportError:  # the GitHub glue is not part of this build yet
        return None
    return github_sync


class ClusterUnreachable(RuntimeError):
    pass


def install_crd(path: pathlib.Path = CRD_PATH) -> str:
    """Create or update the CRD in the current kube-context; one-line errors, no tracebacks."""
    import kubernetes
    import urllib3
    import yaml

    try:
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
    except (kubernetes.config.ConfigException, OSError) as exc:
        raise ClusterUnreachable(f"no Kubernetes configuration found ({exc}); "
                                 "set KUBECONFIG or run inside a cluster") from None
    crd = yaml.safe_load(path.read_text())
    api = kubernetes.client.ApiextensionsV1Api()
    name = crd["metadata"]["name"]
    try:
        try:
            current = api.read_custom_resource_definition(name, _request_timeout=10)
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:
                raise
            api.create_custom_resource_definition(crd, _request_timeout=10)
            return f"created CRD {name}"
        crd["metadata"]["resourceVersion"] = current.metadata.resource_version if current.metadata else None
        api.replace_custom_resource_definition(name, crd, _request_timeout=10)
        return f"updated CRD {name}"
    except kubernetes.client.ApiException as exc:
        raise ClusterUnreachable(f"cannot install CRD {name}: {exc.status} {exc.reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        host = kubernetes.client.Configuration.get_default_copy().host
        raise ClusterUnreachable(f"Kubernetes API at {host} is not reachable "
                                 f"({type(exc).__name__}); check your kube-context") from None


async def serve(settings: Settings, *, stop_flag: asyncio.Event | None = None,
                ready_flag: asyncio.Event | None = None, deps: Any = None) -> None:
    import kopf

    from .handlers import registry
    from .metrics import serve_metrics

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmapp-operator", description=__doc__)
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, … (default: LLMAPP_LOG_LEVEL or INFO)")
    parser.add_argument("--log-format", choices=("text", "json"), default=None,
                        help="default: LLMAPP_LOG_FORMAT or text")
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="serve the current kube-context (installs the CRD first)")
    run.add_argument("--skip-crd", action="store_true", help="do not install/update the CRD")
    commands.add_parser("install-crd", help="create or update the LLMApp CRD and exit")
    commands.add_parser("demo", help="the whole lifecycle on an embedded sandbox (no cluster, no cloud)")
    step = commands.add_parser("job-step", help="inside a Terraform Job: run the requested step, write the result")
    step.add_argument("--request", type=pathlib.Path, required=True, help="the request file (mounted ConfigMap)")
    args = parser.parse_args(argv)
    command = args.command or "run"

    if command == "demo":
        from .sandbox.demo import run_demo

        return int(run_demo())

    if command == "job-step":
        from .jobstep import main as job_step

        setup_logging(args.log_level or "INFO", args.log_format or "json")
        return job_step(args.request)

    settings = Settings.from_env()
    setup_logging(args.log_level or settings.log_level, args.log_format or settings.log_format)
    try:
        if command == "install-crd" or (command == "run" and not args.skip_crd):
            print(install_crd(), file=sys.stderr)
            if command == "install-crd":
                return 0
    except ClusterUnreachable as exc:
        print(f"llmapp-operator: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())

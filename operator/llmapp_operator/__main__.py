"""`llmapp-operator run|install-crd|job-step` (also `python -m llmapp_operator`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import pathlib
import sys

from llmapp_operator.config import Settings
from llmapp_operator.kopf_app.wiring import LeadershipLost, serve
from llmapp_operator.kube.crd_install import ClusterUnreachable, install_crd
from llmapp_operator.kube.shards import ShardingUnsupported
from llmapp_operator.kube.tenants import policies_of
from llmapp_operator.obs.logs import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmapp-operator", description=__doc__)
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, … (default: LLMAPP_LOG_LEVEL or INFO)")
    parser.add_argument("--log-format", choices=("text", "json"), default=None,
                        help="default: LLMAPP_LOG_FORMAT or text")
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="serve the current kube-context (installs the CRD first)")
    run.add_argument("--skip-crd", action="store_true", help="do not install/update the CRD")
    commands.add_parser("install-crd", help="create or update the LLMApp CRD and exit")
    step = commands.add_parser("job-step", help="inside a Terraform Job: run the requested step, write the result")
    step.add_argument("--request", type=pathlib.Path, required=True, help="the request file (mounted ConfigMap)")
    args = parser.parse_args(argv)
    command = args.command or "run"

    if command == "job-step":
        from llmapp_operator.runners.jobstep import main as job_step

        setup_logging(args.log_level or "INFO", args.log_format or "json")
        return job_step(args.request)

    try:
        settings = Settings.from_env()
        if command == "run":
            policies_of(settings)   # a policy file that does not parse stops the start, not each pass
    except ValueError as exc:
        print(f"llmapp-operator: {exc}", file=sys.stderr)
        return 2
    setup_logging(args.log_level or settings.log_level, args.log_format or settings.log_format)
    try:
        if command == "install-crd" or (command == "run" and not args.skip_crd):
            print(install_crd(), file=sys.stderr)
            if command == "install-crd":
                return 0
    except ClusterUnreachable as exc:
        print(f"llmapp-operator: {exc}", file=sys.stderr)
        return 2
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(settings))
    except LeadershipLost as exc:
        print(f"llmapp-operator: {exc}", file=sys.stderr)
        return 1
    except ShardingUnsupported as exc:   # a setting the cluster cannot honour: no point restarting fast
        print(f"llmapp-operator: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

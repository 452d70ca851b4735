"""The operator as `make bench` runs it for the scale benchmark: its own process, the real Kopf
handlers and reconcile code, with Terraform and the state bucket replaced by instant stand-ins.

Configured like `llmapp-operator run` (KUBECONFIG, LLMAPP_* variables); WARNING-level logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from dataclasses import replace

from instant import InstantBackend, InstantRecords, InstantRunner

from llmapp_operator.config import Settings
from llmapp_operator.kopf_app.wiring import build_deps, serve
from llmapp_operator.obs.logs import setup_logging


def main() -> int:
    setup_logging("WARNING")
    settings = Settings.from_env()
    deps = replace(build_deps(settings), runner=InstantRunner.from_env(), backend=InstantBackend(),
                   records=InstantRecords())
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, deps=deps))
    return 0


if __name__ == "__main__":
    sys.exit(main())

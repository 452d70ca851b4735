"""`python -m llmapp_sandbox demo|sandbox`: the embedded sandbox (no cluster, no cloud): the whole
lifecycle once, or kept running for the real kubectl."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmapp_sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="apply examples/llmapp.yaml, change it, delete it, and show what happened")
    sandbox = commands.add_parser("sandbox", help="keep the sandbox running for the real kubectl (Ctrl-C stops it)")
    sandbox.add_argument("--dir", default=".sandbox", help="where the kubeconfig and the manifest go (.sandbox)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from llmapp_sandbox.demo import run_demo

        return int(run_demo())
    if args.command == "sandbox":
        import pathlib

        from llmapp_sandbox.serve import run_sandbox

        return run_sandbox(pathlib.Path(args.dir).resolve())
    return 2


if __name__ == "__main__":
    sys.exit(main())

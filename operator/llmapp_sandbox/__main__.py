"""`python -m llmapp_sandbox demo`: the whole lifecycle on the embedded sandbox (no cluster, no cloud)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmapp_sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="apply examples/llmapp.yaml, change it, delete it, and show what happened")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from llmapp_sandbox.demo import run_demo

        return int(run_demo())
    return 2


if __name__ == "__main__":
    sys.exit(main())

"""`kubectl llmapp` as kubectl runs it: the real kubectl (v1.32) finds the `kubectl-llmapp` console
script on PATH and runs it against the sandbox's API server, with the operator reconciling for real.
A plan held for approval is shown, a stale approval is refused, the right one applies; reconcile
waits for the operator's pass; suspend/resume, open, cost, and kubectl's error habits."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from typing import Any

import pytest
import yaml

from llmapp_sandbox.apiserver.server import RunningApiServer, running_apiserver
from llmapp_sandbox.cluster import running_operator, use_kubeconfig
from tests.conftest import REPO, needs_terraform
from tests.integration.conftest import NS

KUBECTL = shutil.which("kubectl")
# Installed with the package (pyproject [project.scripts]) beside the venv's python: a missing one is
# a broken install, not a reason to skip.
PLUGIN_DIR = pathlib.Path(sys.executable).parent
pytestmark = [needs_terraform,
              pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH: the plugin tests run it (v1.32)")]


async def kubectl(kubeconfig: pathlib.Path, *args: str, stdin: str | None = None,
                  check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent),
           "PATH": f"{PLUGIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = await asyncio.to_thread(subprocess.run, [KUBECTL, *args], input=stdin, capture_output=True, text=True,
                                   env=env, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} exited {done.returncode}: {done.stderr}{done.stdout}")
    return done


async def status_of(config: pathlib.Path, name: str) -> dict[str, Any]:
    done = await kubectl(config, "llmapp", "status", name, "-o", "json")
    found: dict[str, Any] = json.loads(done.stdout)
    return found


async def until(config: pathlib.Path, name: str, test: Any, timeout: float = 90) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = await status_of(config, name)
        if test(status):
            return status
        assert asyncio.get_running_loop().time() < deadline, f"timed out; last status: {status}"
        await asyncio.sleep(0.5)


async def test_the_plugin_drives_a_held_plan_to_ready_and_back(settings, deps, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert (PLUGIN_DIR / "kubectl-llmapp").is_file(), "kubectl-llmapp is not installed: make install"
    local = settings.updated(namespaces=(NS,))
    api: RunningApiServer
    async with running_apiserver() as api:
        config = api.write_kubeconfig(tmp_path / "kube" / "config", NS)
        await kubectl(config, "apply", "-f", str(REPO / "crds" / "llmapp.yaml"))
        await kubectl(config, "wait", "--for=condition=Established", "crd/llmapps.llmops.dev", "--timeout=10s")
        await kubectl(config, "apply", "-f", "-", stdin=yaml.safe_dump(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
        app = {"apiVersion": "llmops.dev/v1alpha1", "kind": "LLMApp", "metadata": {"name": "rags", "namespace": NS},
               "spec": {"environment": "dev", "aws": {"region": "us-east-1"}, "github": {"repository": "acme/rags"},
                        "terraform": {"module": "sandbox"}, "approvePlan": "manual"}}
        await kubectl(config, "apply", "-f", "-", stdin=yaml.safe_dump(app))

        # Not found is kubectl's wording and exit code.
        missing = await kubectl(config, "llmapp", "status", "nope", check=False)
        assert missing.returncode == 1 and 'Error from server (NotFound)' in missing.stderr, missing.stderr

        use_kubeconfig(api.write_kubeconfig(tmp_path / "operator-kubeconfig", NS))
        async with running_operator(local, replace(deps, settings=local)):
            held = await until(config, "rags", lambda s: (s.get("plan") or {}).get("pending"))
            plan_id = held["plan"]["id"]

            shown = (await kubectl(config, "llmapp", "plan", "show", "rags")).stdout
            print(f"$ kubectl llmapp plan show rags\n{shown}")
            assert f"Plan {plan_id}: +7 to add" in shown and "held: spec.approvePlan is not auto" in shown, shown
            assert re.search(r"^add\s+terraform_data\.alb$", shown, re.M), shown
            assert re.search(r"^add\s+terraform_data\.task_definition$", shown, re.M), shown
            assert f"kubectl llmapp approve rags -n {NS}" in shown

            screen = (await kubectl(config, "llmapp", "status", "rags")).stdout
            print(f"$ kubectl llmapp status rags\n{screen}")
            assert "WAITS FOR APPROVAL" in screen and "PlanPending" in screen

            stale = await kubectl(config, "llmapp", "approve", "rags", "--plan", "0123456789abcdef", check=False)
            assert stale.returncode == 1 and "stale" in stale.stderr and plan_id in stale.stderr
            done = await kubectl(config, "llmapp", "approve", "rags", "--plan", plan_id)
            assert f"plan {plan_id} approved" in done.stdout
            await kubectl(config, "wait", "--for=condition=Ready", "llmapp/rags", "--timeout=90s")

            table = (await kubectl(config, "llmapp", "status")).stdout.splitlines()
            assert table[0].split() == ["NAME", "PHASE", "READY", "REASON", "COST", "URL"]
            assert table[1].split()[:3] == ["rags", "Ready", "True"]
            every = (await kubectl(config, "llmapp", "status", "-A")).stdout.splitlines()
            assert every[0].split()[0] == "NAMESPACE" and every[1].split()[:2] == [NS, "rags"]

            again = await kubectl(config, "llmapp", "reconcile", "rags", "--wait", "--timeout", "60", "--poll", "0.3")
            assert "Phase:     Ready" in again.stdout, again.stdout + again.stderr
            assert "... phase" in again.stderr   # progress while it waits

            url = (await kubectl(config, "llmapp", "open", "rags", "--print")).stdout.strip()
            assert url.startswith("http://") and url.endswith(".elb.amazonaws.com")
            cost = json.loads((await kubectl(config, "llmapp", "cost", "rags", "-o", "json")).stdout)
            assert cost["currency"] == "USD" and "monthlyEstimate" in cost and isinstance(cost["lines"], list)

            await kubectl(config, "llmapp", "suspend", "rags")
            await until(config, "rags", lambda s: s.get("phase") == "Suspended")
            await kubectl(config, "llmapp", "resume", "rags")
            await until(config, "rags", lambda s: s.get("phase") == "Ready")
            nothing = await kubectl(config, "llmapp", "approve", "rags", check=False)
            assert nothing.returncode == 1 and "no plan" in nothing.stderr and "waits for approval" in nothing.stderr

            await kubectl(config, "delete", "llmapp", "rags", "--timeout=90s")

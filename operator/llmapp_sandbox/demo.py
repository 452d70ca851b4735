"""`make demo`: the operator's whole lifecycle on an embedded sandbox — no cluster, no cloud.

What is real: the operator (Kopf, handlers, reconcile), the terraform binary, Terraform's S3
backend with locking, boto3. What stands in: a Kubernetes API server emulator (kmock) holding the
CRD, AWS S3 (moto in server mode on 127.0.0.1), and a module of `terraform_data` resources with
the same variables and outputs as the AWS stack.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import yaml

from llmapp_operator.config import PACKAGE_DIR, Settings, terraform_dir
from llmapp_operator.plugin.view import status_screen, table
from llmapp_sandbox.cloud import running_moto, sandbox_aws_env
from llmapp_sandbox.cluster import ApiClient, condition, is_ready, running_operator, use_kubeconfig
from llmapp_sandbox.github_emulator import GitHubEmulator, running_github, sandbox_ca_file

ROOT = PACKAGE_DIR.parent.parent
EXAMPLE = ROOT / "examples" / "llmapp.yaml"
CRD = ROOT / "crds" / "llmapp.yaml"
SANDBOX_GITHUB_TOKEN = "sandbox-github-token-not-real"
SANDBOX_OPENAI_KEY = "sandbox-openai-key-not-real"


def say(text: str = "") -> None:
    print(text, flush=True)


def age(obj: dict[str, Any]) -> str:
    created = obj.get("metadata", {}).get("creationTimestamp")
    if not created:
        return "?"
    start = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    seconds = int((datetime.datetime.now(datetime.UTC) - start).total_seconds())
    return f"{seconds}s"


def get_llmapps(obj: dict[str, Any]) -> str:
    """What `kubectl get llmapps -n team-a` prints (printer columns from the CRD)."""
    status = obj.get("status") or {}
    ready = (condition(obj, "Ready") or {}).get("status", "")
    return table([["NAME", "PHASE", "READY", "URL", "AGE"],
                  [obj["metadata"]["name"], status.get("phase", ""), ready, status.get("url", ""), age(obj)]])


def get_events(events: list[dict[str, Any]]) -> str:
    """What `kubectl get events --field-selector involvedObject.name=rags` prints."""
    rows = [["TYPE", "REASON", "OBJECT", "MESSAGE"]]
    for event in events:
        involved = event.get("involvedObject", {})
        rows.append([event.get("type", ""), event.get("reason", ""),
                     f"llmapp/{involved.get('name', '')}", event.get("message", "")[:100]])
    return table(rows)


KUBECTL = shutil.which("kubectl")


async def kubectl_shows(kubeconfig: pathlib.Path, args: list[str], fallback: str) -> str:
    """What the real kubectl prints for `args` against the sandbox, when it is on PATH (with the
    `kubectl-llmapp` plugin beside this Python); else the demo's own rendering of the same."""
    if KUBECTL is None:
        return fallback
    env = {**os.environ, "KUBECONFIG": str(kubeconfig),
           "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    # In a thread: the API server emulator that answers kubectl runs in this event loop.
    done = await asyncio.to_thread(subprocess.run, [KUBECTL, *args], capture_output=True, text=True, env=env,
                                   timeout=60)
    return done.stdout.rstrip() if done.returncode == 0 else f"{fallback}\n(kubectl: {done.stderr.strip()})"


async def create_example_secrets(client: ApiClient, namespace: str, name: str) -> None:
    """The Secrets examples/llmapp.yaml refers to (sandbox values), with the app's consent annotation."""
    for secret, key, value in (("github-token", "token", SANDBOX_GITHUB_TOKEN),
                               ("openai", "api-key", SANDBOX_OPENAI_KEY)):
        await client.create({"apiVersion": "v1", "kind": "Secret",
                             "metadata": {"name": secret, "namespace": namespace,
                                          "annotations": {"llmops.dev/allowed-llmapps": name}},
                             "data": {key: base64.b64encode(value.encode()).decode()}})


def sandbox_settings(workdir: pathlib.Path, endpoint: str, namespace: str) -> Settings:
    # The sandbox module stands in for the AWS stack under the stack's own name, so the example
    # is applied exactly as a user would apply it.
    sandbox = terraform_dir() / "sandbox"
    return Settings().updated(
        namespaces=(namespace,),
        workdir=workdir,
        metrics_port=None,
        modules={"stack": sandbox, "sandbox": sandbox},
        state_bucket="llmapp-sandbox-tfstate",
        aws_endpoint_url=endpoint,
        retry_base_seconds=1.0,
        retry_max_seconds=10.0,
        liveness_endpoint=None,
        app_health=False,   # the sandbox module creates no ECS service to look at
        service_control=False,   # ... nor one to scale or deploy to (tests/integration/test_rollout.py uses moto)
        github_hosts=("127.0.0.1:*",),   # the GitHub emulator, over https with the sandbox's own CA
        github_ca_bundle=sandbox_ca_file(),
    )


async def demo(workdir: pathlib.Path) -> int:
    from llmapp_sandbox.apiserver.server import running_apiserver

    app = yaml.safe_load(EXAMPLE.read_text())
    namespace, name = app["metadata"]["namespace"], app["metadata"]["name"]
    crd = yaml.safe_load(CRD.read_text())

    repository = app["spec"]["github"]["repository"]
    github = GitHubEmulator(tokens={SANDBOX_GITHUB_TOKEN: {repository}})
    github.add_repository(repository)
    with sandbox_aws_env(), running_moto() as endpoint:
        async with running_apiserver([crd], namespaces=[namespace]) as apiserver, running_github(github) as github_url:
            kubeconfig = apiserver.write_kubeconfig(workdir / "kubeconfig", namespace)
            use_kubeconfig(kubeconfig)
            say(f"  Kubernetes API (emulator): {apiserver.url}  — CRD llmapps.llmops.dev admitted, "
                f"namespace {namespace}")
            say(f"  AWS (moto server)      : {endpoint}  — Terraform state, locks, Secrets Manager")
            say(f"  GitHub API (emulator)  : {github_url}  — repository {repository}")
            say("  Terraform module       : terraform/sandbox (terraform_data, same contract as terraform/stack)")
            settings = sandbox_settings(workdir, endpoint, namespace)
            client = ApiClient(apiserver.url)
            async with running_operator(settings) as operator:
                say(f"\n$ kubectl -n {namespace} create secret generic github-token --from-literal=token=…")
                say(f"$ kubectl -n {namespace} create secret generic openai --from-literal=api-key=…")
                say(f"$ kubectl -n {namespace} annotate secret github-token openai llmops.dev/allowed-llmapps={name}")
                await create_example_secrets(client, namespace, name)
                # The only change to the example: GitHub is the local emulator, not api.github.com.
                app["spec"]["github"]["apiUrl"] = github_url
                say(f"\n$ kubectl apply -f examples/llmapp.yaml      # with spec.github.apiUrl={github_url}")
                started = time.monotonic()
                await client.create(app)
                say(f"llmapp.llmops.dev/{name} created")
                obj = await client.wait_for(namespace, name, is_ready, timeout=120)
                assert obj is not None
                say(f"\n$ kubectl get llmapps -n {namespace}      # Ready after {time.monotonic() - started:.1f}s")
                say(await kubectl_shows(kubeconfig, ["get", "llmapps", "-n", namespace], get_llmapps(obj)))
                say(f"\n$ kubectl llmapp status {name} -n {namespace}")
                say(await kubectl_shows(kubeconfig, ["llmapp", "status", name, "-n", namespace],
                                        status_screen(await client.get(namespace, name) or obj)))
                status = obj["status"]
                say(f"\n$ kubectl get llmapp {name} -n {namespace} -o jsonpath='{{.status}}'  (abridged)")
                say(json.dumps({
                    "phase": status["phase"], "url": status.get("url"),
                    "observedGeneration": status.get("observedGeneration"),
                    "plan": status.get("plan"), "lastAppliedDigest": status.get("lastAppliedDigest"),
                    "conditions": [f"{c['type']}={c['status']} ({c['reason']})" for c in status["conditions"]],
                    "github": {k: status["github"][k] for k in ("environment", "variables", "secrets", "syncedAt")},
                    "outputs": {k: status["outputs"][k] for k in ("ecs_cluster_name", "ecs_service_name",
                                                                  "ecr_repository_name")},
                }, indent=2))

                say(f"\nGitHub environment '{status['github']['environment']}' of {repository} (the emulator's view):")
                for variable, value in sorted(github.environment_variables(repository, "dev").items()):
                    say(f"  variable {variable} = {value}")
                for secret in sorted(github.environment_secrets(repository, "dev")):
                    say(f"  secret   {secret} = *** (sealed with the environment key, decrypted by the emulator)")

                say(f"\n$ kubectl annotate llmapp {name} touched=yes   # no spec change: no Terraform run")
                before = operator.deps.runner.processes_started
                await client.patch(namespace, name, {"metadata": {"annotations": {"touched": "yes"}}})
                await asyncio.sleep(1.0)
                say(f"terraform processes started: {operator.deps.runner.processes_started - before}")

                patch = {"spec": {"app": {"env": {"MODEL": "gpt-4o-mini"}}}}
                say(f"\n$ kubectl patch llmapp {name} --type merge -p '{json.dumps(patch)}'")
                await client.patch(namespace, name, patch)
                obj = await client.wait_for(namespace, name, is_ready, timeout=120)
                assert obj is not None
                say(f"re-applied generation {obj['metadata']['generation']}: plan {obj['status']['plan']} "
                    "(a new task definition revision)")

                scale: dict[str, Any] = {"spec": {"app": {"desiredCount": 2}}}
                say(f"\n$ kubectl patch llmapp {name} --type merge -p '{json.dumps(scale)}'"
                    "   # the ECS API's, not Terraform's (docs/stack.md)")
                before = operator.deps.runner.processes_started
                await client.patch(namespace, name, scale)
                obj = await client.wait_for(namespace, name, is_ready, timeout=120)
                assert obj is not None
                say(f"generation {obj['metadata']['generation']} Ready; terraform processes started: "
                    f"{operator.deps.runner.processes_started - before} (the sandbox has no ECS service to scale: "
                    "on AWS the operator sets the count with UpdateService)")

                say(f"\n$ kubectl get events -n {namespace} --field-selector involvedObject.name={name}")
                say(await kubectl_shows(kubeconfig, ["get", "events", "-n", namespace, "--field-selector",
                                                     f"involvedObject.name={name}"],
                                        get_events(await client.events(namespace, name))))

                say(f"\n$ kubectl delete llmapp {name} -n {namespace}")
                await client.delete(namespace, name)
                await client.wait_for(namespace, name, lambda o: o is None, timeout=120)
                say(f"llmapp.llmops.dev \"{name}\" deleted — terraform destroy ran, finalizer released")
                say(f"GitHub environments left in {repository}: {sorted(github.environments(repository)) or 'none'}")
                say(f"\n$ kubectl get events -n {namespace} --field-selector involvedObject.name={name}")
                say(await kubectl_shows(kubeconfig, ["get", "events", "-n", namespace, "--field-selector",
                                                     f"involvedObject.name={name}"],
                                        get_events(await client.events(namespace, name))))
                say(f"\nterraform processes in all: {operator.deps.runner.processes_started}; "
                    f"total {time.monotonic() - started:.1f}s")
    return 0


def run_demo() -> int:
    say("=" * 78)
    say(" llmapp-operator demo — SANDBOX: no Kubernetes cluster and no AWS account are used.")
    say(" Everything runs in this process on 127.0.0.1; nothing is deployed anywhere.")
    say("=" * 78)
    if shutil.which("terraform") is None:
        say("llmapp-operator demo: the terraform binary is not on PATH; install Terraform >= 1.9 and retry")
        return 2
    with tempfile.TemporaryDirectory(prefix="llmapp-demo-") as workdir:
        try:
            return asyncio.run(demo(pathlib.Path(workdir)))
        except TimeoutError as exc:
            say(f"llmapp-operator demo: timed out: {exc}")
            return 1


if __name__ == "__main__":
    sys.exit(run_demo())

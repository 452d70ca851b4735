"""`make sandbox`: the sandbox kept running for a person with the real kubectl.

The same parts as `make demo`: the Kubernetes API server emulator, moto, the GitHub emulator and
the real operator. It writes a kubeconfig and a copy of examples/llmapp.yaml whose
`spec.github.apiUrl` points at the GitHub emulator, prints how to use them, and runs until
Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import signal
import sys
import tempfile

import yaml

from llmapp_sandbox.cloud import running_moto, sandbox_aws_env
from llmapp_sandbox.cluster import ApiClient, running_operator, use_kubeconfig
from llmapp_sandbox.demo import CRD, EXAMPLE, SANDBOX_GITHUB_TOKEN, create_example_secrets, sandbox_settings, say
from llmapp_sandbox.github_emulator import GitHubEmulator, running_github

READY_LINE = "sandbox ready"   # printed once everything answers; tests wait for it


async def serve(directory: pathlib.Path, stop: asyncio.Event | None = None) -> int:
    from llmapp_sandbox.apiserver.server import running_apiserver

    directory.mkdir(parents=True, exist_ok=True)
    app = yaml.safe_load(EXAMPLE.read_text())
    namespace, name = app["metadata"]["namespace"], app["metadata"]["name"]
    repository = app["spec"]["github"]["repository"]
    github = GitHubEmulator(tokens={SANDBOX_GITHUB_TOKEN: {repository}})
    github.add_repository(repository)
    stop = stop or asyncio.Event()
    with sandbox_aws_env(), running_moto() as endpoint, tempfile.TemporaryDirectory(prefix="llmapp-sandbox-") as work:
        async with running_apiserver([yaml.safe_load(CRD.read_text())], namespaces=[namespace]) as apiserver, \
                running_github(github) as github_url:
            kubeconfig = apiserver.write_kubeconfig(directory / "kubeconfig", namespace)
            use_kubeconfig(apiserver.write_kubeconfig(pathlib.Path(work) / "operator-kubeconfig", namespace))
            client = ApiClient(apiserver.url)
            await create_example_secrets(client, namespace, name)
            app["spec"]["github"]["apiUrl"] = github_url
            manifest = directory / "llmapp.yaml"
            manifest.write_text("# examples/llmapp.yaml with spec.github.apiUrl set to the sandbox's GitHub emulator\n"
                                + yaml.safe_dump(app, sort_keys=False))
            async with running_operator(sandbox_settings(pathlib.Path(work), endpoint, namespace)) as operator:
                # After the operator started: its own graceful-stop handlers would replace ours.
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError, RuntimeError):
                        loop.add_signal_handler(sig, stop.set)
                say(f"  Kubernetes API (emulator): {apiserver.url}")
                say(f"  AWS (moto server)      : {endpoint}")
                say(f"  GitHub API (emulator)  : {github_url}  (repository {repository})")
                say(f"  The Secrets github-token and openai exist in {namespace}, annotated for {name}.\n")
                say(f"  export KUBECONFIG={kubeconfig}")
                say(f"  export PATH={pathlib.Path(sys.executable).parent}:$PATH   # kubectl finds kubectl-llmapp there")
                say(f"  kubectl apply -f {manifest}")
                say(f"  kubectl get llmapps -n {namespace} -w")
                say(f"  kubectl llmapp status {name} -n {namespace}")
                say(f"  kubectl describe llmapp {name} -n {namespace}")
                say(f"  kubectl delete llmapp {name} -n {namespace}\n")
                say(f"{READY_LINE}: KUBECONFIG={kubeconfig}  (Ctrl-C stops it)")
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({stopping, operator.task}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                say("stopping the sandbox")
    return 0


def run_sandbox(directory: pathlib.Path) -> int:
    return asyncio.run(serve(directory))

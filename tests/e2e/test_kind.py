"""Opt-in for users with Docker: the operator image in a real cluster (`make e2e-kind`).

Creates a kind cluster from tests/e2e/kind-config.yaml, builds the image from the Dockerfile and
loads it, installs the chart (rendered by Helm's engine, applied with kubectl) with moto as the
state backend, applies an LLMApp on the sandbox module, waits for Ready, deletes it and waits
for the finalizer to finish, then deletes the cluster. Skips where docker or kind is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.e2e
CLUSTER = "llmapp-e2e"
IMAGE = "llmapp-operator:e2e"
NAMESPACE = "llmapp-system"


def _why_not() -> str | None:
    for tool in ("docker", "kind", "kubectl"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH: make e2e-kind needs Docker, kind and kubectl"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "the Docker engine is not reachable"
    return None


def run(*args: str, stdin: str | None = None, timeout: float = 600) -> str:
    done = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


LLMAPP = {
    "apiVersion": "llmops.dev/v1alpha1", "kind": "LLMApp", "metadata": {"name": "rags", "namespace": "default"},
    "spec": {"environment": "dev", "aws": {"region": "us-east-1"}, "github": {"repository": "acme/rags"},
             "terraform": {"module": "sandbox"}},
}


WHY_NOT = _why_not()  # probed once at collection: it runs `docker info`


@pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")
def test_image_chart_and_lifecycle_in_kind(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import helm_python as helm

    kubeconfig = tmp_path / "kubeconfig"
    env_kube = ["--kubeconfig", str(kubeconfig)]
    run("kind", "create", "cluster", "--name", CLUSTER, "--config", str(REPO / "tests/e2e/kind-config.yaml"),
        "--kubeconfig", str(kubeconfig), "--wait", "180s")
    try:
        run("docker", "build", "-t", IMAGE, str(REPO), timeout=1800)
        run("kind", "load", "docker-image", IMAGE, "--name", CLUSTER)
        run("kubectl", *env_kube, "create", "namespace", NAMESPACE)
        run("kubectl", *env_kube, "apply", "-f", str(REPO / "tests/e2e/moto.yaml"))
        run("kubectl", *env_kube, "-n", NAMESPACE, "rollout", "status", "deployment/moto", "--timeout=300s")
        values = {
            "image": {"repository": IMAGE.split(":")[0], "tag": IMAGE.split(":")[1], "pullPolicy": "Never"},
            "state": {"bucket": "e2e-tfstate", "endpointUrl": f"http://moto.{NAMESPACE}:5000"},
            "operator": {"serviceControl": False},   # the sandbox module creates no ECS service to scale
            "extraEnv": [{"name": "LLMAPP_APP_HEALTH", "value": "false"},   # the sandbox module runs no ECS
                         {"name": "AWS_ACCESS_KEY_ID", "value": "e2e"},
                         {"name": "AWS_SECRET_ACCESS_KEY", "value": "e2e"},
                         {"name": "AWS_DEFAULT_REGION", "value": "us-east-1"}],
        }
        manifests = helm.Chart.load(str(REPO / "charts/llmapp-operator")).render(
            values, name="llmapp-operator", namespace=NAMESPACE, is_install=True)
        run("kubectl", *env_kube, "apply", "-f", "-", stdin="\n---\n".join(manifests.values()))
        run("kubectl", *env_kube, "-n", NAMESPACE, "rollout", "status", "deployment/llmapp-operator",
            "--timeout=300s")
        run("kubectl", *env_kube, "apply", "-f", "-", stdin=yaml.safe_dump(LLMAPP))
        run("kubectl", *env_kube, "wait", "--for=condition=Ready", "llmapp/rags", "--timeout=600s")
        url = run("kubectl", *env_kube, "get", "llmapp/rags", "-o", "jsonpath={.status.url}")
        assert url.startswith("http://")
        run("kubectl", *env_kube, "delete", "llmapp/rags", "--wait=true", "--timeout=600s")
    finally:
        if os.environ.get("LLMAPP_E2E_KEEP") != "1":
            subprocess.run(["kind", "delete", "cluster", "--name", CLUSTER], capture_output=True)

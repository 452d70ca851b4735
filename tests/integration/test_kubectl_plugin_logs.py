"""`kubectl llmapp logs` and `unlock`, with the user's AWS credentials (moto's here, through
AWS_ENDPOINT_URL). logs: the app's CloudWatch log group (the stack's `app_log_group` output); --since,
--follow, and what a user sees when the group does not exist yet. unlock: the holder of the S3 lock
file, removed only when its pod is gone or with --force."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import uuid
from typing import Any

import boto3
import pytest
import yaml

from llmapp_sandbox.apiserver.server import running_apiserver
from llmapp_sandbox.cluster import ApiClient
from tests.conftest import REPO
from tests.integration.conftest import NS

KUBECTL = shutil.which("kubectl")
PLUGIN_DIR = pathlib.Path(sys.executable).parent
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH: the plugin tests run it (v1.32)")


def env_for(kubeconfig: pathlib.Path, moto: str) -> dict[str, str]:
    return {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent),
            "PATH": f"{PLUGIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}", "AWS_ENDPOINT_URL": moto,
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true"}


async def test_logs_print_the_app_s_lines_since_and_follow(moto_endpoint: str, tmp_path: pathlib.Path) -> None:
    assert KUBECTL is not None
    group = f"/aws/ecs/team-a-rags-service/team-a-rags-app-{uuid.uuid4().hex[:6]}"
    logs: Any = boto3.client("logs", endpoint_url=moto_endpoint, region_name="us-east-1",
                             aws_access_key_id="test", aws_secret_access_key="test")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="ecs/app/task-1")
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName="ecs/app/task-1", logEvents=[
        {"timestamp": now - 3 * 3600 * 1000, "message": "three hours ago"},
        {"timestamp": now - 60 * 1000, "message": "You can now view your Streamlit app in your browser."},
        {"timestamp": now - 1000, "message": "GET /_stcore/health 200"}])

    async with running_apiserver([yaml.safe_load((REPO / "crds" / "llmapp.yaml").read_text())],
                                 namespaces=[NS]) as api:
        config = api.write_kubeconfig(tmp_path / "kube" / "config", NS)
        app = {"apiVersion": "llmops.dev/v1alpha1", "kind": "LLMApp", "metadata": {"name": "rags", "namespace": NS},
               "spec": {"environment": "dev", "aws": {"region": "us-east-1"}, "github": {"repository": "acme/rags"}}}
        client = ApiClient(api.url)
        await client.create(app)

        async def outputs(log_group: str) -> None:   # as the operator writes them, on the status subresource
            await client._call("PATCH", client._path(NS, "rags") + "/status",
                               {"status": {"outputs": {"app_log_group": log_group}}}, "application/merge-patch+json")

        await outputs(group)
        env = env_for(config, moto_endpoint)

        def plugin(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([KUBECTL, "llmapp", "logs", *args], capture_output=True, text=True, env=env,
                                  timeout=60)

        default = await asyncio.to_thread(plugin, "rags")
        assert default.returncode == 0, default.stderr
        assert default.stdout.splitlines() == ["You can now view your Streamlit app in your browser.",
                                               "GET /_stcore/health 200"]   # --since 1h by default
        everything = await asyncio.to_thread(plugin, "rags", "--since", "1d", "--timestamps")
        assert everything.stdout.splitlines()[0].endswith("Z three hours ago")
        bad = await asyncio.to_thread(plugin, "rags", "--since", "yesterday")
        assert bad.returncode == 1 and "invalid --since" in bad.stderr

        follow = subprocess.Popen([KUBECTL, "llmapp", "logs", "rags", "-f", "--poll", "0.2"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert follow.stdout is not None and follow.stderr is not None
            # Read in a thread: the API server emulator answers the plugin from this test's event loop.
            first = [(await asyncio.to_thread(follow.stdout.readline)).strip() for _ in range(2)]
            assert first[1] == "GET /_stcore/health 200", (first, follow.poll() is not None and follow.stderr.read())
            logs.put_log_events(logGroupName=group, logStreamName="ecs/app/task-1", logEvents=[
                {"timestamp": int(time.time() * 1000), "message": "a question about the index"}])
            assert (await asyncio.to_thread(follow.stdout.readline)).strip() == "a question about the index"
        finally:
            follow.kill()
            follow.wait(timeout=10)

        await outputs("/aws/ecs/never-ran")
        missing = await asyncio.to_thread(plugin, "rags")
        assert missing.returncode == 1 and "/aws/ecs/never-ran does not exist in us-east-1" in missing.stderr


async def test_unlock_shows_the_holder_and_removes_only_a_dead_one(moto_endpoint: str, tmp_path: pathlib.Path) -> None:
    assert KUBECTL is not None
    s3: Any = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
    bucket, key = f"tfstate-{uuid.uuid4().hex[:8]}", "llmapp/team-a/rags/terraform.tfstate"
    s3.create_bucket(Bucket=bucket)
    lock = {"ID": "5b3c0d8e-0000-4000-8000-000000000001", "Operation": "OperationTypeApply", "Info": "",
            "Who": "llmapp@llmapp-operator-6d9f7-abcde", "Version": "1.11.4", "Created": "2026-12-01T10:00:00Z",
            "Path": f"{bucket}/{key}"}

    def locked() -> bool:
        try:
            s3.head_object(Bucket=bucket, Key=key + ".tflock")
            return True
        except Exception:
            return False

    async with running_apiserver([yaml.safe_load((REPO / "crds" / "llmapp.yaml").read_text())],
                                 namespaces=[NS, "llmapp-system"]) as api:
        config = api.write_kubeconfig(tmp_path / "kube" / "config", NS)
        client = ApiClient(api.url)
        await client.create({"apiVersion": "llmops.dev/v1alpha1", "kind": "LLMApp",
                             "metadata": {"name": "rags", "namespace": NS},
                             "spec": {"environment": "dev", "aws": {"region": "us-east-1"},
                                      "github": {"repository": "acme/rags"}}})
        await client._call("PATCH", client._path(NS, "rags") + "/status",
                           {"status": {"state": f"s3://{bucket}/{key}"}}, "application/merge-patch+json")
        env = env_for(config, moto_endpoint)

        def unlock(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([KUBECTL, "llmapp", "unlock", "rags", *args], capture_output=True, text=True,
                                  env=env, timeout=60)

        free = await asyncio.to_thread(unlock)
        assert free.returncode == 0 and "is not locked" in free.stdout

        s3.put_object(Bucket=bucket, Key=key + ".tflock", Body=json.dumps(lock).encode())
        api.server.create_object("pods", {"apiVersion": "v1", "kind": "Pod",
                                          "metadata": {"name": "llmapp-operator-6d9f7-abcde",
                                                       "namespace": "llmapp-system"},
                                          "spec": {"containers": [{"name": "operator", "image": "op:1"}]}})
        alive = await asyncio.to_thread(unlock)
        assert alive.returncode == 1 and "its pod still exists" in alive.stderr and "--force" in alive.stderr
        assert ("locked by llmapp@llmapp-operator-6d9f7-abcde for OperationTypeApply since 2026-12-01T10:00:00Z"
                in alive.stdout) and locked()

        await asyncio.to_thread(api.server.store.delete, api.server._kind("pods", None), "llmapp-system",
                                "llmapp-operator-6d9f7-abcde", {})
        dead = await asyncio.to_thread(unlock)
        assert dead.returncode == 0 and "its holder's pod is gone" in dead.stdout and not locked()

        s3.put_object(Bucket=bucket, Key=key + ".tflock", Body=json.dumps({**lock, "Who": "someone@laptop"}).encode())
        api.server.create_object("pods", {"apiVersion": "v1", "kind": "Pod",
                                          "metadata": {"name": "laptop", "namespace": "llmapp-system"},
                                          "spec": {"containers": [{"name": "x", "image": "x:1"}]}})
        assert (await asyncio.to_thread(unlock)).returncode == 1 and locked()
        forced = await asyncio.to_thread(unlock, "--force")
        assert forced.returncode == 0 and "(--force)" in forced.stdout and not locked()

"""The largest object the CRD admits, applied the way `kubectl apply` does (the whole object kept in
its last-applied-configuration annotation): it converges to Ready with every app secret, GitHub
variable and secret synced, and is deleted with nothing left in state, Secrets Manager or GitHub.
Kopf's own bookkeeping stays small whatever the spec's size: a 0.1 operator failed every patch with
`422 metadata.annotations: Too long` on a spec of this size (its diff base held the whole spec)."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import boto3
import yaml

from llmapp_operator.api.workspace import state_key
from llmapp_operator.config import Settings
from llmapp_sandbox.cluster import condition, is_ready
from llmapp_sandbox.github_emulator import GitHubEmulator, running_github
from tests.conftest import needs_terraform
from tests.integration.conftest import NS, SandboxFactory, TerraformLog, state_resources
from tests.secrets_scan import secret_for_tests
from tests.spec_samples import largest_secrets, largest_spec

pytestmark = needs_terraform
TOKEN = secret_for_tests("largest-object-github-token-0005")
REPOSITORY = "o" * 39 + "/" + "r" * 100


def annotations_bytes(obj: dict[str, Any], prefix: str = "") -> int:
    return sum(len(k) + len(v) for k, v in (obj["metadata"].get("annotations") or {}).items() if k.startswith(prefix))


async def test_the_largest_object_converges_and_deletes_with_nothing_left(
        open_sandbox: SandboxFactory, terraform_log: TerraformLog, moto_endpoint: str, settings: Settings,
        tmp_path: pathlib.Path) -> None:
    emulator = GitHubEmulator(tokens={TOKEN: {REPOSITORY}})
    emulator.add_repository(REPOSITORY)
    # The spec's (deprecated, largest) free-form backend is one the platform named in its policy.
    default = {"bucket": settings.state_bucket, "region": settings.state_region}
    policies = tmp_path / "tenants.yaml"
    policies.write_text(yaml.safe_dump({"policies": [{"name": "largest", "namespaces": [NS], "backends": {
        "default": default, "long": {**default, "keyPrefix": "p" * 200, "dynamodbTable": "t" * 255}}}]}))
    async with running_github(emulator) as github_url, open_sandbox(tenant_policies=policies) as sandbox:
        for secret in largest_secrets(NS, TOKEN):
            await sandbox.client.create(secret)
        spec = largest_spec(module="wide", github_url=github_url)
        obj = {"apiVersion": "llmops.dev/v1alpha1", "kind": "LLMApp", "metadata": {"name": "largest", "namespace": NS},
               "spec": spec}
        # What `kubectl apply` sends: the object, and the object again in an annotation.
        obj["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(obj)}
        assert annotations_bytes(obj) > 100_000
        await sandbox.client.create(obj)

        ready = await sandbox.client.wait_for(NS, "largest", is_ready, timeout=120)
        assert ready is not None and condition(ready, "GitHubSynced")["status"] == "True"  # type: ignore[index]
        assert annotations_bytes(ready, "llmops.dev/") < 2048, "Kopf's bookkeeping grew with the spec"
        assert len(json.dumps(ready).encode()) < 1536 * 1024
        assert len(ready["status"]["appSecrets"]) == 32
        assert len(emulator.environment_variables(REPOSITORY, spec["github"]["environment"])) == 32 + 8
        assert len(emulator.environment_secrets(REPOSITORY, spec["github"]["environment"])) == 32
        key = state_key(spec["terraform"]["backend"]["keyPrefix"], NS, "largest")   # the spec's own prefix
        assert state_resources(sandbox.s3, sandbox.settings.state_bucket, key) != []

        await sandbox.client.delete(NS, "largest")
        assert await sandbox.client.wait_for(NS, "largest", lambda o: o is None, timeout=120) is None
        assert state_resources(sandbox.s3, sandbox.settings.state_bucket, key) == []
        assert emulator.environments(REPOSITORY) == set()
        secrets = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")
        left = [s["Name"] for s in secrets.list_secrets().get("SecretList", []) if "largest" in s["Name"]]
        assert left == [], f"app secrets left in Secrets Manager: {left}"
        assert "destroy" in terraform_log.commands()

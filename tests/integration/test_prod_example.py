"""examples/llmapp-prod.yaml through the whole sandbox lifecycle: the real Kopf operator on the API
emulator, real terraform on the sandbox module with the S3 backend on moto. Only what the sandbox
cannot be is changed: the module (sandbox, not stack), Terraform in the operator (no Job runner
here), the namespace and the GitHub token (the GitHub sync has its own tests)."""

from __future__ import annotations

import base64
import copy
from typing import Any

import yaml

from llmapp_sandbox.cluster import condition, is_ready
from tests.conftest import REPO, needs_terraform
from tests.integration.conftest import NS, SandboxFactory, TerraformLog
from tests.secrets_scan import secret_for_tests

pytestmark = needs_terraform

EXAMPLE = yaml.safe_load((REPO / "examples" / "llmapp-prod.yaml").read_text())
OPENAI_KEY = secret_for_tests("openai-key-of-the-prod-example")


def sandboxed(example: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(example)
    obj["metadata"] = {"name": "rags", "namespace": NS}
    obj["spec"]["terraform"].update(module="sandbox", runner="local")
    obj["spec"]["github"].pop("tokenSecretRef")
    return obj


async def test_the_prod_example_plans_waits_for_approval_applies_and_is_orphaned_on_delete(
        open_sandbox: SandboxFactory, terraform_log: TerraformLog) -> None:
    spec = EXAMPLE["spec"]
    assert {"domain", "auth", "scaling", "models", "storage"} <= set(spec) | set(spec["app"]), "it shows them"
    async with open_sandbox() as sandbox:
        await sandbox.client.create({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "openai", "namespace": NS, "annotations": {"llmops.dev/allowed-llmapps": "rags"}},
            "data": {"api-key": base64.b64encode(OPENAI_KEY.encode()).decode()}})
        await sandbox.client.create(sandboxed(EXAMPLE))

        # approvePlan: manual — the plan waits with its id, nothing is applied.
        held = await sandbox.client.wait_for(NS, "rags", lambda o: (condition(o, "PlanPending") or {}).get(
            "status") == "True", timeout=120)
        assert held is not None and "apply" not in terraform_log.commands()
        plan_id = held["status"]["plan"]["id"]
        await sandbox.client.patch(NS, "rags", {"spec": {"approvePlan": plan_id}})

        ready = await sandbox.client.wait_for(NS, "rags", is_ready, timeout=120)
        assert ready is not None
        status = ready["status"]
        assert status["url"] == f"https://{spec['domain']['name']}"
        assert condition(ready, "CertificateIssued")["status"] == "True"  # type: ignore[index]
        assert status["plan"]["id"] == plan_id and status["appSecrets"] == ["OPENAI_API_KEY"]
        assert {"terraform_data.certificate", "terraform_data.dns_record", "terraform_data.scaling",
                "terraform_data.task_role_policy", "terraform_data.app_storage",
                "terraform_data.sign_in"} <= set(sandbox.state())
        assert status["outputs"]["sign_in_user_pool_id"].startswith("eu-west-1_")
        assert status["outputs"]["storage_bucket"] and status["outputs"]["keep_on_destroy"]
        print("status of the prod example:", yaml.safe_dump({"status": {
            key: status[key] for key in ("phase", "url", "plan", "conditions") if key in status}}))

        # deletionPolicy: Orphan — the finalizer goes, the stack and its state stay.
        await sandbox.client.delete(NS, "rags")
        await sandbox.client.wait_for(NS, "rags", lambda o: o is None, timeout=120)
        assert "destroy" not in terraform_log.commands() and sandbox.state() != []

"""The tenant boundary, tried by a hostile tenant: the real operator, the API emulator with the
chart's RBAC, real terraform on moto, and the platform's tenant policies from a file.

Each attempt ends in a clear condition naming what was refused, with nothing applied (no terraform
process, no state) and nothing leaked; the runs of two namespaces use their own roles (moto's STS
says whose credentials each terraform process had).
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import boto3
import pytest
import yaml

from llmapp_sandbox.cluster import condition, is_ready
from tests.integration.conftest import JOB_NS, NS, SandboxFactory, TerraformLog, llmapp
from tests.integration.job_player import JOB_SETTINGS, playing

pytestmark = pytest.mark.asyncio

OTHER_NS = "team-b"
ROLE_A = "arn:aws:iam::123456789012:role/llmapp-tenant-team-a"
ROLE_B = "arn:aws:iam::123456789012:role/llmapp-tenant-team-b"


def policies_file(tmp_path: pathlib.Path, bucket: str, **team_a: Any) -> pathlib.Path:
    """team-a by name, team-b by label; each its own role and state prefix in the test's bucket."""
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump({"policies": [
        {"name": "team-a", "namespaces": [NS], "role": {"arn": ROLE_A, "externalId": "ext-team-a"},
         "backends": {"default": {"bucket": bucket, "region": "us-east-1", "keyPrefix": "team-a"}},
         "modules": ["sandbox"], "regions": ["us-east-1"], **team_a},
        {"name": "team-b", "namespaceSelector": {"matchLabels": {"llmops.dev/tenant": "b"}},
         "role": {"arn": ROLE_B},
         "backends": {"default": {"bucket": bucket, "region": "us-east-1", "keyPrefix": "team-b"}},
         "modules": ["sandbox"]},
    ]}))
    return path


def stalled_with(reason: str) -> Any:
    def check(obj: dict[str, Any] | None) -> bool:
        found = condition(obj, "Stalled") or {}
        return found.get("status") == "True" and found.get("reason") == reason
    return check


def record_credentials(wrapper: pathlib.Path, notes: pathlib.Path) -> None:
    """Make the test's terraform wrapper note, per workspace, the credentials each process got (a
    test-only file: what the assertions ask moto's STS about)."""
    text = wrapper.read_text()
    note = (f"""printf '{{"chdir": "%s", "key": "%s", "secret": "%s", "token": "%s"}}\\n' "$1" """
            f""""$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN" >> '{notes}'\n""")
    wrapper.write_text(text.replace("\nexec '", "\n" + note + "exec '", 1))


async def test_a_namespace_no_policy_selects_gets_no_run(open_sandbox: SandboxFactory, tmp_path: pathlib.Path,
                                                       settings: Any, terraform_log: TerraformLog) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump({"policies": [{"name": "elsewhere", "namespaces": ["team-z"],
                                                  "backends": {"default": {"bucket": settings.state_bucket,
                                                                           "region": "us-east-1"}}}]}))
    async with open_sandbox(tenant_policies=path) as sandbox:
        await sandbox.client.create(llmapp(terraform={"module": "sandbox"}))
        obj = await sandbox.client.wait_for(NS, "rags", stalled_with("NoPolicy"), timeout=30)
        assert f"namespace '{NS}'" in obj["status"]["lastError"]
        assert terraform_log.count() == 0 and sandbox.state() == []
        events = await sandbox.client.events(NS, "rags")
        assert any(e["reason"] == "NoPolicy" and e["type"] == "Warning" for e in events)
        # Deleting it ends too (nothing was built): no object stuck in deletion.
        await sandbox.client.delete(NS, "rags")
        assert await sandbox.client.wait_for(NS, "rags", lambda o: o is None, timeout=30) is None


@pytest.mark.parametrize(("terraform", "aws", "reason", "words"), [
    ({"backend": {"bucket": "tenant-owned-bucket"}}, None, "BackendNotAllowed", "tenant-owned-bucket"),
    ({"backendRef": "platform-secret"}, None, "BackendNotAllowed", "'platform-secret'"),
    ({"vars": {"create_github_oidc_provider": "true"}}, None, "VariableNotAllowed", "set by the platform"),
    ({"vars": {"certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/other-team"}}, None,
     "VariableNotAllowed", "tenants may set: ecr_keep_images"),
    ({"module": "stack"}, None, "ModuleNotAllowed", "allowed: sandbox"),
    ({}, {"region": "eu-west-1"}, "RegionNotAllowed", "allowed: us-east-1"),
])
async def test_what_only_the_platform_may_choose_is_refused_before_anything_runs(
        open_sandbox: SandboxFactory, tmp_path: pathlib.Path, settings: Any, terraform_log: TerraformLog,
        s3: Any, terraform: dict[str, Any], aws: dict[str, Any] | None, reason: str, words: str) -> None:
    path = policies_file(tmp_path, settings.state_bucket, tenantVariables=["ecr_keep_images"],
                         variables={"create_github_oidc_provider": "false"})
    async with open_sandbox(tenant_policies=path) as sandbox:
        body = llmapp(terraform={"module": "sandbox", **terraform})
        if aws is not None:
            body["spec"]["aws"] = aws
        await sandbox.client.create(body)
        obj = await sandbox.client.wait_for(NS, "rags", stalled_with(reason), timeout=30)
        assert words in obj["status"]["lastError"] and "team-a" in obj["status"]["lastError"]
        assert terraform_log.count() == 0 and sandbox.state() == []
        buckets = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        assert "tenant-owned-bucket" not in buckets   # the operator's identity made nothing of the tenant's choosing


async def test_two_namespaces_run_as_their_own_roles_on_their_own_state(
        open_sandbox: SandboxFactory, tmp_path: pathlib.Path, settings: Any, moto_endpoint: str, s3: Any) -> None:
    notes = tmp_path / "credentials.jsonl"
    record_credentials(pathlib.Path(settings.terraform_binary), notes)
    path = policies_file(tmp_path, settings.state_bucket,
                         variables={"create_github_oidc_provider": "false"})
    async with open_sandbox(tenant_policies=path, namespaces=(NS, OTHER_NS)) as sandbox:
        sandbox.api.server.create_object("namespaces", {"metadata": {"name": OTHER_NS,
                                                                    "labels": {"llmops.dev/tenant": "b"}}})
        a = await sandbox.client.create(llmapp(terraform={"module": "sandbox"}))
        other = llmapp(terraform={"module": "sandbox"})
        other["metadata"]["namespace"] = OTHER_NS
        b = await sandbox.client.create(other)
        await sandbox.client.wait_for(NS, "rags", is_ready, timeout=90)
        await sandbox.client.wait_for(OTHER_NS, "rags", is_ready, timeout=90)

        assert sandbox.state(prefix="team-a") and sandbox.state(prefix="team-b", namespace=OTHER_NS)
        # The platform's variable reached the module; the tenant did not set it.
        record = json.loads(s3.get_object(Bucket=settings.state_bucket,
                                          Key=f"team-a/{NS}/rags/llmapp-record.json")["Body"].read())
        assert record["tfvars"]["create_github_oidc_provider"] == "false"

        seen: dict[str, set[str]] = {}
        for line in notes.read_text().splitlines():
            note = json.loads(line)
            uid = a["metadata"]["uid"] if a["metadata"]["uid"] in note["chdir"] else b["metadata"]["uid"]
            assert note["chdir"].count(uid) == 1
            assert note["key"] and note["token"], "a tenant's terraform ran without its role's session"
            sts = boto3.client("sts", endpoint_url=moto_endpoint, region_name="us-east-1",
                               aws_access_key_id=note["key"], aws_secret_access_key=note["secret"],
                               aws_session_token=note["token"])
            seen.setdefault(uid, set()).add(sts.get_caller_identity()["Arn"])
        assert seen[a["metadata"]["uid"]] == {f"arn:aws:sts::123456789012:assumed-role/llmapp-tenant-team-a/"
                                              f"llmapp-{NS}-rags"}
        assert seen[b["metadata"]["uid"]] == {f"arn:aws:sts::123456789012:assumed-role/llmapp-tenant-team-b/"
                                              f"llmapp-{OTHER_NS}-rags"}
        # The operator's own keys never reached a tenant's terraform.
        assert os.environ["AWS_ACCESS_KEY_ID"] not in notes.read_text()

        await sandbox.client.delete(NS, "rags")
        await sandbox.client.delete(OTHER_NS, "rags")
        assert await sandbox.client.wait_for(NS, "rags", lambda o: o is None, timeout=60) is None
        assert await sandbox.client.wait_for(OTHER_NS, "rags", lambda o: o is None, timeout=60) is None
        assert sandbox.state(prefix="team-a") == [] and sandbox.state(prefix="team-b", namespace=OTHER_NS) == []


@pytest.mark.parametrize(("fate", "reason"), [("tamper", "JobFailed"), ("forge", "JobResultForged")])
async def test_an_edited_request_or_a_forged_result_is_never_acted_on(
        open_sandbox: SandboxFactory, tmp_path: pathlib.Path, fate: str, reason: str) -> None:
    async with open_sandbox(**JOB_SETTINGS, retry_base_seconds=1.0) as sandbox, \
            playing(sandbox, tmp_path, fates=[fate]) as player:
        await sandbox.client.create(llmapp(terraform={"module": "sandbox"}))

        def refused(obj: dict[str, Any] | None) -> bool:
            return (condition(obj, "Ready") or {}).get("reason") == reason

        obj = await sandbox.client.wait_for(NS, "rags", refused, timeout=60)
        first = player.played[0][0]
        if fate == "tamper":
            # job-step refused the request before building a workspace: no terraform, exit 2.
            assert player.exits[first] == 2
            assert "refusing the Job request" in (tmp_path / "pods" / first / "pod.log").read_text()
            assert not (tmp_path / "pods" / first / "work").exists()
        else:
            assert "not authenticated" in obj["status"]["lastError"]
        # The retry (a new Job with a fresh request) is the first thing that applies.
        obj = await sandbox.client.wait_for(NS, "rags", is_ready, timeout=90)
        assert obj["status"]["url"] != "http://attacker.example"
        assert "someone-else" not in json.dumps(obj["status"])
        # The runner's identity is in the job namespace only: no pod of the tenant can name it.
        assert sandbox.api.server.get_object("serviceaccounts", NS, "llmapp-terraform") is None
        assert sandbox.api.server.get_object("serviceaccounts", JOB_NS, "llmapp-terraform") is not None
        assert sandbox.api.server.list_objects("jobs", NS) == []


async def test_a_policy_edit_that_moves_a_live_object_s_state_stalls_it_instead_of_building_twice(
        open_sandbox: SandboxFactory, tmp_path: pathlib.Path, settings: Any, s3: Any,
        terraform_log: TerraformLog) -> None:
    path = policies_file(tmp_path, settings.state_bucket)
    async with open_sandbox(tenant_policies=path) as sandbox:
        await sandbox.client.create(llmapp(terraform={"module": "sandbox"}))
        obj = await sandbox.client.wait_for(NS, "rags", is_ready, timeout=90)
        assert obj["status"]["state"] == f"s3://{settings.state_bucket}/team-a/{NS}/rags/terraform.tfstate"
        assert sandbox.state(prefix="team-a")
        runs = terraform_log.count()

        policies_file(tmp_path, settings.state_bucket, backends={"default": {
            "bucket": settings.state_bucket, "region": "us-east-1", "keyPrefix": "moved"}})
        os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))   # the kubelet's ConfigMap refresh
        await sandbox.client.patch(NS, "rags", {"spec": {"app": {"desiredCount": 2}}})
        obj = await sandbox.client.wait_for(NS, "rags", stalled_with("BackendChanged"), timeout=30)
        assert "moved/team-a/rags" in obj["status"]["lastError"] and "team-a/team-a/rags" in obj["status"]["lastError"]
        assert terraform_log.count() == runs   # nothing planned in the empty new place
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket=settings.state_bucket).get("Contents", [])}
        assert not any(key.startswith("moved/") for key in keys)

        # A deletion now would find nothing at the new place: it waits for the policy instead.
        await sandbox.client.delete(NS, "rags")
        deleting = await sandbox.client.wait_for(NS, "rags", lambda o: (o or {}).get("status", {}).get(
            "lastError", "").startswith("tenant policy 'team-a' now puts"), timeout=30)
        assert deleting is not None and deleting["metadata"]["deletionTimestamp"]
        policies_file(tmp_path, settings.state_bucket)
        os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 10))
        assert await sandbox.client.wait_for(NS, "rags", lambda o: o is None, timeout=60) is None
        assert sandbox.state(prefix="team-a") == []   # destroyed where it was built

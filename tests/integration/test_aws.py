"""boto3 parts against moto in server mode: state backend bootstrap and the app-secret hand-off."""

from __future__ import annotations

import boto3
import pytest

from llmapp_operator.api.errors import TransientError
from llmapp_operator.api.workspace import BackendConfig
from llmapp_operator.cloud.app_secrets import AppSecrets
from llmapp_operator.cloud.state import StateBackend

OWNER = {"namespace": "team-a", "name": "rags", "uid": "uid-1"}


async def test_state_backend_with_dynamodb_lock_table(moto_endpoint: str) -> None:
    backend = BackendConfig(bucket="state-ddb", key="k", region="eu-west-1", dynamodb_table="locks")
    state = StateBackend(moto_endpoint)
    await state.ensure(backend)
    await state.ensure(backend)  # idempotent, and cached
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="eu-west-1")
    assert s3.get_bucket_location(Bucket="state-ddb")["LocationConstraint"] == "eu-west-1"
    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="eu-west-1")
    table = ddb.describe_table(TableName="locks")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "LockID", "KeyType": "HASH"}]


async def test_a_half_configured_state_bucket_gets_its_protection_back(moto_endpoint: str) -> None:
    """A crash between create_bucket and the configuration calls (or a hand edit) leaves a bucket
    unversioned, unencrypted and public-able: the next start enforces all three on it."""
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="state-half-done")
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_public_access_block(Bucket="state-half-done")
    await StateBackend(moto_endpoint).ensure(BackendConfig(bucket="state-half-done", key="k", region="us-east-1"))
    assert s3.get_bucket_versioning(Bucket="state-half-done")["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket="state-half-done")["PublicAccessBlockConfiguration"].values())
    rules = s3.get_bucket_encryption(Bucket="state-half-done")["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


async def test_state_backend_unreachable_is_transient() -> None:
    backend = BackendConfig(bucket="nowhere", key="k", region="us-east-1")
    with pytest.raises(TransientError) as caught:
        await StateBackend("http://127.0.0.1:9").ensure(backend)
    assert caught.value.reason == "StateBackendUnavailable"


async def test_app_secrets_create_rotate_remove(moto_endpoint: str) -> None:
    secrets = AppSecrets(moto_endpoint)
    sm = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")

    arns, rotated = await secrets.sync("us-east-1", OWNER, {"OPENAI_KEY": "value-one", "OTHER": "x-1234"})
    assert not rotated and set(arns) == {"OPENAI_KEY", "OTHER"}  # new ARNs: Terraform rolls the tasks
    assert sm.get_secret_value(SecretId=arns["OPENAI_KEY"])["SecretString"] == "value-one"
    tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=arns["OPENAI_KEY"])["Tags"]}
    assert tags == {"llmops.dev/namespace": "team-a", "llmops.dev/name": "rags", "llmops.dev/uid": "uid-1"}

    same, rotated = await secrets.sync("us-east-1", OWNER, {"OPENAI_KEY": "value-one", "OTHER": "x-1234"})
    assert same == arns and not rotated  # nothing written when nothing changed

    after, rotated = await secrets.sync("us-east-1", OWNER, {"OPENAI_KEY": "value-two"})
    assert rotated and after == {"OPENAI_KEY": arns["OPENAI_KEY"]}  # same ARN, new version
    assert sm.get_secret_value(SecretId=arns["OPENAI_KEY"])["SecretString"] == "value-two"
    names = {s["Name"] for s in sm.list_secrets()["SecretList"]}
    assert "llmapp/team-a/rags/OTHER" not in names

    # Another object's secrets are never touched.
    other_owner = {**OWNER, "name": "rags-two"}
    await secrets.sync("us-east-1", other_owner, {"OPENAI_KEY": "theirs"})
    await secrets.delete_all("us-east-1", OWNER)
    names = {s["Name"] for s in sm.list_secrets()["SecretList"]}
    assert "llmapp/team-a/rags/OPENAI_KEY" not in names
    assert "llmapp/team-a/rags-two/OPENAI_KEY" in names


async def test_roll_service_redeploys_and_tolerates_a_missing_service(moto_endpoint: str) -> None:
    ecs = boto3.client("ecs", endpoint_url=moto_endpoint, region_name="us-east-1")
    ecs.create_cluster(clusterName="c1")
    ecs.register_task_definition(family="f", containerDefinitions=[{"name": "app", "image": "x", "memory": 512}])
    ecs.create_service(cluster="c1", serviceName="s1", taskDefinition="f", desiredCount=1)
    await AppSecrets(moto_endpoint).roll_service("us-east-1", "c1", "s1")
    await AppSecrets(moto_endpoint).roll_service("us-east-1", "no-such-cluster", "s1")  # nothing to roll


async def test_invalid_bucket_name_is_permanent_and_says_so(moto_endpoint: str) -> None:
    from llmapp_operator.api.errors import PermanentError

    with pytest.raises(PermanentError) as caught:
        await StateBackend(moto_endpoint).ensure(BackendConfig(bucket="bad[name", key="k", region="us-east-1"))
    assert caught.value.reason == "InvalidAwsRequest"

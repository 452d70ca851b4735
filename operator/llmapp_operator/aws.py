"""boto3: make sure the Terraform state backend exists before the first init.

The bucket is created versioned (state history survives a bad apply), encrypted and with all
public access blocked; a DynamoDB lock table is created only when configured (S3-native lock
files need none). Each backend is checked once per operator process.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import pathlib
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from .errors import PermanentError, TransientError
from .workspace import BackendConfig


@functools.lru_cache(maxsize=64)
def client(service: str, region: str, endpoint_url: str | None) -> Any:
    """A boto3 client with bounded retries and timeouts: a slow AWS must not stall the loop.

    Cached: creating a client costs tens of milliseconds, and boto3 clients are thread-safe.
    """
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=20),
    )


@contextlib.contextmanager
def aws_errors(what: str, *, denied: str, unavailable: str, denied_hint: str) -> Iterator[None]:
    """One mapping of AWS failures: access denied is permanent, everything else is retried."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _DENIED:
            raise PermanentError(f"{what}: {code}: {denied_hint}", reason=denied) from None
        raise TransientError(f"{what}: {code}", reason=unavailable) from None
    except botocore.exceptions.ParamValidationError:
        # Our own request is malformed (e.g. an invalid bucket name in the settings): retrying cannot help.
        raise PermanentError(f"{what}: invalid request parameters (check the names in the settings)",
                             reason="InvalidAwsRequest") from None
    except (botocore.exceptions.BotoCoreError, OSError) as exc:
        raise TransientError(f"{what} unreachable: {type(exc).__name__}", reason=unavailable) from None


_DENIED = {"AccessDenied", "AccessDeniedException", "InvalidAccessKeyId", "SignatureDoesNotMatch",
           "UnrecognizedClientException", "InvalidClientTokenId", "AllAccessDisabled"}


class StateBackend:
    """Bootstraps state buckets/tables; remembers which ones are known to be ready."""

    def __init__(self, endpoint_url: str | None = None) -> None:
        self.endpoint_url = endpoint_url
        self._ready: set[tuple[str, str, str | None]] = set()
        self._lock = threading.Lock()

    async def ensure(self, backend: BackendConfig) -> None:
        key = (backend.bucket, backend.region, backend.dynamodb_table)
        if key in self._ready:
            return
        await asyncio.to_thread(self._ensure_blocking, backend)
        self._ready.add(key)

    def _ensure_blocking(self, backend: BackendConfig) -> None:
        with self._lock, aws_errors(f"state backend s3://{backend.bucket} ({backend.region})",
                                    denied="StateBackendDenied", unavailable="StateBackendUnavailable",
                                    denied_hint="the operator's AWS identity may not use it"):
            self._ensure_bucket(backend)
            if backend.dynamodb_table:
                self._ensure_table(backend)

    def _ensure_bucket(self, backend: BackendConfig) -> None:
        s3 = client("s3", backend.region, self.endpoint_url)
        try:
            s3.head_bucket(Bucket=backend.bucket)
            return
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
                raise
        create: dict[str, Any] = {"Bucket": backend.bucket}
        if backend.region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": backend.region}
        try:
            s3.create_bucket(**create)
        except botocore.exceptions.ClientError as exc:
            # Another replica (or another object) won the race: that is fine.
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise
        s3.put_bucket_versioning(Bucket=backend.bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(
            Bucket=backend.bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        s3.put_public_access_block(
            Bucket=backend.bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True,
                "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
            },
        )

    def _ensure_table(self, backend: BackendConfig) -> None:
        assert backend.dynamodb_table is not None
        dynamodb = client("dynamodb", backend.region, self.endpoint_url)
        try:
            dynamodb.describe_table(TableName=backend.dynamodb_table)
            return
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
        dynamodb.create_table(
            TableName=backend.dynamodb_table,
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.get_waiter("table_exists").wait(TableName=backend.dynamodb_table)


def plan_key(backend: BackendConfig, plan_id: str) -> str:
    """Saved plans live beside the state they were made from: `<prefix>/<ns>/<name>/plans/<id>.tfplan`."""
    return f"{backend.key.rsplit('/', 1)[0]}/plans/{plan_id}.tfplan"


class PlanStore:
    """Saved plan files in the state bucket, so a plan made in one place (a Job's pod, before an
    approval) is applied elsewhere, later, exactly as it was made. The bucket is the state's own:
    versioned, encrypted and private, and a plan holds no more than the state already does."""

    def __init__(self, endpoint_url: str | None = None) -> None:
        self.endpoint_url = endpoint_url

    async def put(self, backend: BackendConfig, plan_id: str, path: pathlib.Path) -> None:
        def upload() -> None:
            with self._errors(backend):
                client("s3", backend.region, self.endpoint_url).put_object(
                    Bucket=backend.bucket, Key=plan_key(backend, plan_id), Body=path.read_bytes(),
                    ServerSideEncryption="AES256")
        await asyncio.to_thread(upload)

    async def fetch(self, backend: BackendConfig, plan_id: str, path: pathlib.Path) -> None:
        """Download the plan; a file whose content hash is not its id is refused."""
        def download() -> bytes:
            with self._errors(backend):
                s3 = client("s3", backend.region, self.endpoint_url)
                try:
                    return bytes(s3.get_object(Bucket=backend.bucket, Key=plan_key(backend, plan_id))["Body"].read())
                except botocore.exceptions.ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                        raise TransientError(f"saved plan {plan_id} is gone from the state bucket; planning again",
                                             reason="StalePlan") from None
                    raise
        data = await asyncio.to_thread(download)
        if hashlib.sha256(data).hexdigest()[:len(plan_id)] != plan_id:
            raise PermanentError(f"saved plan {plan_id} does not match its id: refusing to apply it",
                                 reason="PlanTampered")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    async def delete(self, backend: BackendConfig, plan_id: str) -> None:
        def remove() -> None:
            with self._errors(backend):
                client("s3", backend.region, self.endpoint_url).delete_object(
                    Bucket=backend.bucket, Key=plan_key(backend, plan_id))
        await asyncio.to_thread(remove)

    @staticmethod
    def _errors(backend: BackendConfig) -> contextlib.AbstractContextManager[None]:
        return aws_errors(f"saved plans in s3://{backend.bucket}", denied="StateBackendDenied",
                          unavailable="StateBackendUnavailable",
                          denied_hint="the Terraform identity may not read and write the state bucket")


class AppSecrets:
    """Hand the app's secret values to the ECS task through AWS Secrets Manager.

    One Secrets Manager secret per value, named `llmapp/<namespace>/<name>/<ENV_NAME>` and tagged
    with the owning object; Terraform only ever sees the ARNs. A value is written only when it
    differs from the stored one, so a changed Kubernetes Secret creates a new secret version and
    `sync` reports it so the caller can roll the ECS service.
    """

    def __init__(self, endpoint_url: str | None = None) -> None:
        self.endpoint_url = endpoint_url

    @staticmethod
    def secret_name(namespace: str, name: str, env_name: str) -> str:
        return f"llmapp/{namespace}/{name}/{env_name}"

    async def sync(self, region: str, owner: dict[str, str], values: dict[str, str]) -> tuple[dict[str, str], bool]:
        """-> ({ENV_NAME: arn}, rotated). Deletes the object's secrets that are no longer wanted.

        `rotated` is True when an existing secret got a new value under the same ARN: nothing in
        Terraform changes then, so the caller rolls the service for tasks to read the new version.
        """
        return await asyncio.to_thread(self._sync_blocking, region, owner, values)

    async def delete_all(self, region: str, owner: dict[str, str]) -> None:
        await asyncio.to_thread(self._sync_blocking, region, owner, {})

    def _sync_blocking(self, region: str, owner: dict[str, str], values: dict[str, str]) -> tuple[dict[str, str], bool]:
        secretsmanager = client("secretsmanager", region, self.endpoint_url)
        prefix = self.secret_name(owner["namespace"], owner["name"], "")
        tags = [{"Key": f"llmops.dev/{key}", "Value": value} for key, value in sorted(owner.items())]
        arns: dict[str, str] = {}
        rotated = False
        with aws_errors(f"Secrets Manager ({region})", denied="SecretsManagerDenied",
                        unavailable="SecretsManagerUnavailable",
                        denied_hint="the operator's AWS identity may not manage app secrets"):
            existing = self._owned(secretsmanager, prefix)
            for env_name, value in sorted(values.items()):
                secret_id = prefix + env_name
                if secret_id in existing:
                    current = secretsmanager.get_secret_value(SecretId=secret_id).get("SecretString")
                    if current != value:
                        secretsmanager.put_secret_value(SecretId=secret_id, SecretString=value)
                        rotated = True
                    arns[env_name] = existing[secret_id]
                else:
                    # A new secret means a new ARN in the variables: Terraform's apply rolls the tasks.
                    created = secretsmanager.create_secret(Name=secret_id, SecretString=value, Tags=tags,
                                                           Description="Managed by llmapp-operator; do not edit")
                    arns[env_name] = created["ARN"]
            for secret_id in sorted(set(existing) - {prefix + n for n in values}):
                # Values live in Kubernetes Secrets; nothing is lost by skipping the recovery window,
                # and a later re-create under the same name must not collide with a pending deletion.
                secretsmanager.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
        return arns, rotated

    @staticmethod
    def _owned(secretsmanager: Any, prefix: str) -> dict[str, str]:
        owned: dict[str, str] = {}
        paginator = secretsmanager.get_paginator("list_secrets")
        for page in paginator.paginate(Filters=[{"Key": "name", "Values": [prefix]}]):
            for entry in page.get("SecretList", []):
                if entry["Name"].startswith(prefix):
                    owned[entry["Name"]] = entry["ARN"]
        return owned

    async def roll_service(self, region: str, cluster: str, service: str) -> None:
        """Start a new ECS deployment so running tasks pick up new secret versions."""
        def roll() -> None:
            ecs = client("ecs", region, self.endpoint_url)
            with aws_errors(f"ECS {cluster}/{service}", denied="EcsDenied", unavailable="RolloutFailed",
                            denied_hint="the operator's AWS identity may not redeploy the service"):
                try:
                    ecs.update_service(cluster=cluster, service=service, forceNewDeployment=True)
                except botocore.exceptions.ClientError as exc:
                    code = exc.response.get("Error", {}).get("Code", "")
                    if code not in {"ClusterNotFoundException", "ServiceNotFoundException",
                                    "ServiceNotActiveException"}:
                        raise
                    # no running service: no task holds an old value

        await asyncio.to_thread(roll)

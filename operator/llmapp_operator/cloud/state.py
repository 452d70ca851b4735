"""boto3: make sure the Terraform state backend exists before the first init.

The bucket is created versioned (state history survives a bad apply), encrypted and with all
public access blocked; a DynamoDB lock table is created only when configured (S3-native lock
files need none). Each backend is checked once per operator process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import pathlib
import threading
from typing import Any

import botocore.exceptions

from llmapp_operator.api.errors import PermanentError, TransientError
from llmapp_operator.api.workspace import BackendConfig
from llmapp_operator.cloud.clients import aws_errors, client


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



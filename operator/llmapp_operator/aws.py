"""boto3: make sure the Terraform state backend exists before the first init.

The bucket is created versioned (state history survives a bad apply), encrypted and with all
public access blocked; a DynamoDB lock table is created only when configured (S3-native lock
files need none). Each backend is checked once per operator process.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from .errors import PermanentError, TransientError
from .workspace import BackendConfig

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

    def _client(self, service: str, region: str) -> Any:
        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            region_name=region,
            endpoint_url=self.endpoint_url,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5,
                          read_timeout=20),
        )

    def _ensure_blocking(self, backend: BackendConfig) -> None:
        with self._lock:
            try:
                self._ensure_bucket(backend)
                if backend.dynamodb_table:
                    self._ensure_table(backend)
            except botocore.exceptions.ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                message = f"state backend s3://{backend.bucket} ({backend.region}): {code}"
                if code in _DENIED:
                    raise PermanentError(message + ": the operator's AWS identity may not use it",
                                         reason="StateBackendDenied") from None
                raise TransientError(message, reason="StateBackendUnavailable") from None
            except (botocore.exceptions.BotoCoreError, OSError) as exc:
                raise TransientError(
                    f"state backend s3://{backend.bucket} unreachable: {type(exc).__name__}",
                    reason="StateBackendUnavailable",
                ) from None

    def _ensure_bucket(self, backend: BackendConfig) -> None:
        s3 = self._client("s3", backend.region)
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
        dynamodb = self._client("dynamodb", backend.region)
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

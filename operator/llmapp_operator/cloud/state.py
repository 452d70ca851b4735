"""boto3: the Terraform state backend, the saved plans and the applied record beside the state.

The bucket is made versioned (state history survives a bad apply), encrypted and with all public
access blocked, and these settings are enforced every time the operator first uses a backend in a
process, on an existing bucket too: a crash between create and configure must not leave it
unprotected for good. A DynamoDB lock table is created only when configured (S3-native lock files
need none).
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
from llmapp_operator.api.record import AppliedRecord, record_key
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
        exists = True
        try:
            s3.head_bucket(Bucket=backend.bucket)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
                raise
            exists = False
        if not exists:
            create: dict[str, Any] = {"Bucket": backend.bucket}
            if backend.region != "us-east-1":
                create["CreateBucketConfiguration"] = {"LocationConstraint": backend.region}
            try:
                s3.create_bucket(**create)
            except botocore.exceptions.ClientError as exc:
                # Another replica (or another object) won the race: that is fine.
                if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                    raise
        # Every time, not only after a create: idempotent, and a bucket left half-configured by a
        # crash (or changed by hand) gets its protection back.
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




class StateLocks:
    """Reads the lock Terraform holds on a state, as it stored it: the S3-native `<key>.tflock`
    object, or the `Info` of the DynamoDB item `<bucket>/<key>`. The runner notes the id of the
    lock each of its runs took, so a lock left by a run that died is recognised as that run's."""

    def __init__(self, endpoint_url: str | None = None) -> None:
        self.endpoint_url = endpoint_url

    async def held(self, backend: BackendConfig) -> str | None:
        """The lock document (JSON) or None when the state is not locked; None too when the
        backend does not answer: this is evidence gathering, never a reason to fail a run."""
        def read() -> str | None:
            try:
                if backend.dynamodb_table:
                    item = client("dynamodb", backend.region, self.endpoint_url, quick=True).get_item(
                        TableName=backend.dynamodb_table, Key={"LockID": {"S": f"{backend.bucket}/{backend.key}"}},
                        ConsistentRead=True).get("Item") or {}
                    info = item.get("Info", {}).get("S")
                    return str(info) if info else None
                body = client("s3", backend.region, self.endpoint_url, quick=True).get_object(
                    Bucket=backend.bucket, Key=f"{backend.key}.tflock")["Body"].read()
                return bytes(body).decode(errors="replace")
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                return None
        return await asyncio.to_thread(read)


class RecordStore:
    """The applied record (api/record.py) and what teardown asks of the backend: is there state,
    and the saved plans to remove. Same bucket, same identity, same encryption as the state."""

    def __init__(self, endpoint_url: str | None = None) -> None:
        self.endpoint_url = endpoint_url

    async def read(self, backend: BackendConfig) -> AppliedRecord | None:
        def get() -> bytes | None:
            with self._errors(backend):
                try:
                    response = client("s3", backend.region, self.endpoint_url).get_object(
                        Bucket=backend.bucket, Key=record_key(backend.key))
                except botocore.exceptions.ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NoSuchBucket"}:
                        return None
                    raise
                return bytes(response["Body"].read())
        data = await asyncio.to_thread(get)
        if data is None:
            return None
        try:
            return AppliedRecord.model_validate_json(data)
        except ValueError:
            raise PermanentError(f"the applied record s3://{backend.bucket}/{record_key(backend.key)} is unreadable",
                                 reason="RecordUnreadable") from None

    async def write(self, backend: BackendConfig, record: AppliedRecord) -> None:
        body = record.model_dump_json().encode()

        def put() -> None:
            with self._errors(backend):
                client("s3", backend.region, self.endpoint_url).put_object(
                    Bucket=backend.bucket, Key=record_key(backend.key), Body=body, ServerSideEncryption="AES256",
                    ContentType="application/json")
        await asyncio.to_thread(put)

    async def delete(self, backend: BackendConfig) -> None:
        def remove() -> None:
            with self._errors(backend):
                client("s3", backend.region, self.endpoint_url).delete_object(
                    Bucket=backend.bucket, Key=record_key(backend.key))
        await asyncio.to_thread(remove)

    async def state_exists(self, backend: BackendConfig) -> bool:
        """Is there a state (or a lock a dead run left) to destroy from?"""
        def head() -> bool:
            with self._errors(backend):
                s3 = client("s3", backend.region, self.endpoint_url)
                for key in (backend.key, f"{backend.key}.tflock"):
                    try:
                        s3.head_object(Bucket=backend.bucket, Key=key)
                        return True
                    except botocore.exceptions.ClientError as exc:
                        if exc.response.get("Error", {}).get("Code") not in {"NoSuchKey", "404", "NotFound",
                                                                             "NoSuchBucket"}:
                            raise
                return False
        return await asyncio.to_thread(head)

    async def delete_plans(self, backend: BackendConfig) -> int:
        """Remove every saved plan of the object (`<prefix>/<ns>/<name>/plans/`)."""
        prefix = plan_key(backend, "").rsplit("/", 1)[0] + "/"

        def remove() -> int:
            with self._errors(backend):
                s3 = client("s3", backend.region, self.endpoint_url)
                removed = 0
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=backend.bucket, Prefix=prefix):
                    for item in page.get("Contents", []):
                        s3.delete_object(Bucket=backend.bucket, Key=item["Key"])
                        removed += 1
                return removed
        return await asyncio.to_thread(remove)

    @staticmethod
    def _errors(backend: BackendConfig) -> contextlib.AbstractContextManager[None]:
        return PlanStore._errors(backend)

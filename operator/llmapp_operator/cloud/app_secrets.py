"""App secrets: Kubernetes Secret values written to AWS Secrets Manager, referenced by ARN."""

from __future__ import annotations

import asyncio
from typing import Any

import botocore.exceptions

from llmapp_operator.cloud.clients import aws_errors, client


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

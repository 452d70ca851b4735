"""Tenant roles: STS AssumeRole with a session that names the object, as Terraform's environment.

The runner's own identity (IRSA, Pod Identity, the operator's credentials) only assumes roles;
each Terraform run of a tenant gets temporary credentials of the role its tenant policy names,
tagged with the object's namespace, name and uid (visible in CloudTrail, usable in the role's
policies as aws:PrincipalTag). Credentials are cached per role and session until shortly before
they expire, and reach nothing but the child process's environment.
"""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass
from typing import Any

from llmapp_operator.api.tenancy import AssumedRole
from llmapp_operator.cloud.clients import aws_errors, client

REFRESH_BEFORE_EXPIRY = datetime.timedelta(minutes=10)
# Variables that would make an SDK pick another identity than the temporary credentials.
IDENTITY_VARIABLES = ("AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                      "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                      "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime.datetime

    def as_env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
                "AWS_SESSION_TOKEN": self.session_token}


class RoleSessions:
    """AssumeRole through the runner's own identity, one cached session per (role, object)."""

    def __init__(self, region: str, endpoint_url: str | None) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self._cache: dict[tuple[str, str, str | None], Credentials] = {}
        self.assumed = 0   # STS calls made (tests, benchmarks)

    async def env_for(self, role: AssumedRole) -> dict[str, str]:
        key = (role.arn, role.session_name, role.external_id)
        cached = self._cache.get(key)
        now = datetime.datetime.now(datetime.UTC)
        if cached is None or cached.expiration - REFRESH_BEFORE_EXPIRY <= now:
            cached = await asyncio.to_thread(self._assume, role)
            self._cache[key] = cached
        return cached.as_env()

    def _assume(self, role: AssumedRole) -> Credentials:
        arguments: dict[str, Any] = {
            "RoleArn": role.arn, "RoleSessionName": role.session_name,
            "DurationSeconds": role.duration_seconds,
            "Tags": [{"Key": key, "Value": value} for key, value in sorted(role.tags.items())],
        }
        if role.external_id:
            arguments["ExternalId"] = role.external_id
        with aws_errors(f"assuming tenant role {role.arn}", denied="RoleNotAssumable", unavailable="StsUnavailable",
                        denied_hint="the role's trust policy must let the operator's (and the runner's) identity "
                                    "call sts:AssumeRole and sts:TagSession, with the external id if one is set"):
            answer = client("sts", self.region, self.endpoint_url).assume_role(**arguments)
        found = answer["Credentials"]
        expiration = found["Expiration"]
        if isinstance(expiration, str):
            expiration = datetime.datetime.fromisoformat(expiration)
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=datetime.UTC)
        self.assumed += 1
        return Credentials(access_key_id=found["AccessKeyId"], secret_access_key=found["SecretAccessKey"],
                           session_token=found["SessionToken"], expiration=expiration)

"""The LLMApp resource as typed values: parsing is validation.

The CRD's openAPIV3Schema and CEL rules reject most bad input at `kubectl apply`; this module
mirrors those rules so that the operator never trusts a stored object blindly (older CRD
versions, `kubectl replace --validate=false`, a schema pruned by an older API server) and so
that both layers are unit-tested. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

# GitHub: owner 1-39 chars of [A-Za-z0-9-], repository of [A-Za-z0-9._-]; no "..", no slashes
# beyond the one separator. Anything else (path traversal, shell metacharacters) is rejected.
REPOSITORY_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$"
ENVIRONMENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
K8S_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
REGION_PATTERN = r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$"
MODULE_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
DURATION_PATTERN = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"

# The Fargate task sizes AWS accepts: cpu units -> allowed memory (MiB).
FARGATE_SIZES: Mapping[int, frozenset[int]] = {
    256: frozenset({512, 1024, 2048}),
    512: frozenset(range(1024, 4096 + 1, 1024)),
    1024: frozenset(range(2048, 8192 + 1, 1024)),
    2048: frozenset(range(4096, 16384 + 1, 1024)),
    4096: frozenset(range(8192, 30720 + 1, 1024)),
    8192: frozenset(range(16384, 61440 + 1, 4096)),
    16384: frozenset(range(32768, 122880 + 1, 8192)),
}


class Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are an error, not ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class SecretKeyRef(Model):
    name: Annotated[str, Field(min_length=1, max_length=253, pattern=K8S_NAME_PATTERN)]
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]


class ValueFrom(Model):
    secret_key_ref: SecretKeyRef


class SecretValue(Model):
    name: Annotated[str, Field(min_length=1, max_length=255, pattern=ENV_NAME_PATTERN)]
    value_from: ValueFrom


class AwsSpec(Model):
    region: Annotated[str, Field(pattern=REGION_PATTERN)]


class AppSpec(Model):
    image: Annotated[str, Field(max_length=512)] = ""
    container_port: Annotated[int, Field(ge=1, le=65535)] = 8501
    cpu: int = 1024
    memory: int = 2048
    desired_count: Annotated[int, Field(ge=0, le=100)] = 1
    health_check_path: Annotated[str, Field(pattern=r"^/[^\s]*$", max_length=1024)] = "/_stcore/health"
    env: Annotated[dict[str, str], Field(max_length=100)] = Field(default_factory=dict)
    secrets: Annotated[list[SecretValue], Field(max_length=50)] = Field(default_factory=list)

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        bad = sorted(name for name in env if not re.match(ENV_NAME_PATTERN, name))
        if bad:
            raise ValueError(f"invalid environment variable name(s): {', '.join(bad)}")
        return env

    @model_validator(mode="after")
    def _fargate_size(self) -> AppSpec:
        if self.memory not in FARGATE_SIZES.get(self.cpu, frozenset()):
            raise ValueError(
                f"cpu={self.cpu} memory={self.memory} is not a Fargate task size; "
                f"valid cpu values are {sorted(FARGATE_SIZES)} with matching memory"
            )
        names = [secret.name for secret in self.secrets]
        clash = sorted(set(names) & set(self.env)) + sorted({n for n in names if names.count(n) > 1})
        if clash:
            raise ValueError(f"app secret name(s) used twice or also in env: {', '.join(clash)}")
        return self


class NetworkSpec(Model):
    vpc_cidr: Annotated[str, Field(pattern=r"^([0-9]{1,3}\.){3}[0-9]{1,3}/(1[6-9]|2[0-4])$")] = "10.0.0.0/16"
    az_count: Annotated[int, Field(ge=2, le=6)] = 2
    single_nat_gateway: bool = True


class GitHubSpec(Model):
    repository: Annotated[str, Field(pattern=REPOSITORY_PATTERN)]
    environment: Annotated[str | None, Field(pattern=ENVIRONMENT_PATTERN)] = None
    api_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")] = "https://api.github.com"
    token_secret_ref: SecretKeyRef | None = None
    variables: Annotated[dict[str, str], Field(max_length=100)] = Field(default_factory=dict)
    secrets: Annotated[list[SecretValue], Field(max_length=100)] = Field(default_factory=list)

    @field_validator("repository")
    @classmethod
    def _no_dot_segments(cls, repository: str) -> str:
        if ".." in repository or repository.split("/")[1] in {".", ".."}:
            raise ValueError("repository must be owner/name without '..'")
        return repository


class BackendSpec(Model):
    bucket: Annotated[str | None, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] = None
    region: Annotated[str | None, Field(pattern=REGION_PATTERN)] = None
    key_prefix: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9!_.*'()/-]{1,200}$")] = None
    dynamodb_table: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_.-]{3,255}$")] = None


RULE_ID_PATTERN = r"^(LLMAPP-[A-Z0-9-]+|CKV2?_[A-Z0-9_]+)$"   # built-in rules and Checkov checks


class PolicySpec(Model):
    skip: Annotated[list[Annotated[str, Field(pattern=RULE_ID_PATTERN)]], Field(max_length=20)] = Field(
        default_factory=list)


class DriftSpec(Model):
    interval: Annotated[str, Field(pattern=r"^(0|([0-9]+h)?([0-9]+m)?([0-9]+s)?)$")] = "1h"
    auto_remediate: bool = False

    @property
    def interval_seconds(self) -> int:
        return 0 if self.interval == "0" else parse_duration(self.interval)


class TerraformSpec(Model):
    module: Annotated[str, Field(pattern=MODULE_NAME_PATTERN)] = "stack"
    vars: dict[str, Any] = Field(default_factory=dict)
    backend: BackendSpec = Field(default_factory=BackendSpec)
    runner: Literal["local", "job"] | None = None   # None: the operator's default runner
    timeout: Annotated[str, Field(pattern=DURATION_PATTERN, min_length=2)] = "30m"
    allow_destructive_changes: bool = False
    policy: PolicySpec = Field(default_factory=PolicySpec)
    max_monthly_cost: Annotated[float | None, Field(ge=0)] = None

    @property
    def timeout_seconds(self) -> int:
        return parse_duration(self.timeout)


class DeletionPolicy(StrEnum):
    DELETE = "Delete"
    ORPHAN = "Orphan"


class LLMAppSpec(Model):
    environment: Annotated[str, Field(pattern=ENVIRONMENT_PATTERN)]
    aws: AwsSpec
    app: AppSpec = Field(default_factory=AppSpec)
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    github: GitHubSpec
    terraform: TerraformSpec = Field(default_factory=TerraformSpec)
    suspend: bool = False
    deletion_policy: DeletionPolicy = DeletionPolicy.DELETE
    approve_plan: Annotated[str, Field(pattern=r"^(auto|manual|[0-9a-f]{16})$")] = "auto"
    drift_detection: DriftSpec = Field(default_factory=DriftSpec)


class ObjectRef(Model):
    """Identity of the object: what names, state keys and workspaces derive from."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    namespace: str
    name: str
    uid: str
    generation: int = 0


class LLMApp(Model):
    ref: ObjectRef
    spec: LLMAppSpec
    deleting: bool = False

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> LLMApp:
        """Parse a Kubernetes object; raise InvalidSpec with a readable, value-free message."""
        meta = body.get("metadata", {})
        ref = ObjectRef(
            namespace=meta.get("namespace", ""),
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation") or 0),
        )
        try:
            spec = LLMAppSpec.model_validate(dict(body.get("spec") or {}))
        except ValidationError as exc:
            raise InvalidSpec(describe_validation_error(exc)) from None
        return cls(ref=ref, spec=spec, deleting=bool(meta.get("deletionTimestamp")))

    @property
    def github_environment(self) -> str | None:
        if self.spec.github is None:
            return None
        return self.spec.github.environment or self.spec.environment


class InvalidSpec(ValueError):
    """The spec cannot be reconciled as written; the message names fields, never values."""


def describe_validation_error(exc: ValidationError) -> str:
    """`spec.app.cpu: ...; spec.github.repository: ...` without echoing the offending input.

    pydantic's default message includes `input_value=...`, which could be a secret pasted into the
    wrong field; we keep only the location and the rule.
    """
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        location = ".".join(str(item) for item in ("spec", *error["loc"]))
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts[:10]) + (f" (and {len(parts) - 10} more)" if len(parts) > 10 else "")


def parse_duration(text: str) -> int:
    """'1h30m' -> 5400. The pattern is checked by the model; an empty match is 0."""
    match = re.fullmatch(DURATION_PATTERN, text)
    if not match:
        raise ValueError(f"invalid duration {text!r}: use e.g. 30m, 1h, 90s")
    hours, minutes, seconds = (int(group[:-1]) if group else 0 for group in match.groups())
    return hours * 3600 + minutes * 60 + seconds

"""The LLMApp status as typed values: what the operator writes, and the CRD's status schema.

Written by the operator only (the status subresource keeps users' writes out). The schema is
generated from these models (`api/crd.py`), so a field the operator writes is never pruned by the
API server for being undeclared. Pure: no I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from llmapp_operator.api.spec import k8s

Name = Annotated[str, Field(description="A name.")]
Entry = Annotated[str, Field(description="One entry.")]


class StatusModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore",
                              use_attribute_docstrings=True)


class GitHubStatus(StatusModel):
    """What the operator manages in the app repository's GitHub environment (names only, never values)."""

    repository: str | None = None
    """The repository (owner/name)."""
    api_url: str | None = None
    """The GitHub API the repository lives in."""
    environment: str | None = None
    """The GitHub environment."""
    variables: list[Name] = Field(default_factory=list)
    """Names of the environment variables the operator manages."""
    secrets: list[Name] = Field(default_factory=list)
    """Names of the environment secrets the operator manages."""
    digest: str | None = None
    """Keyed digest (HMAC-SHA256 with the install's key) of the synced names and values; equal
    digests skip the sync."""
    created_environment: bool | None = None
    """The operator created the environment, so teardown may delete it."""
    synced_at: Annotated[str | None, Field(json_schema_extra={"format": "date-time"})] = None
    """When the environment was last written."""


class PlanStatus(StatusModel):
    """Summary of the last plan; when pending, the id to copy into spec.approvePlan."""

    id: str | None = None
    """Content hash of the saved plan (stored beside the state, not in the pod)."""
    add: int | None = None
    """Resources to add."""
    change: int | None = None
    """Resources to change in place."""
    destroy: int | None = None
    """Resources to destroy."""
    replace: int | None = None
    """Resources to replace (counted in add and destroy too)."""
    pending: bool | None = None
    """The plan waits for approval (spec.approvePlan set to its id)."""
    digest: str | None = None
    """The input digest the plan was made from; a changed spec makes the id stale."""
    reasons: list[Entry] = Field(default_factory=list)
    """Why the plan waits (approval required, destructive change, cost limit)."""
    destructive: list[Entry] = Field(default_factory=list)
    """Addresses of protected resources the plan would destroy or replace."""
    resources: list[Entry] = Field(default_factory=list)
    """A held plan's resource changes, "address: action" (addresses only, no values; at most 100)."""


class PolicyStatus(StatusModel):
    """The policy report of the last plan."""

    violations: list[Entry] = Field(default_factory=list)
    """Rule id and resource address of each violation."""
    waived: list[Entry] = Field(default_factory=list)
    """Violations waived by spec.terraform.policy.skip."""


class CostStatus(StatusModel):
    """Monthly cost estimate of the infrastructure after the last plan."""

    monthly_estimate: float | None = None
    """Estimated monthly cost (with spec.app.scaling: at maxTasks)."""
    monthly_estimate_at_min_tasks: float | None = None
    """With spec.app.scaling: the estimate at minTasks; the range is this to monthlyEstimate."""
    currency: str | None = None
    """Currency of the estimate."""
    price_table_date: str | None = None
    """Date of the price table used."""
    lines: list[Entry] = Field(default_factory=list)
    """The estimate's line items ("Fargate 2 task(s) x 1 vCPU / 2 GB: 72.08 USD")."""


class DriftStatus(StatusModel):
    """The last drift check."""

    checked_at: str | None = None
    """When the last drift check ran."""
    resources: list[Entry] = Field(default_factory=list)
    """Address and action of each drifted resource (no values)."""


class ScalingRange(StatusModel):
    """The task range of the service's scalable target."""

    min_tasks: Annotated[int, Field(json_schema_extra={"format": "int32"})]
    """Fewest tasks now."""
    max_tasks: Annotated[int, Field(json_schema_extra={"format": "int32"})]
    """Most tasks now."""


class SignInStatus(StatusModel):
    """The OIDC sign-in rule as the operator set it last (spec.auth.oidc); never the client secret."""

    provider: str | None = None
    """The provider's issuer."""
    client_id: str | None = None
    """The client id the rule authenticates as."""
    digest: str | None = None
    """A keyed digest of what was set, the secret included: a new secret sets the rule again."""


class RolloutStatus(StatusModel):
    """The ECS service as the operator last saw or set it (docs/stack.md, "Rollout")."""

    mode: Literal["pipeline", "operator"] | None = None
    """Who deploys images: the app's CD (pipeline) or the operator from spec.app.image (operator)."""
    image: str | None = None
    """The app image the service runs (or will run once it exists)."""
    task_definition: str | None = None
    """The task definition revision the service runs."""
    requested: str | None = None
    """The revision the operator deployed last; a service on another one after that was rolled back
    (operator) or deployed by the app's CD (pipeline)."""
    desired_count: Annotated[int | None, Field(json_schema_extra={"format": "int32"})] = None
    """Tasks the service is set to run: spec.app.desiredCount (with scaling: the autoscaler's count),
    0 while the image is missing."""
    scaling: ScalingRange | None = None
    """With spec.app.scaling: the range Application Auto Scaling holds now (0..0 out of hours)."""
    state: str | None = None
    """rolloutState of the service's PRIMARY deployment (IN_PROGRESS, COMPLETED, FAILED)."""


class Condition(StatusModel):
    """One condition."""

    type: str
    """Condition type."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: str | None = None
    """CamelCase reason."""
    message: str | None = None
    """Human-readable detail, free of secrets."""
    observed_generation: Annotated[int | None, Field(json_schema_extra={"format": "int64"})] = None
    """The generation the condition was set for."""
    last_transition_time: Annotated[str | None, Field(json_schema_extra={"format": "date-time"})] = None
    """When the status last changed."""


class LLMAppStatus(StatusModel):
    """What the operator observed and did. Written by the operator only."""

    phase: str | None = None
    """Pending, Planning, AwaitingApproval, Applying, Ready, Failed, Deleting or Suspended."""
    url: str | None = None
    """Public URL of the app (from the stack's url / alb_dns output)."""
    outputs: Annotated[dict[str, Any] | None, Field(json_schema_extra=k8s(preserve_unknown_fields=True))] = None
    """Non-sensitive Terraform outputs of the last apply."""
    observed_generation: Annotated[int | None, Field(json_schema_extra={"format": "int64"})] = None
    """The metadata.generation this status describes."""
    last_attempted_digest: str | None = None
    """Digest of the inputs of the last Terraform run started."""
    last_applied_digest: str | None = None
    """Digest of the inputs of the last successful apply; equal inputs start no Terraform process."""
    last_error: str | None = None
    """The last failure, redacted and shortened."""
    handled_request: str | None = None
    """The llmops.dev/reconcile-requested-at value the last finished pass saw (`kubectl llmapp
    reconcile --wait` waits for its own)."""
    state: str | None = None
    """Where this object's Terraform state is (s3://bucket/key), from its first run on: a tenant
    policy that later puts it elsewhere stalls the object (BackendChanged) instead of building a
    second stack beside the first."""
    app_secrets: list[Name] = Field(default_factory=list)
    """Names of the app secrets handed to the task through AWS Secrets Manager (names only)."""
    github: GitHubStatus | None = None
    """What the operator manages in the app repository's GitHub environment (names only, never values)."""
    plan: PlanStatus | None = None
    """Summary of the last plan; when pending, the id to copy into spec.approvePlan."""
    policy: PolicyStatus | None = None
    """The policy report of the last plan."""
    cost: CostStatus | None = None
    """Monthly cost estimate of the infrastructure after the last plan."""
    drift: DriftStatus | None = None
    """The last drift check."""
    rollout: RolloutStatus | None = None
    """What the ECS service runs, and how many tasks."""
    sign_in: SignInStatus | None = None
    """The OIDC sign-in rule of spec.auth.oidc, as set last."""
    conditions: Annotated[list[Condition], Field(json_schema_extra=k8s(list_type="map", list_map_keys=["type"]))
                          ] = Field(default_factory=list)
    """kstatus conditions: Ready, Reconciling, Stalled, InfraApplied, GitHubSynced, Deployed, AppHealthy,
    PlanPending, Drifted, CertificateIssued (with spec.domain)."""


def undeclared(patch: Mapping[str, Any], model: type[BaseModel] = LLMAppStatus, where: str = "status") -> list[str]:
    """Keys of a status patch that the status model (hence the CRD's schema) does not declare: the
    API server would prune them without a word, so a write must never carry one."""
    fields = _declared(model)
    found: list[str] = []
    for key, value in patch.items():
        if key not in fields:
            found.append(f"{where}.{key}")
            continue
        nested = fields[key]
        if nested is None or value is None:
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, Mapping):
                found += undeclared(item, nested, f"{where}.{key}")
    return found


@functools.cache
def _declared(model: type[BaseModel]) -> dict[str, type[BaseModel] | None]:
    """The model's keys as written, each with the model of its value if it has one (every
    status write checks its patch: worked out once per model, not per write)."""
    return {(info.alias or name): _model_of(info.annotation) for name, info in model.model_fields.items()}


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The status model inside `X | None`, `list[X]` or `Annotated[...]`, if any."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_of(argument)
        if found is not None:
            return found
    return None

"""Tenant policies: what the platform team lets the LLMApps of a namespace do (pure).

A policy selects namespaces (by name or by label selector, first match wins) and says which AWS
role the Terraform runs assume, which regions, which named state backends (`spec.terraform.
backendRef` picks one; nothing free-form), which modules, which module variables a tenant may set
and which the platform sets for them, and a monthly cost ceiling. The file is the platform's
(the chart renders it from `tenants.policies`); tenants never write it. Without a file the
operator behaves as before tenancy: one policy for every namespace with the operator's own
identity and state backend.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

from pydantic import Field, ValidationError, field_validator, model_validator

from llmapp_operator.api.errors import PermanentError
from llmapp_operator.api.spec import (
    MODULE_NAME_PATTERN,
    MODULE_VARIABLE_PATTERN,
    REGION_PATTERN,
    STANDARD_VARIABLES,
    BackendSpec,
    LLMApp,
    Model,
    check_unique,
)
from llmapp_operator.config import Settings

DEFAULT_BACKEND = "default"
ROLE_ARN_PATTERN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$"
SESSION_NAME_LENGTH = 64   # STS: RoleSessionName is at most 64 characters of [\w+=,.@-]


class LabelRequirement(Model):
    key: Annotated[str, Field(min_length=1, max_length=317)]
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _values(self) -> Self:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"{self.operator} needs values")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"{self.operator} takes no values")
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "Exists":
            return present
        if self.operator == "DoesNotExist":
            return not present
        inside = present and labels[self.key] in self.values
        return inside if self.operator == "In" else not inside


class NamespaceSelector(Model):
    """A Kubernetes label selector; empty selects every namespace."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelRequirement] = Field(default_factory=list)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return (all(labels.get(key) == value for key, value in self.match_labels.items())
                and all(requirement.matches(labels) for requirement in self.match_expressions))


class CloudRole(Model):
    """The role every Terraform run of the tenant assumes (STS AssumeRole, tagged session)."""

    arn: Annotated[str, Field(pattern=ROLE_ARN_PATTERN)]
    external_id: Annotated[str | None, Field(min_length=2, max_length=1224, pattern=r"^[\w+=,.@:/-]+$")] = None
    session_duration_seconds: Annotated[int, Field(ge=900, le=43200)] = 3600
    """At most the role's MaxSessionDuration (one hour unless the role allows more)."""


class NamedBackend(Model):
    """An S3 state backend the platform offers under a name."""

    bucket: Annotated[str, Field(max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    region: Annotated[str, Field(max_length=32, pattern=REGION_PATTERN)]
    key_prefix: Annotated[str, Field(max_length=200, pattern=r"^[A-Za-z0-9!_.*'()/-]{1,200}$")] = "llmapp"
    dynamodb_table: Annotated[str | None, Field(max_length=255, pattern=r"^[A-Za-z0-9_.-]{3,255}$")] = None


class TenantPolicy(Model):
    name: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    namespaces: list[str] = Field(default_factory=list)
    """Namespaces by name."""
    namespace_selector: NamespaceSelector | None = None
    """Namespaces by label (`{}` selects all); with `namespaces`, a namespace matching either is selected."""
    role: CloudRole | None = None
    """None: the runs use the operator's (or the Job's) own identity."""
    regions: list[Annotated[str, Field(pattern=REGION_PATTERN)]] = Field(default_factory=list)
    """Regions spec.aws.region may name; empty: any."""
    backends: dict[str, NamedBackend]
    """State backends by name; spec.terraform.backendRef picks one."""
    default_backend: str | None = None
    """The backend of objects that set no backendRef; unset: the one named `default`, else the only one."""
    modules: list[Annotated[str, Field(pattern=MODULE_NAME_PATTERN)]] = Field(default_factory=list)
    """Modules spec.terraform.module may name (each also in the operator's allow-list); empty: all."""
    tenant_variables: list[Annotated[str, Field(pattern=MODULE_VARIABLE_PATTERN)]] | None = None
    """Module variables spec.terraform.vars may set; unset: every one the module declares."""
    variables: dict[str, str] = Field(default_factory=dict)
    """Module variables the platform sets for every object of these namespaces (where the module
    declares them); a tenant cannot set or override them."""
    max_monthly_cost: Annotated[float | None, Field(ge=0)] = None
    """Plans above this monthly estimate wait for approval, whatever spec.terraform.maxMonthlyCost says."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not self.backends:
            raise ValueError("backends: name at least one state backend")
        if self.default_backend is not None and self.default_backend not in self.backends:
            raise ValueError(f"defaultBackend {self.default_backend!r} is not one of the backends")
        if not self.namespaces and self.namespace_selector is None:
            raise ValueError("select namespaces with namespaces or namespaceSelector")
        standard = sorted(set(self.variables) & set(STANDARD_VARIABLES))
        if standard:
            raise ValueError(f"variables: {', '.join(standard)} are set by the operator from each spec")
        overlap = sorted(set(self.variables) & set(self.tenant_variables or ()))
        if overlap:
            raise ValueError(f"{', '.join(overlap)}: set by the platform (variables), so not a tenant variable")
        return self

    def selects(self, namespace: str, labels: Mapping[str, str]) -> bool:
        return namespace in self.namespaces or (
            self.namespace_selector is not None and self.namespace_selector.matches(labels))

    @property
    def uses_labels(self) -> bool:
        selector = self.namespace_selector
        return selector is not None and bool(selector.match_labels or selector.match_expressions)

    def backend_name(self, ref: str | None) -> str:
        if ref:
            return ref
        if self.default_backend:
            return self.default_backend
        return DEFAULT_BACKEND if DEFAULT_BACKEND in self.backends or len(self.backends) != 1 else next(
            iter(self.backends))


class TenantPolicies(Model):
    policies: list[TenantPolicy]

    @field_validator("policies")
    @classmethod
    def _unique(cls, policies: list[TenantPolicy]) -> list[TenantPolicy]:
        check_unique("policy", [policy.name for policy in policies])
        return policies

    @classmethod
    def parse(cls, data: object, source: str) -> TenantPolicies:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
                                 for error in exc.errors())
            raise ValueError(f"tenant policies in {source} are invalid: {problems}") from None

    @property
    def uses_labels(self) -> bool:
        return any(policy.uses_labels for policy in self.policies)

    def select(self, namespace: str, labels: Mapping[str, str]) -> TenantPolicy:
        for policy in self.policies:
            if policy.selects(namespace, labels):
                return policy
        raise PermanentError(f"no tenant policy selects namespace {namespace!r}: the platform team has not "
                             "allowed LLMApps here (tenants.policies in the operator's chart values)",
                             reason="NoPolicy")


def single_tenant(settings: Settings) -> TenantPolicies:
    """What the operator did before tenant policies: every namespace, its own identity and the
    LLMAPP_STATE_* backend."""
    return TenantPolicies(policies=[TenantPolicy(
        name="default", namespace_selector=NamespaceSelector(),
        backends={DEFAULT_BACKEND: NamedBackend(bucket=settings.state_bucket, region=settings.state_region,
                                                key_prefix=settings.state_key_prefix,
                                                dynamodb_table=settings.lock_table)})])


# -- what a policy grants one object ------------------------------------------------------------

@dataclass(frozen=True)
class AssumedRole:
    """What a run asks STS for: the role, and a session that says whose run it is."""

    arn: str
    session_name: str
    tags: Mapping[str, str]
    external_id: str | None = None
    duration_seconds: int = 3600


@dataclass(frozen=True)
class Grant:
    """The policy's answer for one object: where its state lives, as whom it runs, its limits."""

    policy: str
    backend: NamedBackend
    role: AssumedRole | None
    platform_variables: Mapping[str, str]
    max_monthly_cost: float | None


def session_name(namespace: str, name: str) -> str:
    """`llmapp-<namespace>-<name>`, cut to what STS accepts; the tags carry the full identity."""
    return re.sub(r"[^\w+=,.@-]", "-", f"llmapp-{namespace}-{name}")[:SESSION_NAME_LENGTH]


def assumed_role(role: CloudRole, namespace: str, name: str, uid: str) -> AssumedRole:
    return AssumedRole(arn=role.arn, session_name=session_name(namespace, name),
                       tags={"llmops.dev/namespace": namespace, "llmops.dev/name": name[:256],
                             "llmops.dev/uid": uid},
                       external_id=role.external_id, duration_seconds=role.session_duration_seconds)


def grant(policy: TenantPolicy, app: LLMApp, module_variables: Sequence[str]) -> Grant:
    """Check the object against its namespace's policy; a refusal names the field and the policy."""
    spec, ref = app.spec, app.ref
    where = f"tenant policy {policy.name!r} (namespace {ref.namespace})"
    module = spec.terraform.module
    if policy.modules and module not in policy.modules:
        raise PermanentError(f"spec.terraform.module {module!r} is not allowed by {where}; allowed: "
                             f"{', '.join(policy.modules)}", reason="ModuleNotAllowed")
    if policy.regions and spec.aws.region not in policy.regions:
        raise PermanentError(f"spec.aws.region {spec.aws.region!r} is not allowed by {where}; allowed: "
                             f"{', '.join(policy.regions)}", reason="RegionNotAllowed")
    backend = backend_for(policy, spec.terraform.backend_ref, spec.terraform.backend, where)
    platform = {key: value for key, value in policy.variables.items() if key in module_variables}
    set_by_platform = sorted(set(spec.terraform.vars) & set(policy.variables))
    if set_by_platform:
        raise PermanentError(f"spec.terraform.vars: {', '.join(set_by_platform)} are set by the platform "
                             f"({where}), not per object", reason="VariableNotAllowed")
    if policy.tenant_variables is not None:
        refused = sorted(set(spec.terraform.vars) - set(policy.tenant_variables))
        if refused:
            allowed = ", ".join(policy.tenant_variables) or "none"
            raise PermanentError(f"spec.terraform.vars: {', '.join(refused)} may not be set per object under "
                                 f"{where}; tenants may set: {allowed}", reason="VariableNotAllowed")
    role = assumed_role(policy.role, ref.namespace, ref.name, ref.uid) if policy.role else None
    return Grant(policy=policy.name, backend=backend, role=role, platform_variables=platform,
                 max_monthly_cost=policy.max_monthly_cost)


def backend_for(policy: TenantPolicy, ref: str | None, legacy: BackendSpec, where: str) -> NamedBackend:
    """The named backend `ref` picks; or the deprecated free-form `spec.terraform.backend`, taken
    only when (with the default backend's values for what it leaves out, as before policies) it
    is exactly one of the named backends: a tenant never points the platform's identity at a
    bucket or table of its own choosing."""
    if legacy != BackendSpec():
        base = policy.backends.get(policy.backend_name(None))
        if base is not None:
            wanted = NamedBackend(bucket=legacy.bucket or base.bucket, region=legacy.region or base.region,
                                  key_prefix=legacy.key_prefix or base.key_prefix,
                                  dynamodb_table=legacy.dynamodb_table or base.dynamodb_table)
            for named in policy.backends.values():
                if named == wanted:
                    return named
        raise PermanentError(f"spec.terraform.backend (deprecated; bucket {legacy.bucket or base_bucket(base)!r}) is "
                             f"not one of the state backends of {where}; the platform team can name it there, "
                             "and new objects use spec.terraform.backendRef", reason="BackendNotAllowed")
    name = policy.backend_name(ref)
    if name not in policy.backends:
        what = f"spec.terraform.backendRef {ref!r}" if ref else "the default backend"
        raise PermanentError(f"{what} is not a backend of {where}; backends: {', '.join(sorted(policy.backends))}",
                             reason="BackendNotAllowed")
    return policy.backends[name]


def base_bucket(backend: NamedBackend | None) -> str:
    return backend.bucket if backend is not None else ""


def values_schema() -> dict[str, Any]:
    """The chart's values schema for `tenants` (values.schema.json, written by `make crd`): a policy
    Helm accepts is one the operator accepts, so a bad policy fails `helm install`, not the pod."""
    schema = TenantPolicy.model_json_schema(by_alias=True)
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in node.items() if key != "title"}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return {"type": "object", "additionalProperties": False,
            "properties": {"policies": {"type": "array", "items": inline(schema)}}}

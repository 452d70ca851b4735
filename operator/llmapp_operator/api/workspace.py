"""Spec + settings -> what one Terraform run needs: variables, backend, directory, digest.

Pure: the same inputs always give the same Workspace and the same digest, and nothing here
reads files or the network (module facts arrive as a ModuleInfo). Variables are rendered as JSON
values for a `*.tfvars.json` file, never by templating HCL.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from llmapp_operator.api.record import AppliedRecord
from llmapp_operator.api.spec import InvalidSpec, LLMApp
from llmapp_operator.api.tenancy import AssumedRole, Grant, NamedBackend, grant, single_tenant
from llmapp_operator.config import Settings

NAME_MAX = 24          # the stack appends suffixes such as "-alb-tg"; AWS caps ALB/TG names at 32
_HASH_LEN = 6


@dataclass(frozen=True)
class ModuleInfo:
    """What the operator knows about an allow-listed module (read once by modules.py)."""

    name: str
    path: pathlib.Path
    digest: str
    variables: Mapping[str, bool]   # name -> required
    outputs: frozenset[str]


@dataclass(frozen=True)
class BackendConfig:
    bucket: str
    key: str
    region: str
    dynamodb_table: str | None = None
    endpoint_url: str | None = None
    max_retries: int | None = None

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def as_tfbackend(self) -> str:
        """The `-backend-config=FILE` content; it holds no credentials."""
        lines = [
            f"bucket = {json.dumps(self.bucket)}",
            f"key = {json.dumps(self.key)}",
            f"region = {json.dumps(self.region)}",
            "encrypt = true",
        ]
        if self.dynamodb_table:
            lines.append(f"dynamodb_table = {json.dumps(self.dynamodb_table)}")
        else:
            lines.append("use_lockfile = true")
        if self.max_retries is not None:
            lines.append(f"max_retries = {int(self.max_retries)}")
        if self.endpoint_url:
            # An S3-compatible endpoint (moto, LocalStack): path-style addressing and no account
            # look-ups, which such endpoints may not answer.
            url = json.dumps(self.endpoint_url)
            lines += [
                f"endpoints = {{ s3 = {url}, dynamodb = {url}, sts = {url} }}",
                "use_path_style = true",
                "skip_credentials_validation = true",
                "skip_requesting_account_id = true",
                "skip_metadata_api_check = true",
            ]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Workspace:
    uid: str
    directory: pathlib.Path
    module: ModuleInfo
    tfvars: Mapping[str, Any]
    backend: BackendConfig
    timeout_seconds: int
    lock_timeout_seconds: int
    digest: str
    namespace: str = ""
    name: str = ""
    """The LLMApp this workspace belongs to: the Job runner owns its Jobs to it."""
    review: ReviewOptions | None = None
    """How the runner reviews each plan (policy waivers, prices); None: no review."""
    role: AssumedRole | None = None
    """The tenant role Terraform runs as (the tenant policy's); None: the runner's own identity.
    Not part of the digest: a new role for the same inputs changes who runs, not what is built."""
    keep_on_destroy: tuple[str, ...] = ()
    """State addresses a destroy leaves standing: removed from the state first (the module's
    keep_on_destroy output, e.g. spec.app.storage with keepOnDelete)."""

    @property
    def module_dir(self) -> pathlib.Path:
        return self.directory / "module"


def resource_name(namespace: str, name: str) -> str:
    """A deterministic AWS-compliant prefix: readable part + hash of the full identity.

    The hash keeps `a-b/c` and `a/b-c` apart and keeps long names unique after truncation.
    """
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:_HASH_LEN]
    readable = re.sub(r"[^a-z0-9-]+", "-", f"{namespace}-{name}".lower()).strip("-")
    readable = re.sub(r"-{2,}", "-", readable)
    if not readable or not readable[0].isalpha():
        readable = "app-" + readable
    readable = readable[: NAME_MAX - _HASH_LEN - 1].rstrip("-")
    return f"{readable}-{digest}"


def state_key(prefix: str, namespace: str, name: str) -> str:
    return f"{prefix.strip('/')}/{namespace}/{name}/terraform.tfstate"


def standard_variables(app: LLMApp, secret_arns: Mapping[str, str]) -> dict[str, Any]:
    """The variable contract every allow-listed module is written against."""
    spec = app.spec
    github = spec.github
    return {
        "name": resource_name(app.ref.namespace, app.ref.name),
        "environment": spec.environment,
        "aws_region": spec.aws.region,
        "github_repository": github.repository if github else "",
        "github_environment": app.github_environment or spec.environment,
        "container_port": spec.app.container_port,
        "task_cpu": spec.app.cpu,
        "task_memory": spec.app.memory,
        "health_check_path": spec.app.health_check_path,
        # rollout pipeline: empty here, so the digest never follows the CD's deploys; the image the
        # service runs goes in just before a plan (`with_running_image`).
        "image": spec.app.image,
        "rollout": spec.app.rollout_mode,
        "app_environment": dict(sorted({**spec.app.env, **spec.app.model_environment}.items())),
        "app_secret_arns": dict(sorted(secret_arns.items())),
        "vpc_cidr": spec.network.vpc_cidr,
        "az_count": spec.network.az_count,
        "single_nat_gateway": spec.network.single_nat_gateway,
        "bedrock_models": [model.id for model in spec.app.models],
        "scaling": spec.app.scaling.as_variable() if spec.app.scaling else None,
        "storage": spec.app.storage.as_variable() if spec.app.storage else None,
        "sign_in": sign_in_variable(app),
        "domain_name": spec.domain.name if spec.domain else "",
        "domain_zone_id": spec.domain.hosted_zone_id if spec.domain else "",
        "tags": {
            "llmops.dev/namespace": app.ref.namespace,
            "llmops.dev/name": app.ref.name,
            "llmops.dev/environment": spec.environment,
        },
    }


def sign_in_variable(app: LLMApp) -> dict[str, Any] | None:
    """spec.auth for the stack. The default domain prefix is a hash of the object's identity: unique
    enough in a region, and free of the words Cognito refuses (a namespace may well contain "aws")."""
    auth = app.spec.auth
    if auth is None:
        return None
    if auth.cognito is None:
        # oidc: the stack makes the rule; the operator sets its action (with the client secret) itself.
        return {"cognito_domain_prefix": None, "oidc": True}
    identity = hashlib.sha256(f"{app.ref.namespace}/{app.ref.name}".encode()).hexdigest()[:16]
    return {"cognito_domain_prefix": auth.cognito.domain_prefix or f"signin-{identity}", "oidc": False}


def render_variables(
    app: LLMApp, module: ModuleInfo, secret_arns: Mapping[str, str] | None = None,
    platform_variables: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Standard variables the module declares, plus `spec.terraform.vars` and the tenant policy's
    own variables, checked before any run."""
    standard = standard_variables(app, secret_arns or {})
    extra = dict(app.spec.terraform.vars)
    overriding = sorted(set(extra) & set(standard))
    if overriding:
        raise InvalidSpec(
            f"spec.terraform.vars: {', '.join(overriding)} are set by the operator from the spec; "
            "use the dedicated spec fields instead"
        )
    unknown = sorted(set(extra) - set(module.variables))
    if unknown:
        raise InvalidSpec(
            f"spec.terraform.vars: module {module.name!r} declares no variable "
            f"{', '.join(unknown)}"
        )
    tfvars = {key: value for key, value in standard.items() if key in module.variables}
    tfvars.update(extra)
    tfvars.update({key: value for key, value in (platform_variables or {}).items() if key in module.variables})
    missing = sorted(name for name, required in module.variables.items() if required and name not in tfvars)
    if missing:
        raise InvalidSpec(
            f"module {module.name!r} requires variable(s) {', '.join(missing)}: "
            "set them in spec.terraform.vars"
        )
    return dict(sorted(tfvars.items()))


def render_backend(named: NamedBackend, namespace: str, name: str, settings: Settings) -> BackendConfig:
    return BackendConfig(
        bucket=named.bucket,
        key=state_key(named.key_prefix, namespace, name),
        region=named.region,
        dynamodb_table=named.dynamodb_table,
        endpoint_url=settings.aws_endpoint_url,
        max_retries=settings.state_max_retries,
    )


def render(
    app: LLMApp,
    settings: Settings,
    module: ModuleInfo,
    granted: Grant | None = None,
    *,
    secret_arns: Mapping[str, str] | None = None,
    price_override: Mapping[str, Any] | None = None,
) -> Workspace:
    """The run of `app` under what its tenant policy `granted`; None: the single-tenant default."""
    grant = granted or single_tenant_grant(app, settings, module)
    tfvars = render_variables(app, module, secret_arns, grant.platform_variables)
    backend = render_backend(grant.backend, app.ref.namespace, app.ref.name, settings)
    return Workspace(
        uid=app.ref.uid,
        directory=settings.workdir / "workspaces" / app.ref.uid,
        module=module,
        tfvars=tfvars,
        backend=backend,
        timeout_seconds=app.spec.terraform.timeout_seconds or settings.default_timeout_seconds,
        lock_timeout_seconds=settings.lock_timeout_seconds,
        digest=input_digest(module, tfvars, backend),
        namespace=app.ref.namespace,
        name=app.ref.name,
        review=ReviewOptions(region=app.spec.aws.region, policy_skip=tuple(app.spec.terraform.policy.skip),
                             price_override=price_override, desired_tasks=app.spec.app.desired_count,
                             scaling_tasks=scaling_tasks(app)),
        role=grant.role,
    )


def scaling_tasks(app: LLMApp) -> tuple[int, int] | None:
    scaling = app.spec.app.scaling
    return (scaling.min_tasks, scaling.max_tasks) if scaling else None


def single_tenant_grant(app: LLMApp, settings: Settings, module: ModuleInfo) -> Grant:
    return grant(single_tenant(settings).select(app.ref.namespace, {}), app, tuple(module.variables))


def from_record(record: AppliedRecord, settings: Settings, module: ModuleInfo,
                role: AssumedRole | None = None) -> Workspace:
    """The workspace a teardown destroys from: the record alone, no spec (it may be invalid, or
    changed since the last apply). The module is the allow-listed one of that name today."""
    backend = BackendConfig(bucket=record.backend.bucket, key=record.backend.key, region=record.backend.region,
                            dynamodb_table=record.backend.dynamodb_table, endpoint_url=settings.aws_endpoint_url,
                            max_retries=settings.state_max_retries)
    tfvars = {name: value for name, value in record.tfvars.items() if name in module.variables}
    return Workspace(uid=record.uid, directory=settings.workdir / "workspaces" / record.uid, module=module,
                     tfvars=tfvars, backend=backend, timeout_seconds=settings.default_timeout_seconds,
                     lock_timeout_seconds=settings.lock_timeout_seconds, digest=record.attempted_digest,
                     namespace=record.namespace, name=record.name, role=role,
                     keep_on_destroy=kept_addresses(record.outputs))


def kept_addresses(outputs: Mapping[str, Any]) -> tuple[str, ...]:
    """The module's keep_on_destroy output as state addresses (anything else in it is ignored)."""
    value = outputs.get("keep_on_destroy")
    return tuple(str(a) for a in value if isinstance(a, str) and re.fullmatch(r"[A-Za-z0-9_.\[\]\"-]+", a)) \
        if isinstance(value, list) else ()


def input_digest(module: ModuleInfo, tfvars: Mapping[str, Any], backend: BackendConfig) -> str:
    """Changes exactly when a Terraform run could produce a different result.

    Timeouts and other run knobs are left out on purpose: changing them must not re-apply.
    """
    payload = json.dumps(
        {
            "module": [module.name, module.digest],
            "tfvars": tfvars,
            "backend": [backend.bucket, backend.key, backend.region, backend.dynamodb_table],
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ReviewOptions:
    """What the review needs besides the plan; part of the Workspace (and of a Job's request)."""

    region: str
    policy_skip: tuple[str, ...] = ()
    price_override: Mapping[str, Any] | None = None
    desired_tasks: int | None = None
    """Tasks the cost counts: spec.app.desiredCount. The operator sets it through the ECS API, so the
    plan only shows the count the service had; None: the plan's count."""
    scaling_tasks: tuple[int, int] | None = None
    """spec.app.scaling's (minTasks, maxTasks): the estimate is given at both, and the guardrails
    compare the one at maxTasks (what the app may cost)."""


def with_running_image(ws: Workspace, image: str) -> Workspace:
    """rollout pipeline: the image the service runs, for this plan only. The digest stays: a CD
    deploy is not a change of the inputs."""
    if not image or "image" not in ws.tfvars:
        return ws
    return replace(ws, tfvars={**ws.tfvars, "image": image})

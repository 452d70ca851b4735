"""The LLMApp spec as typed values: the one source of the CRD's schema, and parsing is validation.

`api/crd.py` generates `crds/llmapp.yaml` from these models: every field's type, bound, default
and description, and every rule the schema cannot say as a CEL rule (`x-kubernetes-validations`)
beside the Python check that mirrors it. So the API server rejects at `kubectl apply` what the
operator would reject later, and a spec the server accepts parses here (a property test runs both
on generated specs). The operator still never trusts a stored object blindly: older CRD versions,
`--validate=false` and restores from backups skip admission.

Every string, list and map is bounded, so that no object the CRD admits can outgrow the API
server's limits (256 KiB of annotations, where `kubectl apply` keeps the whole spec; 1.5 MiB per
object): see SPEC_BYTES_BUDGET and its test. Pure: no I/O.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from llmapp_operator.api.regions import REGIONS

# -- patterns (RE2-compatible: the API server evaluates them with Go's regexp) ---------------------
# GitHub: owner 1-39 chars of [A-Za-z0-9-], repository of [A-Za-z0-9._-]; "." and ".." are not names.
REPOSITORY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$"
ENVIRONMENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# A Kubernetes object name (DNS-1123 subdomain) and a Secret data key (IsConfigMapKey).
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
# What RE2 (the API server) means by \s; Python's and Rust's \s also match Unicode spaces and \v,
# so a pattern with \s would let the server admit what the operator refuses. Spelled out instead.
RE2_SPACE = r"\t\n\f\r "
REGION_PATTERN = r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$"
MODULE_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
MODULE_VARIABLE_PATTERN = r"^[a-z_][a-z0-9_]*$"
DURATION_PATTERN = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# /16 to /23: the stack cuts one public and one private subnet per AZ (up to 6 AZs) 4 bits below
# the VPC, so a /23 gives /27 subnets, the smallest that leaves room for an ALB and NAT gateways.
VPC_CIDR_PATTERN = rf"^({_OCTET}\.){{3}}{_OCTET}/(1[6-9]|2[0-3])$"
IMAGE_PATTERN = r"^([A-Za-z0-9][A-Za-z0-9._/:@-]*)?$"
RULE_ID_PATTERN = r"^(LLMAPP-[A-Z0-9-]+|CKV2?_[A-Z0-9_]+)$"   # built-in rules and Checkov checks
# A Bedrock foundation model id (provider.model[:version], e.g. anthropic.claude-3-haiku-20240307-v1:0),
# optionally behind a system-defined cross-region inference profile (us., eu., apac., global., ...).
# No "*" can match: access is granted to named models only (rule LLMAPP-BEDROCK-SCOPED).
INFERENCE_PROFILE_PREFIXES = ("us", "us-gov", "eu", "apac", "jp", "au", "ca", "global")
BEDROCK_MODEL_PATTERN = (rf"^(({'|'.join(INFERENCE_PROFILE_PREFIXES)})\.)?[a-z0-9][a-z0-9-]*\."
                         r"[a-z0-9][a-z0-9.:-]*[a-z0-9]$")
# App Auto Scaling's cron form: six fields (minutes hours day-of-month month day-of-week year).
SCALING_CRON_PATTERN = r"^cron\(([0-9A-Za-z*?/,#-]+ ){5}[0-9A-Za-z*?/,#-]+\)$"
TIMEZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"
# A public DNS name for the app: lower-case labels of letters, digits and dashes, at least two, no
# wildcard (ACM would issue a wildcard certificate and the alias record would be one too).
DOMAIN_PATTERN = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
HOSTED_ZONE_PATTERN = r"^Z[A-Z0-9]{1,31}$"
# A Cognito hosted-UI domain prefix: lower-case letters, digits and single hyphens inside.
COGNITO_PREFIX_PATTERN = r"^[a-z0-9](-?[a-z0-9]){0,62}$"
# ASCII only (an IdP's endpoints are): the spec-size bound counts such a string at 1 byte a character.
HTTPS_URL_PATTERN = r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]*)?$"
CLIENT_ID_PATTERN = r"^[!-~]+$"   # printable ASCII, no space
OAUTH_SCOPE_PATTERN = r"^[A-Za-z0-9:_./-]+( [A-Za-z0-9:_./-]+)*$"
MODEL_ENTRIES = 8
MODEL_ENV_LENGTH = 64
# What the operator itself sets in the container's environment from spec.app.models.
BEDROCK_IDS_ENV = "BEDROCK_MODEL_IDS"

# -- bounds ---------------------------------------------------------------------------------------
NAME_LENGTH = 128          # environment variable, GitHub variable/secret and module variable names
ENV_ENTRIES = 32
ENV_VALUE_LENGTH = 2048
ENV_VALUES_TOTAL = 4096    # characters over all values of one map
SECRET_ENTRIES = 32
MODULE_VARS = 16
MODULE_VAR_VALUE_LENGTH = 512
MODULE_VARS_TOTAL = 2048
MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS = 60, 24 * 3600
MIN_DRIFT_SECONDS = 1   # the drift timer's tick (LLMAPP_DRIFT_TICK_SECONDS) bounds how often checks really run
SPEC_BYTES_BUDGET = 132 * 1024   # 128 KiB until spec.app.scaling and spec.app.models (1.3 KiB more)
"""The largest `spec` the CRD admits, serialised as `kubectl apply` keeps it in its
last-applied-configuration annotation (escapes counted at 6 bytes), stays below this. The API
server allows 256 KiB of annotations in all: the rest is the user's own."""

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

# Module variables the operator sets from the spec: never settable through spec.terraform.vars.
# spec.app.desiredCount is none: the operator sets it through the ECS API (docs/stack.md).
STANDARD_VARIABLES = (
    "name", "environment", "aws_region", "github_repository", "github_environment", "container_port",
    "task_cpu", "task_memory", "health_check_path", "image", "app_environment",
    "app_secret_arns", "vpc_cidr", "az_count", "single_nat_gateway", "rollout", "tags",
    "bedrock_models", "scaling", "domain_name", "domain_zone_id", "storage", "sign_in",
)
# The variables of the built-in modules an object may set; generated from terraform/*/variables.tf
# by `make crd` and checked against the modules by a test (platform modules are checked at run time).
BUILTIN_MODULE_VARIABLES: Mapping[str, tuple[str, ...]] = {
    "stack": ("alb_log_retention_days", "certificate_arn", "create_github_oidc_provider", "ecr_keep_images",
              "permissions_boundary_arn"),
}


def cel(rule: str, message: str, *, field_path: str | None = None, reason: str | None = None) -> dict[str, str]:
    """One `x-kubernetes-validations` entry."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


def k8s(*rules: dict[str, str], **extensions: Any) -> dict[str, Any]:
    """Schema keywords the generator copies as they are (CEL rules, list types, defaults)."""
    extra: dict[str, Any] = {f"x-kubernetes-{key.replace('_', '-')}": value for key, value in extensions.items()}
    if rules:
        extra["x-kubernetes-validations"] = list(rules)
    return extra


def _map_rules(kind: str, *, values_total: int, extra_key_rule: str = "", extra_key_text: str = "") -> dict[str, Any]:
    """Names of a string map: syntax and length per key (the schema cannot bound keys), plus a
    bound on the characters of all values together."""
    key_rule = f"k.matches('{ENV_NAME_PATTERN}') && size(k) <= {NAME_LENGTH}" + extra_key_rule
    return k8s(
        cel(f"self.all(k, {key_rule})",
            f"{kind} names are letters, digits and underscores, not starting with a digit, at most "
            f"{NAME_LENGTH} characters{extra_key_text}"),
        cel(f"self.map(k, size(self[k])).sum() <= {values_total}",
            f"{kind} values may hold {values_total} characters in all (the object must stay within the "
            "API server's size limits)"),
    )


def _check_names(kind: str, names: Any, *, no_github_prefix: bool = False) -> None:
    bad = sorted(n for n in names if not re.match(ENV_NAME_PATTERN, n) or len(n) > NAME_LENGTH
                 or (no_github_prefix and n.upper().startswith("GITHUB_")))
    if bad:
        rule = ", not starting with GITHUB_" if no_github_prefix else ""
        raise ValueError(f"invalid {kind} name(s) {', '.join(bad)}: letters, digits and underscores, "
                         f"not starting with a digit, at most {NAME_LENGTH} characters{rule}")


def check_unique(kind: str, names: Sequence[str]) -> None:
    """`kind name(s) used twice: A, B` for names given more than once."""
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{kind} name(s) used twice: {', '.join(twice)}")


def _check_total(kind: str, values: Any, total: int) -> None:
    if sum(len(v) for v in values) > total:
        raise ValueError(f"{kind} values may hold {total} characters in all")


def _check_case_unique(kind: str, names: list[str]) -> None:
    folded = [n.upper() for n in names]
    twins = sorted({n for n in names if folded.count(n.upper()) > 1})
    if twins:
        raise ValueError(f"{kind} names are case-insensitive in GitHub; used twice: {', '.join(twins)}")


class Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are an error, not ignored. Booleans
    are StrictBool: the API server refuses "yes" for a boolean, so the model does too."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True,
                              use_attribute_docstrings=True)


class SecretKeyRef(Model):
    """A key of a Secret in the LLMApp's namespace."""

    model_config = ConfigDict(json_schema_extra=k8s(
        cel("self.key != '.' && !self.key.startsWith('..')", "key must not be '.' or start with '..'",
            field_path=".key")))

    name: Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
    """Secret name."""
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)]
    """Key within the Secret."""

    @model_validator(mode="after")
    def _key_not_dots(self) -> SecretKeyRef:
        if self.key == "." or self.key.startswith(".."):
            raise ValueError("key must not be '.' or start with '..'")
        return self


class ValueFrom(Model):
    """Where the value comes from."""

    secret_key_ref: SecretKeyRef
    """A key of a Secret in the LLMApp's namespace."""


class SecretValue(Model):
    """One secret environment variable."""

    name: Annotated[str, Field(min_length=1, max_length=NAME_LENGTH, pattern=ENV_NAME_PATTERN)]
    """Environment variable name in the container."""
    value_from: ValueFrom
    """Where the value comes from."""


class GitHubSecret(Model):
    """One GitHub environment secret."""

    name: Annotated[str, Field(min_length=1, max_length=NAME_LENGTH, pattern=ENV_NAME_PATTERN,
                               json_schema_extra=k8s(cel("!self.upperAscii().startsWith('GITHUB_')",
                                                         "GitHub secret names must not start with GITHUB_")))]
    """Secret name in GitHub: letters, digits and underscores, not starting with a digit or GITHUB_
    (GitHub stores it upper-case)."""
    value_from: ValueFrom
    """Where the value comes from."""

    @field_validator("name")
    @classmethod
    def _not_github(cls, name: str) -> str:
        _check_names("GitHub secret", [name], no_github_prefix=True)
        return name


class AwsSpec(Model):
    """Where in AWS the app runs. Credentials come from the operator's identity, never from the spec."""

    # One of the regions botocore knows (api/regions.py, generated from its partition data): the CRD
    # says it as an `enum`, so `kubectl apply` refuses `us-esat-1` and names the field; the validator
    # says the same to objects that skipped admission, with the nearest known region.
    region: Annotated[str, Field(max_length=32, pattern=REGION_PATTERN, json_schema_extra={
        "enum": list(REGIONS),
        **k8s(cel("self == oldSelf", "spec.aws.region is immutable: the infrastructure lives in its region; "
                                     "create a new LLMApp for another region"))})]
    """AWS region, e.g. us-east-1. Immutable."""

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        check_region(region)
        return region


def check_region(region: str) -> None:
    """A region AWS has, or a ValueError that says the nearest one (never the value itself)."""
    if region in REGIONS:
        return
    nearest = nearest_region(region)
    hint = f"did you mean {nearest}?" if nearest else "e.g. us-east-1"
    raise ValueError(f"not an AWS region botocore knows ({len(REGIONS)} regions in all partitions): {hint}")


def nearest_region(text: str, most_edits: int = 3) -> str | None:
    """The known region fewest typing slips away (a swap of two neighbours counts one, so
    `us-esat-1` is `us-east-1`, not `us-west-1`); ties go to the most similar by difflib."""
    scored = [(_edits(text, region), -difflib.SequenceMatcher(None, text, region).ratio(), region)
              for region in REGIONS]
    edits, _, region = min(scored)
    return region if edits <= most_edits else None


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps."""
    rows = [list(range(len(b) + 1))] + [[i] + [0] * len(b) for i in range(1, len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[len(a)][len(b)]


_FARGATE_RULE = " || ".join(
    f"(self.cpu == {cpu} && self.memory in [{', '.join(str(m) for m in sorted(memory))}])"
    if cpu == 256 else
    f"(self.cpu == {cpu} && self.memory >= {min(memory)} && self.memory <= {max(memory)} "
    f"&& self.memory % {sorted(memory)[1] - sorted(memory)[0]} == 0)"
    for cpu, memory in FARGATE_SIZES.items()
)


class BedrockModel(Model):
    """A Bedrock model the app may invoke, without an API key: the task role may call it."""

    id: Annotated[str, Field(min_length=3, max_length=96, pattern=BEDROCK_MODEL_PATTERN)]
    """Foundation model id (anthropic.claude-3-haiku-20240307-v1:0) or system-defined inference profile
    id (us.anthropic.claude-3-5-sonnet-20240620-v1:0). The task role may call exactly this model in the
    app's region (a profile: through that profile only)."""
    env: Annotated[str | None, Field(min_length=1, max_length=MODEL_ENV_LENGTH, pattern=ENV_NAME_PATTERN)] = None
    """Environment variable that receives this id (BEDROCK_MODEL_IDS always lists all of them)."""

    @property
    def is_inference_profile(self) -> bool:
        return self.id.split(".", 1)[0] in INFERENCE_PROFILE_PREFIXES


class StorageSpec(Model):
    """A private, encrypted, versioned S3 bucket for the app's documents and index, whose objects only
    the app's task role (and the stack's own Terraform) may read and write."""

    keep_on_delete: StrictBool = True
    """Keep the bucket and its objects when the LLMApp is deleted, even with deletionPolicy Delete (the
    teardown leaves it out of the destroy and names it in an Event). false: the teardown empties and
    deletes it."""
    env: Annotated[str, Field(min_length=1, max_length=MODEL_ENV_LENGTH, pattern=ENV_NAME_PATTERN)] = "STORAGE_BUCKET"
    """Environment variable that receives the bucket's name."""

    def as_variable(self) -> dict[str, Any]:
        return {"keep_on_delete": self.keep_on_delete, "env": self.env}


class ScalingSchedule(Model):
    """Out of hours: 0 tasks from `stop` until `start` (App Auto Scaling scheduled actions)."""

    stop: Annotated[str, Field(max_length=64, pattern=SCALING_CRON_PATTERN)]
    """When tasks go to 0, e.g. cron(0 20 ? * MON-FRI *)."""
    start: Annotated[str, Field(max_length=64, pattern=SCALING_CRON_PATTERN)]
    """When minTasks..maxTasks apply again, e.g. cron(0 7 ? * MON-FRI *)."""
    timezone: Annotated[str, Field(max_length=64, pattern=TIMEZONE_PATTERN)] = "UTC"
    """IANA time zone of both expressions, e.g. Europe/Berlin."""


class ScalingSpec(Model):
    """ECS service autoscaling: the task count follows load between minTasks and maxTasks."""

    model_config = ConfigDict(json_schema_extra=k8s(
        cel("self.minTasks <= self.maxTasks", "minTasks must not be above maxTasks", field_path=".minTasks"),
        cel("has(self.cpuTarget) || has(self.requestsPerTarget)",
            "set cpuTarget, requestsPerTarget or both: what the task count follows"),
    ))

    min_tasks: Annotated[int, Field(ge=1, le=100)] = 1
    """Fewest tasks while the app is up, at least 1: target tracking cannot scale out from 0 tasks (no
    task reports CPU, no target counts requests). For 0 tasks out of hours use schedule."""
    max_tasks: Annotated[int, Field(ge=1, le=100)]
    """Most tasks; the cost estimate shows the monthly cost at minTasks and at maxTasks."""
    cpu_target: Annotated[int | None, Field(ge=10, le=90)] = None
    """Average CPU utilisation (percent) to hold by adding and removing tasks."""
    requests_per_target: Annotated[int | None, Field(ge=1, le=100000)] = None
    """ALB requests per task (ALBRequestCountPerTarget) to hold."""
    schedule: ScalingSchedule | None = None
    """Scale to zero out of hours, e.g. for a dev app."""

    @model_validator(mode="after")
    def _range(self) -> ScalingSpec:
        if self.min_tasks > self.max_tasks:
            raise ValueError("minTasks must not be above maxTasks")
        if self.cpu_target is None and self.requests_per_target is None:
            raise ValueError("set cpuTarget, requestsPerTarget or both: what the task count follows")
        return self

    def as_variable(self) -> dict[str, Any]:
        """The stack's `scaling` variable (null when the spec has no scaling)."""
        return {"min_tasks": self.min_tasks, "max_tasks": self.max_tasks, "cpu_target": self.cpu_target,
                "requests_per_target": self.requests_per_target,
                "schedule": None if self.schedule is None else {
                    "stop": self.schedule.stop, "start": self.schedule.start, "timezone": self.schedule.timezone}}


class AppSpec(Model):
    """The app container and its Fargate task."""

    model_config = ConfigDict(json_schema_extra=k8s(
        cel(f"!has(self.cpu) || !has(self.memory) || {_FARGATE_RULE}",
            "cpu/memory is not a valid Fargate task size (see "
            "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html)",
            field_path=".memory"),
        cel("!has(self.secrets) || !has(self.env) || self.secrets.all(s, !(s.name in self.env))",
            "an app secret's name is also in env", field_path=".secrets"),
        cel("!has(self.rollout) || self.rollout != 'pipeline' || !has(self.image) || self.image == ''",
            "rollout: pipeline lets the app's CD choose the image; leave image empty, or use rollout: operator",
            field_path=".image"),
        cel("!has(self.rollout) || self.rollout != 'operator' || (has(self.image) && self.image != '')",
            "rollout: operator runs spec.app.image: set it (a tag or a digest)", field_path=".image"),
        cel(f"!has(self.models) || !has(self.env) || (!('{BEDROCK_IDS_ENV}' in self.env) && "
            "self.models.all(m, !has(m.env) || !(m.env in self.env)))",
            f"env sets {BEDROCK_IDS_ENV} or a model's env name: the operator sets those from models",
            field_path=".env"),
        cel("!has(self.models) || !has(self.secrets) || self.secrets.all(s, "
            f"s.name != '{BEDROCK_IDS_ENV}' && self.models.all(m, !has(m.env) || m.env != s.name))",
            f"an app secret is named {BEDROCK_IDS_ENV} or like a model's env: the operator sets those from models",
            field_path=".secrets"),
        cel("!has(self.storage) || ((!has(self.env) || !(self.storage.env in self.env)) && (!has(self.secrets) || "
            "self.secrets.all(s, s.name != self.storage.env)) && (!has(self.models) || (self.storage.env != '"
            + BEDROCK_IDS_ENV + "' && self.models.all(m, !has(m.env) || m.env != self.storage.env))))",
            "storage.env is also set by env, a secret or a model: the operator sets it to the bucket's name",
            field_path=".storage.env"),
        cel("!has(self.models) || self.models.all(m, !has(m.env) || (m.env != '" + BEDROCK_IDS_ENV + "' && "
            "self.models.filter(n, has(n.env) && n.env == m.env).size() == 1))",
            f"two models use the same env name, or one is {BEDROCK_IDS_ENV}", field_path=".models"),
    ))

    image: Annotated[str, Field(max_length=512, pattern=IMAGE_PATTERN)] = ""
    """Container image (a tag or a digest) the operator deploys: set it for rollout: operator. Empty
    (rollout: pipeline) means the app's CD deploys images it pushes to the ECR repository the operator creates."""
    rollout: Literal["pipeline", "operator"] | None = None
    """Who deploys new images. pipeline: the app's CD (it registers task definition revisions); the
    operator never rolls them back or reports them as drift, and deploys its own changes with the image
    that is running. operator: spec.app.image is what runs; a change rolls out with the ECS circuit
    breaker. Unset: operator when image is set, else pipeline."""
    container_port: Annotated[int, Field(ge=1, le=65535)] = 8501
    """Port the container listens on (Streamlit serves on 8501)."""
    cpu: Annotated[Literal[256, 512, 1024, 2048, 4096, 8192, 16384], Field()] = 1024
    """Fargate task CPU units (256, 512, 1024, 2048, 4096, 8192, 16384)."""
    memory: Annotated[int, Field(ge=512, le=122880)] = 2048
    """Fargate task memory in MiB; must be a valid combination with cpu."""
    desired_count: Annotated[int, Field(ge=0, le=100)] = 1
    """Number of running tasks. Set by the operator through the ECS API (the service module ignores
    desired_count after creation); 0 tasks run until the image exists."""
    health_check_path: Annotated[str, Field(pattern=rf"^/[^{RE2_SPACE}]*$", max_length=1024)] = "/_stcore/health"
    """HTTP path the load balancer probes (Streamlit's is /_stcore/health)."""
    env: Annotated[dict[str, Annotated[str, Field(max_length=ENV_VALUE_LENGTH, description="The variable's value.")]],
                   Field(max_length=ENV_ENTRIES, json_schema_extra=_map_rules("env", values_total=ENV_VALUES_TOTAL))
                   ] = Field(default_factory=dict)
    """Plain (non-secret) environment variables for the container."""
    secrets: Annotated[list[SecretValue], Field(max_length=SECRET_ENTRIES, json_schema_extra=k8s(
        list_type="map", list_map_keys=["name"]))] = Field(default_factory=list)
    """Secret environment variables. Values are read from Kubernetes Secrets and reach the task through
    AWS Secrets Manager, never through Terraform state, logs, Events or status."""
    scaling: ScalingSpec | None = None
    """Autoscaling of the task count between minTasks and maxTasks; desiredCount is then not used
    (docs/stack.md)."""
    storage: StorageSpec | None = None
    """An S3 bucket for documents and the index that survives restarts and redeploys (and, by
    default, the LLMApp's deletion). Its name reaches the container as storage.env."""
    models: Annotated[list[BedrockModel], Field(max_length=MODEL_ENTRIES, json_schema_extra=k8s(
        list_type="map", list_map_keys=["id"]))] = Field(default_factory=list)
    """Amazon Bedrock models the app may invoke with its task role (no API key). The container gets
    BEDROCK_MODEL_IDS (comma-separated) and each model's env variable."""

    @property
    def model_environment(self) -> dict[str, str]:
        """The variables the operator adds to the container's environment for `models`."""
        if not self.models:
            return {}
        return {BEDROCK_IDS_ENV: ",".join(m.id for m in self.models),
                **{m.env: m.id for m in self.models if m.env}}

    @property
    def rollout_mode(self) -> Literal["pipeline", "operator"]:
        """The rollout in effect: as set, or operator when an image is given."""
        return self.rollout or ("operator" if self.image else "pipeline")

    @field_validator("env")
    @classmethod
    def _env(cls, env: dict[str, str]) -> dict[str, str]:
        _check_names("environment variable", env)
        _check_total("env", env.values(), ENV_VALUES_TOTAL)
        return env

    @model_validator(mode="after")
    def _fargate_size(self) -> AppSpec:
        if self.memory not in FARGATE_SIZES.get(self.cpu, frozenset()):
            raise ValueError(
                f"cpu={self.cpu} memory={self.memory} is not a Fargate task size; "
                f"valid cpu values are {sorted(FARGATE_SIZES)} with matching memory"
            )
        if self.rollout == "pipeline" and self.image:
            raise ValueError("rollout: pipeline lets the app's CD choose the image; leave image empty, "
                             "or use rollout: operator")
        if self.rollout == "operator" and not self.image:
            raise ValueError("rollout: operator runs spec.app.image: set it (a tag or a digest)")
        names = [secret.name for secret in self.secrets]
        check_unique("app secret", names)
        clash = sorted(set(names) & set(self.env))
        if clash:
            raise ValueError(f"app secret name(s) also in env: {', '.join(clash)}")
        check_unique("model", [m.id for m in self.models])
        model_env = [m.env for m in self.models if m.env]
        check_unique("model env", model_env)
        taken = sorted((set(model_env) | ({BEDROCK_IDS_ENV} if self.models else set())) & (set(self.env) | set(names)))
        if taken or BEDROCK_IDS_ENV in model_env:
            raise ValueError(f"{', '.join(taken or [BEDROCK_IDS_ENV])}: set by the operator from spec.app.models; "
                             "do not set it in env, secrets or a second model")
        if self.storage is not None and self.storage.env in (
                set(self.env) | set(names) | set(model_env) | ({BEDROCK_IDS_ENV} if self.models else set())):
            raise ValueError("storage.env is also set by env, a secret or a model: the operator sets it to the "
                             "bucket's name")
        return self


class DomainSpec(Model):
    """The app's own HTTPS name: an ACM certificate validated through Route53 DNS records, and an alias
    record to the load balancer."""

    name: Annotated[str, Field(min_length=4, max_length=253, pattern=DOMAIN_PATTERN)]
    """Fully qualified name the app is served at, e.g. rags.example.com; status.url becomes https://NAME."""
    hosted_zone_id: Annotated[str, Field(max_length=32, pattern=HOSTED_ZONE_PATTERN)]
    """Id of the public Route53 hosted zone that holds NAME (Z...): it gets the validation records and
    the alias record, so it must be the zone the domain is delegated to."""


class CognitoSignIn(Model):
    """A Cognito user pool the stack creates: invitation only (an administrator adds users), e-mail as
    the user name, optional TOTP multi-factor; the ALB sends signed-out visitors to its hosted UI."""

    domain_prefix: Annotated[str | None, Field(min_length=1, max_length=63, pattern=COGNITO_PREFIX_PATTERN,
                                               json_schema_extra=k8s(cel(
                                                   "!self.contains('aws') && !self.contains('amazon') && "
                                                   "!self.contains('cognito')",
                                                   "Cognito refuses a domain prefix containing aws, amazon or "
                                                   "cognito")))] = None
    """Prefix of the hosted sign-in page, https://PREFIX.auth.REGION.amazoncognito.com, unique in the
    region; unset: derived from the namespace and name."""

    @field_validator("domain_prefix")
    @classmethod
    def _allowed_prefix(cls, prefix: str | None) -> str | None:
        if prefix is not None and any(word in prefix for word in ("aws", "amazon", "cognito")):
            raise ValueError("Cognito refuses a domain prefix containing aws, amazon or cognito")
        return prefix


HttpsUrl = Annotated[str, Field(max_length=256, pattern=HTTPS_URL_PATTERN)]


class OidcSignIn(Model):
    """An existing OpenID Connect identity provider (Entra ID, Okta, Google, Keycloak…). The ALB is
    its confidential client: register https://DOMAIN/oauth2/idpresponse as the redirect URI there."""

    issuer: HttpsUrl
    """The provider's issuer, e.g. https://login.example.com."""
    authorization_endpoint: HttpsUrl
    """Its authorization endpoint (authorization_endpoint in its .well-known/openid-configuration)."""
    token_endpoint: HttpsUrl
    """Its token endpoint."""
    user_info_endpoint: HttpsUrl
    """Its user info endpoint."""
    client_id: Annotated[str, Field(min_length=1, max_length=255, pattern=CLIENT_ID_PATTERN)]
    """The client id the provider gave the app."""
    client_secret_ref: SecretKeyRef
    """The Secret key that holds the client secret (the Secret must consent, like app secrets). The
    operator hands it to the ALB itself: it never reaches Terraform, its state or plan output, logs,
    Events or status."""
    scope: Annotated[str, Field(max_length=256, pattern=OAUTH_SCOPE_PATTERN)] = "openid"
    """Scopes to request, space-separated."""


class AuthSpec(Model):
    """Sign-in in front of the app: the load balancer authenticates every request before it reaches
    the app (the target group's health check is not affected). Exactly one of cognito or oidc."""

    model_config = ConfigDict(json_schema_extra=k8s(
        cel("has(self.cognito) != has(self.oidc)", "set exactly one of spec.auth.cognito and spec.auth.oidc"),
    ))

    cognito: CognitoSignIn | None = None
    """Users in a Cognito user pool the stack creates."""
    oidc: OidcSignIn | None = None
    """Users of an existing OpenID Connect identity provider."""

    @model_validator(mode="after")
    def _exactly_one(self) -> AuthSpec:
        if (self.cognito is None) == (self.oidc is None):
            raise ValueError("set exactly one of spec.auth.cognito and spec.auth.oidc")
        return self


class NetworkSpec(Model):
    """The VPC the app runs in."""

    vpc_cidr: Annotated[str, Field(max_length=18, pattern=VPC_CIDR_PATTERN)] = "10.0.0.0/16"
    """CIDR block of the VPC (a /16 to /23; subnets are 4 bits smaller)."""
    az_count: Annotated[int, Field(ge=2, le=6)] = 2
    """Number of availability zones (a public and a private subnet in each)."""
    single_nat_gateway: StrictBool = True
    """One shared NAT gateway (cheaper) instead of one per AZ (resilient)."""


class GitHubSpec(Model):
    """The app repository whose GitHub environment receives the names and secrets its CI/CD needs."""

    model_config = ConfigDict(json_schema_extra=k8s(
        cel("!has(self.secrets) || self.secrets.all(s, self.secrets.filter(t, "
            "t.name.upperAscii() == s.name.upperAscii()).size() == 1)",
            "GitHub secret names are case-insensitive: a name is used twice", field_path=".secrets"),
    ))

    repository: Annotated[str, Field(max_length=140, pattern=REPOSITORY_PATTERN, json_schema_extra=k8s(
        cel("!self.contains('..') && !self.endsWith('/.')", "repository must be owner/name, and '.' or '..' "
                                                            "is not a name")))]
    """Repository as owner/name."""
    environment: Annotated[str | None, Field(max_length=63, pattern=ENVIRONMENT_PATTERN)] = None
    """GitHub environment name; defaults to spec.environment."""
    api_url: Annotated[str, Field(max_length=512, pattern=rf"^https://[^{RE2_SPACE}/]+(/[^{RE2_SPACE}]*)?$")
                       ] = "https://api.github.com"
    """GitHub API URL, https only; for GitHub Enterprise Server https://HOST/api/v3 (the host must be on the
    operator's list, LLMAPP_GITHUB_HOSTS)."""
    token_secret_ref: SecretKeyRef | None = None
    """Secret key holding a GitHub token allowed to manage the repository's environments, variables and
    secrets. Without it nothing is synced."""
    variables: Annotated[
        dict[str, Annotated[str, Field(max_length=ENV_VALUE_LENGTH, description="The variable's value.")]],
        Field(max_length=ENV_ENTRIES, json_schema_extra=k8s(
            *_map_rules("GitHub variable", values_total=ENV_VALUES_TOTAL,
                        extra_key_rule=" && !k.upperAscii().startsWith('GITHUB_')",
                        extra_key_text=", not starting with GITHUB_")["x-kubernetes-validations"],
            cel("self.all(k, self.filter(j, j.upperAscii() == k.upperAscii()).size() == 1)",
                "GitHub variable names are case-insensitive: a name is used twice"))),
    ] = Field(default_factory=dict)
    """Extra environment variables to set (plain values)."""
    secrets: Annotated[list[GitHubSecret], Field(max_length=SECRET_ENTRIES, json_schema_extra=k8s(
        list_type="map", list_map_keys=["name"]))] = Field(default_factory=list)
    """Extra environment secrets to set, e.g. OPENAI_KEY."""

    @field_validator("repository")
    @classmethod
    def _no_dot_segments(cls, repository: str) -> str:
        if ".." in repository or repository.endswith("/."):
            raise ValueError("repository must be owner/name, and '.' or '..' is not a name")
        return repository

    @field_validator("variables")
    @classmethod
    def _variables(cls, variables: dict[str, str]) -> dict[str, str]:
        _check_names("GitHub variable", variables, no_github_prefix=True)
        _check_total("GitHub variable", variables.values(), ENV_VALUES_TOTAL)
        _check_case_unique("GitHub variable", list(variables))
        return variables

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, secrets: list[GitHubSecret]) -> list[GitHubSecret]:
        names = [s.name for s in secrets]
        check_unique("GitHub secret", names)
        _check_case_unique("GitHub secret", names)
        return secrets


class BackendSpec(Model):
    """Overrides of the operator's default S3 state backend. Immutable: moving state is a migration."""

    bucket: Annotated[str | None, Field(max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] = None
    """S3 bucket for the state (created versioned, encrypted and private if missing)."""
    region: Annotated[str | None, Field(max_length=32, pattern=REGION_PATTERN)] = None
    """Region of the state bucket."""
    key_prefix: Annotated[str | None, Field(max_length=200, pattern=r"^[A-Za-z0-9!_.*'()/-]{1,200}$")] = None
    """Prefix of the state key; the key is PREFIX/NAMESPACE/NAME/terraform.tfstate."""
    dynamodb_table: Annotated[str | None, Field(max_length=255, pattern=r"^[A-Za-z0-9_.-]{3,255}$")] = None
    """DynamoDB table for locking; empty uses S3-native lock files."""


class PolicySpec(Model):
    """Built-in policy rules run on every plan before apply; a violation stalls the app."""

    skip: Annotated[list[Annotated[str, Field(max_length=64, pattern=RULE_ID_PATTERN, description="A rule id.")]],
                    Field(max_length=20, json_schema_extra=k8s(list_type="set"))] = Field(default_factory=list)
    """Rule ids to waive explicitly (recorded in status.policy.waived), e.g. LLMAPP-ECR-SCAN-ON-PUSH or a
    Checkov check id (CKV_AWS_18)."""

    @field_validator("skip")
    @classmethod
    def _unique(cls, skip: list[str]) -> list[str]:
        if len(set(skip)) != len(skip):
            raise ValueError("rule ids are listed twice")
        return skip


_DURATION_RULE = (f"duration(self) >= duration('{MIN_TIMEOUT_SECONDS}s') && "
                  f"duration(self) <= duration('{MAX_TIMEOUT_SECONDS}s')")


class DriftSpec(Model):
    """Periodic terraform plan without apply, to find changes made outside the operator."""

    interval: Annotated[str, Field(min_length=1, max_length=16, pattern=r"^(0|([0-9]+h)?([0-9]+m)?([0-9]+s)?)$",
                                   json_schema_extra=k8s(cel(
                                       f"self == '0' || duration(self) == duration('0s') || "
                                       f"(duration(self) >= duration('{MIN_DRIFT_SECONDS}s') && "
                                       f"duration(self) <= duration('{MAX_TIMEOUT_SECONDS * 7}s'))",
                                       "interval is 0 (off) or between 1s and 168h")))] = "1h"
    """How often (e.g. 1h, 30m); 0 turns drift detection off."""
    auto_remediate: StrictBool = False
    """Apply as soon as drift is found (still subject to the guardrails)."""

    @field_validator("interval")
    @classmethod
    def _interval(cls, interval: str) -> str:
        seconds = 0 if interval == "0" else parse_duration(interval)
        if seconds and not MIN_DRIFT_SECONDS <= seconds <= MAX_TIMEOUT_SECONDS * 7:
            raise ValueError("interval is 0 (off) or between 1s and 168h")
        return interval

    @property
    def interval_seconds(self) -> int:
        return 0 if self.interval == "0" else parse_duration(self.interval)


def _vars_rules() -> dict[str, Any]:
    standard = ", ".join(f"'{name}'" for name in STANDARD_VARIABLES)
    rules = [cel("has(self.backendRef) == has(oldSelf.backendRef) && "
                 "(!has(self.backendRef) || self.backendRef == oldSelf.backendRef)",
                 "spec.terraform.backendRef is immutable: changing it would fork the state", field_path=".backendRef"),
             cel("!has(self.backendRef) || !has(self.backend) || !(has(self.backend.bucket) || "
                 "has(self.backend.region) || has(self.backend.keyPrefix) || has(self.backend.dynamodbTable))",
                 "set spec.terraform.backendRef or the deprecated spec.terraform.backend, not both",
                 field_path=".backendRef"),
cel(f"!has(self.vars) || !self.vars.exists(k, k in [{standard}])",
                 "spec.terraform.vars cannot set what the operator sets from the spec (use the dedicated "
                 "spec fields)", field_path=".vars")]
    for module, names in BUILTIN_MODULE_VARIABLES.items():
        allowed = ", ".join(f"'{name}'" for name in names)
        rules.append(cel(f"!has(self.vars) || !has(self.module) || self.module != '{module}' || "
                         f"self.vars.all(k, k in [{allowed}])",
                         f"module {module} declares no such variable; it takes: {', '.join(names) or 'none'}",
                         field_path=".vars"))
    return k8s(*rules)


class TerraformSpec(Model):
    """How the operator runs Terraform for this app."""

    model_config = ConfigDict(json_schema_extra=_vars_rules())

    module: Annotated[str, Field(max_length=63, pattern=MODULE_NAME_PATTERN, json_schema_extra=k8s(
        cel("self == oldSelf", "spec.terraform.module is immutable: its state belongs to this module")))] = "stack"
    """Name of a module the operator offers (stack = the built-in AWS stack; platform teams may add others).
    Never a path. Immutable."""
    vars: Annotated[
        dict[str, Annotated[str, Field(max_length=MODULE_VAR_VALUE_LENGTH, description="The variable's value.")]],
        Field(max_length=MODULE_VARS, json_schema_extra=k8s(
            cel(f"self.all(k, k.matches('{MODULE_VARIABLE_PATTERN}') && size(k) <= {NAME_LENGTH})",
                f"module variable names are lower-case letters, digits and underscores, at most {NAME_LENGTH} "
                "characters"),
            cel(f"self.map(k, size(self[k])).sum() <= {MODULE_VARS_TOTAL}",
                f"module variable values may hold {MODULE_VARS_TOTAL} characters in all"))),
    ] = Field(default_factory=dict)
    """Extra variables for the module, as strings (Terraform converts them to the variable's number or
    bool type), checked against the variables the module declares before any run. Cannot set the ones
    the operator sets from the spec."""
    backend_ref: Annotated[str | None, Field(max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")] = None
    """Name of one of the state backends the tenant policy of this namespace offers; unset: the
    policy's default backend. Immutable."""
    backend: Annotated[BackendSpec, Field(json_schema_extra={"default": {}, **k8s(cel(
        "self == oldSelf", "spec.terraform.backend is immutable: changing it would fork the state"))})] = Field(
        default_factory=BackendSpec)
    """Deprecated: use backendRef. Accepted only where it is exactly one of the tenant policy's
    named backends (objects created before tenant policies keep working). Immutable."""
    runner: Literal["local", "job"] | None = None
    """Where Terraform runs. local = inside the operator pod; job = one Kubernetes Job per step (the
    operator's image, the runner ServiceAccount, resource limits). Unset = the operator's default
    (LLMAPP_DEFAULT_RUNNER)."""
    timeout: Annotated[str | None, Field(min_length=2, max_length=16, pattern=DURATION_PATTERN,
                                         json_schema_extra=k8s(cel(_DURATION_RULE, "timeout is between 1m and 24h")))
                       ] = None
    """Per-step timeout (e.g. 30m, 1h; between 1m and 24h); a step over it is stopped and retried with backoff.
    Unset: the operator's default (LLMAPP_RUN_TIMEOUT_SECONDS, 30m)."""
    allow_destructive_changes: StrictBool = False
    """Apply plans that destroy or replace stateful or shared resources (the ALB-logs bucket, the ECR
    repository, the VPC) without approval. Default false: such plans wait for spec.approvePlan."""
    policy: Annotated[PolicySpec, Field(json_schema_extra={"default": {}})] = Field(default_factory=PolicySpec)
    """Built-in policy rules run on every plan before apply; a violation stalls the app."""
    max_monthly_cost: Annotated[float | None, Field(ge=0, le=1_000_000)] = None
    """Hold a plan for approval when its monthly cost estimate (status.cost) is above this amount, in the
    price table's currency (USD)."""

    @field_validator("vars")
    @classmethod
    def _vars(cls, variables: dict[str, str]) -> dict[str, str]:
        bad = sorted(k for k in variables if not re.match(MODULE_VARIABLE_PATTERN, k) or len(k) > NAME_LENGTH)
        if bad:
            raise ValueError(f"invalid module variable name(s) {', '.join(bad)}: lower-case letters, digits and "
                             f"underscores, at most {NAME_LENGTH} characters")
        _check_total("module variable", variables.values(), MODULE_VARS_TOTAL)
        standard = sorted(set(variables) & set(STANDARD_VARIABLES))
        if standard:
            raise ValueError(f"{', '.join(standard)} are set by the operator from the spec; use the dedicated "
                             "spec fields instead")
        return variables

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, timeout: str | None) -> str | None:
        if timeout is not None and not MIN_TIMEOUT_SECONDS <= parse_duration(timeout) <= MAX_TIMEOUT_SECONDS:
            raise ValueError("timeout is between 1m and 24h")
        return timeout

    @model_validator(mode="after")
    def _one_backend(self) -> TerraformSpec:
        if self.backend_ref and self.backend != BackendSpec():
            raise ValueError("set spec.terraform.backendRef or the deprecated spec.terraform.backend, not both")
        return self

    @model_validator(mode="after")
    def _builtin_module_vars(self) -> TerraformSpec:
        allowed = BUILTIN_MODULE_VARIABLES.get(self.module)
        unknown = sorted(set(self.vars) - set(allowed)) if allowed is not None else []
        if unknown:
            raise ValueError(f"module {self.module} declares no variable {', '.join(unknown)}; it takes: "
                             f"{', '.join(allowed or ()) or 'none'}")
        return self

    @property
    def timeout_seconds(self) -> int | None:
        return None if self.timeout is None else parse_duration(self.timeout)


class DeletionPolicy(StrEnum):
    DELETE = "Delete"
    ORPHAN = "Orphan"


class LLMAppSpec(Model):
    """The desired state of the app and its infrastructure."""

    model_config = ConfigDict(json_schema_extra=k8s(
        cel("!has(self.domain) || !has(self.terraform) || !has(self.terraform.vars) || "
            "!('certificate_arn' in self.terraform.vars)",
            "spec.domain makes its own certificate: leave certificate_arn out of spec.terraform.vars",
            field_path=".domain"),
        cel("!has(self.auth) || has(self.domain)",
            "spec.auth needs spec.domain: sign-in works over HTTPS at the app's own name", field_path=".auth"),
        # The operator's sign-in rule forwards to the port's target group, which AWS will not delete
        # while a rule uses it: the port change would fail at apply time, again and again.
        cel("!has(self.auth) || !has(self.auth.oidc) || !has(oldSelf.auth) || !has(oldSelf.auth.oidc) || "
            "self.app.containerPort == oldSelf.app.containerPort",
            "with spec.auth.oidc, spec.app.containerPort cannot change (AWS keeps the old target group while the "
            "sign-in rule forwards to it): remove spec.auth.oidc, change the port, then add it back",
            field_path=".app.containerPort"),
    ))

    environment: Annotated[str, Field(max_length=63, pattern=ENVIRONMENT_PATTERN)]
    """Environment name (dev, staging, prod, ...). Names the GitHub environment by default and is tagged on
    every AWS resource."""
    aws: AwsSpec
    """Where in AWS the app runs. Credentials come from the operator's identity, never from the spec."""
    app: Annotated[AppSpec, Field(json_schema_extra={"default": {}})] = Field(default_factory=AppSpec)
    """The app container and its Fargate task."""
    network: Annotated[NetworkSpec, Field(json_schema_extra={"default": {}})] = Field(default_factory=NetworkSpec)
    """The VPC the app runs in."""
    auth: AuthSpec | None = None
    """Sign-in in front of the app; needs spec.domain (the load balancer authenticates on HTTPS only, and
    the identity provider sends users back to that name)."""
    domain: DomainSpec | None = None
    """Serve the app over HTTPS at its own name (ACM certificate, Route53 records, HTTP redirected to
    HTTPS). Without it the app is served on the load balancer's generated name."""
    github: GitHubSpec
    """The app repository whose GitHub environment receives the names and secrets its CI/CD needs."""
    terraform: Annotated[TerraformSpec, Field(json_schema_extra={"default": {}})] = Field(
        default_factory=TerraformSpec)
    """How the operator runs Terraform for this app."""
    suspend: StrictBool = False
    """Stop all Terraform activity for this app; status says Suspended."""
    deletion_policy: DeletionPolicy = DeletionPolicy.DELETE
    """On delete, Delete runs terraform destroy first; Orphan keeps the AWS resources and state."""
    approve_plan: Annotated[str, Field(max_length=16, pattern=r"^(auto|manual|[0-9a-f]{16})$")] = "auto"
    """auto applies every plan that passes the guardrails. Anything else stops after plan (phase
    AwaitingApproval, PlanPending=True): set it to the id in status.plan.id to apply exactly that saved
    plan. Plans held by a guardrail (destructive change, cost limit) need the id even with auto."""
    drift_detection: Annotated[DriftSpec, Field(json_schema_extra={"default": {}})] = Field(
        default_factory=DriftSpec)
    """Periodic terraform plan without apply, to find changes made outside the operator."""

    @model_validator(mode="after")
    def _one_certificate(self) -> LLMAppSpec:
        if self.domain is not None and "certificate_arn" in self.terraform.vars:
            raise ValueError("spec.domain makes its own certificate: leave certificate_arn out of spec.terraform.vars")
        if self.auth is not None and self.domain is None:
            raise ValueError("spec.auth needs spec.domain: sign-in works over HTTPS at the app's own name")
        return self


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

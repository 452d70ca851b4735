"""Operator settings: one typed model (pydantic-settings), read from `LLMAPP_*` variables.

Every knob has a default that works for a single-replica install with the built-in stack; a
platform team sets the state bucket and, for multi-tenant clusters, the allow-list of modules.
A variable is named `LLMAPP_` + the field's name in capitals unless the field gives an alias;
lists are comma-separated, maps `KEY=value,KEY2=value2`, an empty value of an optional setting
means None. A value that does not parse stops the start-up with the variable's name.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
# In a source checkout the modules sit at the repository root; the image copies them to /opt.
_SOURCE_TERRAFORM_DIR = PACKAGE_DIR.parent.parent / "terraform"


def terraform_dir() -> pathlib.Path:
    """Where the shipped modules are: the checkout's terraform/, or LLMAPP_TERRAFORM_DIR in the image."""
    return pathlib.Path(os.environ.get("LLMAPP_TERRAFORM_DIR", _SOURCE_TERRAFORM_DIR))


def _default_modules() -> dict[str, pathlib.Path]:
    # Only the real stack: the sandbox module (terraform_data, fake outputs) would make a "Ready"
    # app out of nothing; the sandbox and the tests add it to their own settings.
    return {"stack": terraform_dir() / "stack"}


GITHUB_VARIABLE_OUTPUTS = {
    "ECS_CLUSTER": "ecs_cluster_name",
    "ECS_SERVICE": "ecs_service_name",
    "ECS_TASK_DEFINITION": "ecs_task_definition_family",
    "CONTAINER_NAME": "container_name",
    "ECR_REPOSITORY_NAME": "ecr_repository_name",
    "ECR_REGISTRY": "ecr_registry",
    "AWS_REGION": "aws_region",
    "ROLE_TO_ASSUME": "deploy_role_arn",
}


class Settings(BaseSettings):
    """What the platform team configures. Field docs double as the reference in README.

    `Settings()` reads the environment (pydantic-settings); `updated(**changes)` is a validated copy.
    """

    model_config = SettingsConfigDict(env_prefix="LLMAPP_", extra="ignore", frozen=True,
                                      populate_by_name=True,
                                      use_attribute_docstrings=True)

    namespaces: Annotated[tuple[str, ...], NoDecode] = ()
    """Namespaces to watch; empty means cluster-wide."""

    workdir: pathlib.Path = Field(default_factory=lambda: pathlib.Path(tempfile.gettempdir()) / "llmapp-operator")
    """Where per-object Terraform workspaces live (one directory per LLMApp UID)."""

    terraform_binary: str = "terraform"
    """The terraform executable (on PATH by default)."""

    modules: Annotated[Mapping[str, pathlib.Path], NoDecode] = Field(default_factory=_default_modules)
    """Allow-list of Terraform modules `spec.terraform.module` may name. A module runs with the
    operator's cloud identity, so users pick from this list and never give a path. The variable
    (`name=/path,name2=/path2`) adds to the built-in ones."""

    max_concurrent_runs: int = 4
    """Global bound on objects running Terraform at the same time (per operator replica)."""

    default_timeout_seconds: int = Field(default=1800, validation_alias="LLMAPP_RUN_TIMEOUT_SECONDS")
    """Per-step timeout used when the spec gives none."""

    lock_timeout_seconds: int = 0
    """How long a step waits for a held state lock before it reports StateLocked and backs off."""

    state_bucket: str = Field(default="llmapp-operator-tfstate", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    """Default S3 bucket for Terraform state (created versioned, encrypted and private if missing)."""

    state_region: str = "us-east-1"
    """Region of the state bucket."""

    state_key_prefix: str = "llmapp"
    """State keys are `<prefix>/<namespace>/<name>/terraform.tfstate`."""

    lock_table: str | None = None
    """DynamoDB table for state locking; None uses S3-native lock files (`use_lockfile`)."""

    state_max_retries: int | None = None
    """How often Terraform's S3 backend retries a failed call (None: Terraform's default, 5).
    A run that cannot save its state keeps it in errored.tfstate; the next run pushes it."""

    aws_endpoint_url: str | None = None
    """Send S3/DynamoDB/STS calls (boto3 and the Terraform backend) here: moto or LocalStack."""

    retry_base_seconds: float = 10.0
    """First backoff after a transient failure; doubles per retry up to retry_max_seconds."""

    retry_max_seconds: float = 600.0

    progress_delay_seconds: float = 2.0
    """A step (plan, apply) shows up in status and Events only once it has run this long: fast
    reconciles then cost no extra API writes, slow ones still show Planning/Applying live."""

    leader_election: bool = False
    """Run only while holding the leader Lease, so that of several replicas exactly one reconciles
    (the others stand by and take over when it stops or dies). Kopf's peering cannot do this:
    peers of equal priority pause each other."""

    leader_election_namespace: str = ""
    """Namespace of the leader Lease; empty: the operator's own (POD_NAMESPACE, else the ServiceAccount's)."""

    leader_election_name: str = "llmapp-operator"
    """Name of the leader Lease."""

    leader_identity: str = ""
    """This replica's name in the Lease; empty: POD_NAME, else host name and process id."""

    lease_duration_seconds: float = 15.0
    """How long a standby waits after the holder's last renewal before it takes over (client-go's default)."""

    lease_renew_deadline_seconds: float = 10.0
    """A holder that cannot renew for this long stops reconciling (before anyone may take over)."""

    lease_retry_seconds: float = 2.0
    """How often candidates try and the holder renews."""

    shards: int = Field(default=1, ge=1, le=64)
    """How many operator shards split the LLMApps (the chart's `shards`). Each shard runs as its own
    Deployment with its own leader Lease and watches only its part (api/shards.py)."""

    shard: int = Field(default=0, ge=0)
    """This process's shard, 0 … shards-1. Shard 0 is the default shard: objects without a shard
    label (or with a value no shard has) are its."""

    shard_by: Literal["label", "uid"] = "label"
    """`label`: the `llmops.dev/shard` label (any Kubernetes version). `uid`: the API server's own
    shardRange() on the uid (Kubernetes 1.36+ with the ShardedListAndWatch gate); the operator
    refuses to start when the server ignores it, since every shard would then see every object."""

    shard_assign: bool = True
    """Label mode: the default shard labels each unlabelled LLMApp with the shard of its uid range,
    so the objects spread without anyone choosing; off, unlabelled objects stay on shard 0."""

    drift_concurrency: str = Field(default="25%", pattern=r"^([1-9][0-9]*|[1-9][0-9]?%|100%)$")
    """At most this many drift plans at once: a number, or a share of max_concurrent_runs. Never
    all of the run slots when there are two or more (one stays free for spec changes), and spec
    changes go first whenever both wait."""

    github_variable_outputs: Annotated[Mapping[str, str], NoDecode] = Field(
        default_factory=lambda: dict(GITHUB_VARIABLE_OUTPUTS), validation_alias="LLMAPP_GITHUB_VARIABLES")
    """GitHub environment variable name -> the stack output it is set from. The defaults are the
    names hand-built pipelines of this kind already use, so their app workflows work unchanged."""

    github_hosts: Annotated[tuple[str, ...], NoDecode] = ("api.github.com",)
    """GitHub API hosts tokens may be sent to (`host`, or `host:port`), always over https. Add your
    GitHub Enterprise Server host; any other `spec.github.apiUrl` is Stalled (GitHubHostNotAllowed)."""

    digest_key: SecretStr | None = None
    """The install's key for the GitHub sync digest in status (HMAC-SHA256), so the digest cannot
    be used to test guesses of a secret offline. The chart keeps it in a Secret; without it the
    digest is a salted hash (local runs)."""

    github_ca_bundle: pathlib.Path | None = None
    """A CA bundle (PEM) to trust for GitHub, for an Enterprise Server behind a private CA."""

    liveness_endpoint: str | None = "http://0.0.0.0:8080/healthz"
    """Kopf's health endpoint for liveness/readiness probes; None turns it off."""

    metrics_port: int | None = 9090
    """Prometheus metrics on this port; None (an empty variable) turns them off."""

    log_level: str = "INFO"

    log_format: Literal["text", "json"] = "text"
    """`text` for terminals, `json` (one object per line) for log pipelines."""

    default_runner: Literal["local", "job"] = "local"
    """Where Terraform runs when spec.terraform.runner is unset: `local` (a child process of the
    operator) or `job` (one Kubernetes Job per step, in the job namespace)."""

    tenant_policies: pathlib.Path | None = None
    """A YAML file of tenant policies (the chart renders `tenants.policies` into it): which
    namespaces may have LLMApps, the AWS role their runs assume, their regions, named state
    backends, modules, module variables and cost ceiling. None: one policy for every namespace,
    with the operator's own identity and the state_* settings (single-tenant installs)."""

    job_namespace: str = ""
    """Where Terraform Jobs (and their request and result ConfigMaps) run: never a tenant's
    namespace. Empty: the operator's own (POD_NAMESPACE)."""

    job_signing_key: SecretStr | None = None
    """The key that authenticates Job requests and results (HMAC-SHA256). The chart reads it from a
    Secret only the operator and the runner can read; never passed on as a plain variable."""

    job_signing_secret: str = "llmapp-job-signing-key"
    """The Secret (in the job namespace, key `key`) a Job reads the signing key from."""

    job_image: str = ""
    """Image of the Terraform Jobs: the operator's own image (the chart sets it), so a Job runs
    exactly the code and modules of the operator that created it."""

    job_service_account: str = "llmapp-terraform"
    """ServiceAccount of the Terraform Jobs, in the job namespace: the runner's cloud identity (IRSA,
    EKS Pod Identity; it assumes the tenant roles) and the right to write the Job's result ConfigMap."""

    job_env_secret: str | None = None
    """Optional Secret (in the job namespace) whose keys become the Job's environment: AWS
    credentials for clusters without workload identity. Never copied by the operator."""

    job_cpu: str = "500m"
    """CPU request of a Terraform Job (no CPU limit: Terraform is bursty, throttling only slows it)."""

    job_memory: str = "1Gi"
    """Memory request and limit of a Terraform Job."""

    job_ttl_seconds: int = 3600
    """Finished Jobs (and their request/result ConfigMaps, which they own) are removed after this."""

    job_poll_seconds: float = 5.0
    """How often the operator reads the status of a Job it waits for."""

    github_sync: bool = True
    """Sync the GitHub environment when an LLMApp names a token; false leaves GitHub alone (Ready
    then needs no GitHubSynced), for teams whose pipelines get these values another way."""

    app_health: bool = True
    """Ready needs AppHealthy: the ECS service runs its desired count on a completed rollout and the
    ALB has healthy targets. Off for users who deploy the image later (Ready = infra + GitHub)."""

    service_control: bool = True
    """After each pass, set the ECS service's task count (spec.app.desiredCount, 0 until the image
    exists) and deploy the revision Terraform registered, through the ECS API: the stack's service
    module ignores both after creation (docs/stack.md). Off: the operator never calls UpdateService
    for them, and spec.app.desiredCount has no effect on a service the stack created."""

    app_health_probe: bool = False
    """Also GET status.url + spec.app.healthCheckPath (needs a route from the operator to the ALB)."""

    app_health_recheck_seconds: float = 30.0
    """While the app is not healthy yet, look again this often (no Terraform runs for it)."""

    certificate_recheck_seconds: float = 300.0
    """While ACM has not issued spec.domain's certificate (after the stack's apply stopped waiting for
    it), ask ACM this often; Terraform runs again only once it is issued."""

    resync_seconds: float = 600.0
    """How often a Ready object is looked at again (jittered by up to 10 %): its Secrets are re-read
    (a rotated value writes a new Secrets Manager version and rolls the service; GitHub secrets are
    re-sealed). No Terraform process runs unless the inputs changed. 0 turns it off."""

    stalled_recheck_seconds: float = 3600.0
    """A Stalled object (it needs a human) is looked at again this often, in case the fix was made
    outside it (IAM, quotas); at once on a spec change or the reconcile-requested-at annotation."""

    shutdown_grace_seconds: float = 240.0
    """On SIGTERM, running passes get this long to finish their step; then Terraform gets SIGTERM
    (it saves state and releases its lock) and kill_grace_seconds more before SIGKILL. Keep the
    sum below the pod's terminationGracePeriodSeconds (the chart derives both)."""

    kill_grace_seconds: float = 30.0
    """How long a stopped Terraform process gets between SIGTERM and SIGKILL."""

    checkov: str | None = None
    """Checkov executable to run on every plan's JSON (its failed checks join the policy report,
    waivable by id; a module's checkov-waivers.yaml is skipped); None: only the built-in rules. A run
    that did not check the plan is PolicyCheckFailed, never a pass. The stock image does not ship
    Checkov."""

    price_table: pathlib.Path | None = None
    """A JSON price table that replaces the shipped one (same shape; see prices/aws.json)."""

    passthrough_env: Annotated[tuple[str, ...], NoDecode] = (
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
        "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_CA_BUNDLE", "HTTPS_PROXY", "HTTP_PROXY",
        "NO_PROXY", "https_proxy", "http_proxy", "no_proxy", "SSL_CERT_FILE",
    )
    """Variables a Terraform child process inherits; everything else is dropped."""

    @property
    def plugin_cache_dir(self) -> pathlib.Path:
        return self.workdir / "plugin-cache"

    @model_validator(mode="after")
    def _shard_in_range(self) -> Settings:
        if self.shard >= self.shards:
            raise ValueError(f"shard {self.shard} does not exist: shards are 0 … {self.shards - 1}")
        return self

    @property
    def lease_name(self) -> str:
        """Each shard elects its own leader: `<leader_election_name>-shard-<k>` when sharded."""
        return self.leader_election_name if self.shards == 1 else f"{self.leader_election_name}-shard-{self.shard}"

    @property
    def drift_slots(self) -> int:
        """How many of the run slots drift checks may hold at once (see drift_concurrency)."""
        text = self.drift_concurrency
        wanted = self.max_concurrent_runs * int(text[:-1]) // 100 if text.endswith("%") else int(text)
        return max(1, min(wanted, self.max_concurrent_runs - 1 if self.max_concurrent_runs > 1 else 1))

    # -- how the environment spells values -------------------------------------------------------
    @field_validator("namespaces", "passthrough_env", "github_hosts", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return tuple(item.strip() for item in value.split(",") if item.strip()) if isinstance(value, str) else value

    @field_validator("modules", mode="before")
    @classmethod
    def _added_modules(cls, value: Any) -> Any:
        """Modules named in the variable join the built-in ones (a name given again replaces it)."""
        if not isinstance(value, str):
            return value
        return {**_default_modules(), **{name: pathlib.Path(path) for name, path in _pairs(value).items()}}

    @field_validator("github_variable_outputs", mode="before")
    @classmethod
    def _variable_pairs(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return _pairs(value) or dict(GITHUB_VARIABLE_OUTPUTS)

    @field_validator("lock_table", "state_max_retries", "aws_endpoint_url", "liveness_endpoint", "metrics_port",
                     "job_env_secret", "checkov", "price_table", "github_ca_bundle", "tenant_policies",
                     "job_signing_key", "digest_key", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    # -- reading and writing the environment -------------------------------------------------
    @classmethod
    def from_env(cls) -> Settings:
        """The settings of this process; a bad value is a ValueError that names its variable."""
        try:
            return cls()
        except ValidationError as exc:
            problems = "; ".join(f"{env_name(str(error['loc'][0])) if error['loc'] else ''}: {error['msg']}"
                                 for error in exc.errors())
            raise ValueError(f"invalid operator settings: {problems}") from None

    def updated(self, **changes: Any) -> Settings:
        """A copy with `changes`, validated like the environment's values (tests, benchmarks)."""
        return type(self).model_validate({**self.__dict__, **changes})

    def to_env(self, *, secrets: bool = False) -> dict[str, str]:
        """The LLMAPP_* variables that give back these settings: how a second process (a
        restarted operator in the fault tests, a Job) is configured like this one. Secret settings
        only with `secrets` (a Job gets them from their Secret instead)."""
        return {env_name(name): _env_text(getattr(self, name)) for name in type(self).model_fields
                if secrets or name not in SECRET_SETTINGS}

    @property
    def job_namespace_or_own(self) -> str:
        return self.job_namespace or own_namespace()


# Settings that are never written out as plain variables (a Job reads them from their Secret).
SECRET_SETTINGS = frozenset({"job_signing_key", "digest_key"})


def env_name(field_name: str) -> str:
    """The variable a setting is read from."""
    info = Settings.model_fields.get(field_name)
    alias = info.validation_alias if info is not None else None
    return alias if isinstance(alias, str) else f"LLMAPP_{field_name.upper()}"


def _env_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    if isinstance(value, Mapping):
        return ",".join(f"{key}={item}" for key, item in value.items())
    return str(value)


def _pairs(text: str) -> dict[str, str]:
    """`A=x,B=y` -> {"A": "x", "B": "y"}."""
    pairs = (item.partition("=") for item in text.split(","))
    return {key.strip(): value.strip() for key, _, value in pairs if key.strip()}


def own_namespace() -> str:
    """The Pod's namespace: POD_NAMESPACE (downward API), else the ServiceAccount's, else default."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read_text().strip() or "default"
    except OSError:
        return "default"


def own_identity() -> str:
    """A replica's name in the leader Lease: POD_NAME (the chart sets it), else host and process."""
    import socket

    return os.environ.get("POD_NAME") or f"{socket.gethostname()}_{os.getpid()}"

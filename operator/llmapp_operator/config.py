"""Operator settings: one typed dataclass, read from the environment (`LLMAPP_*`) once at start-up.

Every knob has a default that works for a single-replica install with the built-in stack; a
platform team sets the state bucket and, for multi-tenant clusters, the allow-list of modules.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
# In a source checkout the modules sit at the repository root; the image copies them to /opt.
_SOURCE_TERRAFORM_DIR = PACKAGE_DIR.parent.parent / "terraform"


def _default_modules() -> dict[str, pathlib.Path]:
    root = pathlib.Path(os.environ.get("LLMAPP_TERRAFORM_DIR", _SOURCE_TERRAFORM_DIR))
    return {"stack": root / "stack", "sandbox": root / "sandbox"}


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


@dataclass(frozen=True)
class Settings:
    """What the platform team configures. Field docs double as the reference in README."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means cluster-wide."""

    workdir: pathlib.Path = field(
        default_factory=lambda: pathlib.Path(tempfile.gettempdir()) / "llmapp-operator"
    )
    """Where per-object Terraform workspaces live (one directory per LLMApp UID)."""

    terraform_binary: str = "terraform"
    """The terraform executable (on PATH by default)."""

    modules: Mapping[str, pathlib.Path] = field(default_factory=_default_modules)
    """Allow-list of Terraform modules `spec.terraform.module` may name. A module runs with the
    operator's cloud identity, so users pick from this list and never give a path."""

    max_concurrent_runs: int = 4
    """Global bound on objects running Terraform at the same time (per operator replica)."""

    default_timeout_seconds: int = 1800
    """Per-step timeout used when the spec gives none."""

    lock_timeout_seconds: int = 0
    """How long a step waits for a held state lock before it reports StateLocked and backs off."""

    state_bucket: str = "llmapp-operator-tfstate"
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

    github_variable_outputs: Mapping[str, str] = field(default_factory=lambda: dict(GITHUB_VARIABLE_OUTPUTS))
    """GitHub environment variable name -> the stack output it is set from. The defaults are the
    names hand-built pipelines of this kind already use, so their app workflows work unchanged."""

    liveness_endpoint: str | None = "http://0.0.0.0:8080/healthz"
    """Kopf's health endpoint for liveness/readiness probes; None turns it off."""

    metrics_port: int | None = None
    """Prometheus metrics on this port (`from_env` defaults it to 9090); None turns them off."""

    log_level: str = "INFO"

    log_format: str = "text"
    """`text` for terminals, `json` (one object per line) for log pipelines."""

    default_runner: str = "local"
    """Where Terraform runs when spec.terraform.runner is unset: `local` (a child process of the
    operator) or `job` (one Kubernetes Job per step, in the LLMApp's namespace)."""

    job_image: str = ""
    """Image of the Terraform Jobs: the operator's own image (the chart sets it), so a Job runs
    exactly the code and modules of the operator that created it."""

    job_service_account: str = "llmapp-terraform"
    """ServiceAccount of the Terraform Jobs, in each LLMApp namespace: the cloud identity (IRSA,
    EKS Pod Identity) and the right to write the Job's result ConfigMap."""

    job_env_secret: str | None = None
    """Optional Secret (in the LLMApp namespace) whose keys become the Job's environment: AWS
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

    app_health_probe: bool = False
    """Also GET status.url + spec.app.healthCheckPath (needs a route from the operator to the ALB)."""

    app_health_recheck_seconds: float = 30.0
    """While the app is not healthy yet, look again this often (no Terraform runs for it)."""

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
    waivable by id); None: only the built-in rules. The stock image does not ship Checkov."""

    price_table: pathlib.Path | None = None
    """A JSON price table that replaces the shipped one (same shape; see prices/aws.json)."""

    passthrough_env: tuple[str, ...] = (
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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        base = cls()
        modules = dict(base.modules)
        for item in filter(None, env.get("LLMAPP_MODULES", "").split(",")):
            name, _, path = item.partition("=")
            modules[name.strip()] = pathlib.Path(path.strip())
        return replace(
            base,
            namespaces=tuple(filter(None, env.get("LLMAPP_NAMESPACES", "").split(","))),
            workdir=pathlib.Path(env.get("LLMAPP_WORKDIR", str(base.workdir))),
            terraform_binary=env.get("LLMAPP_TERRAFORM_BINARY", base.terraform_binary),
            modules=modules,
            max_concurrent_runs=int(env.get("LLMAPP_MAX_CONCURRENT_RUNS", base.max_concurrent_runs)),
            default_timeout_seconds=int(env.get("LLMAPP_RUN_TIMEOUT_SECONDS", base.default_timeout_seconds)),
            lock_timeout_seconds=int(env.get("LLMAPP_LOCK_TIMEOUT_SECONDS", base.lock_timeout_seconds)),
            state_bucket=env.get("LLMAPP_STATE_BUCKET", base.state_bucket),
            state_region=env.get("LLMAPP_STATE_REGION", base.state_region),
            state_key_prefix=env.get("LLMAPP_STATE_KEY_PREFIX", base.state_key_prefix),
            lock_table=env.get("LLMAPP_LOCK_TABLE") or None,
            state_max_retries=int(env["LLMAPP_STATE_MAX_RETRIES"]) if env.get("LLMAPP_STATE_MAX_RETRIES") else None,
            aws_endpoint_url=env.get("LLMAPP_AWS_ENDPOINT_URL") or None,
            retry_base_seconds=float(env.get("LLMAPP_RETRY_BASE_SECONDS", base.retry_base_seconds)),
            retry_max_seconds=float(env.get("LLMAPP_RETRY_MAX_SECONDS", base.retry_max_seconds)),
            progress_delay_seconds=float(env.get("LLMAPP_PROGRESS_DELAY_SECONDS", base.progress_delay_seconds)),
            leader_election=env.get("LLMAPP_LEADER_ELECTION", "false").lower() in {"1", "true", "yes"},
            leader_election_namespace=env.get("LLMAPP_LEADER_ELECTION_NAMESPACE", base.leader_election_namespace),
            leader_election_name=env.get("LLMAPP_LEADER_ELECTION_NAME", base.leader_election_name),
            leader_identity=env.get("LLMAPP_LEADER_IDENTITY", base.leader_identity),
            lease_duration_seconds=float(env.get("LLMAPP_LEASE_DURATION_SECONDS", base.lease_duration_seconds)),
            lease_renew_deadline_seconds=float(env.get("LLMAPP_LEASE_RENEW_DEADLINE_SECONDS",
                                                       base.lease_renew_deadline_seconds)),
            lease_retry_seconds=float(env.get("LLMAPP_LEASE_RETRY_SECONDS", base.lease_retry_seconds)),
            github_variable_outputs=_pairs(env.get("LLMAPP_GITHUB_VARIABLES"), base.github_variable_outputs),
            liveness_endpoint=env.get("LLMAPP_LIVENESS_ENDPOINT", base.liveness_endpoint) or None,
            metrics_port=int(env.get("LLMAPP_METRICS_PORT", "9090") or 0) or None,
            log_level=env.get("LLMAPP_LOG_LEVEL", base.log_level).upper(),
            log_format=_choice(env.get("LLMAPP_LOG_FORMAT", base.log_format), ("text", "json"), "LLMAPP_LOG_FORMAT"),
            github_sync=env.get("LLMAPP_GITHUB_SYNC", "true").lower() in {"1", "true", "yes"},
            app_health=env.get("LLMAPP_APP_HEALTH", "true").lower() in {"1", "true", "yes"},
            app_health_probe=env.get("LLMAPP_APP_HEALTH_PROBE", "false").lower() in {"1", "true", "yes"},
            app_health_recheck_seconds=float(env.get("LLMAPP_APP_HEALTH_RECHECK_SECONDS",
                                                     base.app_health_recheck_seconds)),
            resync_seconds=float(env.get("LLMAPP_RESYNC_SECONDS", base.resync_seconds)),
            stalled_recheck_seconds=float(env.get("LLMAPP_STALLED_RECHECK_SECONDS", base.stalled_recheck_seconds)),
            shutdown_grace_seconds=float(env.get("LLMAPP_SHUTDOWN_GRACE_SECONDS", base.shutdown_grace_seconds)),
            kill_grace_seconds=float(env.get("LLMAPP_KILL_GRACE_SECONDS", base.kill_grace_seconds)),
            price_table=pathlib.Path(env["LLMAPP_PRICE_TABLE"]) if env.get("LLMAPP_PRICE_TABLE") else None,
            checkov=env.get("LLMAPP_CHECKOV") or None,
            default_runner=_choice(env.get("LLMAPP_DEFAULT_RUNNER", base.default_runner), ("local", "job"),
                                   "LLMAPP_DEFAULT_RUNNER"),
            job_image=env.get("LLMAPP_JOB_IMAGE", base.job_image),
            job_service_account=env.get("LLMAPP_JOB_SERVICE_ACCOUNT", base.job_service_account),
            job_env_secret=env.get("LLMAPP_JOB_ENV_SECRET") or None,
            job_cpu=env.get("LLMAPP_JOB_CPU", base.job_cpu),
            job_memory=env.get("LLMAPP_JOB_MEMORY", base.job_memory),
            job_ttl_seconds=int(env.get("LLMAPP_JOB_TTL_SECONDS", base.job_ttl_seconds)),
            job_poll_seconds=float(env.get("LLMAPP_JOB_POLL_SECONDS", base.job_poll_seconds)),
        )

    def to_env(self) -> dict[str, str]:
        """The LLMAPP_* variables that make `from_env` give back these settings: how a second
        process (a restarted operator in the fault tests, a Job) is configured like this one."""
        return {
            "LLMAPP_NAMESPACES": ",".join(self.namespaces),
            "LLMAPP_WORKDIR": str(self.workdir),
            "LLMAPP_TERRAFORM_BINARY": self.terraform_binary,
            "LLMAPP_MODULES": ",".join(f"{name}={path}" for name, path in self.modules.items()),
            "LLMAPP_MAX_CONCURRENT_RUNS": str(self.max_concurrent_runs),
            "LLMAPP_RUN_TIMEOUT_SECONDS": str(self.default_timeout_seconds),
            "LLMAPP_LOCK_TIMEOUT_SECONDS": str(self.lock_timeout_seconds),
            "LLMAPP_STATE_BUCKET": self.state_bucket,
            "LLMAPP_STATE_REGION": self.state_region,
            "LLMAPP_STATE_KEY_PREFIX": self.state_key_prefix,
            "LLMAPP_LOCK_TABLE": self.lock_table or "",
            "LLMAPP_STATE_MAX_RETRIES": "" if self.state_max_retries is None else str(self.state_max_retries),
            "LLMAPP_AWS_ENDPOINT_URL": self.aws_endpoint_url or "",
            "LLMAPP_RETRY_BASE_SECONDS": repr(self.retry_base_seconds),
            "LLMAPP_RETRY_MAX_SECONDS": repr(self.retry_max_seconds),
            "LLMAPP_PROGRESS_DELAY_SECONDS": repr(self.progress_delay_seconds),
            "LLMAPP_LEADER_ELECTION": "true" if self.leader_election else "false",
            "LLMAPP_LEADER_ELECTION_NAMESPACE": self.leader_election_namespace,
            "LLMAPP_LEADER_ELECTION_NAME": self.leader_election_name,
            "LLMAPP_LEADER_IDENTITY": self.leader_identity,
            "LLMAPP_LEASE_DURATION_SECONDS": repr(self.lease_duration_seconds),
            "LLMAPP_LEASE_RENEW_DEADLINE_SECONDS": repr(self.lease_renew_deadline_seconds),
            "LLMAPP_LEASE_RETRY_SECONDS": repr(self.lease_retry_seconds),
            "LLMAPP_GITHUB_VARIABLES": ",".join(f"{k}={v}" for k, v in self.github_variable_outputs.items()),
            "LLMAPP_LIVENESS_ENDPOINT": self.liveness_endpoint or "",
            "LLMAPP_METRICS_PORT": str(self.metrics_port or ""),
            "LLMAPP_LOG_LEVEL": self.log_level,
            "LLMAPP_LOG_FORMAT": self.log_format,
            "LLMAPP_DEFAULT_RUNNER": self.default_runner,
            "LLMAPP_GITHUB_SYNC": "true" if self.github_sync else "false",
            "LLMAPP_APP_HEALTH": "true" if self.app_health else "false",
            "LLMAPP_APP_HEALTH_PROBE": "true" if self.app_health_probe else "false",
            "LLMAPP_APP_HEALTH_RECHECK_SECONDS": repr(self.app_health_recheck_seconds),
            "LLMAPP_RESYNC_SECONDS": repr(self.resync_seconds),
            "LLMAPP_STALLED_RECHECK_SECONDS": repr(self.stalled_recheck_seconds),
            "LLMAPP_SHUTDOWN_GRACE_SECONDS": repr(self.shutdown_grace_seconds),
            "LLMAPP_KILL_GRACE_SECONDS": repr(self.kill_grace_seconds),
            "LLMAPP_PRICE_TABLE": str(self.price_table or ""),
            "LLMAPP_CHECKOV": self.checkov or "",
            "LLMAPP_JOB_IMAGE": self.job_image,
            "LLMAPP_JOB_SERVICE_ACCOUNT": self.job_service_account,
            "LLMAPP_JOB_ENV_SECRET": self.job_env_secret or "",
            "LLMAPP_JOB_CPU": self.job_cpu,
            "LLMAPP_JOB_MEMORY": self.job_memory,
            "LLMAPP_JOB_TTL_SECONDS": str(self.job_ttl_seconds),
            "LLMAPP_JOB_POLL_SECONDS": repr(self.job_poll_seconds),
        }


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


def _choice(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _pairs(text: str | None, default: Mapping[str, str]) -> Mapping[str, str]:
    """`A=x,B=y` -> {"A": "x", "B": "y"}; unset keeps the default."""
    if not text:
        return default
    return {key.strip(): value.strip() for key, _, value in (item.partition("=") for item in text.split(",")) if key}

"""Operator settings from the environment (pydantic-settings)."""

from __future__ import annotations

import pathlib

import pytest

from llmapp_operator.config import GITHUB_VARIABLE_OUTPUTS, Settings, env_name


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A process environment without LLMAPP_* settings, for the test to set."""
    import os

    for name in [name for name in os.environ if name.upper().startswith("LLMAPP_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def from_env(environ: pytest.MonkeyPatch, **variables: str) -> Settings:
    for name, value in variables.items():
        environ.setenv(name, value)
    return Settings.from_env()


def test_defaults_are_usable(environ: pytest.MonkeyPatch) -> None:
    settings = from_env(environ)
    assert settings.namespaces == ()
    assert settings.max_concurrent_runs == 4
    assert set(settings.modules) == {"stack"}   # the sandbox module is the sandbox's, not production's
    assert settings.lock_table is None
    assert settings.github_variable_outputs == GITHUB_VARIABLE_OUTPUTS
    assert not settings.leader_election
    assert settings.metrics_port == 9090


def test_environment_overrides(environ: pytest.MonkeyPatch) -> None:
    settings = from_env(
        environ,
        LLMAPP_NAMESPACES="team-a,team-b",
        LLMAPP_MAX_CONCURRENT_RUNS="8",
        LLMAPP_RUN_TIMEOUT_SECONDS="600",
        LLMAPP_MODULES="custom=/opt/modules/custom",
        LLMAPP_LOCK_TABLE="locks",
        LLMAPP_LEADER_ELECTION="true",
        LLMAPP_GITHUB_VARIABLES="CLUSTER=ecs_cluster_name,SERVICE=ecs_service_name",
        LLMAPP_LIVENESS_ENDPOINT="",
        LLMAPP_METRICS_PORT="",
        LLMAPP_LOG_LEVEL="debug",
    )
    assert settings.namespaces == ("team-a", "team-b")
    assert settings.max_concurrent_runs == 8 and settings.default_timeout_seconds == 600
    assert settings.modules["custom"] == pathlib.Path("/opt/modules/custom")
    assert "stack" in settings.modules   # added to the built-in modules, not instead of them
    assert settings.lock_table == "locks" and settings.leader_election
    assert settings.github_variable_outputs == {"CLUSTER": "ecs_cluster_name", "SERVICE": "ecs_service_name"}
    assert settings.liveness_endpoint is None and settings.metrics_port is None
    assert settings.log_level == "DEBUG"


def test_to_env_round_trips_every_setting_a_second_process_needs(environ: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    changed = defaults.updated(
        namespaces=("a", "b"), workdir=pathlib.Path("/w"), terraform_binary="/bin/tf",
        modules={**defaults.modules, "x": pathlib.Path("/m/x")}, max_concurrent_runs=7,
        default_timeout_seconds=99, lock_timeout_seconds=3, state_bucket="bkt", state_region="eu-west-1",
        state_key_prefix="p", lock_table="t",
        state_max_retries=1, aws_endpoint_url="http://127.0.0.1:1", retry_base_seconds=0.25,
        retry_max_seconds=2.5, progress_delay_seconds=0.0, leader_election=True, leader_election_namespace="ops",
        leader_election_name="n", leader_identity="pod-1", lease_duration_seconds=9.0, lease_renew_deadline_seconds=6.0,
        lease_retry_seconds=1.0, shards=3, shard=2, shard_by="uid", shard_assign=False, drift_concurrency="2",
        github_variable_outputs={"A": "a"}, liveness_endpoint=None, metrics_port=None, log_level="DEBUG",
        log_format="json", default_runner="job", job_image="img:2", job_service_account="sa",
        job_env_secret="creds", job_cpu="2", job_memory="3Gi", job_ttl_seconds=60, job_poll_seconds=0.5,
        github_sync=False, app_health=False, service_control=False, app_health_probe=True,
        app_health_recheck_seconds=5.0, certificate_recheck_seconds=6.0,
        resync_seconds=7.0, stalled_recheck_seconds=8.0, shutdown_grace_seconds=9.0, kill_grace_seconds=4.0,
        price_table=pathlib.Path("/p.json"), checkov="/usr/local/bin/checkov", passthrough_env=("AWS_PROFILE",),
        github_hosts=("ghe.example.com", "127.0.0.1:8443"), github_ca_bundle=pathlib.Path("/ca.pem"),
        tenant_policies=pathlib.Path("/etc/llmapp/tenants/policies.yaml"), job_namespace="llmapp-runs",
        job_signing_key="k" * 32, job_signing_secret="signing", digest_key="d" * 32,
    )
    back = from_env(environ, **changed.to_env(secrets=True))
    assert back == changed
    # The signing key is never a plain variable of a Job: it reads it from its Secret.
    assert "LLMAPP_JOB_SIGNING_KEY" not in changed.to_env() and "LLMAPP_DIGEST_KEY" not in changed.to_env()
    # Every field was changed above and came back: a new field is carried by to_env by construction.
    assert {name for name in Settings.model_fields if getattr(back, name) != getattr(defaults, name)} == set(
        Settings.model_fields)


def test_a_shard_outside_the_shard_count_stops_the_start(environ: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="shard 2 does not exist: shards are 0 … 1"):
        from_env(environ, LLMAPP_SHARDS="2", LLMAPP_SHARD="2")
    assert from_env(environ, LLMAPP_SHARDS="2", LLMAPP_SHARD="1").lease_name == "llmapp-operator-shard-1"
    assert from_env(environ, LLMAPP_SHARDS="1", LLMAPP_SHARD="0").lease_name == "llmapp-operator"  # one: as before


@pytest.mark.parametrize(("runs", "share", "slots"), [
    (4, "25%", 1), (8, "25%", 2), (8, "50%", 4), (4, "100%", 3), (4, "10", 3), (1, "25%", 1), (10, "5%", 1)])
def test_drift_checks_never_hold_every_run_slot(environ: pytest.MonkeyPatch, runs: int, share: str,
                                                slots: int) -> None:
    settings = from_env(environ, LLMAPP_MAX_CONCURRENT_RUNS=str(runs), LLMAPP_DRIFT_CONCURRENCY=share)
    assert settings.drift_slots == slots


def test_a_bad_value_stops_the_start_with_the_variable_s_name(environ: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError) as caught:
        from_env(environ, LLMAPP_LOG_FORMAT="xml", LLMAPP_RUN_TIMEOUT_SECONDS="soon", LLMAPP_LEADER_ELECTION="maybe")
    message = str(caught.value)
    assert "LLMAPP_LOG_FORMAT: Input should be 'text' or 'json'" in message
    assert "LLMAPP_RUN_TIMEOUT_SECONDS: Input should be a valid integer" in message
    assert "LLMAPP_LEADER_ELECTION: Input should be a valid boolean" in message


def test_updated_validates_like_the_environment() -> None:
    assert Settings().updated(max_concurrent_runs="3").max_concurrent_runs == 3
    with pytest.raises(ValueError):
        Settings().updated(default_runner="elsewhere")
    assert env_name("default_timeout_seconds") == "LLMAPP_RUN_TIMEOUT_SECONDS"
    assert env_name("kill_grace_seconds") == "LLMAPP_KILL_GRACE_SECONDS"

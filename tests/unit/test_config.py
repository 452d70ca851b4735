"""Operator settings from the environment."""

from __future__ import annotations

import pathlib

from llmapp_operator.config import GITHUB_VARIABLE_OUTPUTS, Settings


def test_defaults_are_usable() -> None:
    settings = Settings.from_env({})
    assert settings.namespaces == ()
    assert settings.max_concurrent_runs == 4
    assert set(settings.modules) == {"stack", "sandbox"}
    assert settings.lock_table is None
    assert settings.github_variable_outputs == GITHUB_VARIABLE_OUTPUTS
    assert not settings.leader_election


def test_environment_overrides() -> None:
    settings = Settings.from_env({
        "LLMAPP_NAMESPACES": "team-a,team-b",
        "LLMAPP_MAX_CONCURRENT_RUNS": "8",
        "LLMAPP_MODULES": "custom=/opt/modules/custom",
        "LLMAPP_LOCK_TABLE": "locks",
        "LLMAPP_LEADER_ELECTION": "true",
        "LLMAPP_GITHUB_VARIABLES": "CLUSTER=ecs_cluster_name,SERVICE=ecs_service_name",
        "LLMAPP_LIVENESS_ENDPOINT": "",
    })
    assert settings.namespaces == ("team-a", "team-b")
    assert settings.max_concurrent_runs == 8
    assert settings.modules["custom"] == pathlib.Path("/opt/modules/custom")
    assert "stack" in settings.modules
    assert settings.lock_table == "locks" and settings.leader_election
    assert settings.github_variable_outputs == {"CLUSTER": "ecs_cluster_name", "SERVICE": "ecs_service_name"}
    assert settings.liveness_endpoint is None


def test_to_env_round_trips_every_setting_a_second_process_needs() -> None:
    from dataclasses import fields, replace

    changed = replace(
        Settings(), namespaces=("a", "b"), workdir=pathlib.Path("/w"), terraform_binary="/bin/tf",
        modules={**Settings().modules, "x": pathlib.Path("/m/x")}, max_concurrent_runs=7,
        default_timeout_seconds=99, lock_timeout_seconds=3, state_bucket="b", state_region="eu-west-1",
        state_key_prefix="p", lock_table="t",
        state_max_retries=1, aws_endpoint_url="http://127.0.0.1:1", retry_base_seconds=0.25,
        retry_max_seconds=2.5, progress_delay_seconds=0.0, leader_election=True, leader_election_namespace="ops",
        leader_election_name="n", leader_identity="pod-1", lease_duration_seconds=9.0, lease_renew_deadline_seconds=6.0,
        lease_retry_seconds=1.0,
        github_variable_outputs={"A": "a"}, liveness_endpoint=None, metrics_port=9191, log_level="DEBUG",
        log_format="json", default_runner="job", job_image="img:2", job_service_account="sa",
        job_env_secret="creds", job_cpu="2", job_memory="3Gi", job_ttl_seconds=60, job_poll_seconds=0.5,
        github_sync=False, app_health=False, app_health_probe=True, app_health_recheck_seconds=5.0,
        resync_seconds=7.0, stalled_recheck_seconds=8.0, shutdown_grace_seconds=9.0, kill_grace_seconds=4.0,
        price_table=pathlib.Path("/p.json"), checkov="/usr/local/bin/checkov",
    )
    back = Settings.from_env(changed.to_env())
    assert back == changed
    # A new field must be carried too (or be deliberately process-local, like passthrough_env).
    assert {f.name for f in fields(Settings) if getattr(back, f.name) != getattr(Settings(), f.name)} >= {
        f.name for f in fields(Settings)} - {"passthrough_env"}


def test_metrics_on_by_default_in_a_deployment_and_bad_log_format_is_refused() -> None:
    import pytest

    assert Settings.from_env({}).metrics_port == 9090
    assert Settings.from_env({"LLMAPP_METRICS_PORT": ""}).metrics_port is None
    with pytest.raises(ValueError, match="LLMAPP_LOG_FORMAT must be one of text, json"):
        Settings.from_env({"LLMAPP_LOG_FORMAT": "xml"})

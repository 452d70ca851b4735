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
    assert not settings.peering


def test_environment_overrides() -> None:
    settings = Settings.from_env({
        "LLMAPP_NAMESPACES": "team-a,team-b",
        "LLMAPP_MAX_CONCURRENT_RUNS": "8",
        "LLMAPP_MODULES": "custom=/opt/modules/custom",
        "LLMAPP_LOCK_TABLE": "locks",
        "LLMAPP_PEERING": "true",
        "LLMAPP_GITHUB_VARIABLES": "CLUSTER=ecs_cluster_name,SERVICE=ecs_service_name",
        "LLMAPP_LIVENESS_ENDPOINT": "",
    })
    assert settings.namespaces == ("team-a", "team-b")
    assert settings.max_concurrent_runs == 8
    assert settings.modules["custom"] == pathlib.Path("/opt/modules/custom")
    assert "stack" in settings.modules
    assert settings.lock_table == "locks" and settings.peering
    assert settings.github_variable_outputs == {"CLUSTER": "ecs_cluster_name", "SERVICE": "ecs_service_name"}
    assert settings.liveness_endpoint is None

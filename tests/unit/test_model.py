"""Parsing is validation: good specs parse with defaults, bad ones give field-named errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from llmapp_operator.api.spec import FARGATE_SIZES, InvalidSpec, LLMApp, parse_duration

BASE: dict[str, Any] = {
    "metadata": {"name": "rags", "namespace": "team-a", "uid": "u-1", "generation": 3},
    "spec": {"environment": "dev", "aws": {"region": "us-east-1"}, "github": {"repository": "acme/rags"}},
}


def body(**spec: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["spec"].update(spec)
    return data


def test_minimal_spec_gets_documented_defaults() -> None:
    app = LLMApp.from_body(body())
    assert app.ref.generation == 3 and app.ref.uid == "u-1"
    assert app.spec.app.container_port == 8501
    assert (app.spec.app.cpu, app.spec.app.memory) == (1024, 2048)
    assert app.spec.app.health_check_path == "/_stcore/health"
    assert app.spec.terraform.module == "stack"
    assert app.spec.deletion_policy.value == "Delete"
    assert app.github_environment == "dev"
    assert app.spec.terraform.timeout_seconds is None   # the operator's default (LLMAPP_RUN_TIMEOUT_SECONDS)


def test_github_environment_override() -> None:
    app = LLMApp.from_body(body(github={"repository": "acme/rags", "environment": "production"}))
    assert app.github_environment == "production"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"app": {"cpu": 256, "memory": 4096}}, "spec.app"),
        ({"app": {"cpu": 300, "memory": 512}}, "spec.app"),
        ({"github": {"repository": "acme"}}, "spec.github.repository"),
        ({"github": {"repository": "acme/../etc"}}, "spec.github.repository"),
        ({"github": {"repository": "acme/rags;rm -rf /"}}, "spec.github.repository"),
        ({"aws": {"region": "mars"}}, "spec.aws.region"),
        ({"app": {"env": {"1BAD": "x"}}}, "spec.app.env"),
        ({"terraform": {"module": "../../etc"}}, "spec.terraform.module"),
        ({"terraform": {"timeout": "soon"}}, "spec.terraform.timeout"),
        ({"unknownField": 1}, "spec.unknownField"),
        ({"deletionPolicy": "Maybe"}, "spec.deletionPolicy"),
    ],
)
def test_invalid_specs_name_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        LLMApp.from_body(body(**spec))
    assert field in str(caught.value)


def test_error_message_never_echoes_the_input() -> None:
    secret_looking = "FAKE-SECRET-NOT-A-REGION-0123456789abcdef"
    with pytest.raises(InvalidSpec) as caught:
        LLMApp.from_body(body(aws={"region": secret_looking}))
    assert secret_looking not in str(caught.value)


def test_missing_required_fields() -> None:
    with pytest.raises(InvalidSpec) as caught:
        LLMApp.from_body({"metadata": {"name": "x", "namespace": "y"}, "spec": {}})
    message = str(caught.value)
    for field in ("spec.environment", "spec.aws", "spec.github"):
        assert field in message


def test_secret_names_must_not_clash_with_env() -> None:
    ref = {"secretKeyRef": {"name": "openai", "key": "api-key"}}
    with pytest.raises(InvalidSpec, match="OPENAI_KEY"):
        LLMApp.from_body(body(app={"env": {"OPENAI_KEY": "x"}, "secrets": [{"name": "OPENAI_KEY", "valueFrom": ref}]}))


@pytest.mark.parametrize("cpu", sorted(FARGATE_SIZES))
def test_every_fargate_size_parses(cpu: int) -> None:
    for memory in sorted(FARGATE_SIZES[cpu]):
        LLMApp.from_body(body(app={"cpu": cpu, "memory": memory}))


def test_deleting_flag() -> None:
    data = body()
    data["metadata"]["deletionTimestamp"] = "2026-11-24T00:00:00Z"
    assert LLMApp.from_body(data).deleting


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("1h", 3600), ("1h30m", 5400), ("90s", 90)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_every_example_is_a_valid_llmapp() -> None:
    import pathlib

    import yaml

    examples = sorted((pathlib.Path(__file__).resolve().parents[2] / "examples").glob("llmapp*.yaml"))
    assert len(examples) >= 2
    for path in examples:
        app = LLMApp.from_body(yaml.safe_load(path.read_text()))
        assert app.spec.environment, path.name
    prod = LLMApp.from_body(yaml.safe_load(next(p for p in examples if p.name == "llmapp-prod.yaml").read_text()))
    assert prod.spec.approve_plan == "manual" and prod.spec.terraform.max_monthly_cost == 400
    assert prod.spec.drift_detection.interval_seconds == 1800 and prod.spec.terraform.runner == "job"

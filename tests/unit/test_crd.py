"""Static checks of crds/llmapp.yaml, and its CEL rules evaluated against the model's own rules."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import celpy
import pytest
import yaml

from llmapp_operator.api.spec import FARGATE_SIZES, InvalidSpec, LLMApp
from tests.conftest import REPO

CRD = yaml.safe_load((REPO / "crds" / "llmapp.yaml").read_text())
VERSION = CRD["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]
# Structural schemas forbid these outside of the allowed places (apiextensions v1).
DISALLOWED = {"$ref", "definitions", "dependencies", "patternProperties", "additionalItems", "id", "$schema"}


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def test_identity() -> None:
    assert CRD["apiVersion"] == "apiextensions.k8s.io/v1"
    assert CRD["metadata"]["name"] == "llmapps.llmops.dev"
    names = CRD["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == ("LLMApp", "llmapps", ["llma"])
    assert CRD["spec"]["scope"] == "Namespaced"
    assert VERSION["subresources"] == {"status": {}}


def test_schema_is_structural_and_described() -> None:
    for path, node in walk(SCHEMA):
        assert "type" in node, f"{path or '<root>'} has no type"
        assert node.get("description"), f"{path or '<root>'} has no description"
        assert not DISALLOWED & set(node), f"{path} uses {DISALLOWED & set(node)}"
        if node["type"] == "object" and not node.get("x-kubernetes-preserve-unknown-fields"):
            assert "properties" in node or "additionalProperties" in node or path == ".metadata", path


def test_printer_columns() -> None:
    columns = {c["name"]: c["jsonPath"] for c in VERSION["additionalPrinterColumns"]}
    assert columns == {
        "Phase": ".status.phase",
        "Ready": '.status.conditions[?(@.type=="Ready")].status',
        "URL": ".status.url",
        "Age": ".metadata.creationTimestamp",
    }


def cel_rules() -> list[tuple[str, str]]:
    return [(path, rule["rule"]) for path, node in walk(SCHEMA) for rule in node.get("x-kubernetes-validations", [])]


def test_cel_rules_present_and_compile() -> None:
    rules = dict(cel_rules())
    assert {".spec.app", ".spec.app.env", ".spec.github.repository"} <= set(rules)
    env = celpy.Environment()
    for rule in rules.values():
        env.program(env.compile(rule))


def evaluate(path: str, value: Any) -> bool:
    env = celpy.Environment()
    rule = dict(cel_rules())[path]
    return bool(env.program(env.compile(rule)).evaluate({"self": celpy.json_to_cel(value)}))


def model_accepts(**spec: Any) -> bool:
    body = {"metadata": {"name": "a", "namespace": "b"},
            "spec": {"environment": "dev", "aws": {"region": "us-east-1"}, "github": {"repository": "a/b"}, **spec}}
    try:
        LLMApp.from_body(copy.deepcopy(body))
    except InvalidSpec:
        return False
    return True


CPU_VALUES = sorted(FARGATE_SIZES) + [128, 3000]
MEMORY_VALUES = sorted({m for sizes in FARGATE_SIZES.values() for m in sizes} | {256, 1536, 3000, 20480, 65536})


@pytest.mark.parametrize("cpu", CPU_VALUES)
def test_fargate_rule_in_cel_equals_model(cpu: int) -> None:
    for memory in MEMORY_VALUES:
        app = {"cpu": cpu, "memory": memory}
        assert evaluate(".spec.app", app) == model_accepts(app=app), app


@pytest.mark.parametrize("name", ["OPENAI_KEY", "_x", "1BAD", "has-dash", "ok_2"])
def test_env_name_rule_in_cel_equals_model(name: str) -> None:
    assert evaluate(".spec.app.env", {name: "v"}) == model_accepts(app={"env": {name: "v"}})


@pytest.mark.parametrize("repository", ["acme/rags", "acme/../x", "acme/x..y", "a-b/c.d"])
def test_repository_rule_in_cel_equals_model(repository: str) -> None:
    import re

    pattern = SCHEMA["properties"]["spec"]["properties"]["github"]["properties"]["repository"]["pattern"]
    schema_ok = bool(re.match(pattern, repository)) and evaluate(".spec.github.repository", repository)
    assert schema_ok == model_accepts(github={"repository": repository})


def test_schema_defaults_match_model_defaults() -> None:
    app_props = SCHEMA["properties"]["spec"]["properties"]["app"]["properties"]
    app = LLMApp.from_body({"metadata": {}, "spec": {"environment": "d", "aws": {"region": "us-east-1"},
                                                     "github": {"repository": "a/b"}}}).spec.app
    assert app_props["containerPort"]["default"] == app.container_port
    assert app_props["cpu"]["default"] == app.cpu
    assert app_props["memory"]["default"] == app.memory
    assert app_props["healthCheckPath"]["default"] == app.health_check_path

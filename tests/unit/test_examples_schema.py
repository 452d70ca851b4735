"""Every LLMApp the repository shows (examples/*.yaml and the README's YAML blocks) is valid against the
CRD's OpenAPI schema read as plain JSON Schema (jsonschema, draft 4; the x-kubernetes extensions
stripped), and parses in the model. test_crd.py asks the API server emulator the same; this asks a
validator that shares no code with the operator or the emulator."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml
from jsonschema import Draft4Validator

from llmapp_operator.api.spec import LLMApp
from tests.conftest import REPO
from tests.spec_samples import as_json_schema, crd_schema, set_path

SCHEMA = as_json_schema(crd_schema())
VALIDATOR = Draft4Validator(SCHEMA)


def _example_files() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{path.relative_to(REPO)}#{index}", doc) for path in sorted((REPO / "examples").glob("*.yaml"))
            for index, doc in enumerate(yaml.safe_load_all(path.read_text()))
            if doc and doc.get("kind") == "LLMApp"]


def _readme_blocks() -> list[tuple[str, dict[str, Any]]]:
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    return [(f"README.md#{index}", doc) for index, block in enumerate(blocks)
            for doc in yaml.safe_load_all(block) if isinstance(doc, dict) and doc.get("kind") == "LLMApp"]


DOCUMENTS = _example_files() + _readme_blocks()


def errors(document: dict[str, Any]) -> list[str]:
    return sorted(f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
                  for error in VALIDATOR.iter_errors(document))


def test_the_schema_is_json_schema_without_kubernetes_extensions() -> None:
    Draft4Validator.check_schema(SCHEMA)

    def keys(node: Any) -> set[str]:
        if isinstance(node, dict):
            return set(node) | {k for value in node.values() for k in keys(value)}
        return {k for value in node for k in keys(value)} if isinstance(node, list) else set()

    assert not [key for key in keys(SCHEMA) if key.startswith("x-kubernetes-")]


def test_there_are_examples_from_each_source() -> None:
    sources = {source.split("#")[0] for source, _ in DOCUMENTS}
    assert sources >= {"examples/llmapp.yaml", "examples/llmapp-prod.yaml", "README.md"}, sources


@pytest.mark.parametrize(("source", "document"), DOCUMENTS, ids=[source for source, _ in DOCUMENTS])
def test_each_example_is_valid_against_the_crd_schema_and_the_model(source: str, document: dict[str, Any]) -> None:
    assert errors(document) == [], source
    app = LLMApp.from_body(document)
    assert (app.ref.namespace, app.ref.name) == (document["metadata"]["namespace"], document["metadata"]["name"])


@pytest.mark.parametrize(("path", "value", "says"), [
    (("spec", "app", "cpuu"), 1024, "Additional properties are not allowed"),   # a typo: strict validation
    (("spec", "app", "cpu"), 300, "is not one of"),
    (("spec", "app", "memory"), 511, "less than the minimum"),
    (("spec", "aws", "region"), "US-EAST-1", "does not match"),
    (("spec", "terraform", "policy", "skip"), ["LLMAPP-S3-PRIVATE", "LLMAPP-S3-PRIVATE"], "non-unique"),  # a set
    (("spec", "github", "variables"), {"A": "x" * 2049}, "is too long"),
    (("spec", "environment"), None, "None is not of type 'string'"),
])
def test_the_schema_check_refuses_what_the_crd_refuses(path: tuple[str, ...], value: Any, says: str) -> None:
    """Not vacuous: the stripped schema still refuses unknown fields, values outside enums and bounds,
    patterns, duplicates in a set."""
    document = copy.deepcopy(DOCUMENTS[0][1])
    set_path(document, path, value)
    found = errors(document)
    assert found and any(says in error for error in found), found

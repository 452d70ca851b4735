"""The CRD: generated from the models, admitted by the emulator's CRD admission (the real server's
rules), and in agreement with the operator's own parsing on every spec near every bound."""

from __future__ import annotations

import copy
import functools
import json
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from llmapp_operator.api import spec as api
from llmapp_operator.api.crd import crd_manifest
from llmapp_operator.api.spec import InvalidSpec, LLMApp
from llmapp_sandbox.apiserver import schema as structural
from llmapp_sandbox.apiserver.errors import ApiError
from llmapp_sandbox.apiserver.store import Store, WriteOptions
from tests.conftest import REPO
from tests.spec_samples import BASE, FIELD_VALUES, largest_spec, near_bound_specs, set_path

CRD = yaml.safe_load((REPO / "crds" / "llmapp.yaml").read_text())
VERSION = CRD["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]
SPEC_SCHEMA = SCHEMA["properties"]["spec"]


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def test_the_committed_crd_is_what_the_models_generate() -> None:
    assert crd_manifest() == CRD, "crds/llmapp.yaml differs from the spec and status models: run make crd"
    chart_copy = REPO / "charts" / "llmapp-operator" / "files" / "llmapp-crd.yaml"
    assert chart_copy.read_bytes() == (REPO / "crds" / "llmapp.yaml").read_bytes()


def test_the_crd_passes_crd_admission() -> None:
    assert [e.render() for e in structural.check_crd(copy.deepcopy(CRD))] == []


def test_the_crd_of_v0_1_is_refused_for_the_reasons_a_real_api_server_gave() -> None:
    old = yaml.safe_load((REPO / "tests" / "fixtures" / "crds" / "llmapp-v0.1.yaml").read_text())
    errors = [e.render() for e in structural.check_crd(old)]
    assert errors[0] == ("spec.validation.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything "
                         "other than name and generateName, but metadata is implicitly specified")
    assert errors[1].startswith('spec.validation.openAPIV3Schema.properties[spec].properties[app].default: Invalid '
                                'value: "object": no such key: cpu evaluating rule: cpu/memory is not a valid Fargate')


def test_identity_and_printer_columns() -> None:
    assert CRD["metadata"]["name"] == "llmapps.llmops.dev"
    names = CRD["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == ("LLMApp", "llmapps", ["llma"])
    assert CRD["spec"]["scope"] == "Namespaced" and VERSION["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in VERSION["additionalPrinterColumns"]}
    assert columns == {"Phase": ".status.phase", "Ready": '.status.conditions[?(@.type=="Ready")].status',
                       "URL": ".status.url", "Age": ".metadata.creationTimestamp"}


def test_every_field_is_described_for_kubectl_explain_except_metadata() -> None:
    for path, node in walk(SCHEMA):
        if path == ".metadata":
            assert node == {"type": "object"}   # the API server refuses anything else there
            continue
        assert node.get("description"), f"{path or '<root>'} has no description"


def test_identity_fields_are_immutable() -> None:
    def rules(node: dict[str, Any]) -> list[str]:
        return [r["rule"] for r in node.get("x-kubernetes-validations", [])]

    assert "self == oldSelf" in rules(SPEC_SCHEMA["properties"]["aws"]["properties"]["region"])
    terraform = SPEC_SCHEMA["properties"]["terraform"]["properties"]
    assert "self == oldSelf" in rules(terraform["module"]) and "self == oldSelf" in rules(terraform["backend"])


def test_the_built_in_modules_variables_in_the_crd_are_the_modules_own() -> None:
    from llmapp_operator.config import Settings
    from llmapp_operator.runners.modules import load_module

    for name, declared in api.BUILTIN_MODULE_VARIABLES.items():
        module = load_module(name, Settings().modules)
        assert set(declared) == set(module.variables) - set(api.STANDARD_VARIABLES), name
    assert set(api.STANDARD_VARIABLES) <= set(load_module("stack", Settings().modules).variables)


# -- the API server's verdict against the operator's ------------------------------------------------
@functools.lru_cache(maxsize=1)
def _store() -> Store:
    store = Store()
    store.seed(store.kinds[("apiextensions.k8s.io", "v1", "customresourcedefinitions")], copy.deepcopy(CRD))
    store.seed(store.kinds[("", "v1", "namespaces")], {"metadata": {"name": "team-a"}})
    return store


def server_verdict(spec: dict[str, Any]) -> tuple[bool, str]:
    """What `kubectl apply` (strict field validation) gets from the API server for this spec (a
    server-side dry run: nothing is stored)."""
    store = _store()
    kind = store.kinds[("llmops.dev", "v1alpha1", "llmapps")]
    body = {"apiVersion": "llmops.dev/v1alpha1", "kind": "LLMApp", "metadata": {"name": "a", "namespace": "team-a"},
            "spec": copy.deepcopy(spec)}
    try:
        store.create(kind, "team-a", body, WriteOptions(dry_run=True, field_validation="Strict"))
    except ApiError as exc:
        return False, exc.message
    return True, ""


def model_verdict(spec: dict[str, Any]) -> tuple[bool, str]:
    try:
        LLMApp.from_body({"metadata": {"name": "a", "namespace": "team-a", "uid": "u"}, "spec": copy.deepcopy(spec)})
    except InvalidSpec as exc:
        return False, str(exc)
    return True, ""


@pytest.mark.parametrize("path,values", FIELD_VALUES, ids=[".".join(p) for p, _ in FIELD_VALUES])
def test_each_bound_is_the_same_in_the_crd_and_the_model(path: tuple[str, ...], values: list[Any]) -> None:
    for value in values:
        spec = copy.deepcopy(BASE)
        set_path(spec, path, value)
        server, model = server_verdict(spec), model_verdict(spec)
        assert server[0] == model[0], f"{'.'.join(path)}={json.dumps(value)[:80]}: server {server}, model {model}"


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=near_bound_specs())
def test_the_api_server_and_the_operator_agree_on_generated_specs(spec: dict[str, Any]) -> None:
    """Every spec the API server admits parses in the operator, and every spec the operator rejects
    is refused at `kubectl apply` (the one rule the CRD cannot know, platform modules' variables, is
    not generated here: see test_platform_module_variables_are_checked_by_the_operator)."""
    server, model = server_verdict(spec), model_verdict(spec)
    assert server[0] == model[0], f"server {server}, model {model}"


def test_platform_module_variables_are_checked_by_the_operator() -> None:
    """A module a platform team adds (LLMAPP_MODULES) is unknown to the CRD: its variables can only be
    checked when the object is reconciled (Stalled InvalidSpec, before any Terraform run)."""
    spec = copy.deepcopy(BASE)
    set_path(spec, ("terraform",), {"module": "custom", "vars": {"no_such_variable": "1"}})
    assert server_verdict(spec)[0] and model_verdict(spec)[0]


def test_defaults_are_the_same_in_the_crd_and_the_model() -> None:
    defaulted = structural.apply_defaults({"spec": copy.deepcopy(BASE)}, SCHEMA)["spec"]
    assert LLMApp.from_body({"metadata": {}, "spec": defaulted}) == LLMApp.from_body({"metadata": {}, "spec": BASE})


# -- size: no admitted object can outgrow the API server's limits -------------------------------------
# Patterns whose every match is ASCII that JSON never escapes (Go's encoding/json escapes ", \\, control
# characters and, by default, <, > and &): such strings cost a byte a character. Any other string
# costs 6 (\\u00XX). A new pattern in the CRD is counted at 6 until it is listed here.
ASCII_PATTERNS = {api.REPOSITORY_PATTERN, api.ENVIRONMENT_PATTERN, api.ENV_NAME_PATTERN, api.DNS_SUBDOMAIN_PATTERN,
                  api.SECRET_KEY_PATTERN, api.REGION_PATTERN, api.MODULE_NAME_PATTERN, api.DURATION_PATTERN,
                  api.VPC_CIDR_PATTERN, api.IMAGE_PATTERN, api.RULE_ID_PATTERN, api.BEDROCK_MODEL_PATTERN,
                  api.SCALING_CRON_PATTERN, api.TIMEZONE_PATTERN, api.DOMAIN_PATTERN, api.HOSTED_ZONE_PATTERN,
                  api.COGNITO_PREFIX_PATTERN, api.HTTPS_URL_PATTERN, api.CLIENT_ID_PATTERN, api.OAUTH_SCOPE_PATTERN,
                  r"^(auto|manual|[0-9a-f]{16})$",
                  r"^(0|([0-9]+h)?([0-9]+m)?([0-9]+s)?)$", r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
                  r"^[A-Za-z0-9!_.*'()/-]{1,200}$", r"^[A-Za-z0-9_.-]{3,255}$"}
# The string maps whose values the CEL rules bound in total (the schema alone cannot say it).
MAP_TOTALS = {".app.env": api.ENV_VALUES_TOTAL, ".github.variables": api.ENV_VALUES_TOTAL,
              ".terraform.vars": api.MODULE_VARS_TOTAL}


def worst_case_bytes(node: dict[str, Any], path: str = "") -> int:
    """The largest compact JSON any value the schema admits can take (every map key is at most
    NAME_LENGTH ASCII characters: each map's CEL rule says so)."""
    if "enum" in node:
        return max(len(json.dumps(v)) for v in node["enum"])
    kind = node.get("type")
    if kind == "string":
        assert "maxLength" in node, f"{path} is an unbounded string"
        per = 1 if node.get("pattern") in ASCII_PATTERNS else 6
        return 2 + per * node["maxLength"]
    if kind == "integer":
        assert "maximum" in node, f"{path} is an unbounded integer"
        return max(len(str(node["maximum"])), len(str(node.get("minimum", 0))))
    if kind == "number":
        return 24
    if kind == "boolean":
        return 5
    if kind == "array":
        assert "maxItems" in node, f"{path} is an unbounded list"
        return 2 + node["maxItems"] * (worst_case_bytes(node["items"], path + "[]") + 1)
    assert kind == "object", path
    if "additionalProperties" in node:
        entries = node["maxProperties"]
        key = 2 + api.NAME_LENGTH + 1
        if path in MAP_TOTALS:
            return 2 + entries * (key + 2 + 1) + 6 * MAP_TOTALS[path]
        return 2 + entries * (key + worst_case_bytes(node["additionalProperties"], path + "{}") + 1)
    props = node.get("properties", {})
    return 2 + sum(len(json.dumps(name)) + 1 + worst_case_bytes(child, f"{path}.{name}") + 1
                   for name, child in props.items())


def worst_case_spec_bytes() -> int:
    return worst_case_bytes(SPEC_SCHEMA)


def test_the_largest_spec_stays_within_the_annotation_budget() -> None:
    bound = worst_case_spec_bytes()
    assert bound <= api.SPEC_BYTES_BUDGET, f"the largest spec is {bound} bytes"
    # kubectl keeps the whole object in last-applied-configuration; 256 KiB is for all annotations.
    assert api.SPEC_BYTES_BUDGET + 2048 < 256 * 1024 // 2 + 256 * 1024 // 4


def test_the_largest_spec_sample_is_admitted_and_near_the_bound() -> None:
    spec = largest_spec(module="custom")
    assert server_verdict(spec) == (True, "") and model_verdict(spec) == (True, "")
    size = len(json.dumps(spec, separators=(",", ":")).encode())
    # Short of the bound by what must stay usable: apiUrl reaches the GitHub emulator, the region is real.
    assert size >= 0.85 * worst_case_spec_bytes(), f"the sample ({size} bytes) is not near the bound"


def test_one_character_more_anywhere_in_a_map_total_is_refused() -> None:
    spec = largest_spec(module="custom")
    first = next(iter(spec["app"]["env"]))
    spec["app"]["env"][first] += "x"
    assert not server_verdict(spec)[0] and not model_verdict(spec)[0]


def test_crd_file_header_says_it_is_generated() -> None:
    text = (REPO / "crds" / "llmapp.yaml").read_text()
    assert text.startswith("# Generated by `make crd`")
    assert pathlib.Path(REPO / "scripts" / "gen_crd.py").exists()


def test_every_example_passes_server_side_validation() -> None:
    documents = [doc for path in sorted((REPO / "examples").glob("*.yaml"))
                 for doc in yaml.safe_load_all(path.read_text()) if doc and doc.get("kind") == "LLMApp"]
    assert len(documents) >= 2
    for doc in documents:
        assert server_verdict(doc["spec"]) == (True, ""), doc["metadata"]["name"]
        assert model_verdict(doc["spec"]) == (True, ""), doc["metadata"]["name"]


def test_a_status_write_with_an_undeclared_field_is_found() -> None:
    """The API server prunes status fields the schema does not declare, without an error: the
    operator refuses such a write itself (kube/status.py), so a typo cannot go unnoticed."""
    from llmapp_operator.api.status import undeclared

    good = {"phase": "Ready", "lastAppliedDigest": "d", "outputs": {"anything": {"goes": 1}}, "lastError": None,
            "github": {"repository": "a/b", "createdEnvironment": True}, "plan": {"id": "p", "pending": False},
            "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 1}]}
    assert undeclared(good) == []
    bad = {"phase": "Ready", "lastApplied": "d", "github": {"repo": "a/b"},
           "conditions": [{"type": "Ready", "status": "True", "observedGen": 1}]}
    assert undeclared(bad) == ["status.lastApplied", "status.github.repo", "status.conditions.observedGen"]


@pytest.mark.parametrize(("app", "admitted", "says"), [
    ({"rollout": "pipeline"}, True, ""),
    ({"rollout": "operator", "image": "ghcr.io/acme/rags:1.2.0"}, True, ""),
    ({"image": "ghcr.io/acme/rags:1.2.0"}, True, ""),                 # rollout unset: operator
    ({"rollout": "pipeline", "image": "ghcr.io/acme/rags:1.2.0"}, False, "leave image empty"),
    ({"rollout": "operator"}, False, "runs spec.app.image: set it"),
])
def test_the_rollout_and_the_image_agree_at_apply_time(app: dict[str, Any], admitted: bool, says: str) -> None:
    spec = {**copy.deepcopy(BASE), "app": app}
    server, model = server_verdict(spec), model_verdict(spec)
    assert server[0] is model[0] is admitted, (server, model)
    assert says in server[1] and says in model[1]

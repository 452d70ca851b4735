"""OpenAPI v3 documents of the emulated kube-apiserver: what kubectl's field-validation check and explain read."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import yaml

from llmapp_sandbox.apiserver import openapi
from llmapp_sandbox.apiserver.openapi import (
    DocumentCache,
    KindInfo,
    builtin_kind,
    crd_kind_schema,
    document_hash,
    from_json_schema,
    kind_info,
    kinds_from_crd,
    openapi_v3_document,
    openapi_v3_index,
    openapi_v3_path,
    parse_openapi_v3_path,
    rest_friendly_name,
)

REPO = pathlib.Path(__file__).resolve().parents[3]
GROUP, VERSION = "llmops.dev", "v1alpha1"
LLMAPP_GVK = {"group": GROUP, "kind": "LLMApp", "version": VERSION}


def llmapp_crd() -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load((REPO / "crds" / "llmapp.yaml").read_text())
    return crd


def llmapp_document() -> dict[str, Any]:
    return openapi_v3_document(GROUP, VERSION, [kinds_from_crd(llmapp_crd())[VERSION]])


def supports_query_param(document: Mapping[str, Any], gvk: Mapping[str, str], param: str) -> bool:
    """cli-runtime's supportsQueryParamV3: the first PATCH operation for the GVK must list the parameter."""
    for item in document["paths"].values():
        patch = item.get("patch")
        if patch is None or patch.get("x-kubernetes-group-version-kind") != gvk:
            continue
        return any(p["name"] == param for p in patch.get("parameters", []))
    return False


def resolve(document: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if ref is None and len(schema.get("allOf", [])) == 1 and "properties" not in schema:
        ref = schema["allOf"][0].get("$ref")
    if ref is None:
        return schema
    resolved: Mapping[str, Any] = document["components"]["schemas"][ref.removeprefix("#/components/schemas/")]
    return resolved


def explain(document: Mapping[str, Any], group: str, version: str, plural: str, field_path: list[str]
            ) -> Mapping[str, Any]:
    """What kubectl explain's template does: GVK from a path's operation, then the schema with that GVK."""
    prefix = "/api" if not group else f"/apis/{group}"
    candidates = [f"{prefix}/{version}/{plural}", f"{prefix}/{version}/{plural}/{{name}}",
                  f"{prefix}/{version}/namespaces/{{namespace}}/{plural}",
                  f"{prefix}/{version}/namespaces/{{namespace}}/{plural}/{{name}}"]
    gvk = None
    for candidate in candidates:
        for method in ("get", "post", "put", "patch", "delete"):
            operation = document["paths"].get(candidate, {}).get(method)
            if operation and operation.get("x-kubernetes-group-version-kind"):
                gvk = operation["x-kubernetes-group-version-kind"]
                break
        if gvk:
            break
    assert gvk is not None, "GVR not found in OpenAPI schema"
    schema = next(s for s in document["components"]["schemas"].values()
                  if gvk in (s.get("x-kubernetes-group-version-kind") or []))
    for name in field_path:
        schema = resolve(document, schema)
        while "properties" not in schema and ("items" in schema or isinstance(schema.get("additionalProperties"),
                                                                              dict)):
            schema = resolve(document, schema.get("items") or schema["additionalProperties"])
        schema = schema["properties"][name]
    found: Mapping[str, Any] = schema
    return found


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def assert_references_resolve(document: Mapping[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for ref in refs(document):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


# -- index ---------------------------------------------------------------------------------------------
def test_index_lists_group_versions_with_their_urls() -> None:
    index = openapi_v3_index([(GROUP, VERSION), ("", "v1")], {(GROUP, VERSION): "ABC"})
    assert list(index["paths"]) == ["api/v1", "apis/llmops.dev/v1alpha1"]
    assert index["paths"]["apis/llmops.dev/v1alpha1"] == {"serverRelativeURL": "/openapi/v3/apis/llmops.dev/v1alpha1"
                                                                              "?hash=ABC"}
    core = index["paths"]["api/v1"]["serverRelativeURL"]
    assert core.startswith("/openapi/v3/api/v1?hash=")
    assert core == openapi_v3_index([("", "v1")])["paths"]["api/v1"]["serverRelativeURL"]  # stable


@pytest.mark.parametrize(("path", "parsed"), [
    ("/openapi/v3/apis/llmops.dev/v1alpha1", ("llmops.dev", "v1alpha1")),
    ("/openapi/v3/api/v1", ("", "v1")),
    ("/openapi/v3/api/v1/", ("", "v1")),
    ("/openapi/v3", None), ("/openapi/v3/apis/llmops.dev", None), ("/openapi/v2", None),
])
def test_parse_openapi_v3_path(path: str, parsed: tuple[str, str] | None) -> None:
    assert parse_openapi_v3_path(path) == parsed


def test_openapi_v3_path_and_names() -> None:
    assert openapi_v3_path("", "v1") == "api/v1"
    assert openapi_v3_path(GROUP, VERSION) == "apis/llmops.dev/v1alpha1"
    assert rest_friendly_name(GROUP, VERSION, "LLMApp") == "dev.llmops.v1alpha1.LLMApp"
    assert rest_friendly_name("example", "v1", "Foo") == "example.v1.Foo"


def test_document_hash_follows_content() -> None:
    document = llmapp_document()
    digest = document_hash(document)
    assert len(digest) == 128 and digest == digest.upper()
    assert document_hash(json.loads(json.dumps(document))) == digest
    document["paths"].pop(next(iter(document["paths"])))
    assert document_hash(document) != digest


def test_document_cache_rebuilds_only_on_change() -> None:
    cache = DocumentCache()
    kinds = [kinds_from_crd(llmapp_crd())[VERSION]]
    first, digest = cache.get(GROUP, VERSION, kinds)
    again, same = cache.get(GROUP, VERSION, kinds)
    assert again is first and same == digest
    changed = [KindInfo(kind="LLMApp", plural="llmapps", schema={"type": "object"})]
    assert cache.get(GROUP, VERSION, changed)[1] != digest


# -- CRD documents -------------------------------------------------------------------------------------
def test_crd_document_has_every_path_of_a_namespaced_kind_with_status() -> None:
    document = llmapp_document()
    base = "/apis/llmops.dev/v1alpha1"
    assert sorted(document["paths"]) == [f"{base}/llmapps", f"{base}/namespaces/{{namespace}}/llmapps",
                                         f"{base}/namespaces/{{namespace}}/llmapps/{{name}}",
                                         f"{base}/namespaces/{{namespace}}/llmapps/{{name}}/status"]
    item = document["paths"][f"{base}/namespaces/{{namespace}}/llmapps/{{name}}"]
    assert sorted(k for k in item if k != "parameters") == ["delete", "get", "patch", "put"]
    assert [p["name"] for p in item["parameters"]] == ["name", "namespace", "pretty"]
    assert item["patch"]["operationId"] == "patchLlmopsDevV1alpha1NamespacedLLMApp"
    assert item["patch"]["tags"] == ["llmopsDev_v1alpha1"]
    assert item["patch"]["x-kubernetes-action"] == "patch"
    assert sorted(item["patch"]["requestBody"]["content"]) == ["application/apply-patch+yaml",
                                                               "application/json-patch+json",
                                                               "application/merge-patch+json"]
    collection = document["paths"][f"{base}/namespaces/{{namespace}}/llmapps"]
    assert sorted(k for k in collection if k != "parameters") == ["delete", "get", "post"]
    assert collection["post"]["operationId"] == "createLlmopsDevV1alpha1NamespacedLLMApp"
    assert collection["delete"]["x-kubernetes-action"] == "deletecollection"
    assert "fieldValidation" in [p["name"] for p in collection["post"]["parameters"]]
    all_namespaces = document["paths"][f"{base}/llmapps"]["get"]
    assert all_namespaces["operationId"] == "listLlmopsDevV1alpha1LLMAppForAllNamespaces"
    assert "application/json;stream=watch" in all_namespaces["responses"]["200"]["content"]
    status = document["paths"][f"{base}/namespaces/{{namespace}}/llmapps/{{name}}/status"]
    assert status["patch"]["operationId"] == "patchLlmopsDevV1alpha1NamespacedLLMAppStatus"
    assert status["get"]["description"] == "read status of the specified LLMApp"


def test_kubectl_finds_server_side_field_validation() -> None:
    document = llmapp_document()
    assert supports_query_param(document, LLMAPP_GVK, "fieldValidation")
    assert supports_query_param(document, LLMAPP_GVK, "dryRun")
    assert not supports_query_param(document, {**LLMAPP_GVK, "kind": "Other"}, "fieldValidation")


def test_crd_kind_schema_is_built_like_apiextensions() -> None:
    schemas = llmapp_document()["components"]["schemas"]
    kind = schemas["dev.llmops.v1alpha1.LLMApp"]
    assert kind["x-kubernetes-group-version-kind"] == [LLMAPP_GVK]
    assert kind["properties"]["metadata"] == {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1."
                                                      "ObjectMeta",
                                              "description": openapi.OBJECT_METADATA_DESCRIPTION}
    assert kind["properties"]["apiVersion"] == openapi.API_VERSION_PROPERTY
    assert kind["properties"]["kind"] == openapi.KIND_PROPERTY
    source = llmapp_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert kind["properties"]["spec"] == source["properties"]["spec"]
    assert kind["required"] == source["required"]
    listing = schemas["dev.llmops.v1alpha1.LLMAppList"]
    assert listing["x-kubernetes-group-version-kind"] == [{**LLMAPP_GVK, "kind": "LLMAppList"}]
    assert listing["properties"]["items"]["items"] == {"$ref": "#/components/schemas/dev.llmops.v1alpha1.LLMApp"}
    assert listing["required"] == ["items"]
    assert set(schemas) == {"dev.llmops.v1alpha1.LLMApp", "dev.llmops.v1alpha1.LLMAppList"} | {
        f"io.k8s.apimachinery.pkg.apis.meta.v1.{name}" for name in
        ("DeleteOptions", "FieldsV1", "ListMeta", "ManagedFieldsEntry", "ObjectMeta", "OwnerReference", "Patch",
         "Preconditions", "Status", "StatusCause", "StatusDetails", "Time")}


def test_every_reference_resolves() -> None:
    assert_references_resolve(llmapp_document())


def test_explain_finds_field_descriptions() -> None:
    document = llmapp_document()
    cpu = explain(document, GROUP, VERSION, "llmapps", ["spec", "app", "cpu"])
    assert cpu["type"] == "integer"
    assert cpu["description"].startswith("Fargate task CPU units")
    secret_name = explain(document, GROUP, VERSION, "llmapps", ["spec", "app", "secrets", "name"])
    assert secret_name["type"] == "string"
    assert "description" in explain(document, GROUP, VERSION, "llmapps", ["metadata", "labels"])


def test_cluster_scoped_kind_and_limited_verbs() -> None:
    info = KindInfo(kind="Widget", plural="widgets", namespaced=False, schema={"type": "object"},
                    verbs=frozenset({"create", "get"}))
    document = openapi_v3_document("example.com", "v1", [info])
    assert sorted(document["paths"]) == ["/apis/example.com/v1/widgets", "/apis/example.com/v1/widgets/{name}"]
    assert list(document["paths"]["/apis/example.com/v1/widgets"]) == ["post", "parameters"]
    item = document["paths"]["/apis/example.com/v1/widgets/{name}"]
    assert item["get"]["operationId"] == "readExampleComV1Widget"
    assert [p["name"] for p in item["parameters"]] == ["name", "pretty"]
    assert not supports_query_param(document, {"group": "example.com", "kind": "Widget", "version": "v1"},
                                    "fieldValidation")  # no PATCH: kubectl would validate client-side


def test_scale_subresource_brings_the_scale_schema() -> None:
    info = KindInfo(kind="Widget", plural="widgets", schema={"type": "object"}, subresources=frozenset({"scale"}))
    document = openapi_v3_document("example.com", "v1", [info])
    scale = document["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/scale"]
    assert scale["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/io.k8s.api.autoscaling.v1.Scale"}
    assert "io.k8s.api.autoscaling.v1.ScaleSpec" in document["components"]["schemas"]
    assert_references_resolve(document)


def test_version_without_schema_is_an_open_object() -> None:
    schema = crd_kind_schema("example.com", "v1", "Widget", None)
    assert schema == {"type": "object", "x-kubernetes-group-version-kind": [
        {"group": "example.com", "kind": "Widget", "version": "v1"}]}


def test_unfold_and_embedded_resources() -> None:
    schema = crd_kind_schema("example.com", "v1", "Widget", {"type": "object", "properties": {
        "port": {"x-kubernetes-int-or-string": True},
        "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                     "x-kubernetes-preserve-unknown-fields": True},
    }})
    assert schema["properties"]["port"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    template = schema["properties"]["template"]
    assert set(template["properties"]) == {"apiVersion", "kind", "metadata"}
    assert template["required"] == ["kind", "apiVersion"]


def test_kinds_from_crd_skips_unserved_versions() -> None:
    crd = llmapp_crd()
    crd["spec"]["versions"].append({"name": "v1beta1", "served": False, "storage": False})
    kinds = kinds_from_crd(crd)
    assert list(kinds) == [VERSION]
    info = kinds[VERSION]
    assert (info.kind, info.plural, info.list_kind_name, info.namespaced, info.subresources, info.builtin) == (
        "LLMApp", "llmapps", "LLMAppList", True, frozenset({"status"}), False)


def test_kind_info_from_a_kind_like_object() -> None:
    class Kind:
        kind, plural, namespaced = "Namespace", "namespaces", False
        subresources = frozenset({"status", "finalize"})
        verbs = openapi.ALL_VERBS
        schema = None
        crd = None
        is_custom = False

    info = kind_info(Kind())
    assert (info.builtin, info.subresources, info.namespaced) == (True, frozenset({"status"}), False)


# -- built-in kinds ------------------------------------------------------------------------------------
needs_bundle = pytest.mark.skipif(openapi.bundled_definitions() is None,
                                  reason="kubernetes-validate (Kubernetes' bundled schemas) is not installed")


@needs_bundle
def test_builtin_document_uses_kubernetes_schemas() -> None:
    document = openapi_v3_document("", "v1", [builtin_kind("Namespace", "namespaces", namespaced=False,
                                                           subresources=["status"]),
                                              builtin_kind("Secret", "secrets")])
    schemas = document["components"]["schemas"]
    namespace = schemas["io.k8s.api.core.v1.Namespace"]
    assert namespace["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Namespace", "version": "v1"}]
    assert "enum" not in namespace["properties"]["apiVersion"]
    assert namespace["properties"]["spec"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.core.v1."
                                                                 "NamespaceSpec"}]
    assert "io.k8s.api.core.v1.SecretList" in schemas
    assert '"null"' not in json.dumps(document)
    assert_references_resolve(document)
    item = document["paths"]["/api/v1/namespaces/{name}"]
    assert item["get"]["operationId"] == "readCoreV1Namespace"
    assert item["get"]["tags"] == ["core_v1"]
    assert "application/strategic-merge-patch+json" in item["patch"]["requestBody"]["content"]
    assert supports_query_param(document, {"group": "", "kind": "Secret", "version": "v1"}, "fieldValidation")
    finalizers = explain(document, "", "v1", "namespaces", ["spec", "finalizers"])
    assert finalizers["type"] == "array"
    crds = openapi_v3_document("apiextensions.k8s.io", "v1", [builtin_kind(
        "CustomResourceDefinition", "customresourcedefinitions", namespaced=False, subresources=["status"])])
    columns = explain(crds, "apiextensions.k8s.io", "v1", "customresourcedefinitions",
                      ["spec", "versions", "additionalPrinterColumns", "jsonPath"])
    assert columns["type"] == "string"
    assert_references_resolve(crds)


def test_builtin_document_without_the_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openapi, "bundled_definitions", lambda: None)
    document = openapi_v3_document("rbac.authorization.k8s.io", "v1", [builtin_kind("Role", "roles")])
    schemas = document["components"]["schemas"]
    role = schemas["io.k8s.api.rbac.v1.Role"]
    assert role["x-kubernetes-preserve-unknown-fields"] is True
    assert role["x-kubernetes-group-version-kind"] == [{"group": "rbac.authorization.k8s.io", "kind": "Role",
                                                        "version": "v1"}]
    assert schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"] == openapi.META_SCHEMAS[
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
    assert supports_query_param(document, {"group": "rbac.authorization.k8s.io", "kind": "Role", "version": "v1"},
                                "fieldValidation")
    assert_references_resolve(document)
    core = openapi_v3_document("", "v1", [builtin_kind("Secret", "secrets")])
    assert "io.k8s.api.core.v1.Secret" in core["components"]["schemas"]
    crd = openapi_v3_document("apiextensions.k8s.io", "v1", [builtin_kind("CustomResourceDefinition",
                                                                          "customresourcedefinitions")])
    assert ("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"
            in crd["components"]["schemas"])


def test_from_json_schema_undoes_openapi2jsonschema() -> None:
    converted = from_json_schema({
        "type": ["object", "null"],
        "properties": {
            "apiVersion": {"type": ["string", "null"], "enum": ["v1"]},
            "spec": {"$ref": "#/$defs/io.k8s.api.core.v1.PodSpec", "description": "Spec."},
            "items": {"type": ["array", "null"], "items": {"$ref": "#/$defs/X"}},
            "port": {"oneOf": [{"type": ["string", "null"]}, {"type": ["integer", "null"]}]},
        },
        "x-kubernetes-group-version-kind": [{"group": "", "kind": "Pod", "version": "v1"}],
    }, top_level=True)
    assert converted["type"] == "object"
    assert converted["properties"]["apiVersion"] == {"type": "string"}
    assert converted["properties"]["spec"] == {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}],
                                               "description": "Spec."}
    assert converted["properties"]["items"] == {"type": "array", "items": {"$ref": "#/components/schemas/X"}}
    assert converted["properties"]["port"] == {"oneOf": [{"type": "string"}, {"type": "integer"}]}

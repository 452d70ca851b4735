"""OpenAPI v3 documents in the shape kube-apiserver v1.32 serves them, for kubectl.

kubectl reads `/openapi/v3` (an index of group-versions) and then one document per group-version,
at the index's `serverRelativeURL` (`/openapi/v3/apis/llmops.dev/v1alpha1?hash=...`):

- `kubectl apply`/`create` (default `--validate=strict`) look in the document for a PATCH operation
  whose `x-kubernetes-group-version-kind` is the object's GVK and whose parameters include
  `fieldValidation` (cli-runtime's queryParamVerifierV3). Found: kubectl sends
  `?fieldValidation=Strict` and leaves validation to the server. Not found: it validates client-side
  from OpenAPI v2 (`/openapi/v2`), which the emulator does not serve.
- `kubectl explain` finds the GVK on an operation of the resource's path, then the component schema
  whose `x-kubernetes-group-version-kind` list holds that GVK, and walks its properties (`$ref`s
  and single-element `allOf`s are followed).

CRD documents follow apiextensions-apiserver's builder (pkg/controller/openapi/builder): the kind
is published as `dev.llmops.v1alpha1.LLMApp` (reverse-domain group) with the version's
openAPIV3Schema, `apiVersion`/`kind` replaced by TypeMeta's, `metadata` a `$ref` to ObjectMeta, and
the list kind beside it; paths for list (also across namespaces), create, deletecollection, read,
replace, patch, delete, and the status/scale subresources, each with the query parameters of its
options type. Built-in kinds use Kubernetes' own 1.32 schemas when the `kubernetes-validate`
package (a dev dependency) is installed, converted back from its JSON Schema form to OpenAPI v3
(`type: [T, "null"]` becomes `type: T`, `$ref` siblings move under `allOf`); otherwise they get a
permissive object schema. The meta.k8s.io component schemas are hand-written here, or the bundled
ones when present.

Not modelled: `watch` paths (deprecated), `/finalize`/`/binding`/`/log`-style subresources, the
non-resource paths the real index lists (`version`, `.well-known/...`), and `x-kubernetes-*`
extensions other than what the sources carry.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.util
import json
import pathlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SCHEMAS = "#/components/schemas/"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
OBJECT_META = META + "ObjectMeta"
LIST_META = META + "ListMeta"
STATUS = META + "Status"
PATCH = META + "Patch"
DELETE_OPTIONS = META + "DeleteOptions"
SCALE = "io.k8s.api.autoscaling.v1.Scale"
KUBERNETES_VERSION = "1.32"

ALL_VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"})

API_VERSION_PROPERTY = {
    "description": "APIVersion defines the versioned schema of this representation of an object. Servers should "
                   "convert recognized schemas to the latest internal value, and may reject unrecognized values. "
                   "More info: https://git.k8s.io/community/contributors/devel/sig-architecture/"
                   "api-conventions.md#resources",
    "type": "string",
}
KIND_PROPERTY = {
    "description": "Kind is a string value representing the REST resource this object represents. Servers may "
                   "infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. "
                   "More info: https://git.k8s.io/community/contributors/devel/sig-architecture/"
                   "api-conventions.md#types-kinds",
    "type": "string",
}
OBJECT_METADATA_DESCRIPTION = ("Standard object's metadata. More info: https://git.k8s.io/community/contributors/"
                               "devel/sig-architecture/api-conventions.md#metadata")
LIST_METADATA_DESCRIPTION = ("Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/"
                             "sig-architecture/api-conventions.md#types-kinds")


@dataclass(frozen=True)
class KindInfo:
    """One resource of a group-version, as the OpenAPI document publishes it.

    `schema` is the CRD version's openAPIV3Schema (None: an object with nothing declared, as the
    real server publishes a CRD version without a schema). For `builtin` kinds, None means
    Kubernetes' own schema (bundled) or, without the bundle, a permissive object schema.
    """

    kind: str
    plural: str
    namespaced: bool = True
    schema: Mapping[str, Any] | None = None
    list_kind: str | None = None
    subresources: frozenset[str] = frozenset()
    verbs: frozenset[str] = ALL_VERBS
    builtin: bool = False

    @property
    def list_kind_name(self) -> str:
        return self.list_kind or self.kind + "List"


def kinds_from_crd(crd: Mapping[str, Any]) -> dict[str, KindInfo]:
    """The served versions of an apiextensions.k8s.io/v1 CRD: version name -> KindInfo."""
    spec = crd["spec"]
    names = spec["names"]
    result: dict[str, KindInfo] = {}
    for version in spec.get("versions", []):
        if not version.get("served", True):
            continue
        subresources = frozenset((version.get("subresources") or {}).keys()) & {"status", "scale"}
        result[version["name"]] = KindInfo(
            kind=names["kind"], plural=names["plural"], list_kind=names.get("listKind"),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            schema=(version.get("schema") or {}).get("openAPIV3Schema"), subresources=subresources,
        )
    return result


def kind_info(kind: Any) -> KindInfo:
    """A KindInfo from a `kinds.Kind`-like object (duck-typed: kind, plural, namespaced, schema,
    subresources, verbs, and `is_custom`/`crd` telling a CRD's kind from a built-in one)."""
    custom = bool(getattr(kind, "is_custom", False) or getattr(kind, "crd", None))
    list_kind = getattr(kind, "list_kind", None) or (getattr(kind, "extra", None) or {}).get("listKind")
    return KindInfo(kind=kind.kind, plural=kind.plural, namespaced=bool(getattr(kind, "namespaced", True)),
                    schema=getattr(kind, "schema", None) if custom else None, list_kind=list_kind,
                    subresources=frozenset(getattr(kind, "subresources", ()) or ()) & {"status", "scale"},
                    verbs=frozenset(getattr(kind, "verbs", ALL_VERBS) or ALL_VERBS), builtin=not custom)


# -- names and paths ---------------------------------------------------------------------------------
def rest_friendly_name(group: str, version: str, kind: str) -> str:
    """kube-openapi's ToRESTFriendlyName: `llmops.dev/v1alpha1.LLMApp` -> `dev.llmops.v1alpha1.LLMApp`."""
    group_part = ".".join(reversed(group.split("."))) if "." in group else group
    return f"{group_part}.{version}.{kind}"


_BUILTIN_PACKAGES = {
    "": "io.k8s.api.core", "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
    "apiregistration.k8s.io": "io.k8s.kube-aggregator.pkg.apis.apiregistration",
}


def builtin_schema_name(group: str, version: str, kind: str) -> str:
    """The component name Kubernetes gives a built-in kind: `io.k8s.api.core.v1.Namespace`."""
    definitions = bundled_definitions()
    if definitions is not None:
        name = _gvk_index().get((group, version, kind))
        if name:
            return name
    package = _BUILTIN_PACKAGES.get(group)
    if package is None:
        short = group.removesuffix(".k8s.io").split(".")[0]
        package = f"io.k8s.api.{short}"
    return f"{package}.{version}.{kind}"


def openapi_v3_path(group: str, version: str) -> str:
    """The index key of a group-version: `api/v1` or `apis/<group>/<version>`."""
    return f"api/{version}" if group == "" else f"apis/{group}/{version}"


_DOC_PATH = re.compile(r"^/openapi/v3/(?:api/(?P<core>[^/]+)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))/?$")


def parse_openapi_v3_path(path: str) -> tuple[str, str] | None:
    """`/openapi/v3/apis/llmops.dev/v1alpha1` -> ("llmops.dev", "v1alpha1"); `/openapi/v3/api/v1` -> ("", "v1")."""
    match = _DOC_PATH.match(path)
    if match is None:
        return None
    if match.group("core"):
        return "", match.group("core")
    return match.group("group"), match.group("version")


def document_hash(document: Mapping[str, Any]) -> str:
    """The `?hash=` of a document: SHA-512 of its JSON, upper-case hex, as kube-apiserver computes it."""
    raw = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha512(raw).hexdigest().upper()


def openapi_v3_index(group_versions: Iterable[tuple[str, str]],
                     hashes: Mapping[tuple[str, str], str] | None = None) -> dict[str, Any]:
    """The `/openapi/v3` discovery document.

    Pass `hashes[(group, version)] = document_hash(doc)` so the hash changes when a document does
    (kubectl caches documents by URL); without one, a stable hash of the group-version is used.
    """
    paths: dict[str, Any] = {}
    for group, version in group_versions:
        key = openapi_v3_path(group, version)
        digest = (hashes or {}).get((group, version))
        if digest is None:
            digest = hashlib.sha512(key.encode()).hexdigest().upper()
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": dict(sorted(paths.items()))}


# -- the document ------------------------------------------------------------------------------------
def openapi_v3_document(group: str, version: str, kinds: Sequence[KindInfo]) -> dict[str, Any]:
    """The OpenAPI v3 document of one group-version: paths for every kind's verbs, and its schemas."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for info in kinds:
        kind_name, list_name = _kind_schemas(group, version, info, schemas)
        _add_paths(paths, group, version, info, kind_name, list_name)
    _close_references(schemas, {"paths": paths})
    title = "Kubernetes CRD Swagger" if not any(info.builtin for info in kinds) else "Kubernetes"
    info_version = "v0.1.0" if title == "Kubernetes CRD Swagger" else f"v{KUBERNETES_VERSION}.0"
    return {
        "openapi": "3.0.0",
        "info": {"title": title, "version": info_version},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items()))},
    }


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "kind": kind, "version": version}


def _kind_schemas(group: str, version: str, info: KindInfo, schemas: dict[str, Any]) -> tuple[str, str]:
    if info.builtin:
        kind_name = builtin_schema_name(group, version, info.kind)
        list_name = builtin_schema_name(group, version, info.list_kind_name)
        definitions = bundled_definitions()
        if info.schema is not None:
            schemas[kind_name] = copy.deepcopy(dict(info.schema))
        elif definitions is not None and kind_name in definitions:
            schemas[kind_name] = copy.deepcopy(definitions[kind_name])
        else:
            schemas[kind_name] = _permissive_schema(group, version, info.kind)
        if definitions is not None and list_name in definitions and info.schema is None:
            schemas[list_name] = copy.deepcopy(definitions[list_name])
        else:
            schemas[list_name] = _list_schema(group, version, info, kind_name)
        return kind_name, list_name
    kind_name = rest_friendly_name(group, version, info.kind)
    list_name = rest_friendly_name(group, version, info.list_kind_name)
    schemas[kind_name] = crd_kind_schema(group, version, info.kind, info.schema)
    schemas[list_name] = _list_schema(group, version, info, kind_name)
    return kind_name, list_name


def crd_kind_schema(group: str, version: str, kind: str, schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """buildKubeNative: the CRD schema with TypeMeta's apiVersion/kind and a `$ref` to ObjectMeta."""
    if schema is None:
        result: dict[str, Any] = {"type": "object"}
    else:
        result = _unfold(copy.deepcopy(dict(schema)))
        properties = result.setdefault("properties", {})
        properties["metadata"] = {"$ref": SCHEMAS + OBJECT_META, "description": OBJECT_METADATA_DESCRIPTION}
        properties["apiVersion"] = dict(API_VERSION_PROPERTY)
        properties["kind"] = dict(KIND_PROPERTY)
        result["properties"] = dict(sorted(properties.items()))
        _add_embedded_properties(result)
    result["x-kubernetes-group-version-kind"] = [_gvk(group, version, kind)]
    return result


def _unfold(schema: dict[str, Any]) -> dict[str, Any]:
    """Structural.Unfold: `x-kubernetes-int-or-string` becomes an explicit anyOf of integer and string."""
    for child in _subschemas(schema):
        _unfold(child)
    if schema.get("x-kubernetes-int-or-string") and "anyOf" not in schema and "allOf" not in schema:
        schema["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return schema


def _add_embedded_properties(schema: dict[str, Any]) -> None:
    for child in _subschemas(schema):
        _add_embedded_properties(child)
    if schema.get("x-kubernetes-embedded-resource"):
        properties = schema.setdefault("properties", {})
        properties["apiVersion"] = {**API_VERSION_PROPERTY, "description": (
            "apiVersion defines the versioned schema of this representation of an object. More info: "
            "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources")}
        properties["kind"] = {**KIND_PROPERTY, "description": (
            "kind is a string value representing the type of this object. In CamelCase. More info: "
            "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds")}
        properties["metadata"] = {"$ref": SCHEMAS + OBJECT_META, "description": OBJECT_METADATA_DESCRIPTION}
        required = schema.setdefault("required", [])
        for name in ("kind", "apiVersion"):
            if name not in required:
                required.append(name)


def _subschemas(schema: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for value in (schema.get("properties") or {}).values():
        if isinstance(value, dict):
            yield value
    for key in ("items", "additionalProperties", "not"):
        value = schema.get(key)
        if isinstance(value, dict):
            yield value
    for key in ("allOf", "anyOf", "oneOf"):
        for value in schema.get(key) or []:
            if isinstance(value, dict):
                yield value


def _list_schema(group: str, version: str, info: KindInfo, kind_name: str) -> dict[str, Any]:
    """buildListSchema: `<Kind>List is a list of <Kind>`."""
    return {
        "description": f"{info.list_kind_name} is a list of {info.kind}",
        "required": ["items"],
        "type": "object",
        "properties": {
            "apiVersion": dict(API_VERSION_PROPERTY),
            "items": {"description": f"List of {info.plural}. More info: https://git.k8s.io/community/contributors/"
                                     "devel/sig-architecture/api-conventions.md",
                      "items": {"$ref": SCHEMAS + kind_name}, "type": "array"},
            "kind": dict(KIND_PROPERTY),
            "metadata": {"$ref": SCHEMAS + LIST_META, "description": LIST_METADATA_DESCRIPTION},
        },
        "x-kubernetes-group-version-kind": [_gvk(group, version, info.list_kind_name)],
    }


def _permissive_schema(group: str, version: str, kind: str) -> dict[str, Any]:
    return {
        "description": f"{kind} (Kubernetes' own schema is not bundled here: any fields are accepted).",
        "type": "object",
        "properties": {"apiVersion": dict(API_VERSION_PROPERTY), "kind": dict(KIND_PROPERTY),
                       "metadata": {"allOf": [{"$ref": SCHEMAS + OBJECT_META}], "default": {},
                                    "description": OBJECT_METADATA_DESCRIPTION}},
        "x-kubernetes-preserve-unknown-fields": True,
        "x-kubernetes-group-version-kind": [_gvk(group, version, kind)],
    }


# -- operations --------------------------------------------------------------------------------------
def _param(name: str, description: str, type_: str = "string", *, where: str = "query",
           required: bool = False) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": where, "description": description,
                             "schema": {"type": type_, "uniqueItems": True}}
    if required:
        param["required"] = True
    return param


_DRY_RUN = _param("dryRun", "When present, indicates that modifications should not be persisted. An invalid or "
                            "unrecognized dryRun directive will result in an error response and no further "
                            "processing of the request. Valid values are: - All: all dry run stages will be "
                            "processed")
_FIELD_MANAGER = _param("fieldManager", "fieldManager is a name associated with the actor or entity that is making "
                                        "these changes. The value must be less than or 128 characters long, and "
                                        "only contain printable characters, as defined by "
                                        "https://golang.org/pkg/unicode/#IsPrint.")
_PATCH_FIELD_MANAGER = _param("fieldManager", _FIELD_MANAGER["description"] + " This field is required for apply "
                              "requests (application/apply-patch) but optional for non-apply patch types "
                              "(JsonPatch, MergePatch, StrategicMergePatch).")
_FIELD_VALIDATION = _param(
    "fieldValidation",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing "
    "unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are "
    "silently dropped from the object, and will ignore all but the last duplicate field that the decoder "
    "encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard "
    "warning response header for each unknown field that is dropped from the object, and for each duplicate "
    "field that is encountered. The request will still succeed if there are no other errors, and will only "
    "persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the "
    "request with a BadRequest error if any unknown fields would be dropped from the object, or if any "
    "duplicate fields are present. The error returned from the server will contain all unknown and duplicate "
    "fields encountered.")
_FORCE = _param("force", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting "
                         "fields owned by other people. Force flag must be unset for non-apply patch requests.",
                "boolean")
_PRETTY = _param("pretty", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent "
                           "indicates a browser or command-line HTTP tool (curl and wget).")
_RESOURCE_VERSION = _param(
    "resourceVersion", "resourceVersion sets a constraint on what resource versions a request may be served from. "
                       "See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for "
                       "details.\n\nDefaults to unset")
_LIST_PARAMS = [
    _param("allowWatchBookmarks", "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do "
                                  "not implement bookmarks may ignore this flag and bookmarks are sent at the "
                                  "server's discretion. Clients should not assume bookmarks are returned at any "
                                  "specific interval, nor may they assume the server will send any BOOKMARK event "
                                  "during a session. If this is not a watch, this field is ignored.", "boolean"),
    _param("continue", "The continue option should be set when retrieving more results from the server. Since this "
                       "value is server defined, clients may only use the continue value from a previous query "
                       "result with identical query parameters (except for the value of continue) and the server "
                       "may reject a continue value it does not recognize."),
    _param("fieldSelector", "A selector to restrict the list of returned objects by their fields. Defaults to "
                            "everything."),
    _param("labelSelector", "A selector to restrict the list of returned objects by their labels. Defaults to "
                            "everything."),
    _param("limit", "limit is a maximum number of responses to return for a list call. If more items exist, the "
                    "server will set the `continue` field on the list metadata to a value that can be used with the "
                    "same initial query to retrieve the next set of results.", "integer"),
    _RESOURCE_VERSION,
    _param("resourceVersionMatch", "resourceVersionMatch determines how resourceVersion is applied to list calls. "
                                   "It is highly recommended that resourceVersionMatch be set for list calls where "
                                   "resourceVersion is set See https://kubernetes.io/docs/reference/using-api/"
                                   "api-concepts/#resource-versions for details.\n\nDefaults to unset"),
    _param("sendInitialEvents", "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the "
                                "watch stream will begin with synthetic events to produce the current state of "
                                "objects in the collection.", "boolean"),
    _param("timeoutSeconds", "Timeout for the list/watch call. This limits the duration of the call, regardless of "
                             "any activity or inactivity.", "integer"),
    _param("watch", "Watch for changes to the described resources and return them as a stream of add, update, and "
                    "remove notifications. Specify resourceVersion.", "boolean"),
]
_DELETE_PARAMS = [
    _DRY_RUN,
    _param("gracePeriodSeconds", "The duration in seconds before the object should be deleted. Value must be "
                                 "non-negative integer. The value zero indicates delete immediately. If this value "
                                 "is nil, the default grace period for the specified type will be used. Defaults to "
                                 "a per object value if not specified. zero means delete immediately.", "integer"),
    _param("ignoreStoreReadErrorWithClusterBreakingPotential",
           "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow "
           "fails with a corrupt object error. A resource is considered corrupt if it can not be retrieved from the "
           "underlying storage successfully because of a) its data can not be transformed e.g. decryption failure, "
           "or b) it fails to decode into an object. NOTE: unsafe deletion ignores finalizer constraints, skips "
           "precondition checks, and removes the object from the storage. WARNING: This may potentially break the "
           "cluster if the workload associated with the resource being unsafe-deleted relies on normal deletion "
           "flow. Use only if you REALLY know what you are doing. The default value is false, and the user must "
           "opt in to enable it", "boolean"),
    _param("orphanDependents", "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. "
                               "Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer "
                               "will be added to/removed from the object's finalizers list. Either this field or "
                               "PropagationPolicy may be set, but not both.", "boolean"),
    _param("propagationPolicy", "Whether and how garbage collection will be performed. Either this field or "
                                "OrphanDependents may be set, but not both. The default policy is decided by the "
                                "existing finalizer set in the metadata.finalizers and the resource-specific default "
                                "policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - "
                                "allow the garbage collector to delete the dependents in the background; "
                                "'Foreground' - a cascading policy that deletes all dependents in the foreground."),
]


def _operation_id_part(text: str, capitalize_first: bool) -> str:
    """apiserver's ToValidOperationID."""
    out, capitalize = [], capitalize_first
    for index, char in enumerate(text):
        if char.isalpha() or char == "_" or (index != 0 and char.isdigit()):
            out.append(char.upper() if capitalize else char)
            capitalize = False
        else:
            capitalize = True
    return "".join(out)


def _operation_id_and_tag(verb: str, rest: str, group: str, version: str) -> tuple[str, str]:
    trimmed = "core" if group == "" else group.removesuffix(".k8s.io")
    prefix = verb + _operation_id_part(trimmed, True) + _operation_id_part(version, True)
    return prefix + rest, _operation_id_part(trimmed, False) + "_" + _operation_id_part(version, False)


def _content(schema_name: str, builtin: bool, *, watch: bool = False) -> dict[str, Any]:
    ref = {"schema": {"$ref": SCHEMAS + schema_name}}
    media = ["application/json", "application/yaml"]
    if builtin:
        media.append("application/vnd.kubernetes.protobuf")
    if watch:
        media += ["application/json;stream=watch"] + (["application/vnd.kubernetes.protobuf;stream=watch"]
                                                      if builtin else [])
    return {media_type: copy.deepcopy(ref) for media_type in media}


@dataclass(frozen=True)
class _Target:
    group: str
    version: str
    kind: str
    builtin: bool


def _operation(*, verb: str, action: str, description: str, rest: str, target: _Target,
               params: Sequence[Mapping[str, Any]], responses: Mapping[str, tuple[str, str]],
               request: str | None = None, patch: bool = False, request_required: bool = True,
               watch_content: bool = False) -> dict[str, Any]:
    group, version, kind, builtin = target.group, target.version, target.kind, target.builtin
    operation_id, tag = _operation_id_and_tag(verb, rest, group, version)
    operation: dict[str, Any] = {"tags": [tag], "description": description, "operationId": operation_id}
    if params:
        operation["parameters"] = [dict(param) for param in sorted(params, key=lambda p: p["name"])]
    if patch:
        media = ["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json"]
        if builtin:
            media.append("application/strategic-merge-patch+json")
        operation["requestBody"] = {"content": {m: {"schema": {"$ref": SCHEMAS + PATCH}} for m in media},
                                    "required": True}
    elif request is not None:
        operation["requestBody"] = {"content": {"*/*": {"schema": {"$ref": SCHEMAS + request}}}}
        if request_required:
            operation["requestBody"]["required"] = True
    operation["responses"] = {
        code: {"description": text, "content": _content(schema, builtin, watch=watch_content)}
        for code, (text, schema) in responses.items()
    } | {"401": {"description": "Unauthorized"}}
    operation["x-kubernetes-action"] = action
    operation["x-kubernetes-group-version-kind"] = _gvk(group, version, kind)
    return operation


def _article(kind: str) -> str:
    return " an " if kind[:1].lower() in "aeiou" else " a "


def _add_paths(paths: dict[str, Any], group: str, version: str, info: KindInfo, kind_name: str,
               list_name: str) -> None:
    prefix = f"/api/{version}" if group == "" else f"/apis/{group}/{version}"
    scope = "Namespaced" if info.namespaced else ""
    root = f"{prefix}/namespaces/{{namespace}}/{info.plural}" if info.namespaced else f"{prefix}/{info.plural}"
    kind, builtin, verbs = info.kind, info.builtin, info.verbs
    target = _Target(group, version, kind, builtin)
    path_params = [_param("namespace", "object name and auth scope, such as for teams and projects",
                          where="path", required=True)] if info.namespaced else []
    name_param = _param("name", f"name of the {kind}", where="path", required=True)
    write_params = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
    patch_params = [_DRY_RUN, _PATCH_FIELD_MANAGER, _FIELD_VALIDATION, _FORCE]

    if info.namespaced and "list" in verbs:
        paths[f"{prefix}/{info.plural}"] = {
            "get": _operation(verb="list", action="list", description=f"list objects of kind {kind}",
                              rest=f"{kind}ForAllNamespaces", params=_LIST_PARAMS,
                              responses={"200": ("OK", list_name)}, watch_content=True, target=target),
            "parameters": [dict(_PRETTY)],
        }
    collection: dict[str, Any] = {}
    if "list" in verbs:
        collection["get"] = _operation(verb="list", action="list", description=f"list objects of kind {kind}",
                                       rest=f"{scope}{kind}", params=_LIST_PARAMS,
                                       responses={"200": ("OK", list_name)}, watch_content=True, target=target)
    if "create" in verbs:
        collection["post"] = _operation(verb="create", action="post", description=f"create{_article(kind)}{kind}",
                                        rest=f"{scope}{kind}", params=write_params, request=kind_name,
                                        responses={"200": ("OK", kind_name), "201": ("Created", kind_name),
                                                   "202": ("Accepted", kind_name)}, target=target)
    if "deletecollection" in verbs:
        params = _LIST_PARAMS + (_DELETE_PARAMS if builtin else [])
        collection["delete"] = _operation(verb="delete", action="deletecollection",
                                          description=f"delete collection of {kind}", rest=f"Collection{scope}{kind}",
                                          params=_dedupe(params), request=DELETE_OPTIONS, request_required=False,
                                          responses={"200": ("OK", STATUS)}, target=target)
    if collection:
        collection["parameters"] = path_params + [dict(_PRETTY)]
        paths[root] = collection

    item: dict[str, Any] = {}
    if "get" in verbs:
        item["get"] = _operation(verb="read", action="get", description=f"read the specified {kind}",
                                 rest=f"{scope}{kind}", params=[] if builtin else [_RESOURCE_VERSION],
                                 responses={"200": ("OK", kind_name)}, target=target)
    if "update" in verbs:
        item["put"] = _operation(verb="replace", action="put", description=f"replace the specified {kind}",
                                 rest=f"{scope}{kind}", params=write_params, request=kind_name,
                                 responses={"200": ("OK", kind_name), "201": ("Created", kind_name)}, target=target)
    if "delete" in verbs:
        item["delete"] = _operation(verb="delete", action="delete", description=f"delete{_article(kind)}{kind}",
                                    rest=f"{scope}{kind}", params=_DELETE_PARAMS, request=DELETE_OPTIONS,
                                    request_required=False,
                                    responses={"200": ("OK", STATUS), "202": ("Accepted", STATUS)}, target=target)
    if "patch" in verbs:
        item["patch"] = _operation(verb="patch", action="patch", description=f"partially update the specified {kind}",
                                   rest=f"{scope}{kind}", params=patch_params, patch=True,
                                   responses={"200": ("OK", kind_name), "201": ("Created", kind_name)}, target=target)
    if item:
        item["parameters"] = [dict(name_param)] + path_params + [dict(_PRETTY)]
        paths[f"{root}/{{name}}"] = item

    for sub in sorted(info.subresources & {"status", "scale"}):
        schema = kind_name if sub == "status" else SCALE
        title = sub.capitalize()
        ops: dict[str, Any] = {}
        if "get" in verbs:
            ops["get"] = _operation(verb="read", action="get", description=f"read {sub} of the specified {kind}",
                                    rest=f"{scope}{kind}{title}", params=[] if builtin else [_RESOURCE_VERSION],
                                    responses={"200": ("OK", schema)}, target=target)
        if "update" in verbs:
            ops["put"] = _operation(verb="replace", action="put", description=f"replace {sub} of the specified {kind}",
                                    rest=f"{scope}{kind}{title}", params=write_params, request=schema,
                                    responses={"200": ("OK", schema), "201": ("Created", schema)}, target=target)
        if "patch" in verbs:
            ops["patch"] = _operation(verb="patch", action="patch",
                                      description=f"partially update {sub} of the specified {kind}",
                                      rest=f"{scope}{kind}{title}", params=patch_params, patch=True,
                                      responses={"200": ("OK", schema), "201": ("Created", schema)}, target=target)
        if ops:
            ops["parameters"] = [dict(name_param)] + path_params + [dict(_PRETTY)]
            paths[f"{root}/{{name}}/{sub}"] = ops


def _dedupe(params: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    seen: dict[str, Mapping[str, Any]] = {}
    for param in params:
        seen.setdefault(param["name"], param)
    return list(seen.values())


# -- component schemas -------------------------------------------------------------------------------
def _refs(node: Any, *, names: bool = False) -> Iterator[str]:
    """The component names a schema (or a `properties` map, when `names`) refers to; values are skipped."""
    if isinstance(node, Mapping):
        ref = None if names else node.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMAS):
            yield ref[len(SCHEMAS):]
        for key, value in node.items():
            if names or key not in ("enum", "default", "example", "x-kubernetes-group-version-kind"):
                yield from _refs(value, names=not names and key == "properties")
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _close_references(schemas: dict[str, Any], paths: Mapping[str, Any]) -> None:
    """Add every schema the paths and schemas refer to, transitively."""
    pending = list(_refs(paths)) + [ref for schema in list(schemas.values()) for ref in _refs(schema)]
    definitions = bundled_definitions() or {}
    while pending:
        name = pending.pop()
        if name in schemas:
            continue
        schema = definitions.get(name) or META_SCHEMAS.get(name)
        if schema is None:
            schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        schemas[name] = copy.deepcopy(schema)
        pending.extend(_refs(schemas[name]))


def _ref(name: str, description: str, **extra: Any) -> dict[str, Any]:
    """A documented reference, as Kubernetes' v3 documents write one: the `$ref` under `allOf`."""
    return {"allOf": [{"$ref": SCHEMAS + name}], "description": description, **extra}


def _string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _integer(description: str, fmt: str = "int64") -> dict[str, Any]:
    return {"type": "integer", "format": fmt, "description": description}


def _boolean(description: str) -> dict[str, Any]:
    return {"type": "boolean", "description": description}


def _string_map(description: str) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": {"type": "string", "default": ""}, "description": description}


def _string_list(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string", "default": ""}, "description": description, **extra}


_DOCS = "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
META_SCHEMAS: dict[str, dict[str, Any]] = {
    OBJECT_META: {
        "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects "
                       "users must create.",
        "type": "object",
        "properties": {
            "annotations": _string_map("Annotations is an unstructured key value map stored with a resource that "
                                       "may be set by external tools to store and retrieve arbitrary metadata. They "
                                       "are not queryable and should be preserved when modifying objects. More info: "
                                       "https://kubernetes.io/docs/concepts/overview/working-with-objects/"
                                       "annotations"),
            "creationTimestamp": _ref(META + "Time", "CreationTimestamp is a timestamp representing the server time "
                                      "when this object was created. It is not guaranteed to be set in "
                                      "happens-before order across separate operations. Clients may not set this "
                                      "value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the "
                                      f"system. Read-only. Null for lists. More info: {_DOCS}#metadata"),
            "deletionGracePeriodSeconds": _integer("Number of seconds allowed for this object to gracefully "
                                                   "terminate before it will be removed from the system. Only set "
                                                   "when deletionTimestamp is also set. May only be shortened. "
                                                   "Read-only."),
            "deletionTimestamp": _ref(META + "Time", "DeletionTimestamp is RFC 3339 date and time at which this "
                                      "resource will be deleted. This field is set by the server when a graceful "
                                      "deletion is requested by the user, and is not directly settable by a client."
                                      f"\n\nPopulated by the system when a graceful deletion is requested. "
                                      f"Read-only. More info: {_DOCS}#metadata"),
            "finalizers": _string_list("Must be empty before the object is deleted from the registry. Each entry "
                                       "is an identifier for the responsible component that will remove the entry "
                                       "from the list. If the deletionTimestamp of the object is non-nil, entries "
                                       "in this list can only be removed. Finalizers may be processed and removed "
                                       "in any order.", **{"x-kubernetes-list-type": "set",
                                                           "x-kubernetes-patch-strategy": "merge"}),
            "generateName": _string("GenerateName is an optional prefix, used by the server, to generate a unique "
                                    "name ONLY IF the Name field has not been provided. If this field is used, the "
                                    "name returned to the client will be different than the name passed. This value "
                                    "will also be combined with a unique suffix. The provided value has the same "
                                    "validation rules as the Name field, and may be truncated by the length of the "
                                    "suffix required to make the value unique on the server.\n\nApplied only if "
                                    f"Name is not specified. More info: {_DOCS}#idempotency"),
            "generation": _integer("A sequence number representing a specific generation of the desired state. "
                                   "Populated by the system. Read-only."),
            "labels": _string_map("Map of string keys and values that can be used to organize and categorize (scope "
                                  "and select) objects. May match selectors of replication controllers and services. "
                                  "More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/"
                                  "labels"),
            "managedFields": {"type": "array", "items": {"default": {}, "allOf": [
                                  {"$ref": SCHEMAS + META + "ManagedFieldsEntry"}]},
                              "x-kubernetes-list-type": "atomic",
                              "description": "ManagedFields maps workflow-id and version to the set of fields that "
                                             "are managed by that workflow. This is mostly for internal housekeeping, "
                                             "and users typically shouldn't need to set or understand this field. A "
                                             "workflow can be the user's name, a controller's name, or the name of a "
                                             "specific apply path like \"ci-cd\". The set of fields is always in the "
                                             "version that the workflow used when modifying the object."},
            "name": _string("Name must be unique within a namespace. Is required when creating resources, although "
                            "some resources may allow a client to request the generation of an appropriate name "
                            "automatically. Name is primarily intended for creation idempotence and configuration "
                            "definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/"
                            "working-with-objects/names#names"),
            "namespace": _string("Namespace defines the space within which each name must be unique. An empty "
                                 "namespace is equivalent to the \"default\" namespace, but \"default\" is the "
                                 "canonical representation. Not all objects are required to be scoped to a "
                                 "namespace - the value of this field for those objects will be empty.\n\nMust be a "
                                 "DNS_LABEL. Cannot be updated. More info: https://kubernetes.io/docs/concepts/"
                                 "overview/working-with-objects/namespaces"),
            "ownerReferences": {"type": "array", "items": {"default": {}, "allOf": [
                                    {"$ref": SCHEMAS + META + "OwnerReference"}]},
                                "x-kubernetes-list-map-keys": ["uid"], "x-kubernetes-list-type": "map",
                                "x-kubernetes-patch-merge-key": "uid", "x-kubernetes-patch-strategy": "merge",
                                "description": "List of objects depended by this object. If ALL objects in the list "
                                               "have been deleted, this object will be garbage collected. If this "
                                               "object is managed by a controller, then an entry in this list will "
                                               "point to this controller, with the controller field set to true. "
                                               "There cannot be more than one managing controller."},
            "resourceVersion": _string("An opaque value that represents the internal version of this object that "
                                       "can be used by clients to determine when objects have changed. May be used "
                                       "for optimistic concurrency, change detection, and the watch operation on a "
                                       "resource or set of resources. Clients must treat these values as opaque and "
                                       "passed unmodified back to the server. They may only be valid for a "
                                       "particular resource or set of resources.\n\nPopulated by the system. "
                                       f"Read-only. Value must be treated as opaque by clients and . More info: "
                                       f"{_DOCS}#concurrency-control-and-consistency"),
            "selfLink": _string("Deprecated: selfLink is a legacy read-only field that is no longer populated by "
                                "the system."),
            "uid": _string("UID is the unique in time and space value for this object. It is typically generated by "
                           "the server on successful creation of a resource and is not allowed to change on PUT "
                           "operations.\n\nPopulated by the system. Read-only. More info: https://kubernetes.io/docs/"
                           "concepts/overview/working-with-objects/names#uids"),
        },
    },
    LIST_META: {
        "description": "ListMeta describes metadata that synthetic resources must have, including lists and various "
                       "status objects. A resource may have only one of {ObjectMeta, ListMeta}.",
        "type": "object",
        "properties": {
            "continue": _string("continue may be set if the user set a limit on the number of items returned, and "
                                "indicates that the server has more data available. The value is opaque and may be "
                                "used to issue another request to the endpoint that served this list to retrieve "
                                "the next set of available objects."),
            "remainingItemCount": _integer("remainingItemCount is the number of subsequent items in the list which "
                                           "are not included in this list response."),
            "resourceVersion": _string("String that identifies the server's internal version of this object that "
                                       "can be used by clients to determine when objects have changed. Value must "
                                       "be treated as opaque by clients and passed unmodified back to the server. "
                                       f"Populated by the system. Read-only. More info: "
                                       f"{_DOCS}#concurrency-control-and-consistency"),
            "selfLink": _string("Deprecated: selfLink is a legacy read-only field that is no longer populated by "
                                "the system."),
        },
    },
    META + "ManagedFieldsEntry": {
        "description": "ManagedFieldsEntry is a workflow-id, a FieldSet and the group version of the resource that "
                       "the fieldset applies to.",
        "type": "object",
        "properties": {
            "apiVersion": _string("APIVersion defines the version of this resource that this field set applies to. "
                                  "The format is \"group/version\" just like the top-level APIVersion field."),
            "fieldsType": _string("FieldsType is the discriminator for the different fields format and version. "
                                  "There is currently only one possible value: \"FieldsV1\""),
            "fieldsV1": _ref(META + "FieldsV1", "FieldsV1 holds the first JSON version format as described in the "
                             "\"FieldsV1\" type."),
            "manager": _string("Manager is an identifier of the workflow managing these fields."),
            "operation": _string("Operation is the type of operation which lead to this ManagedFieldsEntry being "
                                 "created. The only valid values for this field are 'Apply' and 'Update'."),
            "subresource": _string("Subresource is the name of the subresource used to update that object, or "
                                   "empty string if the object was updated through the main resource."),
            "time": _ref(META + "Time", "Time is the timestamp of when the ManagedFields entry was added."),
        },
    },
    META + "OwnerReference": {
        "description": "OwnerReference contains enough information to let you identify an owning object. An owning "
                       "object must be in the same namespace as the dependent, or be cluster-scoped, so there is no "
                       "namespace field.",
        "type": "object",
        "required": ["apiVersion", "kind", "name", "uid"],
        "properties": {
            "apiVersion": _string("API version of the referent.", default=""),
            "blockOwnerDeletion": _boolean("If true, AND if the owner has the \"foregroundDeletion\" finalizer, then "
                                           "the owner cannot be deleted from the key-value store until this "
                                           "reference is removed."),
            "controller": _boolean("If true, this reference points to the managing controller."),
            "kind": _string(f"Kind of the referent. More info: {_DOCS}#types-kinds", default=""),
            "name": _string("Name of the referent. More info: https://kubernetes.io/docs/concepts/overview/"
                            "working-with-objects/names#names", default=""),
            "uid": _string("UID of the referent. More info: https://kubernetes.io/docs/concepts/overview/"
                           "working-with-objects/names#uids", default=""),
        },
        "x-kubernetes-map-type": "atomic",
    },
    META + "Time": {
        "description": "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON.  "
                       "Wrappers are provided for many of the factory methods that the time package offers.",
        "type": "string", "format": "date-time",
    },
    META + "FieldsV1": {
        "description": "FieldsV1 stores a set of fields in a data structure like a Trie, in JSON format.",
        "type": "object",
    },
    PATCH: {
        "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
        "type": "object",
    },
    META + "Preconditions": {
        "description": "Preconditions must be fulfilled before an operation (update, delete, etc.) is carried out.",
        "type": "object",
        "properties": {"resourceVersion": _string("Specifies the target ResourceVersion"),
                       "uid": _string("Specifies the target UID.")},
    },
    DELETE_OPTIONS: {
        "description": "DeleteOptions may be provided when deleting an API object.",
        "type": "object",
        "properties": {
            "apiVersion": dict(API_VERSION_PROPERTY),
            "dryRun": _string_list("When present, indicates that modifications should not be persisted.",
                                   **{"x-kubernetes-list-type": "atomic"}),
            "gracePeriodSeconds": _integer("The duration in seconds before the object should be deleted."),
            "ignoreStoreReadErrorWithClusterBreakingPotential": _boolean(
                "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow "
                "fails with a corrupt object error."),
            "kind": dict(KIND_PROPERTY),
            "orphanDependents": _boolean("Deprecated: please use the PropagationPolicy."),
            "preconditions": _ref(META + "Preconditions", "Must be fulfilled before a deletion is carried out. If "
                                  "not possible, a 409 Conflict status will be returned."),
            "propagationPolicy": _string("Whether and how garbage collection will be performed."),
        },
        "x-kubernetes-group-version-kind": [_gvk("", "v1", "DeleteOptions"),
                                            _gvk("meta.k8s.io", "v1", "DeleteOptions")],
    },
    STATUS: {
        "description": "Status is a return value for calls that don't return other objects.",
        "type": "object",
        "properties": {
            "apiVersion": dict(API_VERSION_PROPERTY),
            "code": _integer("Suggested HTTP return code for this status, 0 if not set.", "int32"),
            "details": _ref(META + "StatusDetails", "Extended data associated with the reason.  Each reason may "
                            "define its own extended details. This field is optional and the data returned is not "
                            "guaranteed to conform to any schema except that defined by the reason type.",
                            **{"x-kubernetes-list-type": "atomic"}),
            "kind": dict(KIND_PROPERTY),
            "message": _string("A human-readable description of the status of this operation."),
            "metadata": _ref(LIST_META, f"Standard list metadata. More info: {_DOCS}#types-kinds", default={}),
            "reason": _string("A machine-readable description of why this operation is in the \"Failure\" status. "
                              "If this value is empty there is no information available. A Reason clarifies an HTTP "
                              "status code but does not override it."),
            "status": _string(f"Status of the operation. One of: \"Success\" or \"Failure\". More info: "
                              f"{_DOCS}#spec-and-status"),
        },
        "x-kubernetes-group-version-kind": [_gvk("", "v1", "Status")],
    },
    META + "StatusDetails": {
        "description": "StatusDetails is a set of additional properties that MAY be set by the server to provide "
                       "additional information about a response.",
        "type": "object",
        "properties": {
            "causes": {"type": "array", "items": {"default": {}, "allOf": [{"$ref": SCHEMAS + META + "StatusCause"}]},
                       "x-kubernetes-list-type": "atomic",
                       "description": "The Causes array includes more details associated with the StatusReason "
                                      "failure. Not all StatusReasons may provide detailed causes."},
            "group": _string("The group attribute of the resource associated with the status StatusReason."),
            "kind": _string("The kind attribute of the resource associated with the status StatusReason."),
            "name": _string("The name attribute of the resource associated with the status StatusReason (when "
                            "there is a single name which can be described)."),
            "retryAfterSeconds": _integer("If specified, the time in seconds before the operation should be "
                                          "retried.", "int32"),
            "uid": _string("UID of the resource. (when there is a single resource which can be described)."),
        },
    },
    META + "StatusCause": {
        "description": "StatusCause provides more information about an api.Status failure, including cases when "
                       "multiple errors are encountered.",
        "type": "object",
        "properties": {
            "field": _string("The field of the resource that has caused this error, as named by its JSON "
                             "serialization."),
            "message": _string("A human-readable description of the cause of the error."),
            "reason": _string("A machine-readable description of the cause of the error. If this value is empty "
                              "there is no information available."),
        },
    },
    SCALE: {
        "description": "Scale represents a scaling request for a resource.",
        "type": "object",
        "properties": {
            "apiVersion": dict(API_VERSION_PROPERTY),
            "kind": dict(KIND_PROPERTY),
            "metadata": _ref(OBJECT_META, OBJECT_METADATA_DESCRIPTION, default={}),
            "spec": _ref(SCALE + "Spec", "spec defines the behavior of the scale.", default={}),
            "status": _ref(SCALE + "Status", "status is the current status of the scale.", default={}),
        },
        "x-kubernetes-group-version-kind": [_gvk("autoscaling", "v1", "Scale")],
    },
    SCALE + "Spec": {
        "description": "ScaleSpec describes the attributes of a scale subresource.",
        "type": "object",
        "properties": {"replicas": _integer("replicas is the desired number of instances for the scaled object.",
                                            "int32")},
    },
    SCALE + "Status": {
        "description": "ScaleStatus represents the current status of a scale subresource.",
        "type": "object",
        "required": ["replicas"],
        "properties": {"replicas": {**_integer("replicas is the actual number of observed instances of the scaled "
                                               "object.", "int32"), "default": 0},
                       "selector": _string("selector is the label query over pods that should match the replicas "
                                           "count.")},
    },
}


# -- Kubernetes' own schemas, from the kubernetes-validate package ------------------------------------
def _schema_dir(base: pathlib.Path) -> pathlib.Path | None:
    wanted = base / f"v{KUBERNETES_VERSION}.0-local"
    if (wanted / "_definitions.json").is_file():
        return wanted
    candidates = []
    for child in base.glob("v*-local"):
        match = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)-local", child.name)
        if match and (child / "_definitions.json").is_file():
            candidates.append(((int(match.group(1)), int(match.group(2)), int(match.group(3))), child))
    if not candidates:
        return None
    major, minor = (int(part) for part in KUBERNETES_VERSION.split("."))
    older = [c for c in candidates if c[0][:2] <= (major, minor)]
    return max(older or candidates)[1]


@functools.lru_cache(maxsize=1)
def bundled_definitions() -> Mapping[str, dict[str, Any]] | None:
    """Kubernetes 1.32's component schemas from the installed kubernetes-validate package (no network), or None."""
    try:
        spec = importlib.util.find_spec("kubernetes_validate")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        directory = _schema_dir(pathlib.Path(location) / "kubernetes-json-schema")
        if directory is not None:
            raw = json.loads((directory / "_definitions.json").read_text())
            return {name: from_json_schema(schema, top_level=True) for name, schema in raw["$defs"].items()}
    return None


@functools.lru_cache(maxsize=1)
def _gvk_index() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    definitions = bundled_definitions() or {}
    for name, schema in definitions.items():
        gvks = schema.get("x-kubernetes-group-version-kind") or []
        for gvk in gvks:
            key = (gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", ""))
            if len(gvks) == 1 or name.endswith("." + key[2]):
                index.setdefault(key, name)
    return index


def from_json_schema(node: Any, *, top_level: bool = False) -> Any:
    """Undo openapi2jsonschema: nullable type lists, `#/$defs/` refs, the enum it adds to apiVersion/kind."""
    if isinstance(node, list):
        return [from_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if types:
                result["type"] = types[0]
        elif key == "$ref" and isinstance(value, str):
            result["$ref"] = value.replace("#/$defs/", SCHEMAS)
        elif key == "properties" and isinstance(value, dict):
            result["properties"] = {name: from_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            result[key] = from_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            result[key] = [from_json_schema(sub) for sub in value]
        else:
            result[key] = copy.deepcopy(value)
    if "$ref" in result and len(result) > 1:
        ref = result.pop("$ref")
        result = {"allOf": [{"$ref": ref}], **result}
    if top_level and result.get("x-kubernetes-group-version-kind"):
        for name in ("apiVersion", "kind"):
            prop = (result.get("properties") or {}).get(name)
            if isinstance(prop, dict):
                prop.pop("enum", None)
    return result


def builtin_kind(kind: str, plural: str, *, namespaced: bool = True, subresources: Iterable[str] = (),
                 verbs: Iterable[str] = ALL_VERBS) -> KindInfo:
    """A KindInfo for one of Kubernetes' own kinds (schema from the bundle, or permissive)."""
    return KindInfo(kind=kind, plural=plural, namespaced=namespaced, subresources=frozenset(subresources),
                    verbs=frozenset(verbs), builtin=True)


@dataclass
class DocumentCache:
    """Documents and their hashes, rebuilt only when a group-version's kinds change (a helper for the server)."""

    _entries: dict[tuple[str, str], tuple[str, dict[str, Any], str]] = field(default_factory=dict)

    def get(self, group: str, version: str, kinds: Sequence[KindInfo]) -> tuple[dict[str, Any], str]:
        key = repr(kinds)
        cached = self._entries.get((group, version))
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        document = openapi_v3_document(group, version, kinds)
        digest = document_hash(document)
        self._entries[(group, version)] = (key, document, digest)
        return document, digest

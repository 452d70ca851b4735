"""CustomResourceDefinition admission and structural-schema semantics of kube-apiserver v1.32.

Pure functions, no I/O. Ported from the v1.32.13 sources (kubernetes/apiextensions-apiserver v0.32.13,
kube-openapi 32ad38e42d3f, apimachinery v0.32.13):

* `check_crd` -- `pkg/apis/apiextensions/validation/validation.go` (ValidateCustomResourceDefinition and
  ValidateCustomResourceDefinitionOpenAPISchema), `cel_validation.go` (cost cardinality),
  `pkg/apiserver/schema/validation.go` + `complete.go` (structural rules, the metadata restriction),
  `convert.go` (NewStructural), `defaulting/validation.go` (ValidateDefaults: defaults are pruned, validated
  against their schema and its CEL rules, as written) and `v1/conversion.go` (identical per-version schemas
  are reported under `spec.validation.openAPIV3Schema`, identical printer columns under
  `spec.additionalPrinterColumns`, ...).
* `validate` -- kube-openapi `pkg/validation/validate` (type, string, format, number, slice, enum and object
  validators, in that order, with their messages), converted to field errors as
  `pkg/apiserver/validation/validation.go` does; then `schema/objectmeta` for embedded resources,
  `schema/listtype` (set/map uniqueness) and `schema/cel/validation.go` (CEL rules, transition rules,
  `fieldPath`, `reason`, `messageExpression`, the runtime cost budget). CEL rules are skipped with the real
  "some validation rules were not checked" error when a blocking error (Required, Unsupported, Too long,
  Too many, type) was found, as `registry/customresource/strategy.go` does.
* `apply_defaults` -- `defaulting/algorithm.go` plus `prunenulls.go`; `prune` -- `pruning/algorithm.go`.

On a write the server decodes, prunes (`prune`: unknown fields are a strict-mode error or a warning per
returned path), defaults (`apply_defaults`), then validates (`validate`, with `old=` on update); defaults are
applied again on every read.

Paths: kube-openapi errors use its own dotted names (`spec.app.env.FOO`, `spec.secrets[0].name`), CEL and
list-type errors use field.Path (`spec.app.env[FOO]`), exactly as the real server mixes them. Values that
errors.py cannot render the Go way (structs, maps in Duplicate errors, counts in Too many) are written into
the detail so the rendered message matches kube-apiserver.

Known differences (all in the direction of failing more, not less, unless stated):
* No validation ratcheting on update (CRDValidationRatcheting): errors in unchanged fields are reported.
* ObjectMeta of the root object is not validated here (the server does that separately).
* `check_crd(all_errors=True)` (the default) keeps going after structural errors and reports default/CEL
  problems the real server only reports once the structural errors are fixed; pass `all_errors=False` for
  the exact real-server gating.
* Formats: only the formats kube-apiserver keeps are validated (`int32`, `int64`, `float`, `double` are
  stripped by StripUnsupportedFormatsPostProcess, as upstream); email/uri/hostname/isbn/creditcard checks are
  close approximations of the Go validators.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, TypeGuard

from . import cel, gofmt
from .errors import (
    DUPLICATE,
    FORBIDDEN,
    INTERNAL,
    INVALID,
    REQUIRED,
    TOO_LONG,
    TOO_MANY,
    UNKNOWN_FIELD,
    UNSUPPORTED,
    FieldError,
)

MISSING: Final = cel.MISSING

STATIC_ESTIMATED_COST_LIMIT: Final = cel.STATIC_ESTIMATED_COST_LIMIT
STATIC_ESTIMATED_CRD_COST_LIMIT: Final = cel.STATIC_ESTIMATED_CRD_COST_LIMIT

_PRINTER_COLUMN_TYPES: Final = ("boolean", "date", "integer", "number", "string")
_PRINTER_COLUMN_FORMATS: Final = ("byte", "date", "date-time", "double", "float", "int32", "int64", "password")
_OPENAPI_V3_TYPES: Final = ("array", "boolean", "integer", "number", "object", "string")
_SUPPORTED_REASONS: Final = ("FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid",
                             "FieldValueRequired")
_META_FIELDS: Final = frozenset({"metadata", "kind", "apiVersion"})
_ALLOWED_AT_ROOT_WITH_STATUS: Final = (
    "Description", "Type", "Format", "Title", "Maximum", "ExclusiveMaximum", "Minimum", "ExclusiveMinimum",
    "MaxLength", "MinLength", "Pattern", "MaxItems", "MinItems", "UniqueItems", "MultipleOf", "Required", "Items",
    "Properties", "ExternalDocs", "Example", "XPreserveUnknownFields", "XValidations")
_GO_FIELD_NAMES: Final = {
    "id": "ID", "$schema": "Schema", "$ref": "Ref", "description": "Description", "type": "Type",
    "format": "Format", "title": "Title", "default": "Default", "maximum": "Maximum",
    "exclusiveMaximum": "ExclusiveMaximum", "minimum": "Minimum", "exclusiveMinimum": "ExclusiveMinimum",
    "maxLength": "MaxLength", "minLength": "MinLength", "pattern": "Pattern", "maxItems": "MaxItems",
    "minItems": "MinItems", "uniqueItems": "UniqueItems", "multipleOf": "MultipleOf", "enum": "Enum",
    "maxProperties": "MaxProperties", "minProperties": "MinProperties", "required": "Required",
    "items": "Items", "allOf": "AllOf", "oneOf": "OneOf", "anyOf": "AnyOf", "not": "Not",
    "properties": "Properties", "additionalProperties": "AdditionalProperties",
    "patternProperties": "PatternProperties", "dependencies": "Dependencies",
    "additionalItems": "AdditionalItems", "definitions": "Definitions", "externalDocs": "ExternalDocs",
    "example": "Example", "nullable": "Nullable",
    "x-kubernetes-preserve-unknown-fields": "XPreserveUnknownFields",
    "x-kubernetes-embedded-resource": "XEmbeddedResource", "x-kubernetes-int-or-string": "XIntOrString",
    "x-kubernetes-list-map-keys": "XListMapKeys", "x-kubernetes-list-type": "XListType",
    "x-kubernetes-map-type": "XMapType", "x-kubernetes-validations": "XValidations",
}
# JSON type each JSONSchemaProps field decodes from (strict decoding of the CRD itself).
_PROP_KINDS: Final = {
    "id": "string", "$schema": "string", "$ref": "string", "description": "string", "type": "string",
    "format": "string", "title": "string", "default": "any", "maximum": "number", "exclusiveMaximum": "bool",
    "minimum": "number", "exclusiveMinimum": "bool", "maxLength": "int", "minLength": "int",
    "pattern": "string", "maxItems": "int", "minItems": "int", "uniqueItems": "bool", "multipleOf": "number",
    "enum": "array", "maxProperties": "int", "minProperties": "int", "required": "strings", "items": "schema",
    "allOf": "schemas", "oneOf": "schemas", "anyOf": "schemas", "not": "schema", "properties": "schemamap",
    "additionalProperties": "schemaorbool", "patternProperties": "schemamap", "dependencies": "object",
    "additionalItems": "schemaorbool", "definitions": "schemamap", "externalDocs": "object", "example": "any",
    "nullable": "bool", "x-kubernetes-preserve-unknown-fields": "bool",
    "x-kubernetes-embedded-resource": "bool", "x-kubernetes-int-or-string": "bool",
    "x-kubernetes-list-map-keys": "strings", "x-kubernetes-list-type": "string",
    "x-kubernetes-map-type": "string", "x-kubernetes-validations": "rules",
}
_RULE_KINDS: Final = {"rule": "string", "message": "string", "messageExpression": "string", "reason": "string",
                      "fieldPath": "string", "optionalOldSelf": "bool"}

_DNS1035_RE: Final = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_LABEL_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_MSG: Final = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                       "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
                       "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
_DNS1123_SUBDOMAIN_MSG: Final = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                                 "'-' or '.', and must start and end with an alphanumeric character (e.g. "
                                 "'example.com', regex used for validation is "
                                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")


# --------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------

def _child(path: str, name: str) -> str:
    """field.Path.Child: `a.b` (no dot when there is no parent)."""
    if not path:
        return name
    if not name:
        return path
    return f"{path}.{name}"


def _key(path: str, key: str) -> str:
    return f"{path}[{key}]"


def _index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def _gs(d: Any, key: str) -> str:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, str) else ""


def _gd(d: Any, key: str) -> dict[str, Any]:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, dict) else {}


def _gl(d: Any, key: str) -> list[Any]:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, list) else []


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> TypeGuard[int | float]:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _quoted_list(values: Iterable[str]) -> str:
    return ", ".join(gofmt.go_quote(v) for v in values)


def _not_supported(path: str, value: Any, supported: Iterable[str]) -> FieldError:
    vals = list(supported)
    detail = f"supported values: {_quoted_list(vals)}" if vals else ""
    return FieldError(path, UNSUPPORTED, detail, value)


def _go_value(value: Any) -> str:
    """How field.Error prints a bad value (used when errors.py's rendering would differ)."""
    if value is None:
        return '"null"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return gofmt.go_format_float(value)
    if isinstance(value, str):
        return gofmt.go_quote(value)
    return gofmt.go_sharp_v(value)


def _invalid_go(path: str, value: Any, detail: str) -> FieldError:
    """An Invalid error whose value is rendered the Go way inside the detail."""
    return FieldError(path, INVALID, f"{_go_value(value)}: {detail}" if detail else _go_value(value))


def _go_ptr_string(v: Any, type_name: str) -> str:
    return f"(*{type_name})(nil)" if v is None else f"(*{type_name})(0xc000000000)"


def _go_validation_rule(rule: dict[str, Any]) -> str:
    """%#v of an apiextensions.ValidationRule (the value of rule compile errors)."""
    def s(key: str) -> str:
        v = rule.get(key)
        return gofmt.go_quote(v if isinstance(v, str) else "")
    return ("apiextensions.ValidationRule{"
            f"Rule:{s('rule')}, Message:{s('message')}, MessageExpression:{s('messageExpression')}, "
            f"Reason:{_go_ptr_string(rule.get('reason'), 'apiextensions.FieldValueErrorReason')}, "
            f"FieldPath:{s('fieldPath')}, OptionalOldSelf:{_go_ptr_string(rule.get('optionalOldSelf'), 'bool')}}}")


def _dns1035(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1035_RE.match(value):
        errs.append(_DNS1035_MSG)
    return errs


def _dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(_DNS1123_SUBDOMAIN_MSG)
    return errs


def _schema_types(s: dict[str, Any]) -> list[str]:
    if s.get("x-kubernetes-int-or-string"):
        return ["integer", "string"]
    t = s.get("type")
    return [t] if isinstance(t, str) and t else []


# --------------------------------------------------------------------------------------------------
# check_crd
# --------------------------------------------------------------------------------------------------

@dataclass
class _TotalCost:
    total: int = 0
    most_expensive: list[tuple[str, int]] = field(default_factory=list)

    def observe(self, path: str, cost: int) -> None:
        self.total = min(self.total + cost, 2**64 - 1)
        if cost < STATIC_ESTIMATED_CRD_COST_LIMIT // 100:
            return
        self.most_expensive.append((path, cost))
        self.most_expensive.sort(key=lambda x: -x[1])
        del self.most_expensive[4:]


@dataclass
class _SSV:
    """specStandardValidatorV3 state."""

    allow_defaults: bool = True
    disallow_defaults_reason: str = ""
    inside_resource_meta: bool = False
    uncorrelatable_path: str | None = None

    def forbid_defaults(self, reason: str) -> _SSV:
        return _SSV(False, reason, self.inside_resource_meta, self.uncorrelatable_path)

    def in_meta(self) -> _SSV:
        return _SSV(self.allow_defaults, self.disallow_defaults_reason, True, self.uncorrelatable_path)

    def forbid_old_self(self, path: str) -> _SSV:
        if self.uncorrelatable_path is not None:
            return self
        return _SSV(self.allow_defaults, self.disallow_defaults_reason, self.inside_resource_meta, path)


@dataclass
class _CelCtx:
    """CELSchemaContext: cardinality of the node (None = unbounded) and the CRD-wide cost total."""

    max_cardinality: int | None
    total: _TotalCost
    is_root: bool = False
    lenient: bool = False  # all_errors mode after structural errors: skip follow-on internal errors


def _child_cel_ctx(ctx: _CelCtx | None, parent: dict[str, Any]) -> _CelCtx | None:
    if ctx is None:
        return None
    if ctx.max_cardinality is None:
        return _CelCtx(None, ctx.total, lenient=ctx.lenient)
    max_elements = _extract_max_elements(parent)
    if max_elements is None:
        return _CelCtx(None, ctx.total, lenient=ctx.lenient)
    return _CelCtx(cel.multiply_with_overflow_guard(ctx.max_cardinality, max_elements), ctx.total,
                   lenient=ctx.lenient)


def _extract_max_elements(s: dict[str, Any]) -> int | None:
    t = s.get("type")
    if t == "object":
        if "additionalProperties" in s:
            mp = s.get("maxProperties")
            return max(int(mp), 0) if _is_int(mp) else None
        return 1
    if t == "array":
        mi = s.get("maxItems")
        return max(int(mi), 0) if _is_int(mi) else None
    return 1


def check_crd(crd: dict[str, Any], *, all_errors: bool = True, strict: bool = True) -> list[FieldError]:
    """Admission of an apiextensions.k8s.io/v1 CustomResourceDefinition (create).

    `strict` reports unknown or mistyped fields of the CRD object itself (kubectl's default
    `--validate=strict`); `all_errors=False` stops after structural errors exactly like kube-apiserver.
    """
    errs: list[FieldError] = []
    if not isinstance(crd, dict):
        return [FieldError("", INVALID, "must be an object", crd)]
    if crd.get("apiVersion") != "apiextensions.k8s.io/v1":
        errs.append(FieldError("apiVersion", UNSUPPORTED, 'supported values: "apiextensions.k8s.io/v1"',
                               crd.get("apiVersion")))
    if crd.get("kind") != "CustomResourceDefinition":
        errs.append(FieldError("kind", UNSUPPORTED, 'supported values: "CustomResourceDefinition"', crd.get("kind")))
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        errs.append(FieldError("spec", REQUIRED))
        return errs
    metadata = _gd(crd, "metadata")
    names = dict(spec.get("names") or {}) if isinstance(spec.get("names"), dict) else {}
    # v1 defaults (SetDefaults_CustomResourceDefinitionSpec)
    kind = _gs(names, "kind")
    if not names.get("singular"):
        names["singular"] = kind.lower()
    if not names.get("listKind") and kind:
        names["listKind"] = kind + "List"
    group = _gs(spec, "group")
    plural = _gs(names, "plural")

    if strict:
        errs.extend(_strict_decode_crd(crd))

    # metadata.name
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not name:
        if not (isinstance(metadata, dict) and metadata.get("generateName")):
            errs.append(FieldError("metadata.name", REQUIRED, "name or generateName is required"))
    else:
        for msg in _dns1123_subdomain(str(name)):
            errs.append(FieldError("metadata.name", INVALID, msg, name))
        if name != f"{plural}.{group}":
            errs.append(FieldError("metadata.name", INVALID, 'must be spec.names.plural+"."+spec.group', name))

    errs.extend(_validate_spec(spec, names, all_errors))

    # status.storedVersions is defaulted from the storage version
    versions = _gl(spec, "versions")
    if not any(isinstance(v, dict) and v.get("storage") is True for v in versions):
        errs.append(FieldError("status.storedVersions", INVALID,
                               "[]string(nil): must have at least one stored version"))

    # API approval for protected groups
    if group == "k8s.io" or group.endswith(".k8s.io") or group == "kubernetes.io" or group.endswith(".kubernetes.io"):
        annotations = _gd(metadata, "annotations")
        approval = annotations.get("api-approved.kubernetes.io")
        if not approval:
            errs.append(FieldError("metadata.annotations[api-approved.kubernetes.io]", REQUIRED,
                                   'protected groups must have approval annotation "api-approved.kubernetes.io", '
                                   "see https://github.com/kubernetes/enhancements/pull/1111"))
    if spec.get("preserveUnknownFields") is True:
        errs.append(FieldError("spec.preserveUnknownFields", INVALID, "cannot set to true, set "
                               "x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead", True))
    return errs


def _strict_decode_crd(crd: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    top = {"apiVersion", "kind", "metadata", "spec", "status"}
    for k in crd:
        if k not in top:
            errs.append(FieldError(k, UNKNOWN_FIELD))
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return errs
    spec_keys = {"group", "names", "scope", "versions", "conversion", "preserveUnknownFields"}
    for k in spec:
        if k not in spec_keys:
            errs.append(FieldError(_child("spec", k), UNKNOWN_FIELD))
    names = spec.get("names")
    if isinstance(names, dict):
        for k in names:
            if k not in {"plural", "singular", "shortNames", "kind", "listKind", "categories"}:
                errs.append(FieldError(_child("spec.names", k), UNKNOWN_FIELD))
    version_keys = {"name", "served", "storage", "deprecated", "deprecationWarning", "schema", "subresources",
                    "additionalPrinterColumns", "selectableFields"}
    for i, v in enumerate(spec.get("versions") or []):
        if not isinstance(v, dict):
            continue
        vpath = _index("spec.versions", i)
        for k in v:
            if k not in version_keys:
                errs.append(FieldError(_child(vpath, k), UNKNOWN_FIELD))
        for ci, col in enumerate(_gl(v, "additionalPrinterColumns")):
            if isinstance(col, dict):
                for k in col:
                    if k not in {"name", "type", "format", "description", "priority", "jsonPath"}:
                        errs.append(FieldError(_child(_index(_child(vpath, "additionalPrinterColumns"), ci), k),
                                               UNKNOWN_FIELD))
        for k in _gd(v, "subresources"):
            if k not in {"status", "scale"}:
                errs.append(FieldError(_child(_child(vpath, "subresources"), k), UNKNOWN_FIELD))
        sch = v.get("schema")
        if isinstance(sch, dict):
            for k in sch:
                if k != "openAPIV3Schema":
                    errs.append(FieldError(_child(_child(vpath, "schema"), k), UNKNOWN_FIELD))
            if isinstance(sch.get("openAPIV3Schema"), dict):
                errs.extend(_strict_decode_schema(sch["openAPIV3Schema"], _child(vpath, "schema.openAPIV3Schema")))
    return errs


_GO_KIND_NAMES: Final = {"string": "string", "bool": "bool", "int": "int64", "number": "float64",
                         "array": "[]apiextensions.JSON", "strings": "[]string", "object": "map"}


def _json_kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _strict_decode_schema(s: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(s, dict):
        return [FieldError(path, INVALID, f"json: cannot unmarshal {_json_kind(s)} into Go value of type "
                                          "apiextensions.JSONSchemaProps")]
    for k, v in s.items():
        kind = _PROP_KINDS.get(k)
        kpath = _child(path, k)
        if kind is None:
            errs.append(FieldError(kpath, UNKNOWN_FIELD))
            continue
        ok = True
        if kind == "string":
            ok = isinstance(v, str)
        elif kind == "bool":
            ok = isinstance(v, bool)
        elif kind == "int":
            ok = _is_int(v) or (isinstance(v, float) and v.is_integer())
        elif kind == "number":
            ok = _is_number(v)
        elif kind in ("array", "schemas", "rules"):
            ok = isinstance(v, list)
        elif kind == "strings":
            ok = isinstance(v, list) and all(isinstance(x, str) for x in v)
        elif kind in ("schema", "object", "schemamap"):
            ok = isinstance(v, dict) or (kind == "schema" and isinstance(v, list))
        elif kind == "schemaorbool":
            ok = isinstance(v, dict | bool)
        if not ok and v is not None:
            errs.append(FieldError(kpath, INVALID, f"json: cannot unmarshal {_json_kind(v)} into Go struct field "
                                                   f"JSONSchemaProps.{k} of type {_GO_KIND_NAMES.get(kind, kind)}"))
            continue
        if kind == "schema" and isinstance(v, dict):
            errs.extend(_strict_decode_schema(v, kpath))
        elif kind == "schema" and isinstance(v, list) or kind == "schemas" and isinstance(v, list):
            for i, x in enumerate(v):
                errs.extend(_strict_decode_schema(x, _index(kpath, i)))
        elif kind == "schemamap" and isinstance(v, dict):
            for pk, pv in v.items():
                errs.extend(_strict_decode_schema(pv, _key(kpath, pk)))
        elif kind == "schemaorbool" and isinstance(v, dict):
            errs.extend(_strict_decode_schema(v, kpath))
        elif kind == "rules" and isinstance(v, list):
            for i, r in enumerate(v):
                rpath = _index(kpath, i)
                if not isinstance(r, dict):
                    errs.append(FieldError(rpath, INVALID, f"json: cannot unmarshal {_json_kind(r)} into Go value "
                                                           "of type apiextensions.ValidationRule"))
                    continue
                for rk, rv in r.items():
                    rkind = _RULE_KINDS.get(rk)
                    if rkind is None:
                        errs.append(FieldError(_child(rpath, rk), UNKNOWN_FIELD))
                    elif rv is not None and ((rkind == "string" and not isinstance(rv, str))
                                             or (rkind == "bool" and not isinstance(rv, bool))):
                        errs.append(FieldError(_child(rpath, rk), INVALID,
                                               f"json: cannot unmarshal {_json_kind(rv)} into Go struct field "
                                               f"ValidationRule.{rk} of type {rkind}"))
    return errs


def _identical(values: list[Any]) -> bool:
    return all(v == values[0] for v in values)


def _validate_spec(spec: dict[str, Any], names: dict[str, Any], all_errors: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    group = spec.get("group")
    if not group:
        errs.append(FieldError("spec.group", REQUIRED))
    elif not isinstance(group, str) or _dns1123_subdomain(group):
        errs.append(FieldError("spec.group", INVALID, ",".join(_dns1123_subdomain(str(group))), group))
    elif len(group.split(".")) < 2:
        errs.append(FieldError("spec.group", INVALID, "should be a domain with at least one dot", group))

    scope = spec.get("scope")
    if not scope:
        errs.append(FieldError("spec.scope", REQUIRED))
    elif scope not in ("Cluster", "Namespaced"):
        errs.append(_not_supported("spec.scope", scope, ["Cluster", "Namespaced"]))

    versions_raw = spec.get("versions")
    versions = [v if isinstance(v, dict) else {} for v in versions_raw] if isinstance(versions_raw, list) else []

    # v1 -> internal conversion: identical per-version fields move to the top level
    schemas = [v.get("schema") for v in versions]
    subresources = [v.get("subresources") for v in versions]
    columns = [v.get("additionalPrinterColumns") or [] for v in versions]
    selectable = [v.get("selectableFields") or [] for v in versions]
    top_schema = versions and _identical(schemas)
    top_sub = versions and _identical(subresources)
    top_columns = versions and _identical(columns)
    top_selectable = versions and _identical(selectable)
    validation = schemas[0] if top_schema else None

    def has_status(sub: Any) -> bool:
        return isinstance(sub, dict) and sub.get("status") is not None

    top_validation_schema = validation.get("openAPIV3Schema") if isinstance(validation, dict) else None
    if top_validation_schema is None:
        for i, v in enumerate(versions):
            sch = v.get("schema")
            if not isinstance(sch, dict) or sch.get("openAPIV3Schema") is None:
                errs.append(FieldError(f"spec.versions[{i}].schema.openAPIV3Schema", REQUIRED, "schemas are required"))
    if spec.get("preserveUnknownFields") is True and _any_schema(versions, lambda s: "default" in s):
        errs.append(FieldError("spec.preserveUnknownFields", INVALID,
                               "must be false in order to use defaults in the schema", True))

    storage = 0
    seen: set[Any] = set()
    unique = True
    for i, v in enumerate(versions):
        vpath = f"spec.versions[{i}]"
        if v.get("storage") is True:
            storage += 1
        vname = v.get("name")
        if vname in seen:
            unique = False
        seen.add(vname)
        vname_s = vname if isinstance(vname, str) else ""
        dns = _dns1035(vname_s)
        if dns:
            errs.append(FieldError(_child(vpath, "name"), INVALID, ",".join(dns), vname_s))
        # validateCustomResourceDefinitionVersion
        deprecated = bool(v.get("deprecated"))
        warning = v.get("deprecationWarning")
        if not deprecated and warning is not None:
            errs.append(FieldError(_child(vpath, "deprecationWarning"), INVALID,
                                   "can only be set for deprecated versions", warning))
        elif isinstance(warning, str):
            if len(warning.encode("utf-8")) > 256:
                errs.append(FieldError(_child(vpath, "deprecationWarning"), INVALID, "must be <= 256 characters long",
                                       warning))
            if not warning:
                errs.append(FieldError(_child(vpath, "deprecationWarning"), INVALID, "must not be an empty string",
                                       warning))
            for idx, ch in enumerate(warning):
                if not ch.isprintable():
                    errs.append(FieldError(_child(vpath, "deprecationWarning"), INVALID,
                                           "must only contain printable UTF-8 characters; non-printable character "
                                           f"found at index {idx}", warning))
                    break
        if not top_schema:
            sch = v.get("schema")
            if isinstance(sch, dict) and sch.get("openAPIV3Schema") is not None:
                errs.extend(_validate_validation(sch["openAPIV3Schema"], has_status(
                    subresources[i] if not top_sub else subresources[0]), _child(vpath, "schema"), all_errors))
        if not top_sub:
            errs.extend(_validate_subresources(v.get("subresources"), _child(vpath, "subresources")))
        if not top_columns:
            for ci, col in enumerate(v.get("additionalPrinterColumns") or []):
                errs.extend(_validate_column(col, f"{vpath}.additionalPrinterColumns[{ci}]"))
        if not top_selectable and v.get("selectableFields"):
            sch = _gd(v, "schema")
            errs.extend(_validate_selectable_fields(v["selectableFields"], (sch or {}).get("openAPIV3Schema"),
                                                    _child(vpath, "selectableFields")))

    if not unique:
        errs.append(FieldError("spec.versions", INVALID, "[]apiextensions.CustomResourceDefinitionVersion{...}: "
                                                         "must contain unique version names"))
    if storage != 1:
        errs.append(FieldError("spec.versions", INVALID, "[]apiextensions.CustomResourceDefinitionVersion{...}: "
                                                         "must have exactly one version marked as storage version"))
    if versions:
        first = _gs(versions[0], "name")
        dns = _dns1035(first)
        if dns:
            errs.append(FieldError("spec.version", INVALID, ",".join(dns), first))
    else:
        errs.append(FieldError("spec.versions", INVALID, "[]apiextensions.CustomResourceDefinitionVersion(nil): "
                                                         "must have exactly one version marked as storage version"))

    for key in ("plural", "singular", "kind", "listKind"):
        if not names.get(key):
            errs.append(FieldError(f"spec.names.{key}", REQUIRED))
    errs.extend(_validate_names(names, "spec.names"))

    if top_schema and top_validation_schema is not None:
        any_status = any(has_status(s) for s in subresources)
        errs.extend(_validate_validation(top_validation_schema, any_status, "spec.validation", all_errors))
    if top_sub:
        errs.extend(_validate_subresources(subresources[0] if subresources else None, "spec.subresources"))
    if top_columns:
        for ci, col in enumerate(columns[0] if columns else []):
            errs.extend(_validate_column(col, f"spec.additionalPrinterColumns[{ci}]"))
    if top_selectable and selectable and selectable[0]:
        if top_validation_schema is None:
            errs.append(FieldError("spec.selectableFields", INVALID,
                                   "selectableFields may only be set when validations.schema is included", ""))
        else:
            errs.extend(_validate_selectable_fields(selectable[0], top_validation_schema, "spec.selectableFields"))

    conversion = spec.get("conversion")
    if isinstance(conversion, dict):
        strategy = conversion.get("strategy")
        if not strategy:
            errs.append(FieldError("spec.conversion.strategy", REQUIRED))
        elif strategy not in ("None", "Webhook"):
            errs.append(_not_supported("spec.conversion.strategy", strategy, ["None", "Webhook"]))
        webhook = conversion.get("webhook")
        if strategy == "Webhook":
            if not isinstance(webhook, dict) or webhook.get("clientConfig") is None:
                errs.append(FieldError("spec.conversion.webhookClientConfig", REQUIRED,
                                       "required when strategy is set to Webhook"))
            else:
                cc = webhook["clientConfig"] if isinstance(webhook["clientConfig"], dict) else {}
                if ("url" in cc) == ("service" in cc):
                    errs.append(FieldError("spec.conversion.webhookClientConfig", REQUIRED,
                                           "exactly one of url or service is required"))
            crv = webhook.get("conversionReviewVersions") if isinstance(webhook, dict) else None
            if not crv:
                errs.append(FieldError("spec.conversion.conversionReviewVersions", REQUIRED))
            elif not any(x in ("v1", "v1beta1") for x in crv):
                errs.append(FieldError("spec.conversion.conversionReviewVersions", INVALID,
                                       f"[]string{{{', '.join(gofmt.go_quote(str(x)) for x in crv)}}}: must include at "
                                       "least one of v1, v1beta1"))
        elif isinstance(webhook, dict):
            if webhook.get("clientConfig") is not None:
                errs.append(FieldError("spec.conversion.webhookClientConfig", FORBIDDEN,
                                       "should not be set when strategy is not set to Webhook"))
            if webhook.get("conversionReviewVersions"):
                errs.append(FieldError("spec.conversion.conversionReviewVersions", FORBIDDEN,
                                       "should not be set when strategy is not set to Webhook"))
    return errs


def _any_schema(versions: list[dict[str, Any]], pred: Any) -> bool:
    def walk(s: Any) -> bool:
        if not isinstance(s, dict):
            return False
        if pred(s):
            return True
        for key in ("items", "not", "additionalProperties", "additionalItems"):
            if walk(s.get(key)):
                return True
        for key in ("allOf", "anyOf", "oneOf"):
            if any(walk(x) for x in s.get(key) or []):
                return True
        for key in ("properties", "patternProperties", "definitions"):
            if any(walk(x) for x in (s.get(key) or {}).values()):
                return True
        return False
    return any(walk((v.get("schema") or {}).get("openAPIV3Schema")) for v in versions
               if isinstance(v.get("schema"), dict))


def _validate_names(names: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for key in ("plural", "singular"):
        v = names.get(key)
        if isinstance(v, str) and v:
            dns = _dns1035(v)
            if dns:
                errs.append(FieldError(_child(path, key), INVALID, ",".join(dns), v))
    for key in ("kind", "listKind"):
        v = names.get(key)
        if isinstance(v, str) and v:
            dns = _dns1035(v.lower())
            if dns:
                errs.append(FieldError(_child(path, key), INVALID,
                                       "may have mixed case, but should otherwise match: " + ",".join(dns), v))
    for i, short in enumerate(names.get("shortNames") or []):
        dns = _dns1035(short if isinstance(short, str) else "")
        if dns:
            errs.append(FieldError(_index(_child(path, "shortNames"), i), INVALID, ",".join(dns), short))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        errs.append(FieldError(_child(path, "listKind"), INVALID, "kind and listKind may not be the same",
                               names.get("listKind")))
    for i, cat in enumerate(names.get("categories") or []):
        dns = _dns1035(cat if isinstance(cat, str) else "")
        if dns:
            errs.append(FieldError(_index(_child(path, "categories"), i), INVALID, ",".join(dns), cat))
    return errs


def _validate_simple_json_path(s: str, path: str) -> list[FieldError]:
    if not s:
        return [FieldError(path, INVALID, "must not be empty", s)]
    if s[0] != ".":
        return [FieldError(path, INVALID, "must be a simple json path starting with .", s)]
    return []


def _validate_column(col: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(col, dict):
        return [FieldError(path, INVALID, "must be an object", col)]
    if not col.get("name"):
        errs.append(FieldError(_child(path, "name"), REQUIRED))
    ctype = col.get("type")
    types = ",".join(_PRINTER_COLUMN_TYPES)
    if not ctype:
        errs.append(FieldError(_child(path, "type"), REQUIRED, f"must be one of {types}"))
    elif ctype not in _PRINTER_COLUMN_TYPES:
        errs.append(FieldError(_child(path, "type"), INVALID, f"must be one of {types}", ctype))
    fmt = col.get("format")
    if fmt and fmt not in _PRINTER_COLUMN_FORMATS:
        errs.append(FieldError(_child(path, "format"), INVALID, f"must be one of {','.join(_PRINTER_COLUMN_FORMATS)}",
                               fmt))
    jp = col.get("jsonPath")
    if not jp:
        errs.append(FieldError(_child(path, "JSONPath"), REQUIRED))
    else:
        errs.extend(_validate_simple_json_path(str(jp), _child(path, "JSONPath")))
    return errs


def _validate_subresources(sub: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(sub, dict):
        return errs
    scale = sub.get("scale")
    if isinstance(scale, dict):
        spec_path = scale.get("specReplicasPath")
        if not spec_path:
            errs.append(FieldError(_child(path, "scale.specReplicasPath"), REQUIRED))
        else:
            e = _validate_simple_json_path(spec_path, _child(path, "scale.specReplicasPath"))
            if e:
                errs.extend(e)
            elif not spec_path.startswith(".spec."):
                errs.append(FieldError(_child(path, "scale.specReplicasPath"), INVALID,
                                       "should be a json path under .spec", spec_path))
        status_path = scale.get("statusReplicasPath")
        if not status_path:
            errs.append(FieldError(_child(path, "scale.statusReplicasPath"), REQUIRED))
        else:
            e = _validate_simple_json_path(status_path, _child(path, "scale.statusReplicasPath"))
            if e:
                errs.extend(e)
            elif not status_path.startswith(".status."):
                errs.append(FieldError(_child(path, "scale.statusReplicasPath"), INVALID,
                                       "should be a json path under .status", status_path))
        selector = scale.get("labelSelectorPath")
        if selector:
            e = _validate_simple_json_path(selector, _child(path, "scale.labelSelectorPath"))
            if e:
                errs.extend(e)
            elif not (selector.startswith(".spec.") or selector.startswith(".status.")):
                errs.append(FieldError(_child(path, "scale.labelSelectorPath"), INVALID,
                                       "should be a json path under either .spec or .status", selector))
    return errs


def _validate_selectable_fields(fields: Any, schema: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, f in enumerate(fields or []):
        ipath = _index(path, i)
        jp = f.get("jsonPath") if isinstance(f, dict) else None
        if not jp:
            errs.append(FieldError(_child(ipath, "jsonPath"), REQUIRED))
            continue
        try:
            normalized, found = valid_field_path(jp, schema if isinstance(schema, dict) else {},
                                                 allow_array_notation=False)
        except ValueError as exc:
            errs.append(FieldError(_child(ipath, "jsonPath"), INVALID, f"is an invalid path: {exc}", jp))
            continue
        if normalized.split(".")[0].split("[")[0] == "metadata":
            errs.append(FieldError(_child(ipath, "jsonPath"), INVALID, "must not point to fields in metadata", jp))
        if found.get("type") not in ("string", "boolean", "integer"):
            errs.append(FieldError(_child(ipath, "jsonPath"), INVALID,
                                   "must point to a field of type string, boolean or integer. Enum string fields "
                                   "and strings with formats are allowed.", jp))
        if normalized in seen:
            errs.append(FieldError(_child(ipath, "jsonPath"), DUPLICATE, "", jp))
        seen.add(normalized)
    if len(seen) > 8:
        errs.append(FieldError(path, TOO_MANY, f"{len(seen)}: must have at most 8 items"))
    return errs


def valid_field_path(json_path: str, schema: dict[str, Any], *,
                     allow_array_notation: bool = True) -> tuple[str, dict[str, Any]]:
    """cel/validation.go ValidFieldPath: the normalized field.Path string and the schema it points to."""
    tokens: list[str] = []
    i = 0
    while i < len(json_path):
        ch = json_path[i]
        if ch in ".[]":
            tokens.append(ch)
            i += 1
            continue
        if ch == "'":
            j = i + 1
            while j < len(json_path) and not (json_path[j] == "'" and json_path[j - 1] != "\\"):
                j += 1
            tokens.append(json_path[i:j + 1])
            i = j + 1
            continue
        j = i
        while j < len(json_path) and json_path[j] not in ".[]":
            j += 1
        tokens.append(json_path[i:j])
        i = j
    out = ""
    cur = schema
    pos = 0

    def step(name: str, named: bool) -> None:
        nonlocal out, cur
        if not named:
            out = _key(out, name) if out else f"[{name}]"
            ap = cur.get("additionalProperties")
            cur = ap if isinstance(ap, dict) else {}
            return
        out = _child(out, name)
        props = cur.get("properties") or {}
        if name not in props:
            raise ValueError("does not refer to a valid field")
        cur = props[name]

    while pos < len(tokens):
        tok = tokens[pos]
        pos += 1
        if tok == "[":
            if not allow_array_notation:
                raise ValueError("array notation is not allowed")
            if pos >= len(tokens):
                raise ValueError("unexpected end of JSON path")
            tok = tokens[pos]
            pos += 1
            if len(tok) < 2 or tok[0] != "'" or tok[-1] != "'":
                raise ValueError(f"expected single quoted string but got {tok}")
            unescaped = _unescape_single_quote(tok[1:-1])
            if cur.get("properties") is not None:
                step(unescaped, True)
            elif "additionalProperties" in cur:
                step(unescaped, False)
            else:
                raise ValueError("does not refer to a valid field")
            if pos >= len(tokens):
                raise ValueError("unexpected end of JSON path")
            if tokens[pos] != "]":
                raise ValueError(f"expected ] but got {tokens[pos]}")
            pos += 1
        elif tok == ".":
            if pos >= len(tokens):
                raise ValueError("unexpected end of JSON path")
            tok = tokens[pos]
            pos += 1
            if cur.get("properties") is not None:
                step(tok, True)
            elif "additionalProperties" in cur:
                step(tok, False)
            else:
                raise ValueError("does not refer to a valid field")
        else:
            raise ValueError(f"expected [ or . but got: {tok}")
    return out, cur


def _unescape_single_quote(s: str) -> str:
    table = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "'": "'", "\\": "\\"}

    def repl(m: re.Match[str]) -> str:
        c = m.group(0)[1]
        if c not in table:
            raise ValueError(f"invalid string literal: invalid escape char {m.group(0)}")
        return table[c]
    return re.sub(r"\\.", repl, s)


# --------------------------------------------------------------------------------------------------
# validateCustomResourceDefinitionValidation
# --------------------------------------------------------------------------------------------------

_GO_FIELD_ORDER: Final = (
    "id", "$schema", "$ref", "description", "type", "format", "title", "default", "maximum", "exclusiveMaximum",
    "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems",
    "multipleOf", "enum", "maxProperties", "minProperties", "required", "items", "allOf", "oneOf", "anyOf", "not",
    "properties", "additionalProperties", "patternProperties", "dependencies", "additionalItems", "definitions",
    "externalDocs", "example", "nullable", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string", "x-kubernetes-list-map-keys", "x-kubernetes-list-type", "x-kubernetes-map-type",
    "x-kubernetes-validations")
_VALUE_FIELDS: Final = frozenset({"id", "$schema", "description", "type", "format", "title", "pattern",
                                  "exclusiveMaximum", "exclusiveMinimum", "uniqueItems", "nullable",
                                  "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string"})


def _go_zero(key: str, value: Any) -> bool:
    """Whether a JSONSchemaProps field holds its Go zero value (absent, "", false)."""
    if value is None:
        return True
    if key in _VALUE_FIELDS:
        return value in ("", False)
    return False


def _validate_validation(schema: Any, status_enabled: bool, fld_path: str, all_errors: bool) -> list[FieldError]:
    root_path = _child(fld_path, "openAPIV3Schema")
    if not isinstance(schema, dict):
        return [FieldError(root_path, INVALID, "must be an object", schema)]
    errs: list[FieldError] = []
    if status_enabled:
        for key in _GO_FIELD_ORDER:
            if key not in schema or _go_zero(key, schema[key]):
                continue
            go_name = _GO_FIELD_NAMES[key]
            if go_name == "Type":
                if schema["type"] != "object":
                    errs.append(FieldError(_child(root_path, "type"), INVALID,
                                           'only "object" is allowed as the type at the root of the schema if the '
                                           "status subresource is enabled", schema["type"]))
                    break
                continue
            if go_name not in _ALLOWED_AT_ROOT_WITH_STATUS:
                errs.append(FieldError(root_path, INVALID, "apiextensions.JSONSchemaProps{...}: only ["
                                       + " ".join(_ALLOWED_AT_ROOT_WITH_STATUS) + "] fields are allowed at the root "
                                       "of the schema if the status subresource is enabled"))
                break
    if schema.get("nullable") is True:
        errs.append(FieldError(_child(root_path, "nullable"), FORBIDDEN, "nullable cannot be true at the root"))

    cel_ctx: _CelCtx | None = None
    init_errs: list[FieldError] = []
    init_error = _new_structural_error(schema)
    if init_error is not None:
        init_errs.append(FieldError(root_path, INVALID, init_error, ""))
    else:
        structural = validate_structural(schema, root_path)
        errs.extend(structural)
        blocked = bool(structural)
        if not blocked or all_errors:
            default_errs = _validate_defaults(root_path, schema)
            errs.extend(default_errs)
            blocked = blocked or bool(default_errs)
        if not blocked or all_errors:
            cel_ctx = _CelCtx(1, _TotalCost(), is_root=True, lenient=blocked)
    schema_errs, cel_errs = _validate_openapi_schema(schema, root_path, _SSV(), True, cel_ctx)
    errs.extend(schema_errs)
    errs.extend(cel_errs)
    if not errs and init_errs:
        errs.extend(init_errs)
    if cel_ctx is not None and cel_ctx.total.total > STATIC_ESTIMATED_CRD_COST_LIMIT:
        for path, _cost in cel_ctx.total.most_expensive:
            errs.append(FieldError(path, FORBIDDEN, "contributed to estimated rule cost total exceeding cost limit "
                                                    "for entire OpenAPIv3 schema"))
        errs.append(FieldError(root_path, FORBIDDEN, cel.cost_error_message(
            "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema", cel_ctx.total.total,
            STATIC_ESTIMATED_CRD_COST_LIMIT)))
    return errs


def _new_structural_error(s: Any) -> str | None:
    """NewStructural: the first conversion error, or None."""
    if not isinstance(s, dict):
        return None
    for key, label in (("id", "id"), ("$schema", "schema"), ("$ref", "$ref")):
        if s.get(key):
            return f"OpenAPIV3Schema '{label}' is not supported"
    if s.get("patternProperties"):
        return "OpenAPIV3Schema 'patternProperties' is not supported"
    if s.get("dependencies"):
        return "OpenAPIV3Schema 'dependencies' is not supported"
    if "additionalItems" in s and s["additionalItems"] is not None:
        return "OpenAPIV3Schema 'additionalItems' is not supported"
    if s.get("definitions"):
        return "OpenAPIV3Schema 'definitions' is not supported"
    for sub in [s.get("not"), *(s.get("allOf") or []), *(s.get("anyOf") or []), *(s.get("oneOf") or [])]:
        err = _new_structural_error(sub)
        if err:
            return err
    if s.get("x-kubernetes-preserve-unknown-fields") is False:
        return "internal error: 'x-kubernetes-preserve-unknown-fields' must be true or undefined"
    items = s.get("items")
    if isinstance(items, list) and items:
        return "OpenAPIV3Schema 'items' must be a schema, but is an array"
    err = _new_structural_error(items)
    if err:
        return err
    for sub in (s.get("properties") or {}).values():
        err = _new_structural_error(sub)
        if err:
            return err
    return _new_structural_error(s.get("additionalProperties"))


# ---- structural schema rules (schema/validation.go, complete.go) ----------------------------------

_ROOT, _ITEM, _FIELD = 0, 1, 2


def validate_structural(schema: dict[str, Any], path: str) -> list[FieldError]:
    """ValidateStructural: structural invariants plus completeness, sorted like upstream."""
    errs = _structural_invariants(schema, _ROOT, path)
    errs.extend(_value_validation_complete(schema, schema, path, path))
    return sorted(errs, key=lambda e: e.render())


def _is_ios_anyof(anyof: Any) -> bool:
    return (isinstance(anyof, list) and len(anyof) == 2 and anyof[0] == {"type": "integer"}
            and anyof[1] == {"type": "string"})


def _structural_invariants(s: dict[str, Any], lvl: int, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    typ = _gs(s, "type")
    items = s.get("items")
    if typ == "array" and not isinstance(items, dict):
        errs.append(FieldError(_child(path, "items"), REQUIRED, "must be specified"))
    if isinstance(items, dict):
        errs.extend(_structural_invariants(items, _ITEM, _child(path, "items")))
    props = _gd(s, "properties")
    for k, v in props.items():
        if isinstance(v, dict):
            errs.extend(_structural_invariants(v, _FIELD, _key(_child(path, "properties"), k)))
    ap = s.get("additionalProperties")
    if ap is not None:
        if lvl == _ROOT:
            errs.append(FieldError(_child(path, "additionalProperties"), FORBIDDEN, "must not be used at the root"))
        if isinstance(ap, dict):
            errs.extend(_structural_invariants(ap, _FIELD, _child(path, "additionalProperties")))
    ios = s.get("x-kubernetes-int-or-string") is True
    puf = s.get("x-kubernetes-preserve-unknown-fields") is True
    emb = s.get("x-kubernetes-embedded-resource") is True
    if ios and puf:
        errs.append(FieldError(_child(path, "x-kubernetes-preserve-unknown-fields"), INVALID,
                               "must be false if x-kubernetes-int-or-string is true", True))
    if ios and emb:
        errs.append(FieldError(_child(path, "x-kubernetes-embedded-resource"), INVALID,
                               "must be false if x-kubernetes-int-or-string is true", True))
    skip_anyof = _is_ios_anyof(s.get("anyOf"))
    allof = s.get("allOf")
    skip_first = isinstance(allof, list) and bool(allof) and isinstance(allof[0], dict) \
        and _is_ios_anyof(allof[0].get("anyOf"))
    errs.extend(_value_validation(s, skip_anyof, skip_first, lvl, path))
    check_metadata = lvl == _ROOT or emb
    if emb and typ != "object":
        if not typ:
            errs.append(FieldError(_child(path, "type"), REQUIRED,
                                   "must be object if x-kubernetes-embedded-resource is true"))
        else:
            errs.append(FieldError(_child(path, "type"), INVALID,
                                   "must be object if x-kubernetes-embedded-resource is true", typ))
    elif not typ and not ios and not puf:
        detail = {_ROOT: "must not be empty at the root", _ITEM: "must not be empty for specified array items",
                  _FIELD: "must not be empty for specified object fields"}[lvl]
        errs.append(FieldError(_child(path, "type"), REQUIRED, detail))
    if emb and ap is not None:
        errs.append(FieldError(_child(path, "additionalProperties"), FORBIDDEN,
                               "must not be used if x-kubernetes-embedded-resource is set"))
    if lvl == _ROOT and typ and typ != "object":
        errs.append(FieldError(_child(path, "type"), INVALID, "must be object at the root", typ))
    for meta_key in ("kind", "apiVersion"):
        sub = props.get(meta_key)
        if isinstance(sub, dict) and check_metadata and sub.get("type") != "string":
            errs.append(FieldError(_child(_key(_child(path, "properties"), meta_key), "type"), INVALID,
                                   "must be string", sub.get("type") or ""))
    meta = props.get("metadata")
    if isinstance(meta, dict):
        errs.extend(_metadata_invariants(meta, check_metadata, lvl, _key(_child(path, "properties"), "metadata")))
    if emb and not puf and not props:
        errs.append(FieldError(_child(path, "properties"), REQUIRED, "must not be empty if "
                               "x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"))
    return errs


def _metadata_invariants(s: dict[str, Any], check_metadata: bool, lvl: int, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if check_metadata and s.get("type") != "object":
        errs.append(FieldError(_child(path, "type"), INVALID, "must be object", s.get("type") or ""))
    if lvl == _ROOT:
        other = False
        props = s.get("properties")
        if isinstance(props, dict) and props:
            keys = set(props)
            if not keys <= {"name", "generateName"}:
                other = True
        for key, value in s.items():
            if key in ("type", "default", "properties", "externalDocs", "example"):
                continue
            if key in ("enum", "allOf", "anyOf", "oneOf") and value == []:
                continue
            if _go_zero(key, value):
                continue
            other = True
        if other:
            errs.append(FieldError(path, FORBIDDEN, "must not specify anything other than name and generateName, but "
                                                    "metadata is implicitly specified"))
    return errs


def _value_validation(s: dict[str, Any], skip_anyof: bool, skip_first_allof_anyof: bool, lvl: int,
                      path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not skip_anyof:
        for i, x in enumerate(s.get("anyOf") or []):
            errs.extend(_nested_value_validation(x, False, False, lvl, _index(_child(path, "anyOf"), i)))
    for i, x in enumerate(s.get("allOf") or []):
        errs.extend(_nested_value_validation(x, skip_first_allof_anyof and i == 0, False, lvl,
                                             _index(_child(path, "allOf"), i)))
    for i, x in enumerate(s.get("oneOf") or []):
        errs.extend(_nested_value_validation(x, False, False, lvl, _index(_child(path, "oneOf"), i)))
    if s.get("not") is not None:
        errs.extend(_nested_value_validation(s["not"], False, False, lvl, _child(path, "not")))
    pattern = s.get("pattern")
    if isinstance(pattern, str) and pattern:
        try:
            cel.compile_regex(pattern)
        except cel.RegexError as exc:
            errs.append(FieldError(_child(path, "pattern"), INVALID,
                                   f"must be a valid regular expression, but isn't: {exc}", pattern))
    return errs


def _nested_value_validation(v: Any, skip_anyof: bool, skip_allof_anyof: bool, lvl: int,
                             path: str) -> list[FieldError]:
    if not isinstance(v, dict):
        return []
    errs = _value_validation(v, skip_anyof, skip_allof_anyof, lvl, path)
    if isinstance(v.get("items"), dict):
        errs.extend(_nested_value_validation(v["items"], False, False, lvl, _child(path, "items")))
    for k, x in (v.get("properties") or {}).items():
        errs.extend(_nested_value_validation(x, False, False, _FIELD, _key(_child(path, "properties"), k)))
    if v.get("type"):
        errs.append(FieldError(_child(path, "type"), FORBIDDEN, "must be empty to be structural"))
    ap = v.get("additionalProperties")
    if isinstance(ap, dict) or ap is True:
        errs.append(FieldError(_child(path, "additionalProperties"), FORBIDDEN, "must be undefined to be structural"))
    if "default" in v:
        errs.append(FieldError(_child(path, "default"), FORBIDDEN, "must be undefined to be structural"))
    if v.get("title"):
        errs.append(FieldError(_child(path, "title"), FORBIDDEN, "must be empty to be structural"))
    if v.get("description"):
        errs.append(FieldError(_child(path, "description"), FORBIDDEN, "must be empty to be structural"))
    if v.get("nullable"):
        errs.append(FieldError(_child(path, "nullable"), FORBIDDEN, "must be false to be structural"))
    for key in ("x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string"):
        if v.get(key) is True:
            errs.append(FieldError(_child(path, key), FORBIDDEN, "must be false to be structural"))
    if v.get("x-kubernetes-list-map-keys"):
        errs.append(FieldError(_child(path, "x-kubernetes-list-map-keys"), FORBIDDEN, "must be empty to be structural"))
    for key in ("x-kubernetes-list-type", "x-kubernetes-map-type"):
        if v.get(key) is not None:
            errs.append(FieldError(_child(path, key), FORBIDDEN, "must be undefined to be structural"))
    if v.get("x-kubernetes-validations"):
        errs.append(FieldError(_child(path, "x-kubernetes-validations"), FORBIDDEN, "must be empty to be structural"))
    if "metadata" in (v.get("properties") or {}):
        errs.append(FieldError(_key(_child(path, "properties"), "metadata"), FORBIDDEN,
                               "must not be specified in a nested context"))
    return errs


def _value_validation_complete(v: dict[str, Any], s: dict[str, Any] | None, spath: str,
                               vpath: str) -> list[FieldError]:
    if s is None:
        return [FieldError(spath, REQUIRED, f"because it is defined in {vpath}")]
    errs: list[FieldError] = []
    if isinstance(v.get("not"), dict):
        errs.extend(_nested_complete(v["not"], s, spath, _child(vpath, "not")))
    for key in ("allOf", "anyOf", "oneOf"):
        for i, x in enumerate(v.get(key) or []):
            if isinstance(x, dict):
                errs.extend(_nested_complete(x, s, spath, _index(_child(vpath, key), i)))
    return errs


def _nested_complete(v: dict[str, Any], s: dict[str, Any] | None, spath: str, vpath: str) -> list[FieldError]:
    if s is None:
        return [FieldError(spath, REQUIRED, f"because it is defined in {vpath}")]
    errs = _value_validation_complete(v, s, spath, vpath)
    if isinstance(v.get("items"), dict):
        s_items = s.get("items") if isinstance(s.get("items"), dict) else None
        errs.extend(_nested_complete(v["items"], s_items, _child(spath, "items"), _child(vpath, "items")))
    s_props = s.get("properties") or {}
    for k, f in (v.get("properties") or {}).items():
        if not isinstance(f, dict):
            continue
        if k not in s_props:
            errs.append(FieldError(_key(_child(spath, "properties"), k), REQUIRED,
                                   f"because it is defined in {_key(_child(vpath, 'properties'), k)}"))
        else:
            errs.extend(_nested_complete(f, s_props[k], _key(_child(spath, "properties"), k),
                                         _key(_child(vpath, "properties"), k)))
    return errs


# ---- ValidateCustomResourceDefinitionOpenAPISchema ------------------------------------------------

def _ssv_validate(ssv: _SSV, s: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    typ = s.get("type")
    if typ and typ not in _OPENAPI_V3_TYPES:
        errs.append(_not_supported(_child(path, "type"), typ, _OPENAPI_V3_TYPES))
    if "default" in s and not ssv.allow_defaults:
        detail = "must not be set"
        if ssv.disallow_defaults_reason:
            detail += " " + ssv.disallow_defaults_reason
        errs.append(FieldError(_child(path, "default"), FORBIDDEN, detail))
    if s.get("id"):
        errs.append(FieldError(_child(path, "id"), FORBIDDEN, "id is not supported"))
    if s.get("additionalItems") is not None:
        errs.append(FieldError(_child(path, "additionalItems"), FORBIDDEN, "additionalItems is not supported"))
    if s.get("patternProperties"):
        errs.append(FieldError(_child(path, "patternProperties"), FORBIDDEN, "patternProperties is not supported"))
    if s.get("definitions"):
        errs.append(FieldError(_child(path, "definitions"), FORBIDDEN, "definitions is not supported"))
    if s.get("dependencies") is not None:
        errs.append(FieldError(_child(path, "dependencies"), FORBIDDEN, "dependencies is not supported"))
    if s.get("$ref") is not None:
        errs.append(FieldError(_child(path, "$ref"), FORBIDDEN, "$ref is not supported"))
    if typ == "null":
        errs.append(FieldError(_child(path, "type"), FORBIDDEN, "type cannot be set to null, use nullable as an "
                                                              "alternative"))
    if isinstance(s.get("items"), list) and s["items"]:
        errs.append(FieldError(_child(path, "items"), FORBIDDEN, "items must be a schema object and not an array"))
    if ssv.inside_resource_meta and s.get("x-kubernetes-embedded-resource") is True:
        errs.append(FieldError(_child(path, "x-kubernetes-embedded-resource"), FORBIDDEN,
                               "must not be used inside of resource meta"))
    return errs


def _go_strings(values: Iterable[Any]) -> str:
    return "[]string{" + ", ".join(gofmt.go_quote(str(v)) for v in values) + "}"


def _has_newlines(s: str) -> bool:
    return "\n" in s or "\r" in s


def _validate_openapi_schema(s: Any, path: str, ssv: _SSV, is_root: bool,
                             ctx: _CelCtx | None) -> tuple[list[FieldError], list[FieldError]]:
    schema_errs: list[FieldError] = []
    cel_errs: list[FieldError] = []
    if not isinstance(s, dict):
        return schema_errs, cel_errs

    def recurse(sub: Any, sub_path: str, sub_ssv: _SSV, sub_ctx: _CelCtx | None) -> None:
        se, ce = _validate_openapi_schema(sub, sub_path, sub_ssv, False, sub_ctx)
        schema_errs.extend(se)
        cel_errs.extend(ce)

    schema_errs.extend(_ssv_validate(ssv, s, path))
    if s.get("uniqueItems") is True:
        schema_errs.append(FieldError(_child(path, "uniqueItems"), FORBIDDEN, "uniqueItems cannot be set to true "
                                      "since the runtime complexity becomes quadratic"))
    props = _gd(s, "properties")
    ap = s.get("additionalProperties")
    if ap is not None:
        if props and (ap is False or isinstance(ap, dict)):
            schema_errs.append(FieldError(_child(path, "additionalProperties"), FORBIDDEN,
                                          "additionalProperties and properties are mutual exclusive"))
        sub_ssv = ssv.forbid_defaults("inside additionalProperties applying to object metadata") \
            if ssv.inside_resource_meta else ssv
        if isinstance(ap, dict):
            recurse(ap, _child(path, "additionalProperties"), sub_ssv, _child_cel_ctx(ctx, s))
    embedded = s.get("x-kubernetes-embedded-resource") is True
    for prop, ps in props.items():
        sub_ssv = ssv
        if s.get("x-kubernetes-map-type") not in (None, "granular", "atomic"):
            sub_ssv = sub_ssv.forbid_old_self(path)
        if (is_root or embedded) and prop in _META_FIELDS:
            sub_ssv = sub_ssv.in_meta()
            if is_root:
                sub_ssv = sub_ssv.forbid_defaults(f"in top-level {prop}")
        recurse(ps, _key(_child(path, "properties"), prop), sub_ssv, _child_cel_ctx(ctx, s))
    if s.get("not") is not None:
        recurse(s["not"], _child(path, "not"), ssv, None)
    for key in ("allOf", "oneOf", "anyOf"):
        for i, x in enumerate(s.get(key) or []):
            recurse(x, _index(_child(path, key), i), ssv, None)
    for k, x in (s.get("definitions") or {}).items() if isinstance(s.get("definitions"), dict) else []:
        recurse(x, _key(_child(path, "definitions"), k), ssv, None)
    items = s.get("items")
    list_type = s.get("x-kubernetes-list-type")
    if items is not None:
        sub_ssv = ssv if list_type == "map" else ssv.forbid_old_self(path)
        if isinstance(items, dict):
            recurse(items, _child(path, "items"), sub_ssv, _child_cel_ctx(ctx, s))
        elif isinstance(items, list):
            for i, x in enumerate(items):
                recurse(x, _index(_child(path, "items"), i), sub_ssv, _child_cel_ctx(ctx, s))
    if isinstance(s.get("dependencies"), dict):
        for k, x in s["dependencies"].items():
            if isinstance(x, dict):
                recurse(x, _key(_child(path, "dependencies"), k), ssv, None)
    if s.get("x-kubernetes-preserve-unknown-fields") is False:
        schema_errs.append(FieldError(_child(path, "x-kubernetes-preserve-unknown-fields"), INVALID,
                                      "must be true or undefined", False))
    typ = _gs(s, "type")
    map_type = s.get("x-kubernetes-map-type")
    if map_type is not None and typ != "object":
        if not typ:
            schema_errs.append(FieldError(_child(path, "type"), REQUIRED, "must be object if x-kubernetes-map-type is "
                                                                        "specified"))
        else:
            schema_errs.append(FieldError(_child(path, "type"), INVALID, "must be object if x-kubernetes-map-type is "
                                                                       "specified", typ))
    if map_type is not None and map_type not in ("atomic", "granular"):
        schema_errs.append(_not_supported(_child(path, "x-kubernetes-map-type"), map_type, ["atomic", "granular"]))
    if list_type is not None and typ != "array":
        if not typ:
            schema_errs.append(FieldError(_child(path, "type"), REQUIRED, "must be array if x-kubernetes-list-type is "
                                                                        "specified"))
        else:
            schema_errs.append(FieldError(_child(path, "type"), INVALID, "must be array if x-kubernetes-list-type is "
                                                                       "specified", typ))
    elif list_type == "set" and isinstance(items, dict):
        if items.get("type") == "array":
            ilt = items.get("x-kubernetes-list-type")
            if ilt is not None and ilt != "atomic":
                schema_errs.append(FieldError(_child(_child(path, "items"), "x-kubernetes-list-type"), INVALID,
                                              "must be atomic as item of a list with x-kubernetes-list-type=set", ilt))
        elif items.get("type") == "object" and items.get("x-kubernetes-map-type") != "atomic":
            ilt = items.get("x-kubernetes-list-type")
            schema_errs.append(FieldError(_child(_child(path, "items"), "x-kubernetes-map-type"), INVALID,
                                          "must be atomic as item of a list with x-kubernetes-list-type=set",
                                          ilt if ilt is not None else "null"))
    if list_type is not None and list_type not in ("atomic", "set", "map"):
        schema_errs.append(_not_supported(_child(path, "x-kubernetes-list-type"), list_type, ["atomic", "set", "map"]))
    keys = s.get("x-kubernetes-list-map-keys") or []
    if keys:
        if list_type is None:
            schema_errs.append(FieldError(_child(path, "x-kubernetes-list-type"), REQUIRED,
                                          "must be map if x-kubernetes-list-map-keys is non-empty"))
        elif list_type != "map":
            schema_errs.append(FieldError(_child(path, "x-kubernetes-list-type"), INVALID,
                                          "must be map if x-kubernetes-list-map-keys is non-empty", list_type))
    if list_type == "map":
        if not keys:
            schema_errs.append(FieldError(_child(path, "x-kubernetes-list-map-keys"), REQUIRED,
                                          "must not be empty if x-kubernetes-list-type is map"))
        if items is None:
            schema_errs.append(FieldError(_child(path, "items"), REQUIRED,
                                          "must have a schema if x-kubernetes-list-type is map"))
        if isinstance(items, list):
            schema_errs.append(FieldError(_child(path, "items"), INVALID,
                                          "&apiextensions.JSONSchemaPropsOrArray{...}: must only have a single schema "
                                          "if x-kubernetes-list-type is map"))
        if isinstance(items, dict) and items.get("type") != "object":
            schema_errs.append(FieldError(_child(_child(path, "items"), "type"), INVALID,
                                          "must be object if parent array's x-kubernetes-list-type is map",
                                          items.get("type") or ""))
        if isinstance(items, dict) and items.get("type") == "object":
            item_props = items.get("properties") or {}
            seen: set[str] = set()
            for k in keys:
                if k in item_props:
                    if isinstance(item_props[k], dict) and item_props[k].get("type") in ("array", "object"):
                        schema_errs.append(FieldError(
                            _child(_key(_child(_child(path, "items"), "properties"), k), "type"), INVALID,
                            "must be a scalar type if parent array's x-kubernetes-list-type is map", "object"))
                else:
                    schema_errs.append(FieldError(_child(path, "x-kubernetes-list-map-keys"), INVALID,
                                                  f"{_go_strings(keys)}: entries must all be names of item properties"))
                if k in seen:
                    schema_errs.append(FieldError(_child(path, "x-kubernetes-list-map-keys"), INVALID,
                                                  f"{_go_strings(keys)}: must not contain duplicate entries"))
                seen.add(k)
    if isinstance(items, dict) and list_type in ("set", "map"):
        if items.get("nullable") is True:
            schema_errs.append(FieldError(_child(_child(path, "items"), "nullable"), FORBIDDEN,
                                          f"cannot be nullable when x-kubernetes-list-type is {list_type}"))
        if list_type == "map":
            required = set(items.get("required") or [])
            item_props = items.get("properties") or {}
            for k in keys:
                key_schema = item_props.get(k)
                if not isinstance(key_schema, dict):
                    continue
                kpath = _key(_child(_child(path, "items"), "properties"), k)
                if k not in required and "default" not in key_schema:
                    schema_errs.append(FieldError(_child(kpath, "default"), REQUIRED, "this property is in "
                                                  "x-kubernetes-list-map-keys, so it must have a default or be a "
                                                  "required property"))
                if key_schema.get("nullable") is True:
                    schema_errs.append(FieldError(_child(kpath, "nullable"), FORBIDDEN, "this property is in "
                                                  "x-kubernetes-list-map-keys, so it cannot be nullable"))
    rules = s.get("x-kubernetes-validations")
    if isinstance(rules, list) and rules:
        _check_rules(s, rules, path, ssv, ctx, is_root, schema_errs, cel_errs)
    return schema_errs, cel_errs


def _check_rules(s: dict[str, Any], rules: list[Any], path: str, ssv: _SSV, ctx: _CelCtx | None, is_root: bool,
                 schema_errs: list[FieldError], cel_errs: list[FieldError]) -> None:
    vpath = _child(path, "x-kubernetes-validations")
    for i, rule in enumerate(rules):
        rpath = _index(vpath, i)
        if not isinstance(rule, dict):
            schema_errs.append(FieldError(_child(rpath, "rule"), REQUIRED, "rule is not specified"))
            continue
        text = _gs(rule, "rule")
        msg = _gs(rule, "message")
        msg_expr = _gs(rule, "messageExpression")
        trimmed_rule = cel._go_trim_space(text)
        trimmed_msg = cel._go_trim_space(msg)
        if not trimmed_rule:
            schema_errs.append(FieldError(_child(rpath, "rule"), REQUIRED, "rule is not specified"))
        elif msg and not trimmed_msg:
            schema_errs.append(FieldError(_child(rpath, "message"), INVALID,
                                          "message must be non-empty if specified", msg))
        elif _has_newlines(trimmed_msg):
            schema_errs.append(FieldError(_child(rpath, "message"), INVALID,
                                          "message must not contain line breaks", msg))
        elif _has_newlines(trimmed_rule) and not trimmed_msg:
            schema_errs.append(FieldError(_child(rpath, "message"), REQUIRED,
                                          "message must be specified if rule contains line breaks"))
        if msg_expr and not cel._go_trim_space(msg_expr):
            schema_errs.append(FieldError(_child(rpath, "messageExpression"), REQUIRED,
                                          "messageExpression must be non-empty if specified"))
        reason = rule.get("reason")
        if reason is not None and reason not in _SUPPORTED_REASONS:
            schema_errs.append(_not_supported(_child(rpath, "reason"), reason, _SUPPORTED_REASONS))
        fp = _gs(rule, "fieldPath")
        if fp and not fp.strip():
            schema_errs.append(FieldError(_child(rpath, "fieldPath"), INVALID,
                                          "fieldPath must be non-empty if specified", fp))
        if _has_newlines(fp):
            schema_errs.append(FieldError(_child(rpath, "fieldPath"), INVALID, "fieldPath must not contain line breaks",
                                          fp))
        if fp:
            try:
                valid_field_path(fp, s)
            except ValueError:
                schema_errs.append(FieldError(_child(rpath, "fieldPath"), INVALID,
                                              "fieldPath must be a valid path", fp))
    if schema_errs or ctx is None:
        return
    is_resource_root = is_root or s.get("x-kubernetes-embedded-resource") is True
    if cel.schema_decl_type(s, is_resource_root) is None:
        if not ctx.lenient:
            cel_errs.append(FieldError(vpath, INTERNAL, "internal error: failed to construct type information for "
                                                        "x-kubernetes-validations rules: unable to convert structural "
                                                        "schema to CEL declarations"))
        return
    for i, rule in enumerate(rules):
        rpath = _index(vpath, i)
        text = _gs(rule, "rule")
        if not cel._go_trim_space(text):
            continue
        compiled: cel.CompiledRule | None = None
        error: cel.CelCompileError | None = None
        try:
            compiled = cel.compile_rule(rule, s, is_resource_root=is_resource_root)
        except cel.CelCompileError as exc:
            error = exc
            compiled = exc.compiled if isinstance(getattr(exc, "compiled", None), cel.CompiledRule) else None
        cost = compiled.estimated_cost(ctx.max_cardinality) if compiled is not None else 0
        if cost > STATIC_ESTIMATED_COST_LIMIT:
            cel_errs.append(FieldError(_child(rpath, "rule"), FORBIDDEN, cel.cost_error_message(
                "estimated rule cost", cost, STATIC_ESTIMATED_COST_LIMIT)))
        ctx.total.observe(_child(rpath, "rule"), cost)
        if error is not None and error.field == "rule":
            if error.required:
                cel_errs.append(FieldError(_child(rpath, "rule"), REQUIRED, error.message))
            else:
                cel_errs.append(FieldError(_child(rpath, "rule"), INVALID,
                                           f"{_go_validation_rule(rule)}: {error.message}"))
        elif error is not None and error.field == "messageExpression":
            cel_errs.append(FieldError(_child(rpath, "messageExpression"), INVALID,
                                       f"{_go_validation_rule(rule)}: {error.message}"))
        elif error is not None:
            cel_errs.append(FieldError(_child(rpath, "rule"), INTERNAL, error.message))
        elif compiled is not None and compiled.message_expression_cost is not None:
            msg_cost = compiled.message_expression_cost
            if msg_cost > STATIC_ESTIMATED_COST_LIMIT:
                cel_errs.append(FieldError(_child(rpath, "messageExpression"), FORBIDDEN, cel.cost_error_message(
                    "estimated messageExpression cost", msg_cost, STATIC_ESTIMATED_COST_LIMIT)))
            ctx.total.observe(_child(rpath, "messageExpression"), msg_cost)
        if compiled is None:
            continue
        if compiled.uses_old_self:
            if ssv.uncorrelatable_path is not None:
                cel_errs.append(FieldError(_child(rpath, "rule"), INVALID,
                                           "oldSelf cannot be used on the uncorrelatable portion of the schema within "
                                           f"{ssv.uncorrelatable_path}", text))
        elif rule.get("optionalOldSelf") is not None:
            cel_errs.append(FieldError(_child(rpath, "optionalOldSelf"), INVALID,
                                       "may not be set if oldSelf is not used in rule", rule["optionalOldSelf"]))


# ---- ValidateDefaults (defaulting/validation.go) -------------------------------------------------

def _validate_defaults(path: str, schema: dict[str, Any]) -> list[FieldError]:
    root = dict(schema)
    root["x-kubernetes-embedded-resource"] = True
    budget = [cel.RUNTIME_CEL_COST_BUDGET]
    return _validate_defaults_node(path, root, root, False, budget)


def _validate_defaults_node(path: str, s: Any, root: dict[str, Any], inside_meta: bool,
                            budget: list[int]) -> list[FieldError]:
    if not isinstance(s, dict) or budget[0] < 0:
        return []
    if s.get("x-kubernetes-embedded-resource") is True:
        inside_meta = False
        root = s
    is_resource_root = s is root
    errs: list[FieldError] = []
    dpath = _child(path, "default")
    if "default" in s:
        default = s["default"]
        if not inside_meta:
            pruned, _ = prune(default, s, root=s.get("x-kubernetes-embedded-resource") is True)
            if not _json_equal(pruned, default):
                errs.append(_invalid_go(dpath, default, "must not have unknown fields"))
        openapi = _openapi_validate(default, s, dpath)
        if openapi.errors:
            errs.extend(openapi.errors)
        else:
            cel_errs = _CelRun(budget).node(default, default, s, dpath, is_resource_root)
            errs.extend(cel_errs)
    if isinstance(s.get("items"), dict):
        errs.extend(_validate_defaults_node(_child(path, "items"), s["items"], root, inside_meta, budget))
    for k, sub in (s.get("properties") or {}).items():
        sub_inside = inside_meta or (s.get("x-kubernetes-embedded-resource") is True and k in _META_FIELDS)
        errs.extend(_validate_defaults_node(_key(_child(path, "properties"), k), sub, root, sub_inside, budget))
    return errs


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# --------------------------------------------------------------------------------------------------
# validate: kube-openapi value validation
# --------------------------------------------------------------------------------------------------

_BLOCKING_TYPES: Final = frozenset({UNSUPPORTED, REQUIRED, TOO_LONG, TOO_MANY})
_IN: Final = "body"

_UUID_RES: Final = {
    "uuid": r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
    "uuid3": r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
    "uuid4": r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$",
    "uuid5": r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$",
}
_HOSTNAME_RE: Final = (r"^([a-zA-Z0-9\p{S}\p{L}]((-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?)|([a-zA-Z0-9\p{S}\p{L}](([a-zA-Z0-9-"
                       r"\p{S}\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?)(\.)){1,}([a-zA-Z\p{L}]){2,63})$")
_BASE64_RE: Final = r"^(?:[A-Za-z0-9+\/]{4})*(?:[A-Za-z0-9+\/]{2}==|[A-Za-z0-9+\/]{3}=|[A-Za-z0-9+\/]{4})$"
_STRFMT_TIME_RE: Final = r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$"


def _is_date(s: str) -> bool:
    try:
        cel.parse_date(s)
    except ValueError:
        return False
    return True


def _is_datetime(s: str) -> bool:
    if len(s) < 4:
        return False
    parts = s.lower().split("t")
    if len(parts) < 2 or not _is_date(parts[0]):
        return False
    m = cel.compile_regex(_STRFMT_TIME_RE).search(parts[1])
    if m is None:
        return False
    return bool(m.group(1) <= "23" and m.group(2) <= "59" and m.group(3) <= "59")


def _format_valid(fmt: str, s: str) -> bool:
    """strfmt.Default validators (normalized names)."""
    if fmt == "datetime":
        return _is_datetime(s)
    if fmt == "date":
        return _is_date(s)
    if fmt in _UUID_RES:
        return cel.regex_search(_UUID_RES[fmt], s)
    if fmt == "byte":
        return cel.regex_search(_BASE64_RE, s)
    if fmt == "password":
        return True
    if fmt == "duration":
        try:
            cel.parse_strfmt_duration(s)
        except ValueError:
            return False
        return True
    if fmt == "ipv4":
        try:
            ipaddress.IPv4Address(s)
        except ValueError:
            return False
        return True
    if fmt == "ipv6":
        try:
            ipaddress.ip_address(s)
        except ValueError:
            return False
        return ":" in s
    if fmt == "cidr":
        try:
            ipaddress.ip_network(s, strict=False)
        except ValueError:
            return False
        return "/" in s
    if fmt == "mac":
        return re.fullmatch(r"([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}|([0-9A-Fa-f]{2}[:-]){7}[0-9A-Fa-f]{2}|"
                            r"([0-9A-Fa-f]{4}\.){2}[0-9A-Fa-f]{4}|([0-9A-Fa-f]{4}\.){3}[0-9A-Fa-f]{4}", s) is not None
    if fmt == "hostname":
        return len(s) <= 255 and cel.regex_search(_HOSTNAME_RE, s)
    if fmt == "email":
        return re.fullmatch(r"[^@\s<>()\[\]\\,;:\"]+@[^@\s<>()\[\]\\,;:\"]+", s) is not None
    if fmt == "uri":
        try:
            cel.parse_request_uri(s)
        except cel.CelEvalError:
            return False
        return True
    if fmt == "bsonobjectid":
        return re.fullmatch(r"[0-9a-fA-F]{24}", s) is not None
    if fmt in ("isbn", "isbn10", "isbn13"):
        digits = re.sub(r"[\s-]", "", s)
        ok10 = re.fullmatch(r"[0-9]{9}[0-9X]", digits) is not None
        ok13 = re.fullmatch(r"[0-9]{13}", digits) is not None
        return {"isbn": ok10 or ok13, "isbn10": ok10, "isbn13": ok13}[fmt]
    if fmt == "creditcard":
        digits = re.sub(r"[^0-9]", "", s)
        return 12 <= len(digits) <= 19
    if fmt == "ssn":
        return re.fullmatch(r"\d{3}[- ]?\d{2}[- ]?\d{4}", s) is not None
    if fmt == "hexcolor":
        return re.fullmatch(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})", s) is not None
    if fmt == "rgbcolor":
        return re.fullmatch(r"rgb\(\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])"
                            r"\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*\)", s) is not None
    return True


_SUPPORTED_FORMATS: Final = frozenset({
    "bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "uuid3", "uuid4", "uuid5",
    "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor", "rgbcolor", "byte", "password", "date", "duration",
    "datetime"})


def _effective_format(s: dict[str, Any]) -> str:
    """StripUnsupportedFormatsPostProcess: unknown formats (int32, int64, ...) are dropped."""
    fmt = s.get("format")
    if not isinstance(fmt, str) or not fmt:
        return ""
    return fmt if fmt.replace("-", "") in _SUPPORTED_FORMATS else ""


def _data_type(data: Any) -> tuple[str, str]:
    if isinstance(data, bool):
        return "boolean", ""
    if isinstance(data, int):
        return "integer", "int64"
    if isinstance(data, float):
        return "number", "float64"
    if isinstance(data, str):
        return "string", ""
    if isinstance(data, list):
        return "array", ""
    return "object", ""


def _is_float_json_integer(f: float) -> bool:
    """swag.IsFloat64AJSONInteger."""
    max_json_float = float(2**53 - 1)
    if math.isnan(f) or math.isinf(f) or f < -max_json_float or f > max_json_float:
        return False
    fa = abs(f)
    g = float(int(f)) if f >= 0 else float(int(f) % 2**64)
    if f == g or f == float(int(f)):
        return True
    if fa <= 1:
        return abs(f - g) < 1e-9
    return abs(f - g) <= 1e-9 * fa


def _fmt_bound(v: float) -> str:
    return gofmt.go_format_float(float(v))


class _OpenAPIResult:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self.blocking = False

    def add(self, err: FieldError, *, blocking: bool = False) -> None:
        self.errors.append(err)
        if blocking or err.type in _BLOCKING_TYPES:
            self.blocking = True


def _err_path(prefix: str, name: str) -> str:
    if name and name != ".":
        return _child(prefix, name.removeprefix("."))
    return prefix if prefix else "<nil>"


def _openapi_validate(data: Any, schema: dict[str, Any], prefix: str) -> _OpenAPIResult:
    result = _OpenAPIResult()
    _OpenAPI(prefix, result).validate(data, schema, "")
    return result


class _OpenAPI:
    """kube-openapi SchemaValidator, converted to field errors (kubeOpenAPIResultToFieldErrors)."""

    def __init__(self, prefix: str, result: _OpenAPIResult) -> None:
        self.prefix = prefix
        self.result = result

    def path(self, name: str) -> str:
        return _err_path(self.prefix, name)

    def type_error(self, name: str, type_name: str, value: Any) -> None:
        if isinstance(value, str):
            msg = f"{name} in {_IN} must be of type {type_name}: {gofmt.go_quote(value)}"
        else:
            msg = f"{name} in {_IN} must be of type {type_name}"
        self.result.add(FieldError(self.path(name), INVALID, msg, value if value is not None else ""), blocking=True)

    def invalid(self, name: str, value: Any, msg: str) -> None:
        self.result.add(FieldError(self.path(name), INVALID, msg, value if value is not None else ""))

    def validate(self, data: Any, s: Any, name: str) -> bool:
        """Validate `data`; return True when no error was added for it."""
        if not isinstance(s, dict):
            return True
        before = len(self.result.errors)
        types = _schema_types(s)
        fmt = _effective_format(s)
        if data is None:
            if types and not s.get("nullable"):
                self.type_error(name, ",".join(types), "null")
            self._enum(data, s, name)
            return len(self.result.errors) == before
        sch_type, data_fmt = _data_type(data)
        # type validator
        if types or fmt:
            is_float_int = sch_type == "number" and _is_float_json_integer(float(data)) and "integer" in types
            is_int_float = sch_type == "integer" and "number" in types
            kind_is_str_or_slice = isinstance(data, str | list)
            if not kind_is_str_or_slice and fmt and not (sch_type in types or data_fmt == fmt or is_float_int
                                                          or is_int_float):
                self.type_error(name, fmt, data_fmt)
            elif not ("number" in types or "integer" in types) and fmt and kind_is_str_or_slice:
                pass
            elif not (sch_type in types or is_float_int or is_int_float):
                self.type_error(name, ",".join(types), sch_type)
        # schema props (allOf, anyOf, oneOf, not)
        self._schema_props(data, s, name)
        # string validator
        if isinstance(data, str):
            max_len, min_len = s.get("maxLength"), s.get("minLength")
            runes = len(data)
            pattern = s.get("pattern")
            if _is_number(max_len) and runes > max_len:
                self.result.add(FieldError(self.path(name), TOO_LONG, f"may not be more than {int(max_len)} bytes"))
            elif _is_number(min_len) and runes < min_len:
                self.invalid(name, data, f"{name} in {_IN} should be at least {int(min_len)} chars long")
            elif isinstance(pattern, str) and pattern:
                try:
                    matched = cel.regex_search(pattern, data)
                except cel.RegexError as exc:
                    self.invalid(name, data, f"{name} in {_IN} should match '{pattern}, but pattern is invalid: "
                                             f"{str(exc).removeprefix('error parsing regexp: ')}'")
                else:
                    if not matched:
                        self.invalid(name, data, f"{name} in {_IN} should match '{pattern}'")
            # format validator
            if fmt and not _format_valid(fmt.replace("-", ""), data):
                self.type_error(name, fmt, data)
        # number validator
        if _is_number(data):
            self._number(data, s, name)
        # slice validator
        if isinstance(data, list):
            items = s.get("items")
            if isinstance(items, dict):
                for i, item in enumerate(data):
                    self.validate(item, items, f"{name}[{i}]")
            size = len(data)
            min_items, max_items = s.get("minItems"), s.get("maxItems")
            if _is_number(min_items) and size < min_items:
                self.invalid(name, size, f"{name} in {_IN} should have at least {int(min_items)} items")
            if _is_number(max_items) and size > max_items:
                self.result.add(FieldError(self.path(name), TOO_MANY,
                                           f"{size}: must have at most {int(max_items)} items"))
            if s.get("uniqueItems") is True:
                seen: list[Any] = []
                for item in data:
                    if any(_json_equal(item, x) for x in seen):
                        self.invalid(name, "", f"{name} in {_IN} shouldn't contain duplicates")
                        break
                    seen.append(item)
        # common validator (enum)
        self._enum(data, s, name)
        # object validator
        if isinstance(data, dict):
            self._object(data, s, name)
        return len(self.result.errors) == before

    def _enum(self, data: Any, s: dict[str, Any], name: str) -> None:
        enum = s.get("enum")
        if not isinstance(enum, list) or not enum:
            return
        for value in enum:
            if value is None:
                continue
            if _enum_match(data, value):
                return
        values = [v if isinstance(v, str) else gofmt.go_json(v) for v in enum]
        self.result.add(_not_supported(self.path(name), data, values))

    def _number(self, data: int | float, s: dict[str, Any], name: str) -> None:
        is_int = isinstance(data, int)
        mult = s.get("multipleOf")
        if _is_number(mult):
            if is_int:
                factor = int(mult)
                if factor <= 0:
                    self.invalid(name, factor, f"factor MultipleOf declared for {name} must be positive: {factor}")
                elif _trunc(int(data), factor) * factor != int(data):
                    self.invalid(name, data, f"{name} in {_IN} should be a multiple of {factor}")
            else:
                fmult = float(mult)
                if fmult <= 0:
                    self.invalid(name, fmult, f"factor MultipleOf declared for {name} must be positive: "
                                              f"{_fmt_bound(fmult)}")
                else:
                    q = (1 / fmult * data) if fmult < 1 else (data / fmult)
                    if not _is_float_json_integer(q):
                        self.invalid(name, data, f"{name} in {_IN} should be a multiple of {_fmt_bound(fmult)}")
        minimum, maximum = s.get("minimum"), s.get("maximum")
        if _is_number(minimum):
            excl = s.get("exclusiveMinimum") is True
            if is_int:
                bound: Any = int(minimum)
                bad = data <= bound if excl else data < bound
                shown = str(bound)
            else:
                bound = float(minimum)
                bad = data <= bound if excl else data < bound
                shown = _fmt_bound(bound)
            if bad:
                word = "greater than" if excl else "greater than or equal to"
                self.invalid(name, data, f"{name} in {_IN} should be {word} {shown}")
        if _is_number(maximum):
            excl = s.get("exclusiveMaximum") is True
            if is_int:
                bound = int(maximum)
                bad = data >= bound if excl else data > bound
                shown = str(bound)
            else:
                bound = float(maximum)
                bad = data >= bound if excl else data > bound
                shown = _fmt_bound(bound)
            if bad:
                word = "less than" if excl else "less than or equal to"
                self.invalid(name, data, f"{name} in {_IN} should be {word} {shown}")

    def _schema_props(self, data: Any, s: dict[str, Any], name: str) -> None:
        def trial(sub: Any) -> _OpenAPIResult:
            r = _OpenAPIResult()
            _OpenAPI(self.prefix, r).validate(data, sub, name)
            return r

        any_of = s.get("anyOf")
        if isinstance(any_of, list) and any_of:
            results = [trial(x) for x in any_of]
            if not any(not r.errors for r in results):
                self.invalid_composite(f"{gofmt.go_quote(name)} must validate at least one schema (anyOf)")
                best = max(results, key=lambda r: -len(r.errors))
                for e in best.errors:
                    self.result.add(e)
        one_of = s.get("oneOf")
        if isinstance(one_of, list) and one_of:
            results = [trial(x) for x in one_of]
            valid = sum(1 for r in results if not r.errors)
            if valid != 1:
                extra = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
                self.invalid_composite(f"{gofmt.go_quote(name)} must validate one and only one schema (oneOf). {extra}")
                if valid == 0:
                    best = max(results, key=lambda r: -len(r.errors))
                    for e in best.errors:
                        self.result.add(e)
        all_of = s.get("allOf")
        if isinstance(all_of, list) and all_of:
            validated = 0
            for x in all_of:
                r = trial(x)
                if not r.errors:
                    validated += 1
                for e in r.errors:
                    self.result.add(e, blocking=r.blocking)
            if validated != len(all_of):
                extra = ". None validated" if validated == 0 else ""
                self.invalid_composite(f"{gofmt.go_quote(name)} must validate all the schemas (allOf){extra}")
        not_ = s.get("not")
        if isinstance(not_, dict) and not trial(not_).errors:
            self.invalid_composite(f"{gofmt.go_quote(name)} must not validate the schema (not)")

    def invalid_composite(self, msg: str) -> None:
        self.result.add(FieldError(self.prefix or "<nil>", INVALID, msg, ""))

    def _object(self, data: dict[str, Any], s: dict[str, Any], name: str) -> None:
        n = len(data)
        min_p, max_p = s.get("minProperties"), s.get("maxProperties")
        if _is_number(min_p) and n < min_p:
            self.invalid(name, n, f"{name} in {_IN} should have at least {int(min_p)} properties")
        if _is_number(max_p) and n > max_p:
            self.result.add(FieldError(self.path(name), TOO_MANY, f"{n}: must have at most {int(max_p)} items"))
        props = _gd(s, "properties")
        ap = s.get("additionalProperties")
        if ap is False:
            for k in data:
                if k not in props:
                    self.invalid(name, k, f"{name}.{k} in {_IN} is a forbidden property")
        elif isinstance(ap, dict):
            for k, v in data.items():
                if k not in props:
                    self.validate(v, ap, f"{name}.{k}")
        for p_name, p_schema in props.items():
            if p_name in data:
                self.validate(data[p_name], p_schema, p_name if not name else f"{name}.{p_name}")
        for k in s.get("required") or []:
            if k not in data:
                self.result.add(FieldError(self.path(f"{name}.{k}"), REQUIRED))


def _trunc(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _enum_match(data: Any, value: Any) -> bool:
    """reflect DeepEqual after Go's ConvertibleTo/Convert (int64 -> string is a rune conversion!)."""
    if _json_equal(data, value):
        return True
    if isinstance(data, bool) or isinstance(value, bool) or data is None:
        return False
    if _is_number(data) and _is_number(value):
        if isinstance(value, int):
            return int(data) == value if not isinstance(data, float) or math.isfinite(data) else False
        return float(data) == value
    if isinstance(data, int) and isinstance(value, str):
        return (chr(data) if 0 <= data <= 0x10FFFF and not 0xD800 <= data <= 0xDFFF else "\ufffd") == value
    if isinstance(data, dict | list):
        return _json_equal(data, value)
    return False


# ---- embedded resources (schema/objectmeta/validation.go) ----------------------------------------

def _validate_embedded(data: Any, s: Any, path: str, is_resource_root: bool) -> list[FieldError]:
    if not isinstance(s, dict):
        return []
    if is_resource_root and s.get("x-kubernetes-embedded-resource") is not True:
        s = dict(s)
        s["x-kubernetes-embedded-resource"] = True
    errs: list[FieldError] = []
    if isinstance(data, dict):
        if s.get("x-kubernetes-embedded-resource") is True and not is_resource_root:
            errs.extend(_embedded_resource(data, path))
        props = s.get("properties") or {}
        ap = s.get("additionalProperties")
        for k, v in data.items():
            if k in props:
                errs.extend(_validate_embedded(v, props[k], _child(path, k), False))
            elif isinstance(ap, dict):
                errs.extend(_validate_embedded(v, ap, _key(path, k), False))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            errs.extend(_validate_embedded(v, s.get("items"), _index(path, i), False))
    return errs


def _embedded_resource(x: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if "apiVersion" not in x:
        errs.append(FieldError(_child(path, "apiVersion"), REQUIRED, "must not be empty"))
    if "kind" not in x:
        errs.append(FieldError(_child(path, "kind"), REQUIRED, "must not be empty"))
    for k, v in x.items():
        if k == "apiVersion":
            if not isinstance(v, str):
                errs.append(_invalid_go(_child(path, "apiVersion"), v, "must be a string"))
            elif not v:
                errs.append(FieldError(_child(path, "apiVersion"), INVALID, "must not be empty", v))
            elif v.count("/") > 1:
                errs.append(FieldError(_child(path, "apiVersion"), INVALID,
                                       f"unexpected GroupVersion string: {v}", v))
        elif k == "kind":
            if not isinstance(v, str):
                errs.append(_invalid_go(_child(path, "kind"), v, "must be a string"))
            elif not v:
                errs.append(FieldError(_child(path, "kind"), INVALID, "must not be empty", v))
            else:
                dns = _dns1035(v.lower())
                if dns:
                    errs.append(FieldError(_child(path, "kind"), INVALID,
                                           "may have mixed case, but should otherwise match: " + ",".join(dns), v))
        elif k == "metadata":
            if not isinstance(v, dict):
                errs.append(_invalid_go(_child(path, "metadata"), v, "must be an object"))
                continue
            name = v.get("name")
            if name is not None and (not isinstance(name, str) or "/" in name or "%" in name or name in (".", "..")):
                errs.append(FieldError(_child(_child(path, "metadata"), "name"), INVALID,
                                       "may not contain '/'", name))
    return errs


# ---- list types (schema/listtype/validation.go) --------------------------------------------------

def _validate_list_types(data: Any, s: Any, path: str) -> list[FieldError]:
    if not isinstance(s, dict):
        return []
    errs: list[FieldError] = []
    if isinstance(data, dict):
        props = s.get("properties") or {}
        ap = s.get("additionalProperties")
        if isinstance(ap, dict):
            for k, v in data.items():
                errs.extend(_validate_list_types(v, ap, _key(path, k)))
        for k, v in data.items():
            if k in props:
                errs.extend(_validate_list_types(v, props[k], _child(path, k)))
    elif isinstance(data, list):
        lt = s.get("x-kubernetes-list-type")
        if lt == "set":
            for i in _non_unique([_canonical(x) for x in data]):
                errs.append(_duplicate(_index(path, i), data[i]))
        elif lt == "map":
            errs.extend(_validate_list_map(data, s, path))
        items = s.get("items")
        if isinstance(items, dict):
            for i, v in enumerate(data):
                errs.extend(_validate_list_types(v, items, _index(path, i)))
    return errs


def _canonical(x: Any) -> Any:
    if isinstance(x, dict | list):
        return ("json", json.dumps(x, sort_keys=True, separators=(",", ":")))
    if isinstance(x, bool):
        return ("bool", x)
    if isinstance(x, float) and x.is_integer():
        return ("float", x)
    return (type(x).__name__, x)


def _non_unique(keys: list[Any]) -> list[int]:
    counts: dict[Any, int] = {}
    out = []
    for i, k in enumerate(keys):
        counts[k] = counts.get(k, 0) + 1
        if counts[k] == 2:
            out.append(i)
    return out


def _duplicate(path: str, value: Any) -> FieldError:
    if isinstance(value, dict | list):
        return FieldError(path, DUPLICATE, gofmt.go_sharp_v(value))
    return FieldError(path, DUPLICATE, "", value)


def _validate_list_map(data: list[Any], s: dict[str, Any], path: str) -> list[FieldError]:
    for i, x in enumerate(data):
        if x is not None and not isinstance(x, dict):
            return [_invalid_go(_index(path, i), x, "must be an object for an array of list-type map")]
    if len(data) <= 1:
        return []
    keys = list(s.get("x-kubernetes-list-map-keys") or [])
    errs = []
    if len(keys) == 1:
        k = keys[0]
        values = [("unspecified",) if x is None or k not in x else _canonical(x[k]) for x in data]
        for i in _non_unique(values):
            x = data[i]
            if x is None or k not in x:
                errs.append(FieldError(_index(path, i), DUPLICATE, gofmt.go_sharp_v({})))
            else:
                errs.append(FieldError(_index(path, i), DUPLICATE, gofmt.go_sharp_v({k: x[k]})))
        return errs
    key_maps = [{k: x[k] for k in keys if k in x} if isinstance(x, dict) else {} for x in data]
    for i in _non_unique([_canonical(m) for m in key_maps]):
        errs.append(FieldError(_index(path, i), DUPLICATE, gofmt.go_sharp_v(key_maps[i])))
    return errs


# ---- CEL validation (schema/cel/validation.go) ---------------------------------------------------

_COMPILED: dict[tuple[int, bool], list[tuple[dict[str, Any], cel.CompiledRule | cel.CelCompileError]]] = {}
_COMPILED_SCHEMAS: dict[int, dict[str, Any]] = {}


def _compiled_rules(s: dict[str, Any], is_resource_root: bool) -> list[tuple[dict[str, Any],
                                                                             cel.CompiledRule | cel.CelCompileError]]:
    key = (id(s), is_resource_root)
    cached = _COMPILED.get(key)
    if cached is not None and _COMPILED_SCHEMAS.get(id(s)) is s \
            and [r for r, _ in cached] == [r for r in s.get("x-kubernetes-validations") or [] if _has_rule_text(r)]:
        return cached
    out: list[tuple[dict[str, Any], cel.CompiledRule | cel.CelCompileError]] = []
    for rule in s.get("x-kubernetes-validations") or []:
        if not _has_rule_text(rule):
            continue
        try:
            out.append((rule, cel.compile_rule(rule, s, is_resource_root=is_resource_root)))
        except cel.CelCompileError as exc:
            out.append((rule, exc.compiled if exc.compiled is not None else exc))
    if len(_COMPILED) > 4096:
        _COMPILED.clear()
        _COMPILED_SCHEMAS.clear()
    _COMPILED[key] = out
    _COMPILED_SCHEMAS[id(s)] = s
    return out


def _has_rule_text(rule: Any) -> bool:
    return isinstance(rule, dict) and isinstance(rule.get("rule"), str) and bool(rule["rule"].strip())


class _CelRun:
    """Validator.Validate over a value tree with one shared runtime cost budget."""

    def __init__(self, budget: list[int]) -> None:
        self.budget = budget

    def node(self, value: Any, old: Any, s: Any, path: str, is_resource_root: bool) -> list[FieldError]:
        if not isinstance(s, dict) or value is None or self.budget[0] < 0:
            return []
        errs = self._expressions(value, old, s, path, is_resource_root)
        if self.budget[0] < 0:
            return errs
        if isinstance(value, list):
            items = s.get("items")
            if isinstance(items, dict):
                old_items = _correlate_list(s, old)
                emb = items.get("x-kubernetes-embedded-resource") is True
                for i, item in enumerate(value):
                    errs.extend(self.node(item, old_items(item), items, _index(path, i), emb))
                    if self.budget[0] < 0:
                        return errs
        elif isinstance(value, dict):
            correlatable = s.get("x-kubernetes-map-type") in (None, "granular", "atomic")
            old_map = old if isinstance(old, dict) and correlatable else {}
            ap = s.get("additionalProperties")
            if isinstance(ap, dict):
                emb = ap.get("x-kubernetes-embedded-resource") is True
                for k, v in value.items():
                    errs.extend(self.node(v, old_map.get(k), ap, _key(path, k), emb))
                    if self.budget[0] < 0:
                        return errs
            props = s.get("properties") or {}
            for k, v in value.items():
                if k in props and isinstance(props[k], dict):
                    emb = props[k].get("x-kubernetes-embedded-resource") is True
                    errs.extend(self.node(v, old_map.get(k), props[k], _child(path, k), emb))
                    if self.budget[0] < 0:
                        return errs
        return errs

    def _expressions(self, value: Any, old: Any, s: dict[str, Any], path: str,
                     is_resource_root: bool) -> list[FieldError]:
        if not s.get("x-kubernetes-validations"):
            return []
        sts_type = _gs(s, "type")
        node_path = path or "<nil>"  # a nil field.Path prints as <nil>
        errs: list[FieldError] = []
        if self.budget[0] <= 0:
            self.budget[0] = -1
            return [FieldError(node_path, INVALID, "validation failed due to running out of cost budget, no further "
                                                   "validation rules will be run", sts_type)]
        for rule, compiled in _compiled_rules(s, is_resource_root):
            if isinstance(compiled, cel.CelCompileError):
                errs.append(FieldError(node_path, INVALID, f"rule compile error: {compiled.message}", sts_type))
                continue
            outcome = compiled.evaluate(value, old if old is not None else MISSING, budget=self.budget[0])
            if outcome.status == "skipped":
                continue
            self.budget[0] -= outcome.cost
            if outcome.status == "passed":
                continue
            if outcome.status == "error":
                errs.append(FieldError(node_path, INVALID, outcome.message, sts_type))
                if outcome.budget_exhausted:
                    self.budget[0] = -1
                    return errs
                continue
            fpath = node_path
            field_path = rule.get("fieldPath")
            if isinstance(field_path, str) and field_path:
                try:
                    normalized, _ = valid_field_path(field_path, s)
                    fpath = _child(path, normalized)
                except ValueError:
                    pass
            errs.append(_error_for_reason(fpath, sts_type, outcome.message, rule.get("reason")))
        return errs


def _error_for_reason(path: str, value: str, detail: str, reason: Any) -> FieldError:
    if reason == "FieldValueForbidden":
        return FieldError(path, FORBIDDEN, detail)
    if reason == "FieldValueRequired":
        return FieldError(path, REQUIRED, detail)
    if reason == "FieldValueDuplicate":
        return FieldError(path, DUPLICATE, "", value)
    return FieldError(path, INVALID, detail, value)


def _correlate_list(s: dict[str, Any], old: Any) -> Any:
    """makeMapList: only list-type=map items correlate (by their keys)."""
    keys = s.get("x-kubernetes-list-map-keys") or []
    if s.get("x-kubernetes-list-type") != "map" or not keys or not isinstance(old, list):
        return lambda _item: None
    index: dict[Any, Any] = {}
    for item in old:
        if isinstance(item, dict):
            index[tuple(_canonical(item.get(k)) for k in keys)] = item

    def get(item: Any) -> Any:
        if not isinstance(item, dict):
            return None
        return index.get(tuple(_canonical(item.get(k)) for k in keys))
    return get


# ---- public validate --------------------------------------------------------------------------------

def validate(value: Any, schema: dict[str, Any], *, path: str = "", old: Any = MISSING, check_cel: bool = True,
             root: bool | None = None, cost_budget: int = cel.RUNTIME_CEL_COST_BUDGET) -> list[FieldError]:
    """Validate a (pruned, defaulted) value against a structural schema, as the server does on write.

    `path` is the field.Path prefix of `value` ("" for a whole object), `old` the previous object for
    transition rules (MISSING on create), `root` whether `value` is a resource root (default: path == "").
    """
    is_root = (path == "") if root is None else root
    result = _openapi_validate(value, schema, path)
    errs = list(result.errors)
    errs.extend(_validate_embedded(value, schema, path, is_root))
    errs.extend(_validate_list_types(value, schema, path))
    blocking = result.blocking or any(e.type in _BLOCKING_TYPES for e in errs)
    if check_cel and _has_rules(schema):
        if blocking:
            errs.append(FieldError("<nil>", INVALID, "some validation rules were not checked because the object was "
                                                     "invalid; correct the existing errors to complete validation",
                                   "null"))
        else:
            errs.extend(_CelRun([cost_budget]).node(value, None if old is MISSING else old, schema, path, is_root))
    return errs


def _has_rules(s: Any) -> bool:
    if not isinstance(s, dict):
        return False
    if s.get("x-kubernetes-validations"):
        return True
    if _has_rules(s.get("items")) or _has_rules(s.get("additionalProperties")):
        return True
    return any(_has_rules(p) for p in (s.get("properties") or {}).values())


# --------------------------------------------------------------------------------------------------
# defaulting and pruning
# --------------------------------------------------------------------------------------------------

def apply_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """structural defaulting (defaulting/algorithm.go) followed by PruneNonNullableNullsWithoutDefaults."""
    out = copy.deepcopy(value)
    _default(out, schema)
    _prune_nulls(out, schema)
    return out


def _non_nullable_null(x: Any, s: Any) -> bool:
    return x is None and isinstance(s, dict) and not s.get("nullable")


def _default(x: Any, s: Any) -> None:
    if not isinstance(s, dict):
        return
    if isinstance(x, dict):
        props = s.get("properties") or {}
        for k, prop in props.items():
            if not isinstance(prop, dict) or "default" not in prop or prop["default"] is None:
                continue
            if k not in x or _non_nullable_null(x[k], prop):
                x[k] = copy.deepcopy(prop["default"])
        ap = s.get("additionalProperties")
        for k in list(x):
            if k in props:
                _default(x[k], props[k])
            elif ap is not None:
                ap_schema = ap if isinstance(ap, dict) else None
                if _non_nullable_null(x[k], ap_schema) and ap_schema is not None and "default" in ap_schema:
                    x[k] = copy.deepcopy(ap_schema["default"])
                _default(x[k], ap_schema)
    elif isinstance(x, list):
        items = s.get("items") if isinstance(s.get("items"), dict) else None
        for i in range(len(x)):
            if _non_nullable_null(x[i], items) and items is not None and "default" in items:
                x[i] = copy.deepcopy(items["default"])
            _default(x[i], items)


def _prune_nulls(x: Any, s: Any) -> None:
    if isinstance(x, dict):
        for k in list(x):
            sub = None
            if isinstance(s, dict):
                props = s.get("properties") or {}
                if k in props:
                    sub = props[k]
                elif isinstance(s.get("additionalProperties"), dict):
                    sub = s["additionalProperties"]
            if x[k] is None and isinstance(sub, dict) and not sub.get("nullable") and "default" not in sub:
                del x[k]
            else:
                _prune_nulls(x[k], sub)
    elif isinstance(x, list):
        items = s.get("items") if isinstance(s, dict) else None
        for v in x:
            _prune_nulls(v, items)


def prune(value: Any, schema: dict[str, Any], *, root: bool = True) -> tuple[Any, list[str]]:
    """pruning/algorithm.go: a pruned copy and the (sorted) paths of the fields it removed."""
    out = copy.deepcopy(value)
    s: dict[str, Any] | None = schema if isinstance(schema, dict) else None
    if root:
        s = dict(s or {})
        s["x-kubernetes-embedded-resource"] = True
    unknown: list[str] = []
    _prune(out, s, [], unknown)
    return out, sorted(unknown)


def unknown_field_warnings(paths: Iterable[str]) -> list[str]:
    """The warnings kube-apiserver returns for pruned fields (fieldValidation=Warn, the default)."""
    return [f'unknown field "{p}"' for p in paths]


def strict_decoding_error(paths: Iterable[str]) -> str | None:
    """The 400 BadRequest message for pruned fields under fieldValidation=Strict (kubectl's default)."""
    warnings = unknown_field_warnings(paths)
    return "strict decoding error: " + ", ".join(warnings) if warnings else None


def _record(parent: list[str], name: str, unknown: list[str]) -> None:
    unknown.append("".join([*parent, ".", name]) if parent else name)


def _append_key(parent: list[str], key: str) -> list[str]:
    return [*parent, ".", key] if parent else [key]


def _prune(x: Any, s: dict[str, Any] | None, parent: list[str], unknown: list[str]) -> None:
    if s is not None and s.get("x-kubernetes-preserve-unknown-fields") is True:
        _skip_prune(x, s, parent, unknown)
        return
    if isinstance(x, dict):
        if s is None:
            for k in list(x):
                _record(parent, k, unknown)
                del x[k]
            return
        props = s.get("properties") or {}
        ap = s.get("additionalProperties")
        embedded = s.get("x-kubernetes-embedded-resource") is True
        for k in list(x):
            if embedded and k in _META_FIELDS:
                continue
            if k in props:
                _prune(x[k], props[k] if isinstance(props[k], dict) else None, _append_key(parent, k), unknown)
            elif ap is not None:
                _prune(x[k], ap if isinstance(ap, dict) else None, _append_key(parent, k), unknown)
            else:
                if k not in _META_FIELDS or parent:
                    _record(parent, k, unknown)
                del x[k]
    elif isinstance(x, list):
        items = s.get("items") if isinstance(s, dict) and isinstance(s.get("items"), dict) else None
        for i, v in enumerate(x):
            _prune(v, items, [*parent, f"[{i}]"], unknown)


def _skip_prune(x: Any, s: dict[str, Any] | None, parent: list[str], unknown: list[str]) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        props = s.get("properties") or {}
        ap = s.get("additionalProperties")
        embedded = s.get("x-kubernetes-embedded-resource") is True
        for k in list(x):
            if embedded and k in _META_FIELDS:
                continue
            if k in props:
                _prune(x[k], props[k] if isinstance(props[k], dict) else None, _append_key(parent, k), unknown)
            elif isinstance(ap, dict):
                _prune(x[k], ap, _append_key(parent, k), unknown)
    elif isinstance(x, list):
        items = s.get("items") if isinstance(s.get("items"), dict) else None
        for i, v in enumerate(x):
            _skip_prune(v, items, [*parent, f"[{i}]"], unknown)


# --------------------------------------------------------------------------------------------------
# worst-case serialized size
# --------------------------------------------------------------------------------------------------

_MAX_INT_JSON: Final = len(str(-(2**63)))  # -9223372036854775808
_MAX_FLOAT_JSON: Final = len("-2.2250738585072014e-308")


def _json_string_bytes(max_chars: int) -> int:
    return 2 + 6 * max_chars


def worst_case_json_bytes(schema: dict[str, Any], *, max_key_length: int | None = None) -> int | None:
    """The largest compact JSON (Go encoding/json) any value valid for `schema` can serialize to.

    Assumptions (documented, deliberately simple):
    * strings: `maxLength` runes, each up to 6 bytes (`\\u003c`, invalid UTF-8 as `\\ufffd`); `enum` strings by
      their encoded length; a string without `maxLength` or `enum` is unbounded (None). Formats and patterns
      are not used to bound a length.
    * integers: 20 bytes (`-9223372036854775808`) unless `minimum`/`maximum` bound the digits; numbers 24
      bytes (`-2.2250738585072014e-308`); booleans 5; `nullable` adds the 4 bytes of `null` as an alternative.
    * arrays need `maxItems`, maps (`additionalProperties`) need `maxProperties` and a key bound: the server
      does not limit map keys (there is no `propertyNames` in structural schemas), so maps are unbounded
      unless the caller passes `max_key_length`; objects count every declared property as present (optional
      or not), each key JSON-encoded.
    * `x-kubernetes-preserve-unknown-fields` and `x-kubernetes-embedded-resource` (which keeps metadata) are
      unbounded; allOf/anyOf/oneOf/not are ignored (they only restrict further).
    * a root schema is measured as written: the server keeps `metadata` unpruned, so account for ObjectMeta
      separately (or measure `spec`/`status` only).
    """
    return _worst(schema, max_key_length)


def _worst(s: Any, max_key: int | None) -> int | None:
    if not isinstance(s, dict):
        return None
    if s.get("x-kubernetes-preserve-unknown-fields") is True or s.get("x-kubernetes-embedded-resource") is True:
        return None
    nullable = 4 if s.get("nullable") else 0
    enum = s.get("enum")
    if isinstance(enum, list) and enum:
        return max(max(len(gofmt.go_json(v).encode("utf-8")) for v in enum), nullable)
    if s.get("x-kubernetes-int-or-string") is True:
        ml = s.get("maxLength")
        if not _is_number(ml):
            return None
        return max(_json_string_bytes(int(ml)), _int_bytes(s), nullable)
    typ = s.get("type")
    size: int | None
    if typ == "string":
        ml = s.get("maxLength")
        size = _json_string_bytes(int(ml)) if _is_number(ml) else None
    elif typ == "integer":
        size = _int_bytes(s)
    elif typ == "number":
        size = _MAX_FLOAT_JSON
    elif typ == "boolean":
        size = 5
    elif typ == "array":
        mi = s.get("maxItems")
        item = _worst(s.get("items"), max_key)
        if not _is_number(mi) or item is None:
            return None
        n = int(mi)
        size = 2 + n * item + max(n - 1, 0)
    elif typ == "object":
        ap = s.get("additionalProperties")
        props = s.get("properties") or {}
        total = 2
        count = 0
        for name, prop in props.items():
            v = _worst(prop, max_key)
            if v is None:
                return None
            total += len(gofmt.go_json_string(name).encode("utf-8")) + 1 + v
            count += 1
        if isinstance(ap, dict) or ap is True:
            mp = s.get("maxProperties")
            if not _is_number(mp) or max_key is None:
                return None
            v = _worst(ap, max_key) if isinstance(ap, dict) else None
            if v is None:
                return None
            n = int(mp)
            total += n * (_json_string_bytes(max_key) + 1 + v)
            count += n
        size = total + max(count - 1, 0)
    else:
        return None
    if size is None:
        return None
    return max(size, nullable)


def _int_bytes(s: dict[str, Any]) -> int:
    lo, hi = s.get("minimum"), s.get("maximum")
    if _is_number(lo) and _is_number(hi):
        lo_i, hi_i = math.ceil(lo), math.floor(hi)
        return max(len(str(lo_i)), len(str(hi_i)))
    return _MAX_INT_JSON


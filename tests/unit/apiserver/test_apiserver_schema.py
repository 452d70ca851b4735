"""CRD admission and structural-schema semantics of the emulated kube-apiserver (v1.32)."""

from __future__ import annotations

import copy
import pathlib
from typing import Any

import pytest
import yaml

from llmapp_sandbox.apiserver.errors import FieldError
from llmapp_sandbox.apiserver.schema import (
    apply_defaults,
    check_crd,
    prune,
    strict_decoding_error,
    unknown_field_warnings,
    valid_field_path,
    validate,
    worst_case_json_bytes,
)

REPO = pathlib.Path(__file__).resolve().parents[3]
ROOT = "spec.validation.openAPIV3Schema"
SPEC = f"{ROOT}.properties[spec]"

FARGATE_RULE = (
    "(self.cpu == 256 && self.memory in [512, 1024, 2048]) || (self.cpu == 512 && self.memory >= 1024 && "
    "self.memory <= 4096 && self.memory % 1024 == 0) || (self.cpu == 1024 && self.memory >= 2048 && "
    "self.memory <= 8192 && self.memory % 1024 == 0)")
FARGATE_MESSAGE = ("cpu/memory is not a valid Fargate task size (see "
                   "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html)")


def make_crd(root: dict[str, Any], *, version: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    v = {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": root}}
    v.update(version or {})
    crd: dict[str, Any] = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                 "versions": [v]}}
    crd["spec"].update(spec)
    return crd


def with_spec(spec: dict[str, Any]) -> dict[str, Any]:
    return make_crd({"type": "object", "properties": {"spec": spec}})


def rendered(errors: list[FieldError]) -> list[str]:
    return [e.render() for e in errors]


def llmapp_like(*, metadata_description: bool = True, app_default: bool = True,
                guarded: bool = False) -> dict[str, Any]:
    """The shape of the project's CRD that kube-apiserver v1.32.13 rejected (trimmed)."""
    app: dict[str, Any] = {
        "type": "object",
        "properties": {
            "cpu": {"type": "integer", "default": 1024, "enum": [256, 512, 1024, 2048]},
            "memory": {"type": "integer", "default": 2048, "minimum": 512, "maximum": 122880},
        },
        "x-kubernetes-validations": [{
            "rule": ("!has(self.cpu) || !has(self.memory) || " if guarded else "") + FARGATE_RULE,
            "message": FARGATE_MESSAGE, "fieldPath": ".memory"}],
    }
    if app_default:
        app["default"] = {}
    metadata: dict[str, Any] = {"type": "object"}
    if metadata_description:
        metadata["description"] = "Standard object metadata."
    return make_crd({
        "type": "object", "required": ["spec"],
        "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": metadata,
                       "spec": {"type": "object", "properties": {"app": app}}}})


# --- the behaviour observed on kube-apiserver v1.32.13 --------------------------------------------------

METADATA_FORBIDDEN = (f"{ROOT}.properties[metadata]: Forbidden: must not specify anything other than name and "
                      "generateName, but metadata is implicitly specified")
DEFAULT_NO_SUCH_KEY = (f"{SPEC}.properties[app].default: Invalid value: \"object\": no such key: cpu evaluating rule: "
                       f"{FARGATE_MESSAGE}")


def test_metadata_description_is_forbidden() -> None:
    assert rendered(check_crd(llmapp_like(app_default=False))) == [METADATA_FORBIDDEN]


def test_cel_rule_is_evaluated_against_the_default_as_written() -> None:
    assert rendered(check_crd(llmapp_like(metadata_description=False))) == [DEFAULT_NO_SUCH_KEY]


def test_both_facts_together_and_the_real_server_gating() -> None:
    crd = llmapp_like()
    assert rendered(check_crd(crd)) == [METADATA_FORBIDDEN, DEFAULT_NO_SUCH_KEY]
    # kube-apiserver itself stops after the structural error; the default is reported on the next attempt
    assert rendered(check_crd(crd, all_errors=False)) == [METADATA_FORBIDDEN]


def test_guarded_rule_or_no_default_is_accepted() -> None:
    assert check_crd(llmapp_like(metadata_description=False, guarded=True)) == []
    assert check_crd(llmapp_like(metadata_description=False, app_default=False)) == []


def test_metadata_may_restrict_name_and_generate_name_only() -> None:
    ok = make_crd({"type": "object", "properties": {"metadata": {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 10}, "generateName": {"type": "string"}}}}})
    assert check_crd(ok) == []
    bad = make_crd({"type": "object", "properties": {"metadata": {"type": "object", "properties": {
        "labels": {"type": "object"}}}}})
    assert rendered(check_crd(bad)) == [METADATA_FORBIDDEN]
    assert rendered(check_crd(make_crd({"type": "object", "properties": {"metadata": {"type": "string"}}}))) == [
        f"{ROOT}.properties[metadata].type: Invalid value: \"string\": must be object"]
    nested = with_spec({"type": "object", "allOf": [{"properties": {"metadata": {"maxProperties": 1}}}],
                        "properties": {"metadata": {"type": "object"}}})
    assert f"{SPEC}.allOf[0].properties[metadata]: Forbidden: must not be specified in a nested context" in rendered(
        check_crd(nested))


def test_project_crd_is_checked_without_crashing() -> None:
    crd = yaml.safe_load((REPO / "crds" / "llmapp.yaml").read_text())
    errors = check_crd(crd)
    assert all(isinstance(e, FieldError) for e in errors)


# --- names, versions, printer columns -------------------------------------------------------------------

def test_names_and_versions() -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "bad"},
           "spec": {"group": "example", "scope": "Global", "names": {"plural": "Widgets", "kind": "Widget",
                                                                    "shortNames": ["W"]},
                    "versions": [{"name": "v1", "served": True, "storage": False},
                                 {"name": "v1", "served": True, "storage": False}]}}
    got = rendered(check_crd(crd))
    dns = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
           "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
           "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
    for expected in [
        'metadata.name: Invalid value: "bad": must be spec.names.plural+"."+spec.group',
        'spec.group: Invalid value: "example": should be a domain with at least one dot',
        'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"',
        "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required",
        "spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{...}: must contain unique "
        "version names",
        "spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{...}: must have exactly one "
        "version marked as storage version",
        f'spec.names.plural: Invalid value: "Widgets": {dns}',
        f'spec.names.shortNames[0]: Invalid value: "W": {dns}',
        "status.storedVersions: Invalid value: []string(nil): must have at least one stored version",
    ]:
        assert expected in got
    assert not any("names.singular" in e or "names.listKind" in e for e in got)  # defaulted from kind


def test_printer_columns() -> None:
    crd = make_crd({"type": "object"}, version={"additionalPrinterColumns": [
        {"name": "X", "type": "int"}, {"type": "string", "jsonPath": "spec"},
        {"name": "Ok", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]})
    assert rendered(check_crd(crd)) == [
        'spec.additionalPrinterColumns[0].type: Invalid value: "int": must be one of '
        "boolean,date,integer,number,string",
        "spec.additionalPrinterColumns[0].JSONPath: Required value",
        "spec.additionalPrinterColumns[1].name: Required value",
        'spec.additionalPrinterColumns[1].JSONPath: Invalid value: "spec": must be a simple json path starting with .',
    ]


def test_per_version_schemas_are_reported_per_version() -> None:
    crd = make_crd({"type": "object"})
    other = copy.deepcopy(crd["spec"]["versions"][0])
    other.update(name="v2", storage=False)
    other["schema"]["openAPIV3Schema"] = {"type": "object", "properties": {"x": {"type": "string", "pattern": "("}}}
    crd["spec"]["versions"].append(other)
    assert rendered(check_crd(crd)) == [
        "spec.versions[1].schema.openAPIV3Schema.properties[x].pattern: Invalid value: \"(\": must be a valid regular "
        "expression, but isn't: error parsing regexp: missing closing ): `(`"]


def test_strict_decoding_of_the_crd_itself() -> None:
    crd = with_spec({"type": "object", "properites": {}, "maxLength": "5",
                     "x-kubernetes-validations": [{"rule": "true", "mesage": "x"}]})
    got = rendered(check_crd(crd))
    path = "spec.versions[0].schema.openAPIV3Schema.properties[spec]"
    assert f"{path}.properites: field not declared in schema" in got
    assert f"{path}.x-kubernetes-validations[0].mesage: field not declared in schema" in got
    assert (f"{path}.maxLength: Invalid value: json: cannot unmarshal string into Go struct field "
            "JSONSchemaProps.maxLength of type int64") in got
    assert not any("properites" in e for e in rendered(check_crd(crd, strict=False)))


def test_status_subresource_restricts_the_root() -> None:
    crd = make_crd({"type": "object", "nullable": True, "additionalProperties": {"type": "string"}},
                   version={"subresources": {"status": {}}})
    got = rendered(check_crd(crd))
    assert got[0].startswith(f"{ROOT}: Invalid value: apiextensions.JSONSchemaProps{{...}}: only [Description Type ")
    assert f"{ROOT}.nullable: Forbidden: nullable cannot be true at the root" in got
    assert f"{ROOT}.additionalProperties: Forbidden: must not be used at the root" in got


# --- structural schema rules ----------------------------------------------------------------------------

def test_lookahead_pattern_is_rejected() -> None:
    crd = with_spec({"type": "object", "properties": {"n": {"type": "string", "pattern": "^(?!x)"}}})
    assert rendered(check_crd(crd)) == [
        f"{SPEC}.properties[n].pattern: Invalid value: \"^(?!x)\": must be a valid regular expression, but isn't: "
        "error parsing regexp: invalid or unsupported Perl syntax: `(?!`"]


def test_types_are_required_and_the_root_is_an_object() -> None:
    crd = with_spec({"type": "object", "properties": {
        "q": {}, "a": {"type": "array"}, "i": {"x-kubernetes-int-or-string": True},
        "p": {"x-kubernetes-preserve-unknown-fields": True}, "t": {"type": "bogus"}}})
    assert rendered(check_crd(crd)) == [
        f"{SPEC}.properties[a].items: Required value: must be specified",
        f"{SPEC}.properties[q].type: Required value: must not be empty for specified object fields",
        f'{SPEC}.properties[t].type: Unsupported value: "bogus": supported values: "array", "boolean", "integer", '
        '"number", "object", "string"',
    ]
    assert rendered(check_crd(make_crd({"type": "array", "items": {"type": "string"}}))) == [
        f'{ROOT}.type: Invalid value: "array": must be object at the root']


EXCLUSIVE = "additionalProperties and properties are mutual exclusive"


def test_forbidden_keywords() -> None:
    crd = with_spec({"type": "object", "properties": {
        "a": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "b": {"type": "object", "additionalProperties": False, "properties": {"c": {"type": "string"}}},
        "m": {"type": "object", "additionalProperties": {"type": "string"}, "properties": {"c": {"type": "string"}}},
        "t": {"type": "object", "additionalProperties": True, "properties": {"c": {"type": "string"}}},
        "p": {"type": "object", "x-kubernetes-preserve-unknown-fields": False}}})
    assert rendered(check_crd(crd)) == [
        f"{SPEC}.properties[a].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime "
        "complexity becomes quadratic",
        f"{SPEC}.properties[b].additionalProperties: Forbidden: {EXCLUSIVE}",
        f"{SPEC}.properties[m].additionalProperties: Forbidden: {EXCLUSIVE}",
        f"{SPEC}.properties[p].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined",
    ]
    for keyword, value, message in [
        ("$ref", "#/definitions/x", "$ref is not supported"),
        ("definitions", {"x": {"type": "string"}}, "definitions is not supported"),
        ("id", "x", "id is not supported"),
        ("patternProperties", {"^a": {"type": "string"}}, "patternProperties is not supported"),
        ("dependencies", {"a": ["b"]}, "dependencies is not supported"),
        ("additionalItems", False, "additionalItems is not supported"),
    ]:
        got = rendered(check_crd(with_spec({"type": "object", keyword: value})))
        assert got == [f"{SPEC}.{keyword}: Forbidden: {message}"], keyword


def test_nested_value_validations_must_be_structural() -> None:
    crd = with_spec({"type": "object", "properties": {"a": {"type": "string"}},
                     "anyOf": [{"type": "string", "description": "x"}, {"required": ["a"]}]})
    assert rendered(check_crd(crd)) == [
        f"{SPEC}.anyOf[0].description: Forbidden: must be empty to be structural",
        f"{SPEC}.anyOf[0].type: Forbidden: must be empty to be structural",
    ]
    ios = with_spec({"type": "object", "properties": {"port": {
        "x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}}})
    assert check_crd(ios) == []
    incomplete = make_crd({"type": "object", "properties": {"spec": {"type": "object"}},
                           "allOf": [{"properties": {"status": {"maxProperties": 3}}}]})
    assert rendered(check_crd(incomplete)) == [
        f"{ROOT}.properties[status]: Required value: because it is defined in {ROOT}.allOf[0].properties[status]"]


def test_embedded_resources() -> None:
    crd = with_spec({"type": "object", "properties": {"e": {"type": "object", "x-kubernetes-embedded-resource": True}}})
    assert rendered(check_crd(crd)) == [
        f"{SPEC}.properties[e].properties: Required value: must not be empty if x-kubernetes-embedded-resource is "
        "true without x-kubernetes-preserve-unknown-fields"]
    ok = with_spec({"type": "object", "properties": {"e": {"type": "object", "x-kubernetes-embedded-resource": True,
                                                           "x-kubernetes-preserve-unknown-fields": True}}})
    assert check_crd(ok) == []


# --- list types ----------------------------------------------------------------------------------------

def test_list_type_map_rules() -> None:
    crd = with_spec({"type": "object", "properties": {"l": {
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name", "other"],
        "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}})
    assert rendered(check_crd(crd)) == [
        f"{SPEC}.properties[l].x-kubernetes-list-map-keys: Invalid value: []string{{\"name\", \"other\"}}: "
        "entries must all be names of item properties",
        f"{SPEC}.properties[l].items.properties[name].default: Required value: this property is in "
        "x-kubernetes-list-map-keys, so it must have a default or be a required property",
    ]
    not_object = with_spec({"type": "object", "properties": {"l": {
        "type": "array", "x-kubernetes-list-type": "map", "items": {"type": "string"}}}})
    assert rendered(check_crd(not_object)) == [
        f"{SPEC}.properties[l].x-kubernetes-list-map-keys: Required value: must not be empty if "
        "x-kubernetes-list-type is map",
        f"{SPEC}.properties[l].items.type: Invalid value: \"string\": must be object if parent array's "
        "x-kubernetes-list-type is map",
    ]


def test_list_type_set_and_unknown_list_type() -> None:
    crd = with_spec({"type": "object", "properties": {
        "s": {"type": "array", "x-kubernetes-list-type": "set",
              "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
        "u": {"type": "array", "x-kubernetes-list-type": "bag", "items": {"type": "string"}},
        "k": {"type": "string", "x-kubernetes-list-type": "atomic"}}})
    assert rendered(check_crd(crd)) == [
        f"{SPEC}.properties[s].items.x-kubernetes-map-type: Invalid value: \"null\": must be atomic as item of a list "
        "with x-kubernetes-list-type=set",
        f'{SPEC}.properties[u].x-kubernetes-list-type: Unsupported value: "bag": supported values: "atomic", "set", '
        '"map"',
        f'{SPEC}.properties[k].type: Invalid value: "string": must be array if x-kubernetes-list-type is specified',
    ]


# --- defaults ------------------------------------------------------------------------------------------

def test_defaults_must_be_pruned_and_valid() -> None:
    crd = with_spec({"type": "object", "default": {"bogus": 1, "a": "x"},
                     "properties": {"a": {"type": "string", "enum": ["y"]}}})
    assert rendered(check_crd(crd)) == [
        f'{SPEC}.default: Invalid value: map[string]interface {{}}{{"a":"x", "bogus":1}}: must not have unknown fields',
        f'{SPEC}.default.a: Unsupported value: "x": supported values: "y"',
    ]
    crd = make_crd({"type": "object", "properties": {"metadata": {"type": "object", "default": {}}}})
    assert rendered(check_crd(crd)) == [f"{ROOT}.properties[metadata].default: Forbidden: must not be set in "
                                        "top-level metadata"]


def test_default_is_checked_against_nested_rules_without_applying_nested_defaults() -> None:
    crd = with_spec({"type": "object", "default": {"inner": {}}, "properties": {"inner": {
        "type": "object", "properties": {"n": {"type": "integer", "default": 1}},
        "x-kubernetes-validations": [{"rule": "self.n > 0"}]}}})
    assert rendered(check_crd(crd)) == [
        f'{SPEC}.default.inner: Invalid value: "object": no such key: n evaluating rule: self.n > 0']


# --- x-kubernetes-validations at admission ---------------------------------------------------------------

def test_undefined_field_in_a_rule() -> None:
    crd = with_spec({"type": "object", "properties": {"cpu": {"type": "integer"}},
                     "x-kubernetes-validations": [{"rule": "self.cpux == 1"}]})
    assert rendered(check_crd(crd)) == [
        f"{SPEC}.x-kubernetes-validations[0].rule: Invalid value: "
        "apiextensions.ValidationRule{Rule:\"self.cpux == 1\", Message:\"\", MessageExpression:\"\", "
        "Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", "
        "OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:5: undefined field 'cpux'\n"
        " | self.cpux == 1\n | ....^"]


def test_rule_fields_are_validated() -> None:
    crd = with_spec({"type": "object", "properties": {"a": {"type": "string"}}, "x-kubernetes-validations": [
        {"rule": "true", "reason": "Nope"}, {"rule": "true", "fieldPath": ".zzz"}, {"rule": "true", "message": "a\nb"},
        {"rule": ""}, {"rule": "true\n|| false"}, {"rule": "true", "fieldPath": ".a"}]})
    assert rendered(check_crd(crd)) == [
        f'{SPEC}.x-kubernetes-validations[0].reason: Unsupported value: "Nope": supported values: '
        '"FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"',
        f'{SPEC}.x-kubernetes-validations[1].fieldPath: Invalid value: ".zzz": fieldPath must be a valid path',
        f'{SPEC}.x-kubernetes-validations[2].message: Invalid value: "a\\nb": message must not contain line breaks',
        f"{SPEC}.x-kubernetes-validations[3].rule: Required value: rule is not specified",
        f"{SPEC}.x-kubernetes-validations[4].message: Required value: message must be specified if rule contains "
        "line breaks",
    ]


def test_message_expression_must_be_a_string() -> None:
    crd = with_spec({"type": "object", "x-kubernetes-validations": [{"rule": "true", "messageExpression": "1"}]})
    assert rendered(check_crd(crd)) == [
        f"{SPEC}.x-kubernetes-validations[0].messageExpression: Invalid value: apiextensions.ValidationRule{{Rule:"
        "\"true\", Message:\"\", MessageExpression:\"1\", Reason:(*apiextensions.FieldValueErrorReason)(nil), "
        "FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: messageExpression must evaluate to a string"]


def test_old_self_needs_a_correlatable_value() -> None:
    items = {"type": "string", "maxLength": 10, "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}
    atomic = with_spec({"type": "object", "properties": {"l": {"type": "array", "maxItems": 5, "items": items}}})
    assert rendered(check_crd(atomic)) == [
        f'{SPEC}.properties[l].items.x-kubernetes-validations[0].rule: Invalid value: "self == oldSelf": oldSelf '
        f"cannot be used on the uncorrelatable portion of the schema within {SPEC}.properties[l]"]
    keyed = with_spec({"type": "object", "properties": {"l": {
        "type": "array", "maxItems": 5, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"],
        "items": {"type": "object", "required": ["k"], "properties": {"k": {"type": "string", "maxLength": 5}},
                  "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}}}})
    assert check_crd(keyed) == []


COST_ITEMS = {"type": "string", "maxLength": 63}
COST_RULE = [{"rule": "self.all(x, x.matches('^[a-z]+$'))"}]


def test_unbounded_list_rule_exceeds_the_cost_budget() -> None:
    crd = with_spec({"type": "object", "properties": {"l": {
        "type": "array", "items": COST_ITEMS, "x-kubernetes-validations": COST_RULE}}})
    assert rendered(check_crd(crd)) == [
        f"{SPEC}.properties[l].x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget by "
        "factor of 5.9x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, "
        "maps, and strings are declared)"]


def test_same_rule_with_max_items_passes() -> None:
    crd = with_spec({"type": "object", "properties": {"l": {
        "type": "array", "maxItems": 10, "items": COST_ITEMS, "x-kubernetes-validations": COST_RULE}}})
    assert check_crd(crd) == []


def test_enclosing_unbounded_list_multiplies_the_cost() -> None:
    inner = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}},
             "x-kubernetes-validations": [{"rule": "self.name.matches('^[a-z]+$')"}]}
    bounded = with_spec({"type": "object", "properties": {"l": {"type": "array", "maxItems": 100, "items": inner}}})
    assert check_crd(bounded) == []
    unbounded = with_spec({"type": "object", "properties": {"l": {"type": "array", "items": inner}}})
    got = rendered(check_crd(unbounded))
    assert len(got) == 1 and "estimated rule cost exceeds budget by factor of" in got[0]


def test_total_cost_for_the_whole_crd() -> None:
    big = {"type": "array", "maxItems": 5000, "items": {"type": "string", "maxLength": 1000},
           "x-kubernetes-validations": [{"rule": "self.all(x, x.contains('a'))"}]}
    crd = with_spec({"type": "object", "properties": {f"l{i}": copy.deepcopy(big) for i in range(60)}})
    got = rendered(check_crd(crd))
    assert len(got) == 5
    assert all(e.endswith("Forbidden: contributed to estimated rule cost total exceeding cost limit for entire "
                          "OpenAPIv3 schema") for e in got[:4])
    assert got[4] == (f"{ROOT}: Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 "
                      "schema exceeds budget by factor of 1.212001x (try simplifying the rule, or adding maxItems, "
                      "maxProperties, and maxLength where arrays, maps, and strings are declared)")


def test_valid_field_path() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "object", "properties": {"b.c": {"type": "string"}}},
                                               "m": {"type": "object", "additionalProperties": {"type": "string"}}}}
    assert valid_field_path(".a['b.c']", schema)[0] == "a.b.c"
    assert valid_field_path(".m.key", schema)[0] == "m[key]"
    with pytest.raises(ValueError, match="does not refer to a valid field"):
        valid_field_path(".x", schema)


# --- validate -------------------------------------------------------------------------------------------

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {
            "type": "object", "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": "[a-z]", "minLength": 2, "maxLength": 5},
                "policy": {"type": "string", "enum": ["Delete", "Orphan"]},
                "count": {"type": "integer", "minimum": 1, "maximum": 10, "multipleOf": 2},
                "ratio": {"type": "number", "exclusiveMinimum": True, "minimum": 0.5},
                "opt": {"type": "string", "nullable": True},
                "tags": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"}},
                "env": {"type": "object", "maxProperties": 2,
                        "additionalProperties": {"type": "string", "maxLength": 3}},
                "port": {"x-kubernetes-int-or-string": True},
                "when": {"type": "string", "format": "date-time"},
                "blob": {"type": "string", "format": "byte"},
                "id": {"type": "string", "format": "uuid"},
                "big": {"type": "integer", "format": "int32"},
                "vars": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "conditions": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
                               "items": {"type": "object", "required": ["type"],
                                         "properties": {"type": {"type": "string"}, "status": {"type": "string"}}}},
                "names": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            },
        },
    },
}


def obj(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"name": "abc", **spec}}


def errors_of(value: Any, schema: dict[str, Any] = SCHEMA, **kwargs: Any) -> list[str]:
    return rendered(validate(value, schema, **kwargs))


BLOCKED = ('<nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; '
           "correct the existing errors to complete validation")


def test_valid_object() -> None:
    assert errors_of(obj(policy="Delete", count=4, ratio=1, opt=None, tags=["a"], env={"A": "x"}, port="80%",
                         when="2024-01-02T03:04:05Z", blob="aGk=", id="123e4567-e89b-12d3-a456-426614174000",
                         big=2**40, vars={"x": [1]})) == []


@pytest.mark.parametrize(("spec", "expected"), [
    ({"name": "ABCDE"}, ['spec.name: Invalid value: "ABCDE": spec.name in body should match \'[a-z]\'']),
    ({"name": "a"}, ['spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long']),
    ({"name": "ééééa"}, []),  # lengths count code points, not bytes
    ({"name": "abcdef"}, ["spec.name: Too long: may not be more than 5 bytes"]),
    ({"policy": "Nope"}, ['spec.policy: Unsupported value: "Nope": supported values: "Delete", "Orphan"']),
    ({"count": 1.5}, ['spec.count: Invalid value: "number": spec.count in body must be of type integer: "number"',
                      "spec.count: Invalid value: 1.5: spec.count in body should be a multiple of 2"]),
    ({"count": 4.0}, []),  # a float without fraction is an integer
    ({"count": 12}, ["spec.count: Invalid value: 12: spec.count in body should be less than or equal to 10"]),
    ({"count": 0}, ["spec.count: Invalid value: 0: spec.count in body should be greater than or equal to 1"]),
    ({"count": 3}, ["spec.count: Invalid value: 3: spec.count in body should be a multiple of 2"]),
    ({"ratio": 0.5}, ["spec.ratio: Invalid value: 0.5: spec.ratio in body should be greater than 0.5"]),
    ({"ratio": 2}, []),  # number accepts integers
    ({"opt": 1}, ['spec.opt: Invalid value: "integer": spec.opt in body must be of type string: "integer"']),
    ({"tags": None}, ['spec.tags: Invalid value: "null": spec.tags in body must be of type array: "null"']),
    ({"tags": []}, ["spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"]),
    ({"tags": ["a", "b", "c"]}, ["spec.tags: Too many: 3: must have at most 2 items"]),
    ({"tags": [1]}, ['spec.tags[0]: Invalid value: "integer": spec.tags[0] in body must be of type string: "integer"']),
    ({"env": {"A": "x", "B": "y", "C": "z"}}, ["spec.env: Too many: 3: must have at most 2 items"]),
    ({"env": {"A": "long"}}, ["spec.env.A: Too long: may not be more than 3 bytes"]),
    ({"port": True}, ['spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: '
                      '"boolean"']),
    ({"when": "yesterday"}, ['spec.when: Invalid value: "yesterday": spec.when in body must be of type date-time: '
                             '"yesterday"']),
    ({"blob": "not base64!"}, ['spec.blob: Invalid value: "not base64!": spec.blob in body must be of type byte: '
                               '"not base64!"']),
    ({"id": "nope"}, ['spec.id: Invalid value: "nope": spec.id in body must be of type uuid: "nope"']),
])
def test_kube_openapi_messages(spec: dict[str, Any], expected: list[str]) -> None:
    assert errors_of(obj(**spec)) == expected


def test_required_fields() -> None:
    assert errors_of({"spec": {}}) == ["spec.name: Required value"]
    assert errors_of({}, {"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object"}}}) == [
        "spec: Required value"]


def test_additional_properties_false_is_a_forbidden_property() -> None:
    schema = {"type": "object", "properties": {"m": {"type": "object", "additionalProperties": False}}}
    assert errors_of({"m": {"x": 1}}, schema) == ['m: Invalid value: "x": m.x in body is a forbidden property']


def test_list_type_map_and_set_duplicates() -> None:
    status = {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Ready", "status": "False"}],
              "names": ["a", "b", "a"]}
    assert errors_of({**obj(), "status": status}) == [
        'status.conditions[1]: Duplicate value: map[string]interface {}{"type":"Ready"}',
        'status.names[2]: Duplicate value: "a"',
    ]


def test_embedded_resources_need_api_version_and_kind() -> None:
    schema = {"type": "object", "properties": {"tpl": {"type": "object", "x-kubernetes-embedded-resource": True,
                                                       "x-kubernetes-preserve-unknown-fields": True}}}
    assert errors_of({"tpl": {"metadata": {}}}, schema) == [
        "tpl.apiVersion: Required value: must not be empty", "tpl.kind: Required value: must not be empty"]
    assert errors_of({"tpl": {"apiVersion": "v1", "kind": "ConfigMap"}}, schema) == []


CEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "app": {
                    "type": "object",
                    "properties": {"cpu": {"type": "integer"}, "memory": {"type": "integer"}},
                    "x-kubernetes-validations": [{"rule": FARGATE_RULE, "message": FARGATE_MESSAGE,
                                                  "fieldPath": ".memory"}],
                },
                "region": {"type": "string", "x-kubernetes-validations": [
                    {"rule": "self == oldSelf", "message": "region is immutable"}]},
                "size": {"type": "integer", "enum": [1, 2]},
                "mode": {"type": "string", "x-kubernetes-validations": [
                    {"rule": "self != 'bad'", "reason": "FieldValueForbidden", "message": "no"},
                    {"rule": "self != 'dup'", "reason": "FieldValueDuplicate"},
                    {"rule": "self != 'req'", "messageExpression": "'mode ' + self + ' is not allowed'"}]},
                "items": {"type": "array", "items": {"type": "string", "x-kubernetes-validations": [
                    {"rule": "self == oldSelf"}]}},
                "keyed": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"],
                          "items": {"type": "object", "required": ["k"],
                                    "properties": {"k": {"type": "string"}, "v": {"type": "string"}},
                                    "x-kubernetes-validations": [{"rule": "self.v == oldSelf.v",
                                                                  "message": "frozen"}]}},
            },
        },
    },
}


def test_cel_rule_failure_uses_message_and_field_path() -> None:
    assert errors_of({"spec": {"app": {"cpu": 256, "memory": 4096}}}, CEL_SCHEMA) == [
        f'spec.app.memory: Invalid value: "object": {FARGATE_MESSAGE}']
    assert errors_of({"spec": {"app": {"cpu": 256, "memory": 512}}}, CEL_SCHEMA) == []


def test_cel_evaluation_error() -> None:
    assert errors_of({"spec": {"app": {}}}, CEL_SCHEMA) == [
        f'spec.app: Invalid value: "object": no such key: cpu evaluating rule: {FARGATE_MESSAGE}']


def test_cel_reasons_and_message_expression() -> None:
    assert errors_of({"spec": {"mode": "bad"}}, CEL_SCHEMA) == ["spec.mode: Forbidden: no"]
    assert errors_of({"spec": {"mode": "dup"}}, CEL_SCHEMA) == ['spec.mode: Duplicate value: "string"']
    assert errors_of({"spec": {"mode": "req"}}, CEL_SCHEMA) == [
        'spec.mode: Invalid value: "string": mode req is not allowed']


def test_transition_rule_fails_when_changed_and_is_skipped_on_create() -> None:
    new = {"spec": {"region": "eu-west-1"}}
    assert errors_of(new, CEL_SCHEMA) == []
    assert errors_of(new, CEL_SCHEMA, old={"spec": {"region": "eu-west-1"}}) == []
    assert errors_of(new, CEL_SCHEMA, old={"spec": {"region": "us-east-1"}}) == [
        'spec.region: Invalid value: "string": region is immutable']
    assert errors_of(new, CEL_SCHEMA, old={"spec": {}}) == []  # no correlated old value


def test_transition_rules_correlate_map_lists_by_key_but_not_atomic_lists() -> None:
    old = {"spec": {"items": ["a"], "keyed": [{"k": "x", "v": "1"}, {"k": "y", "v": "2"}]}}
    new = {"spec": {"items": ["b"], "keyed": [{"k": "y", "v": "2"}, {"k": "x", "v": "changed"}, {"k": "z", "v": "3"}]}}
    assert errors_of(new, CEL_SCHEMA, old=old) == ['spec.keyed[1]: Invalid value: "object": frozen']


def test_blocking_errors_skip_cel() -> None:
    assert errors_of({"spec": {"size": 3, "mode": "bad"}}, CEL_SCHEMA) == [
        'spec.size: Unsupported value: 3: supported values: "1", "2"', BLOCKED]
    assert errors_of({"spec": {"size": 3, "mode": "bad"}}, CEL_SCHEMA, check_cel=False) == [
        'spec.size: Unsupported value: 3: supported values: "1", "2"']


# --- defaulting and pruning ----------------------------------------------------------------------------

DEFAULTS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "app": {"type": "object", "default": {},
                        "properties": {"cpu": {"type": "integer", "default": 1024},
                                       "image": {"type": "string", "default": ""},
                                       "note": {"type": "string"},
                                       "maybe": {"type": "string", "nullable": True}}},
                "ports": {"type": "array", "items": {"type": "object", "properties": {
                    "port": {"type": "integer", "default": 80}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string", "default": "x"}},
            },
        },
    },
}


def test_defaults_are_applied_recursively_and_nulls_handled() -> None:
    value = {"spec": {"ports": [{}, {"port": 1}], "labels": {"a": None, "b": "y"}}}
    assert apply_defaults(value, DEFAULTS) == {"spec": {
        "ports": [{"port": 80}, {"port": 1}], "labels": {"a": "x", "b": "y"},
        "app": {"cpu": 1024, "image": ""}}}
    assert value == {"spec": {"ports": [{}, {"port": 1}], "labels": {"a": None, "b": "y"}}}  # not mutated
    nulls = {"spec": {"app": {"cpu": None, "note": None, "maybe": None}}}
    assert apply_defaults(nulls, DEFAULTS) == {"spec": {"app": {"cpu": 1024, "image": "", "maybe": None}}}


def test_defaults_are_deep_copies() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "object", "default": {"l": [1]},
                                                     "properties": {"l": {"type": "array",
                                                                          "items": {"type": "integer"}}}}}}
    first = apply_defaults({}, schema)
    first["a"]["l"].append(2)
    assert apply_defaults({}, schema) == {"a": {"l": [1]}}


def test_prune_reports_unknown_fields() -> None:
    value: dict[str, Any] = {"apiVersion": "v", "kind": "K", "metadata": {"name": "n", "whatever": 1},
             "spec": {"name": "x", "bogus": 1, "tags": ["a"], "vars": {"anything": {"deep": 1}},
                      "env": {"A": "1"}},
             "status": {"kopf": {"progress": {}}, "conditions": [{"type": "Ready", "extra": 1}]},
             "top": 1}
    pruned, unknown = prune(value, SCHEMA)
    assert unknown == ["spec.bogus", "status.conditions[0].extra", "status.kopf", "top"]
    assert pruned["metadata"] == {"name": "n", "whatever": 1}  # ObjectMeta is the server's business
    assert pruned["spec"]["vars"] == {"anything": {"deep": 1}}
    assert pruned["status"] == {"conditions": [{"type": "Ready"}]}
    assert "bogus" in value["spec"]  # not mutated
    assert strict_decoding_error(unknown) == (
        'strict decoding error: unknown field "spec.bogus", unknown field "status.conditions[0].extra", '
        'unknown field "status.kopf", unknown field "top"')
    assert unknown_field_warnings(["spec.bogus"]) == ['unknown field "spec.bogus"']
    assert strict_decoding_error([]) is None


def test_prune_inside_preserved_objects_with_properties() -> None:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
              "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}}
    pruned, unknown = prune({"free": 1, "known": {"a": "x", "b": 2}}, schema, root=False)
    assert pruned == {"free": 1, "known": {"a": "x"}}
    assert unknown == ["known.b"]


# --- worst-case size ------------------------------------------------------------------------------------

def test_worst_case_json_bytes() -> None:
    assert worst_case_json_bytes({"type": "string", "maxLength": 10}) == 62
    assert worst_case_json_bytes({"type": "string"}) is None
    assert worst_case_json_bytes({"type": "string", "enum": ["Delete", "Orphan"]}) == 8
    assert worst_case_json_bytes({"type": "integer"}) == 20
    assert worst_case_json_bytes({"type": "integer", "minimum": 1, "maximum": 65535}) == 5
    assert worst_case_json_bytes({"type": "boolean"}) == 5
    assert worst_case_json_bytes({"type": "array", "maxItems": 3, "items": {"type": "boolean"}}) == 2 + 15 + 2
    assert worst_case_json_bytes({"type": "array", "items": {"type": "boolean"}}) is None
    obj_schema = {"type": "object", "properties": {"a": {"type": "boolean"}, "bb": {"type": "integer", "maximum": 9,
                                                                                    "minimum": 0}}}
    assert worst_case_json_bytes(obj_schema) == len('{"a":false,"bb":9}')
    env = {"type": "object", "maxProperties": 2, "additionalProperties": {"type": "string", "maxLength": 1}}
    assert worst_case_json_bytes(env) is None
    assert worst_case_json_bytes(env, max_key_length=3) == 2 + 2 * (20 + 1 + 8) + 1
    assert worst_case_json_bytes({"type": "object", "x-kubernetes-preserve-unknown-fields": True}) is None


# --- odds and ends ----------------------------------------------------------------------------------------

def test_root_level_rule_errors_have_a_nil_path() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}},
              "x-kubernetes-validations": [{"rule": "self.a > 1", "message": "a too small"}]}
    assert errors_of({"a": 1}, schema) == ['<nil>: Invalid value: "object": a too small']
    field = {"type": "object", "properties": {"a": {"type": "integer"}},
             "x-kubernetes-validations": [{"rule": "self.a > 1", "message": "a too small", "fieldPath": ".a"}]}
    assert errors_of({"a": 1}, field) == ['a: Invalid value: "object": a too small']


def test_embedded_resource_errors_block_cel() -> None:
    schema = {"type": "object", "properties": {
        "tpl": {"type": "object", "x-kubernetes-embedded-resource": True, "x-kubernetes-preserve-unknown-fields": True},
        "n": {"type": "integer", "x-kubernetes-validations": [{"rule": "self > 1"}]}}}
    assert errors_of({"tpl": {"kind": "ConfigMap"}, "n": 0}, schema) == [
        "tpl.apiVersion: Required value: must not be empty", BLOCKED]


def test_rules_on_values_cel_cannot_see_are_an_internal_error() -> None:
    crd = with_spec({"type": "object", "properties": {"free": {
        "x-kubernetes-preserve-unknown-fields": True, "x-kubernetes-validations": [{"rule": "true"}]}}})
    assert rendered(check_crd(crd)) == [
        f"{SPEC}.properties[free].x-kubernetes-validations: Internal error: internal error: failed to construct type "
        "information for x-kubernetes-validations rules: unable to convert structural schema to CEL declarations"]


def test_rules_are_compiled_against_the_current_schema() -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"a": {"type": "integer"}},
                              "x-kubernetes-validations": [{"rule": "self.a > 1"}]}
    assert errors_of({"a": 1}, schema) == ['<nil>: Invalid value: "object": failed rule: self.a > 1']
    schema["x-kubernetes-validations"] = [{"rule": "self.a > 0"}]
    assert errors_of({"a": 1}, schema) == []

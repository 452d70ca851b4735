"""The Kubernetes JSONPath subset of the emulated kube-apiserver: parsing, evaluation, client-go's quirks."""

from __future__ import annotations

import re
from typing import Any

import pytest

from llmapp_sandbox.apiserver.gofmt import go_format_float, go_sprint
from llmapp_sandbox.apiserver.jsonpath import (
    MISSING,
    JSONPath,
    JSONPathError,
    column_path,
    evaluate,
    first_value,
    relaxed_expression,
)

APP: dict[str, Any] = {
    "apiVersion": "llmops.dev/v1alpha1",
    "kind": "LLMApp",
    "metadata": {"name": "rags", "labels": {"app.kubernetes.io/name": "rags", "tier": "web"}},
    "spec": {"app": {"cpu": 1024, "secrets": [{"name": "A"}, {"name": "B"}]}},
    "status": {
        "phase": "Ready",
        "url": None,
        "conditions": [
            {"type": "Synced", "status": "True", "observedGeneration": 2},
            {"type": "Ready", "status": "False", "observedGeneration": 1},
            {"type": "Ready", "status": "True", "observedGeneration": 2},
        ],
    },
}


@pytest.mark.parametrize(("expression", "expected"), [
    (".status.phase", ["Ready"]),
    ("{.status.phase}", ["Ready"]),
    (".spec.app.cpu", [1024]),
    (".spec.app.secrets[0].name", ["A"]),
    (".spec.app.secrets[-1].name", ["B"]),
    (".spec.app.secrets[*].name", ["A", "B"]),
    (".spec.app.secrets[0:1].name", ["A"]),
    (".spec.app.secrets[0,1].name", ["A", "B"]),
    (".spec.app.secrets[*]", [{"name": "A"}, {"name": "B"}]),
    (".metadata.labels.app\\.kubernetes\\.io/name", ["rags"]),
    (".metadata.labels.*", ["rags", "web"]),
    ("['status']['phase']", ["Ready"]),
    (".status.conditions[?(@.type==\"Ready\")].status", ["False", "True"]),
    (".status.conditions[?(@.type=='Ready')].status", ["False", "True"]),
    (".status.conditions[?(@.type!=\"Ready\")].type", ["Synced"]),
    (".status.conditions[?(@.observedGeneration>1)].type", ["Synced", "Ready"]),
    (".status.conditions[?(@.observedGeneration<=1)].status", ["False"]),
    (".status.conditions[?(@.observedGeneration)].type", ["Synced", "Ready", "Ready"]),
    (".spec.app..name", ["A", "B"]),
    (".status.url", [None]),
    (".status.nothing", []),
    (".nothing.at.all", []),
    (".spec.app.cpu.deeper", []),
])
def test_evaluate(expression: str, expected: list[Any]) -> None:
    assert evaluate(expression, APP) == expected


def test_find_results_has_one_list_per_template_node() -> None:
    path = JSONPath("phase={.status.phase}, first={.spec.app.secrets[*].name}")
    assert path.find_results(APP) == [["phase="], ["Ready"], [", first="], ["A", "B"]]
    assert path.execute(APP) == "phase=Ready, first=A B"


@pytest.mark.parametrize(("template", "message"), [
    ("{.spec.app.secrets[5]}", "array index out of bounds: index 5, length 2"),
    ("{.spec.app[0]}", "map[string]interface {} is not array or slice"),
    ("{.spec.app[?(@.x==\"y\")]}", "is not array or slice and cannot be filtered"),
    # A filter whose left side finds nothing is an error, not a non-match (client-go).
    ("{.spec.app.secrets[?(@.missing==\"y\")]}", "can only compare one element at a time"),
    # Comparing different kinds is an error: an integer with a float, a string with a number.
    ("{.status.conditions[?(@.observedGeneration==2.0)]}", "incompatible types for comparison"),
    ("{.status.conditions[?(@.type==1)]}", "incompatible types for comparison"),
    # client-go parses `true` but its walker has no case for booleans.
    ("{.status.conditions[?(@.status==true)]}", "unexpected Node {true}"),
    ("{range .items[*]}{.a}{end}", "not supported"),
])
def test_evaluation_errors(template: str, message: str) -> None:
    with pytest.raises(JSONPathError, match=re.escape(message)):
        JSONPath(template).find_results(APP)


def test_missing_keys_are_errors_only_when_not_allowed() -> None:
    assert JSONPath("{.status.nothing}").find_results(APP) == [[]]
    with pytest.raises(JSONPathError, match="nothing is not found"):
        JSONPath("{.status.nothing}", allow_missing_keys=False).find_results(APP)


@pytest.mark.parametrize(("template", "message"), [
    ("{.status.phase", "unclosed action"),
    ("{.a[0}", "unterminated array"),
    ("{.a[x]}", "invalid array index x"),
    ("{.a[?(@.b==\"c\"}", "unterminated filter"),
    ("{.a[?(@.b==\"c\")}", "unclosed array expect ]"),
    ("{\"abc}", "unterminated quoted string"),
    ("{.a..b..c}", None),
    ("{#}", "unrecognized character in action: U+0023 '#'"),
    ("{-}", "cannot parse number -"),
])
def test_parse_errors(template: str, message: str | None) -> None:
    if message is None:
        JSONPath(template)  # `..` twice in a row is the error; separated, it parses
        return
    with pytest.raises(JSONPathError, match=re.escape(message)):
        JSONPath(template)


def test_double_recursive_descent_is_rejected() -> None:
    with pytest.raises(JSONPathError, match="invalid multiple recursive descent"):
        JSONPath("{....a}")


def test_dict_key_with_dots_is_reparsed_as_a_field_path() -> None:
    # client-go turns ['a.b'] into .a.b: a key containing dots needs backslash escapes instead.
    assert evaluate(".metadata.labels['app.kubernetes.io/name']", APP) == []
    assert evaluate(".metadata.labels['tier']", APP) == ["web"]


def test_column_path_and_first_value_read_a_cell_like_the_table_convertor() -> None:
    ready = column_path('.status.conditions[?(@.type=="Ready")].status')
    assert first_value(ready, APP) == "False"  # the first of several matches
    assert first_value(column_path(".status.missing"), APP) is MISSING
    assert first_value(column_path(".spec.app.secrets[9]"), APP) is MISSING  # errors read as no value
    with pytest.raises(JSONPathError, match="unrecognized column definition"):
        column_path(".a[")


@pytest.mark.parametrize(("expression", "relaxed"), [
    ("status.phase", "{.status.phase}"),
    (".status.phase", "{.status.phase}"),
    ("{status.phase}", "{.status.phase}"),
    ("{.status.phase}", "{.status.phase}"),
    ("", ""),
])
def test_relaxed_expression_like_kubectl(expression: str, relaxed: str) -> None:
    assert relaxed_expression(expression) == relaxed


def test_relaxed_expression_rejects_templates() -> None:
    with pytest.raises(JSONPathError, match="unexpected path string"):
        relaxed_expression("{.a}{.b}")


@pytest.mark.parametrize(("value", "text"), [
    (1.5, "1.5"), (3.0, "3"), (100000.0, "100000"), (1e6, "1e+06"), (1234567.0, "1.234567e+06"),
    (0.0001, "0.0001"), (0.00001, "1e-05"), (-2.5, "-2.5"), (1e21, "1e+21"), (123456789.0, "1.23456789e+08"),
    (0.0, "0"), (float("inf"), "+Inf"),
])
def test_floats_print_like_go(value: float, text: str) -> None:
    assert go_format_float(value) == text


def test_values_print_like_go_fmt() -> None:
    assert go_sprint("x") == "x"
    assert go_sprint(True) == "true"
    assert go_sprint(None) == "<nil>"
    assert go_sprint(12) == "12"
    assert go_sprint({"b": 1, "a": [1, "x", None]}) == "map[a:[1 x <nil>] b:1]"

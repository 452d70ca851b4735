"""Label and field selectors of the emulated kube-apiserver: syntax, validation, errors and matching."""

from __future__ import annotations

import pytest

from llmapp_sandbox.apiserver.errors import ApiError
from llmapp_sandbox.apiserver.gofmt import go_quote
from llmapp_sandbox.apiserver.selectors import (
    SelectorError,
    field_values,
    label_selector_from_dict,
    parse_field_selector,
    parse_label_selector,
    supported_field_labels,
)

KEY_REGEX_HELP = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                  "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
                  "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
VALUE_REGEX_HELP = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


def label_error(text: str) -> str:
    with pytest.raises(ApiError) as raised:
        parse_label_selector(text)
    assert (raised.value.status, raised.value.reason) == (400, "BadRequest")
    return raised.value.message


def field_error(text: str, kind: str = "Pod", group: str = "", **kwargs: object) -> str:
    with pytest.raises(ApiError) as raised:
        parse_field_selector(text, kind, group, **kwargs)  # type: ignore[arg-type]
    assert (raised.value.status, raised.value.reason) == (400, "BadRequest")
    return raised.value.message


# ---------------------------------------------------------------------------------------------- labels


LABELS = {"app.kubernetes.io/name": "llmapp", "tier": "api", "env": "prod", "replicas": "3"}


@pytest.mark.parametrize(("selector", "matches"), [
    ("", True),
    ("tier=api", True), ("tier==api", True), ("tier=web", False), ("tier!=web", True), ("tier!=api", False),
    ("missing!=x", True),
    ("tier in (api,web)", True), ("tier in (web)", False), ("tier notin (web)", True), ("tier notin (api)", False),
    ("missing notin (x)", True), ("missing in (x)", False),
    ("tier", True), ("missing", False), ("!missing", True), ("!tier", False),
    ("app.kubernetes.io/name=llmapp,tier=api", True), ("app.kubernetes.io/name=llmapp,tier=web", False),
    ("  tier = api , env in ( prod , dev ) ", True),
    ("replicas>2", True), ("replicas<3", False), ("tier>1", False),
    ("tier in (in),env", False), ("in in (x)", False),
    ("tier=", False), ("missing in ()", False), ("x notin ()", True),
])
def test_label_selector_matching(selector: str, matches: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is matches


def test_empty_value_matches_empty_label() -> None:
    assert parse_label_selector("a=").matches({"a": ""})
    assert parse_label_selector("a in ()").matches({"a": ""})
    assert parse_label_selector("a in (,x)").matches({"a": ""})


def test_label_selector_string_is_sorted_and_canonical() -> None:
    assert str(parse_label_selector("z=1,a in (y, x),!b")) == "a in (x,y),!b,z=1"


@pytest.mark.parametrize(("selector", "message"), [
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("a=b=c", "found '=', expected: ',' or 'end of string'"),
    (",a", "found ',', expected: !, identifier, or 'end of string'"),
    ("a,", "found '', expected: identifier after ','"),
    ("a in x", "unable to parse requirement: found 'x' expected: '('"),
    ("a in (x", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("a in (x y)", "unable to parse requirement: found 'y', expected: ',' or ')'"),
    ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
    ("a=(", "unable to parse requirement: found '(', expected: identifier"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("a>b", "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must "
            "be an integer"),
    ("a@b=c", f'unable to parse requirement: <nil>: Invalid value: "a@b": name part {KEY_REGEX_HELP}'),
    ("-a", f'unable to parse requirement: <nil>: Invalid value: "-a": name part {KEY_REGEX_HELP}'),
    ("/a", 'unable to parse requirement: <nil>: Invalid value: "/a": prefix part must be non-empty'),
    ("a/", 'unable to parse requirement: <nil>: Invalid value: "a/": name part must be non-empty; name part '
           + KEY_REGEX_HELP),
    ("Example.com/a", 'unable to parse requirement: <nil>: Invalid value: "Example.com/a": prefix part a lowercase '
                      "RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
                      "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
                      "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
    ("a=b@", f'unable to parse requirement: values[0][a]: Invalid value: "b@": {VALUE_REGEX_HELP}'),
    ("a in (ok,-bad)", f'unable to parse requirement: values[0][a]: Invalid value: "-bad": {VALUE_REGEX_HELP}'),
    ("a=" + "x" * 64, f'unable to parse requirement: values[0][a]: Invalid value: "{"x" * 64}": must be no more '
                      f"than 63 characters"),
    ("k" * 64, f'unable to parse requirement: <nil>: Invalid value: "{"k" * 64}": name part must be no more than 63 '
               "characters"),
])
def test_label_selector_errors(selector: str, message: str) -> None:
    assert label_error(selector) == message


def test_two_invalid_values_are_aggregated() -> None:
    assert label_error("a in (-x,-y)") == (
        f'unable to parse requirement: [values[0][a]: Invalid value: "-x": {VALUE_REGEX_HELP}, '
        f'values[1][a]: Invalid value: "-y": {VALUE_REGEX_HELP}]')


def test_label_selector_from_object() -> None:
    selector = label_selector_from_dict({"matchLabels": {"tier": "api"},
                                         "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]},
                                                              {"key": "gone", "operator": "DoesNotExist"}]})
    assert selector.matches(LABELS)
    assert not selector.matches({"tier": "api"})
    assert label_selector_from_dict({}).matches({})  # empty selects everything
    assert not label_selector_from_dict(None).matches({})  # nil selects nothing
    with pytest.raises(SelectorError, match='"Like" is not a valid label selector operator'):
        label_selector_from_dict({"matchExpressions": [{"key": "a", "operator": "Like"}]})


def test_requires_exact_match() -> None:
    assert parse_label_selector("a=b,c").requires_exact_match("a") == "b"
    assert parse_label_selector("a in (b)").requires_exact_match("a") == "b"
    assert parse_label_selector("a in (b,c)").requires_exact_match("a") is None
    assert parse_field_selector("metadata.name=x", "Pod").requires_exact_match("metadata.name") == "x"


# ---------------------------------------------------------------------------------------------- fields


def test_field_selector_syntax_and_matching() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team-a"},
           "spec": {"nodeName": "n1", "serviceAccountName": "runner", "restartPolicy": "Never"},
           "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}], "podIP": "10.0.0.1"}}
    fields = field_values("Pod", pod)
    assert fields == {"metadata.name": "p", "metadata.namespace": "team-a", "spec.nodeName": "n1",
                      "spec.restartPolicy": "Never", "spec.schedulerName": "", "spec.serviceAccountName": "runner",
                      "spec.hostNetwork": "false", "status.phase": "Running", "status.podIP": "10.0.0.1",
                      "status.nominatedNodeName": ""}
    assert parse_field_selector("status.phase=Running,spec.nodeName==n1", "Pod").matches(fields)
    assert parse_field_selector("status.phase!=Pending", "Pod").matches(fields)
    assert not parse_field_selector("status.phase!=Running", "Pod").matches(fields)
    assert parse_field_selector("spec.host=n1", "Pod").matches(fields)  # legacy alias of spec.nodeName
    assert parse_field_selector("spec.schedulerName=", "Pod").matches(fields)
    assert parse_field_selector("", "Pod").empty()
    assert parse_field_selector("status.podIPs=10.0.0.1", "Pod").matches(fields) is False  # accepted, never set


def test_field_selector_values_with_escapes() -> None:
    selector = parse_field_selector(r"metadata.name=a\,b\=c\\d", "ConfigMap")
    assert selector.matches({"metadata.name": "a,b=c\\d"})
    assert str(selector) == r"metadata.name=a\,b\=c\\d"


@pytest.mark.parametrize(("selector", "message"), [
    ("a", "invalid selector: 'a'; can't understand 'a'"),
    ("metadata.name=x,b", "invalid selector: 'metadata.name=x,b'; can't understand 'b'"),
    ("metadata.name=a=b", "invalid field selector: unescaped character in value: 61"),
    (r"metadata.name=a\x", "invalid field selector: invalid escape sequence: \\x"),
    ("metadata.name=a\\", "invalid field selector: invalid escape sequence: \\"),
])
def test_field_selector_syntax_errors(selector: str, message: str) -> None:
    assert field_error(selector) == message


@pytest.mark.parametrize(("kind", "group", "field", "message"), [
    ("Pod", "", "spec.containers", "field label not supported: spec.containers"),
    ("Secret", "", "data", "field label not supported: data"),
    ("Namespace", "", "metadata.namespace", "field label not supported: metadata.namespace"),
    ("Node", "", "metadata.namespace", "field label not supported: metadata.namespace"),
    ("Event", "", "message", "field label not supported: message"),
    ("Job", "batch", "status.succeeded", 'field label "status.succeeded" not supported for batchv1.Job'),
    ("ConfigMap", "", "data.key", '"data.key" is not a known field selector: only "metadata.name", '
                                  '"metadata.namespace"'),
    ("Deployment", "apps", "spec.replicas", '"spec.replicas" is not a known field selector: only "metadata.name", '
                                            '"metadata.namespace"'),
    ("LLMApp", "llmops.dev", "spec.app.name", "field label not supported: spec.app.name"),
    ("LLMApp", "llmops.dev", "status.phase", "field label not supported: status.phase"),
])
def test_unsupported_field_labels(kind: str, group: str, field: str, message: str) -> None:
    assert field_error(f"{field}=x", kind, group) == message


def test_first_unsupported_field_in_sorted_order_is_reported() -> None:
    assert field_error("zzz=1,aaa=2", "ConfigMap") == ('"aaa" is not a known field selector: only "metadata.name", '
                                                       '"metadata.namespace"')


@pytest.mark.parametrize(("kind", "group", "field"), [
    ("Pod", "", "spec.nodeName"), ("Pod", "", "spec.restartPolicy"), ("Pod", "", "spec.schedulerName"),
    ("Pod", "", "spec.serviceAccountName"), ("Pod", "", "spec.hostNetwork"), ("Pod", "", "status.phase"),
    ("Pod", "", "status.podIP"), ("Pod", "", "status.nominatedNodeName"),
    ("Event", "", "involvedObject.kind"), ("Event", "", "involvedObject.namespace"),
    ("Event", "", "involvedObject.name"), ("Event", "", "involvedObject.uid"),
    ("Event", "", "involvedObject.apiVersion"), ("Event", "", "involvedObject.resourceVersion"),
    ("Event", "", "involvedObject.fieldPath"), ("Event", "", "reason"), ("Event", "", "reportingComponent"),
    ("Event", "", "source"), ("Event", "", "type"),
    ("Secret", "", "type"), ("Namespace", "", "status.phase"), ("Job", "batch", "status.successful"),
    ("Node", "", "spec.unschedulable"), ("ConfigMap", "", "metadata.namespace"),
    ("LLMApp", "llmops.dev", "metadata.name"), ("LLMApp", "llmops.dev", "metadata.namespace"),
])
def test_supported_field_labels(kind: str, group: str, field: str) -> None:
    parse_field_selector(f"{field}=x", kind, group)
    assert field in supported_field_labels(kind, group)


def test_cluster_scoped_custom_resources_have_no_namespace_field() -> None:
    assert field_error("metadata.namespace=x", "Cluster", "llmops.dev", cluster_scoped=True) == \
        "field label not supported: metadata.namespace"


def test_custom_resource_selectable_fields() -> None:
    selector = parse_field_selector("spec.color=red", "Widget", "example.com", selectable_fields=[".spec.color"])
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "a"},
              "spec": {"color": "red", "size": 3}}
    values = field_values("Widget", widget, selectable_fields=[".spec.color", ".spec.size", ".spec.missing"])
    assert values == {"metadata.name": "w", "metadata.namespace": "a", "spec.color": "red", "spec.size": "3",
                      "spec.missing": ""}
    assert selector.matches(values)


def test_field_values_of_each_kind() -> None:
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "team-a"},
             "involvedObject": {"kind": "LLMApp", "namespace": "team-a", "name": "rags", "uid": "u",
                                "apiVersion": "llmops.dev/v1alpha1", "resourceVersion": "7", "fieldPath": ""},
             "reason": "Applied", "type": "Normal", "reportingComponent": "llmapp-operator", "source": {}}
    assert field_values("Event", event) == {
        "metadata.name": "e", "metadata.namespace": "team-a", "involvedObject.kind": "LLMApp",
        "involvedObject.namespace": "team-a", "involvedObject.name": "rags", "involvedObject.uid": "u",
        "involvedObject.apiVersion": "llmops.dev/v1alpha1", "involvedObject.resourceVersion": "7",
        "involvedObject.fieldPath": "", "reason": "Applied", "reportingComponent": "llmapp-operator",
        "source": "llmapp-operator", "type": "Normal"}
    event["source"] = {"component": "kubelet"}
    assert field_values("Event", event)["source"] == "kubelet"
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "a"},
              "type": "kubernetes.io/service-account-token"}
    assert field_values("Secret", secret)["type"] == "kubernetes.io/service-account-token"
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}, "status": {"phase": "Active"}}
    assert field_values("Namespace", namespace) == {"metadata.name": "a", "status.phase": "Active"}
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "a"},
           "status": {"succeeded": 1}}
    assert field_values("Job", job)["status.successful"] == "1"
    assert field_values("Job", {**job, "status": {}})["status.successful"] == "0"
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}, "spec": {"unschedulable": True}}
    assert field_values("Node", node) == {"metadata.name": "n", "spec.unschedulable": "true"}
    assert field_values("Node", {**node, "spec": {}})["spec.unschedulable"] == "false"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"},
           "spec": {"hostNetwork": True}, "status": {"podIP": "10.1.1.1"}}
    assert field_values("Pod", pod)["spec.hostNetwork"] == "true"
    assert field_values("Pod", pod)["status.podIP"] == "10.1.1.1"
    app = {"apiVersion": "llmops.dev/v1alpha1", "kind": "LLMApp", "metadata": {"name": "rags", "namespace": "a"},
           "spec": {"x": 1}}
    assert field_values("LLMApp", app) == {"metadata.name": "rags", "metadata.namespace": "a"}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "a"}, "data": {"k": "v"}}
    assert field_values("ConfigMap", cm) == {"metadata.name": "c", "metadata.namespace": "a"}


def test_go_quote() -> None:
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert go_quote("tab\there") == '"tab\\there"'
    assert go_quote("\x00") == '"\\x00"'
    assert go_quote("é") == '"é"'

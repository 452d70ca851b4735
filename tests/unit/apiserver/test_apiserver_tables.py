"""meta.k8s.io Tables of the emulated kube-apiserver: negotiation, CRD printer columns, built-in columns."""

from __future__ import annotations

import datetime
import pathlib
from typing import Any

import pytest
import yaml

from llmapp_sandbox.apiserver.tables import (
    NAME_DESCRIPTION,
    Column,
    TableOptionsError,
    builtin_columns,
    cell_for_json_value,
    columns_for,
    crd_columns,
    human_duration,
    include_object_option,
    negotiate,
    parse_time,
    partial_object_metadata_list,
    short_human_duration,
    table_version,
    to_table,
    wants_table,
)

REPO = pathlib.Path(__file__).resolve().parents[3]
NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.UTC)
KUBECTL_GET_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;"
                      "g=meta.k8s.io,application/json")


def llmapp_columns() -> list[dict[str, Any]]:
    crd = yaml.safe_load((REPO / "crds" / "llmapp.yaml").read_text())
    columns: list[dict[str, Any]] = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    return columns


def app(name: str, *, phase: str | None = None, ready: str | None = None, url: str | None = None,
        created: str = "2026-03-01T11:55:00Z") -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "llmops.dev/v1alpha1", "kind": "LLMApp",
                           "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                                        "resourceVersion": "7", "creationTimestamp": created,
                                        "labels": {"app": name}},
                           "spec": {"environment": "dev"}}
    status: dict[str, Any] = {}
    if phase:
        status["phase"] = phase
    if ready:
        status["conditions"] = [{"type": "Synced", "status": "True"}, {"type": "Ready", "status": ready}]
    if url:
        status["url"] = url
    if status:
        obj["status"] = status
    return obj


# -- negotiation ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("accept", "kind", "version"), [
    (KUBECTL_GET_ACCEPT, "Table", "v1"),
    ("application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json", "Table", "v1beta1"),
    ("application/json", None, None),
    ("application/json, */*", None, None),
    ("", None, None),
    (None, None, None),
    ("application/vnd.kubernetes.protobuf,application/json", None, None),
    # Not producible (wrong group or version, Table as protobuf): skipped, and plain JSON is the fallback.
    ("application/json;as=Table;v=v2;g=meta.k8s.io", None, None),
    ("application/json;as=Table;v=v1;g=example.com", None, None),
    ("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io", None, None),
    ("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io", "PartialObjectMetadataList", "v1"),
    # q orders clauses: the Table is preferred only when its q is highest.
    ("application/json;q=0.9,application/json;as=Table;v=v1;g=meta.k8s.io", "Table", "v1"),
    ("application/json;as=Table;v=v1;g=meta.k8s.io;q=0.5,application/json", None, None),
    ("*/*;as=Table;v=v1;g=meta.k8s.io", "Table", "v1"),
])
def test_negotiate(accept: str | None, kind: str | None, version: str | None) -> None:
    negotiated = negotiate(accept)
    assert negotiated.media_type == "application/json"
    assert (negotiated.convert_kind, negotiated.convert_version) == (kind, version)
    assert wants_table(accept) == (kind == "Table")
    assert table_version(accept) == (version if kind == "Table" else None)


def test_table_as_yaml_when_the_server_can_write_yaml() -> None:
    negotiated = negotiate("application/yaml;as=Table;v=v1;g=meta.k8s.io",
                           supported=("application/json", "application/yaml"))
    assert (negotiated.media_type, negotiated.table) == ("application/yaml", True)


@pytest.mark.parametrize(("query", "value"), [({}, "Metadata"), ({"includeObject": ""}, "Metadata"),
                                              ({"includeObject": "Object"}, "Object"),
                                              ({"includeObject": "None"}, "None")])
def test_include_object_option(query: dict[str, str], value: str) -> None:
    assert include_object_option(query) == value


def test_include_object_option_rejects_unknown_values_like_the_server() -> None:
    with pytest.raises(TableOptionsError) as raised:
        include_object_option({"includeObject": "All"})
    assert str(raised.value) == ('Unable to convert to Table as requested: includeObject: Unsupported value: "All": '
                                 'supported values: "Metadata", "None", "Object"')


# -- durations -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("seconds", "short", "long"), [
    (-5, "<invalid>", "<invalid>"), (-1, "0s", "0s"), (0, "0s", "0s"), (59, "59s", "59s"), (90, "1m", "90s"),
    (200, "3m", "3m20s"), (600, "10m", "10m"), (3 * 3600, "3h", "3h"), (5 * 3600 + 600, "5h", "5h10m"),
    (30 * 3600, "1d", "30h"), (51 * 3600, "2d", "2d3h"), (10 * 86400, "10d", "10d"),
    (400 * 86400, "1y", "400d"), (3 * 365 * 86400 + 20 * 86400, "3y", "3y20d"), (9 * 365 * 86400, "9y", "9y"),
])
def test_durations_like_apimachinery(seconds: int, short: str, long: str) -> None:
    delta = datetime.timedelta(seconds=seconds)
    assert short_human_duration(delta) == short
    assert human_duration(delta) == long


def test_parse_time() -> None:
    assert parse_time("2026-03-01T11:55:00Z") == datetime.datetime(2026, 3, 1, 11, 55, tzinfo=datetime.UTC)
    assert parse_time("2026-03-01T13:55:00.5+02:00") == datetime.datetime(2026, 3, 1, 11, 55, 0, 500000,
                                                                          tzinfo=datetime.UTC)
    assert parse_time("") is None
    with pytest.raises(ValueError):
        parse_time("yesterday")


# -- CRD columns ---------------------------------------------------------------------------------------
def test_llmapp_table_has_name_then_the_printer_columns() -> None:
    table = to_table([app("rags", phase="Ready", ready="True", url="http://rags"), app("docs")], crd_columns(
        llmapp_columns()), list_meta={"resourceVersion": "42"}, now=NOW)
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert table["metadata"] == {"resourceVersion": "42"}
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Phase", "Ready", "URL", "Age"]
    assert table["columnDefinitions"][0] == {"name": "Name", "type": "string", "format": "name",
                                             "description": NAME_DESCRIPTION, "priority": 0}
    assert table["columnDefinitions"][4]["type"] == "date"
    assert [row["cells"] for row in table["rows"]] == [["rags", "Ready", "True", "http://rags", "5m"],
                                                       ["docs", None, None, None, "5m"]]
    # includeObject defaults to Metadata: a PartialObjectMetadata per row.
    assert table["rows"][0]["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                          "metadata": app("rags")["metadata"]}


def test_single_object_table_takes_the_objects_resource_version() -> None:
    table = to_table([app("rags")], crd_columns(llmapp_columns()), now=NOW)
    assert table["metadata"] == {"resourceVersion": "7"}
    assert len(table["rows"]) == 1


def test_crd_without_printer_columns_gets_age() -> None:
    columns = crd_columns(None)
    assert [(c.name, c.type) for c in columns] == [("Age", "date")]
    assert to_table([app("rags")], columns, now=NOW)["rows"][0]["cells"] == ["rags", "5m"]


def test_include_object_object_and_none() -> None:
    obj = app("rags")
    assert to_table([obj], [], include_object="Object", now=NOW)["rows"][0]["object"] == obj
    assert to_table([obj], [], include_object="None", now=NOW)["rows"][0]["object"] is None
    with pytest.raises(TableOptionsError):
        to_table([obj], [], include_object="Everything", now=NOW)


def test_v1beta1_table_and_partial_metadata() -> None:
    table = to_table([app("rags")], [], now=NOW, version="v1beta1")
    assert table["apiVersion"] == "meta.k8s.io/v1beta1"
    assert table["rows"][0]["object"]["apiVersion"] == "meta.k8s.io/v1beta1"


def test_empty_list_and_list_metadata() -> None:
    table = to_table([], crd_columns(llmapp_columns()), now=NOW,
                     list_meta={"resourceVersion": "9", "continue": "", "remainingItemCount": 3})
    assert table["rows"] == []
    assert table["metadata"] == {"resourceVersion": "9", "remainingItemCount": 3}
    assert to_table([], [], now=NOW, no_headers=True)["columnDefinitions"] is None


def typed_column(column_type: str, path: str = ".spec.value", **extra: Any) -> dict[str, Any]:
    return {"name": "V", "type": column_type, "jsonPath": path, **extra}


@pytest.mark.parametrize(("column_type", "value", "cell"), [
    ("string", "text", "text"), ("string", 5, "5"), ("string", 2.5, "2.5"), ("string", True, "true"),
    ("string", {"b": 1, "a": 2}, "map[a:2 b:1]"), ("string", [1, "x"], "[1 x]"), ("string", None, "<no value>"),
    ("integer", 5, 5), ("integer", 5.9, 5), ("integer", "5", None), ("integer", True, None),
    ("number", 5, 5.0), ("number", 2.5, 2.5), ("number", "2.5", None),
    ("boolean", True, True), ("boolean", "true", None),
    ("date", "2026-03-01T10:00:00Z", "2h"), ("date", "not a date", "<invalid>"), ("date", "", "<unknown>"),
    ("date", 12, None), ("integer", None, None),
])
def test_cells_by_column_type(column_type: str, value: Any, cell: Any) -> None:
    obj = {"metadata": {"name": "x"}, "spec": {"value": value}}
    assert to_table([obj], crd_columns([typed_column(column_type)]), now=NOW)["rows"][0]["cells"] == ["x", cell]


def test_missing_values_and_evaluation_errors_are_null_cells() -> None:
    obj = {"metadata": {"name": "x"}, "spec": {"list": [], "map": {"a": 1}}}
    columns = crd_columns([typed_column("string", ".spec.nothing"), typed_column("string", ".spec.list[0]"),
                           typed_column("string", ".spec.map[0]"), typed_column("integer", ".spec.map.a")])
    assert to_table([obj], columns, now=NOW)["rows"][0]["cells"] == ["x", None, None, None, 1]


def test_column_definition_fields() -> None:
    columns = crd_columns([typed_column("integer", format="int32", priority=1),
                           {"name": "Plain", "type": "string", "jsonPath": ".spec.value"}])
    definitions = to_table([], columns, now=NOW)["columnDefinitions"]
    assert definitions[1] == {"name": "V", "type": "integer", "format": "int32",
                              "description": "Custom resource definition column (in JSONPath format): .spec.value",
                              "priority": 1}
    assert definitions[2]["priority"] == 0


def test_raw_printer_column_mappings_are_accepted() -> None:
    table = to_table([app("rags", phase="Ready")], llmapp_columns(), now=NOW)
    assert table["rows"][0]["cells"][:2] == ["rags", "Ready"]


def test_cell_for_json_value_without_a_known_type() -> None:
    assert cell_for_json_value("color", "red", NOW) is None


# -- built-in kinds ------------------------------------------------------------------------------------
def cells(group: str, kind: str, obj: dict[str, Any], *, wide: bool = False) -> dict[str, Any]:
    obj.setdefault("metadata", {}).setdefault("name", "x")
    obj["metadata"].setdefault("creationTimestamp", "2026-03-01T11:56:40Z")
    table = to_table([obj], builtin_columns(group, kind), now=NOW)
    names = [c["name"] for c in table["columnDefinitions"] if wide or c["priority"] == 0]
    row = [cell for cell, c in zip(table["rows"][0]["cells"], table["columnDefinitions"], strict=True)
           if wide or c["priority"] == 0]
    return dict(zip(names, row, strict=True))


def test_namespace_secret_configmap_serviceaccount() -> None:
    assert cells("", "Namespace", {"status": {"phase": "Active"}}) == {"Name": "x", "Status": "Active",
                                                                       "Age": "3m20s"}
    assert cells("", "Secret", {"type": "Opaque", "data": {"a": "eA==", "b": "eQ=="}}) == {
        "Name": "x", "Type": "Opaque", "Data": 2, "Age": "3m20s"}
    assert cells("", "ConfigMap", {"data": {"a": "1"}, "binaryData": {"b": "AA=="}})["Data"] == 2
    assert cells("", "ServiceAccount", {})["Secrets"] == 0


def test_pod_columns() -> None:
    pod = {"spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "node-1"},
           "status": {"phase": "Running", "podIP": "10.0.0.5",
                      "containerStatuses": [{"ready": True, "restartCount": 1, "state": {"running": {}}},
                                            {"ready": False, "restartCount": 2,
                                             "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
    assert cells("", "Pod", pod, wide=True) == {"Name": "x", "Ready": "1/2", "Status": "CrashLoopBackOff",
                                                "Restarts": "3", "Age": "3m20s", "IP": "10.0.0.5",
                                                "Node": "node-1"}
    assert cells("", "Pod", {"spec": {"containers": [{}]}, "status": {"phase": "Pending"}})["Status"] == "Pending"
    done = {"status": {"phase": "Succeeded", "containerStatuses": [{"state": {"terminated": {"reason": "Completed"}}}]}}
    assert cells("", "Pod", done)["Status"] == "Completed"


def test_job_columns() -> None:
    running = {"spec": {"completions": 1}, "status": {"startTime": "2026-03-01T11:59:00Z"}}
    assert cells("batch", "Job", running) == {"Name": "x", "Status": "Running", "Completions": "0/1",
                                              "Duration": "60s", "Age": "3m20s"}
    complete = {"spec": {"completions": 1},
                "status": {"succeeded": 1, "startTime": "2026-03-01T11:57:00Z",
                           "completionTime": "2026-03-01T11:57:30Z",
                           "conditions": [{"type": "Complete", "status": "True"}]}}
    assert cells("batch", "Job", complete)["Status"] == "Complete"
    assert cells("batch", "Job", complete)["Duration"] == "30s"
    assert cells("batch", "Job", {"status": {"conditions": [{"type": "Failed", "status": "True"}]}})["Status"] == (
        "Failed")


def test_other_builtin_columns() -> None:
    deployment = {"spec": {"replicas": 3}, "status": {"readyReplicas": 2, "updatedReplicas": 3,
                                                      "availableReplicas": 2}}
    assert cells("apps", "Deployment", deployment) == {"Name": "x", "Ready": "2/3", "Up-to-date": 3,
                                                       "Available": 2, "Age": "3m20s"}
    service = {"spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10",
                        "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}}
    assert cells("", "Service", service) == {"Name": "x", "Type": "ClusterIP", "Cluster-IP": "10.96.0.10",
                                             "External-IP": "<none>", "Port(s)": "80/TCP,53/UDP", "Age": "3m20s"}
    assert cells("coordination.k8s.io", "Lease", {"spec": {"holderIdentity": "op-1"}})["Holder"] == "op-1"
    binding = {"roleRef": {"kind": "ClusterRole", "name": "edit"},
               "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": "ops"}]}
    assert cells("rbac.authorization.k8s.io", "RoleBinding", binding, wide=True) == {
        "Name": "x", "Role": "ClusterRole/edit", "Age": "3m20s", "Users": "", "Groups": "",
        "ServiceAccounts": "ops/op"}
    event = {"type": "Warning", "reason": "Failed", "message": "boom ", "lastTimestamp": "2026-03-01T11:59:00Z",
             "involvedObject": {"kind": "LLMApp", "name": "rags"}}
    # printers.go: an Event has no leading Name; Name comes last, at priority 1 (`kubectl get events -o wide`).
    assert cells("", "Event", event) == {"Last Seen": "60s", "Type": "Warning", "Reason": "Failed",
                                         "Object": "llmapp/rags", "Message": "boom"}
    assert list(cells("", "Event", event, wide=True)) == ["Last Seen", "Type", "Reason", "Object", "Subobject",
                                                          "Source", "Message", "First Seen", "Count", "Name"]
    assert cells("", "Event", {**event, "count": 3, "source": {"component": "kopf"}}, wide=True)["Count"] == "3"
    new_event = {"type": "Normal", "reason": "Synced", "note": "ok", "eventTime": "2026-03-01T11:59:00.000000Z",
                 "regarding": {"kind": "Pod", "name": "p"}}
    assert cells("events.k8s.io", "Event", new_event)["Object"] == "pod/p"


def test_created_at_kinds_and_the_default() -> None:
    assert cells("apiextensions.k8s.io", "CustomResourceDefinition", {}) == {"Name": "x",
                                                                             "Created At": "2026-03-01T11:56:40Z"}
    assert [c.type for c in builtin_columns("rbac.authorization.k8s.io", "ClusterRole")] == ["date"]
    assert cells("policy", "PodDisruptionBudget", {}) == {"Name": "x", "Age": "3m20s"}


def test_columns_for_reads_kind_like_objects() -> None:
    class Custom:
        is_custom = True
        group, kind = "llmops.dev", "LLMApp"
        printer_columns = tuple(llmapp_columns())

    class Builtin:
        is_custom = False
        group, kind = "", "Secret"
        printer_columns = ()

    assert [c.name for c in columns_for(Custom())] == ["Phase", "Ready", "URL", "Age"]
    assert [c.name for c in columns_for(Builtin())] == ["Type", "Data", "Age"]


def test_custom_column_objects() -> None:
    column = Column("Env", "string", lambda obj, now: obj["spec"]["environment"], description="Environment")
    assert to_table([app("rags")], [column], now=NOW)["rows"][0]["cells"] == ["rags", "dev"]


def test_partial_object_metadata_list() -> None:
    result = partial_object_metadata_list([app("a"), app("b")], {"resourceVersion": "3"})
    assert result["kind"] == "PartialObjectMetadataList"
    assert [item["metadata"]["name"] for item in result["items"]] == ["a", "b"]
    assert result["metadata"] == {"resourceVersion": "3"}

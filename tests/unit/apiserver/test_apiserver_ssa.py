"""Server-side apply and managedFields bookkeeping (llmapp_sandbox.apiserver.ssa)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from llmapp_sandbox.apiserver import ssa
from llmapp_sandbox.apiserver.errors import ApiError
from llmapp_sandbox.apiserver.ssa import FieldSet, PathElement

T0, T1, T2, T3 = "2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z", "2024-01-01T00:02:00Z", "2024-01-01T00:03:00Z"


def entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(obj["metadata"].get("managedFields") or [])


def entry(obj: dict[str, Any], manager: str, operation: str = "Apply") -> dict[str, Any]:
    found = [e for e in entries(obj) if e["manager"] == manager and e["operation"] == operation]
    assert len(found) == 1, entries(obj)
    return found[0]


def owned(obj: dict[str, Any], manager: str, operation: str = "Apply") -> list[str]:
    fields = ssa.managed_fields(obj, manager, operation)
    assert fields is not None, entries(obj)
    return [ssa.path_string(path) for path in fields.paths()]


def conflict(call: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    assert caught.value.status == 409, caught.value.message
    return caught.value


def configmap(data: dict[str, str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "test-cm", "namespace": "default"}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def deployment(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
            "spec": spec}


def containers(*items: dict[str, Any]) -> dict[str, Any]:
    return {"template": {"spec": {"containers": list(items)}}}


def stored(obj: dict[str, Any], resource_version: str = "1") -> dict[str, Any]:
    """What the caller persists: a resourceVersion the next write is checked against."""
    out = copy.deepcopy(obj)
    out["metadata"]["resourceVersion"] = resource_version
    return out


# --- the Kubernetes docs' examples --------------------------------------------------------------------------


def test_create_by_apply_records_the_docs_example_entry() -> None:
    # https://kubernetes.io/docs/reference/using-api/server-side-apply/#ssa-example-configmap
    obj = ssa.apply(None, configmap({"key": "some value"}, {"test-label": "test"}), manager="kubectl", now=T0)

    assert obj["data"] == {"key": "some value"}
    assert obj["metadata"]["labels"] == {"test-label": "test"}
    assert entries(obj) == [{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T0, "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {"f:test-label": {}}}, "f:data": {"f:key": {}}},
    }]
    # The API server writes FieldsV1 sorted: f:data before f:metadata.
    assert list(entries(obj)[0]["fieldsV1"]) == ["f:data", "f:metadata"]


def test_an_update_takes_the_field_it_changes_as_in_the_docs_multi_manager_example() -> None:
    applied = stored(ssa.apply(None, configmap({"key": "some value"}, {"test-label": "test"}),
                               manager="kubectl", now=T0))
    changed = copy.deepcopy(applied)
    changed["data"]["key"] = "new value"

    obj = ssa.record_update(applied, changed, manager="kube-controller-manager", now=T1)

    assert [(e["manager"], e["operation"], e["fieldsV1"]) for e in entries(obj)] == [
        ("kubectl", "Apply", {"f:metadata": {"f:labels": {"f:test-label": {}}}}),
        ("kube-controller-manager", "Update", {"f:data": {"f:key": {}}}),
    ]
    assert entry(obj, "kube-controller-manager", "Update")["time"] == T1
    assert obj["data"] == {"key": "new value"}


# --- apply semantics ------------------------------------------------------------------------------------------


def test_reapplying_without_a_field_removes_it() -> None:
    first = stored(ssa.apply(None, configmap({"a": "1", "b": "2"}), manager="kubectl", now=T0))
    second = ssa.apply(first, configmap({"a": "1"}), manager="kubectl", now=T1)

    assert second["data"] == {"a": "1"}
    assert owned(second, "kubectl") == [".data.a"]
    assert entry(second, "kubectl")["time"] == T1


def test_reapplying_without_a_map_removes_the_whole_map() -> None:
    first = stored(ssa.apply(None, configmap({"a": "1"}, {"team": "x"}), manager="kubectl", now=T0))
    second = ssa.apply(first, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "test-cm"}},
                       manager="kubectl", now=T1)

    assert "data" not in second
    assert "labels" not in second["metadata"]
    assert entries(second) == []  # nothing left to own: no entry at all
    assert "managedFields" not in second["metadata"]


def test_a_dropped_field_another_applier_also_owns_stays() -> None:
    first = stored(ssa.apply(None, configmap({"a": "1"}), manager="alice", now=T0))
    shared = stored(ssa.apply(first, configmap({"a": "1"}), manager="bob", now=T1), "2")  # same value: no conflict
    assert owned(shared, "alice") == owned(shared, "bob") == [".data.a"]

    released = ssa.apply(shared, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "test-cm"}},
                         manager="alice", now=T2)

    assert released["data"] == {"a": "1"}
    assert owned(released, "bob") == [".data.a"]
    assert [e["manager"] for e in entries(released)] == ["bob"]


def test_two_appliers_on_different_fields_coexist() -> None:
    first = stored(ssa.apply(None, deployment({"replicas": 3}), manager="helm", now=T0))
    second = stored(ssa.apply(first, deployment({"paused": True}), manager="autoscaler", now=T1), "2")
    third = ssa.apply(second, deployment({"replicas": 4}), manager="helm", now=T2)

    assert third["spec"] == {"replicas": 4, "paused": True}
    assert owned(third, "helm") == [".spec.replicas"]
    assert owned(third, "autoscaler") == [".spec.paused"]


def test_a_conflict_names_the_other_manager_and_the_field() -> None:
    live = stored(ssa.apply(None, deployment({"replicas": 3}), manager="helm", now=T0))

    error = conflict(lambda: ssa.apply(live, deployment({"replicas": 5}), manager="argocd", now=T1))

    assert error.reason == "Conflict"
    assert error.message == 'Apply failed with 1 conflict: conflict with "helm": .spec.replicas'
    assert error.details == {"causes": [
        {"type": "FieldManagerConflict", "message": 'conflict with "helm"', "field": ".spec.replicas"}]}
    assert error.body()["code"] == 409


def test_several_conflicts_are_listed_by_manager() -> None:
    live = stored(ssa.apply(None, deployment({"replicas": 3, "paused": False}), manager="helm", now=T0))
    live = stored(ssa.apply(live, deployment({"minReadySeconds": 5}), manager="argocd", now=T1), "2")

    error = conflict(lambda: ssa.apply(
        live, deployment({"replicas": 1, "paused": True, "minReadySeconds": 9}), manager="kubectl", now=T2))

    assert error.message == ('Apply failed with 3 conflicts: conflicts with "argocd":\n- .spec.minReadySeconds\n'
                             'conflicts with "helm":\n- .spec.paused\n- .spec.replicas')
    assert error.details is not None
    assert [cause["field"] for cause in error.details["causes"]] == [
        ".spec.minReadySeconds", ".spec.paused", ".spec.replicas"]


def test_force_takes_ownership() -> None:
    live = stored(ssa.apply(None, deployment({"replicas": 3, "paused": False}), manager="helm", now=T0))

    forced = ssa.apply(live, deployment({"replicas": 5}), manager="argocd", force=True, now=T1)

    assert forced["spec"] == {"replicas": 5, "paused": False}
    assert owned(forced, "argocd") == [".spec.replicas"]
    assert owned(forced, "helm") == [".spec.paused"]


def test_force_removes_a_manager_left_with_nothing() -> None:
    live = stored(ssa.apply(None, deployment({"replicas": 3}), manager="helm", now=T0))

    forced = ssa.apply(live, deployment({"replicas": 5}), manager="argocd", force=True, now=T1)

    assert [e["manager"] for e in entries(forced)] == ["argocd"]


def test_a_merge_patch_by_another_manager_then_an_apply_by_the_first_conflicts() -> None:
    live = stored(ssa.apply(None, deployment({"replicas": 3, "paused": False}), manager="helm", now=T0))
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 10
    live = stored(ssa.record_update(live, scaled, manager="kubectl-scale", now=T1), "2")
    assert owned(live, "kubectl-scale", "Update") == [".spec.replicas"]
    assert owned(live, "helm") == [".spec.paused"]  # an update takes the field from the applier

    error = conflict(lambda: ssa.apply(live, deployment({"replicas": 3, "paused": False}), manager="helm", now=T2))

    assert error.message == 'Apply failed with 1 conflict: conflict with "kubectl-scale" using apps/v1: .spec.replicas'
    assert error.details is not None
    assert error.details["causes"][0]["message"] == 'conflict with "kubectl-scale" using apps/v1'


def test_an_update_never_conflicts_and_a_removal_leaves_every_manager() -> None:
    live = stored(ssa.apply(None, configmap({"a": "1", "b": "2"}), manager="helm", now=T0))
    edited = copy.deepcopy(live)
    del edited["data"]["b"]
    edited["data"]["a"] = "changed"

    obj = ssa.record_update(live, edited, manager="kubectl-edit", now=T1)

    assert ssa.managed_fields(obj, "helm") is None  # both its fields went: a taken, b removed
    assert owned(obj, "kubectl-edit", "Update") == [".data.a"]


def test_a_no_op_apply_keeps_the_entry_time() -> None:
    live = stored(ssa.apply(None, configmap({"a": "1"}), manager="kubectl", now=T0))

    again = ssa.apply(live, configmap({"a": "1"}), manager="kubectl", now=T1)

    assert entry(again, "kubectl")["time"] == T0
    assert again["data"] == live["data"]


def test_a_new_applier_of_equal_values_shares_without_a_time() -> None:
    # managedFieldsUpdater stamps the time only when the object changed.
    live = stored(ssa.apply(None, configmap({"a": "1"}), manager="alice", now=T0))

    shared = ssa.apply(live, configmap({"a": "1"}), manager="bob", now=T1)

    assert "time" not in entry(shared, "bob")
    assert [e["manager"] for e in entries(shared)] == ["bob", "alice"]  # sorted by time: none first


def test_managed_fields_stay_out_of_metadata_entries() -> None:
    obj = ssa.apply(None, {**configmap({"a": "1"}), "metadata": {
        "name": "test-cm", "namespace": "default", "resourceVersion": "", "uid": "x", "generation": 1}},
        manager="kubectl", now=T0)

    assert owned(obj, "kubectl") == [".data.a"]


def test_an_apply_to_the_status_subresource_is_its_own_manager() -> None:
    live = stored(ssa.apply(None, deployment({"replicas": 1}), manager="helm", now=T0))
    status = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
              "status": {"readyReplicas": 1}}

    obj = ssa.apply(live, status, manager="helm", subresource="status", now=T1)

    status_entry = [e for e in entries(obj) if e.get("subresource") == "status"]
    assert len(status_entry) == 1 and status_entry[0]["fieldsV1"] == {"f:status": {"f:readyReplicas": {}}}
    assert list(status_entry[0]) == ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1",
                                     "subresource"]
    assert owned(obj, "helm") == [".spec.replicas"]


def test_ignored_reset_fields_are_never_owned() -> None:
    config = {**deployment({"replicas": 1}), "status": {"replicas": 9}}

    obj = ssa.apply(None, config, manager="helm", now=T0, ignored=FieldSet.from_paths([("status",)]))

    assert owned(obj, "helm") == [".spec.replicas"]


def test_null_sets_a_scalar_away_but_is_still_owned() -> None:
    live = stored(ssa.apply(None, deployment({"replicas": 3, "paused": True}), manager="helm", now=T0))

    obj = ssa.apply(live, deployment({"replicas": 3, "paused": None}), manager="helm", now=T1)

    assert obj["spec"] == {"replicas": 3}
    assert owned(obj, "helm") == [".spec.paused", ".spec.replicas"]


# --- lists and maps ------------------------------------------------------------------------------------------------


def test_a_list_map_merges_by_key_and_keeps_other_managers_items() -> None:
    live = stored(ssa.apply(None, deployment(containers({"name": "app", "image": "app:1"})), manager="helm", now=T0))
    live = stored(ssa.apply(live, deployment(containers({"name": "sidecar", "image": "proxy:1"})),
                            manager="mesh", now=T1), "2")
    assert [c["name"] for c in live["spec"]["template"]["spec"]["containers"]] == ["app", "sidecar"]

    upgraded = ssa.apply(live, deployment(containers({"name": "app", "image": "app:2"})), manager="helm", now=T2)

    assert upgraded["spec"]["template"]["spec"]["containers"] == [
        {"name": "app", "image": "app:2"}, {"name": "sidecar", "image": "proxy:1"}]
    assert owned(upgraded, "mesh") == ['.spec.template.spec.containers[name="sidecar"]',
                                       '.spec.template.spec.containers[name="sidecar"].image',
                                       '.spec.template.spec.containers[name="sidecar"].name']
    fields = entry(upgraded, "helm")["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert fields == {'k:{"name":"app"}': {".": {}, "f:image": {}, "f:name": {}}}


def test_dropping_a_list_map_item_removes_only_that_item() -> None:
    app, debug = {"name": "app", "image": "a"}, {"name": "debug", "image": "d"}
    live = stored(ssa.apply(None, deployment(containers(app)), manager="helm", now=T0))
    live = stored(ssa.apply(live, deployment(containers(app, debug)), manager="helm", now=T1), "2")
    live = stored(ssa.apply(live, deployment(containers({"name": "sidecar", "image": "s"})), manager="mesh", now=T2),
                  "3")

    pruned = ssa.apply(live, deployment(containers({"name": "app", "image": "a"})), manager="helm", now=T3)

    assert [c["name"] for c in pruned["spec"]["template"]["spec"]["containers"]] == ["app", "sidecar"]


def test_container_ports_are_keyed_by_port_and_defaulted_protocol() -> None:
    obj = ssa.apply(None, deployment(containers({"name": "app", "ports": [{"containerPort": 80}]})),
                    manager="helm", now=T0)

    assert '.spec.template.spec.containers[name="app"].ports[containerPort=80,protocol="TCP"]' in owned(obj, "helm")


def test_an_atomic_list_is_replaced_whole_and_owned_whole() -> None:
    tolerations = {"template": {"spec": {"tolerations": [{"key": "a", "operator": "Exists"}]}}}
    live = stored(ssa.apply(None, deployment(tolerations), manager="helm", now=T0))
    assert owned(live, "helm") == [".spec.template.spec.tolerations"]

    replaced = ssa.apply(live, deployment({"template": {"spec": {"tolerations": [{"key": "b"}]}}}),
                         manager="helm", now=T1)
    assert replaced["spec"]["template"]["spec"]["tolerations"] == [{"key": "b"}]

    error = conflict(lambda: ssa.apply(
        stored(replaced, "2"), deployment({"template": {"spec": {"tolerations": [{"key": "b"}, {"key": "c"}]}}}),
        manager="other", now=T2))
    assert error.message.endswith(": .spec.template.spec.tolerations")


def test_role_rules_are_atomic() -> None:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}

    assert owned(ssa.apply(None, role, manager="helm", now=T0), "helm") == [".rules"]


def test_a_label_selector_is_atomic_but_labels_are_granular() -> None:
    spec = {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}}}

    assert owned(ssa.apply(None, deployment(spec), manager="helm", now=T0), "helm") == [
        ".spec.selector", ".spec.template.metadata.labels.app"]


def test_finalizers_are_a_set() -> None:
    base = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "test-cm", "finalizers": ["a/b"]}}
    live = stored(ssa.apply(None, base, manager="one", now=T0))
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "test-cm", "finalizers": ["c/d"]}}

    obj = ssa.apply(live, other, manager="two", now=T1)

    assert obj["metadata"]["finalizers"] == ["a/b", "c/d"]
    assert entry(obj, "two")["fieldsV1"] == {"f:metadata": {"f:finalizers": {'v:"c/d"': {}}}}


# --- custom resources with a schema ------------------------------------------------------------------------------

CRD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "env": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                                    "value": {"type": "string"}}}},
                "ports": {"type": "array", "x-kubernetes-list-type": "map",
                          "x-kubernetes-list-map-keys": ["port", "protocol"],
                          "items": {"type": "object", "properties": {
                              "port": {"type": "integer"}, "protocol": {"type": "string", "default": "TCP"}}}},
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "args": {"type": "array", "items": {"type": "string"}},
                "resources": {"type": "object", "x-kubernetes-map-type": "atomic",
                              "properties": {"cpu": {"type": "string"}, "memory": {"type": "string"}}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "settings": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def llmapp(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "llmops.dev/v1alpha1", "kind": "LLMApp", "metadata": {"name": "rag", "namespace": "ml"},
            "spec": spec}


def test_crd_list_types_map_set_and_atomic() -> None:
    live = stored(ssa.apply(None, llmapp({"env": [{"name": "A", "value": "1"}], "tags": ["x"], "args": ["--a"]}),
                            manager="helm", schema=CRD_SCHEMA, now=T0))

    obj = ssa.apply(live, llmapp({"env": [{"name": "B", "value": "2"}], "tags": ["y"]}), manager="ops",
                    schema=CRD_SCHEMA, now=T1)

    assert obj["spec"]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert obj["spec"]["tags"] == ["x", "y"]
    assert owned(obj, "helm") == ['.spec.args', '.spec.env[name="A"]', '.spec.env[name="A"].name',
                                  '.spec.env[name="A"].value', '.spec.tags[="x"]']
    error = conflict(lambda: ssa.apply(stored(obj, "2"), llmapp({"args": ["--b"]}), manager="ops",
                                       schema=CRD_SCHEMA, now=T2))
    assert error.message == 'Apply failed with 1 conflict: conflict with "helm": .spec.args'


def test_crd_list_map_key_default_fills_a_missing_key() -> None:
    obj = ssa.apply(None, llmapp({"ports": [{"port": 80}]}), manager="helm", schema=CRD_SCHEMA, now=T0)

    assert owned(obj, "helm") == ['.spec.ports[port=80,protocol="TCP"]', '.spec.ports[port=80,protocol="TCP"].port']


def test_crd_atomic_map_is_replaced_and_owned_whole() -> None:
    live = stored(ssa.apply(None, llmapp({"resources": {"cpu": "1", "memory": "1Gi"}}), manager="helm",
                            schema=CRD_SCHEMA, now=T0))

    obj = ssa.apply(live, llmapp({"resources": {"cpu": "2"}}), manager="helm", schema=CRD_SCHEMA, now=T1)

    assert obj["spec"]["resources"] == {"cpu": "2"}
    assert owned(obj, "helm") == [".spec.resources"]


def test_crd_unknown_fields_and_string_maps_own_their_keys() -> None:
    obj = ssa.apply(None, llmapp({"extra": {"a": {"b": 1}}, "settings": {"k": "v"}}), manager="helm",
                    schema=CRD_SCHEMA, now=T0)

    # Undeclared keys are owned themselves, so a nested map gets a `.` as well as children.
    assert entry(obj, "helm")["fieldsV1"] == {"f:spec": {
        "f:extra": {"f:a": {".": {}, "f:b": {}}}, "f:settings": {"f:k": {}}}}


def test_crd_metadata_follows_object_meta() -> None:
    config = llmapp({})
    config["metadata"]["labels"] = {"team": "ml"}

    obj = ssa.apply(None, config, manager="helm", schema=CRD_SCHEMA, now=T0)

    assert owned(obj, "helm") == [".spec", ".metadata.labels.team"]  # an empty map is owned as a leaf


def test_record_update_on_create_marks_added_nodes() -> None:
    # An unstructured custom resource starts empty, so spec is "added"; a Deployment's Go zero value already
    # has spec and template, so only pointers, maps and omitempty lists get a `.`.
    cr = ssa.record_update(None, llmapp({"settings": {"k": "v"}}), manager="kubectl-create", schema=CRD_SCHEMA,
                           now=T0)
    assert entry(cr, "kubectl-create", "Update")["fieldsV1"] == {
        "f:spec": {".": {}, "f:settings": {".": {}, "f:k": {}}}}

    dep = ssa.record_update(None, deployment({"replicas": 1, "template": {"metadata": {"labels": {"app": "w"}}}}),
                            manager="kubectl-create", now=T0)
    assert entry(dep, "kubectl-create", "Update")["fieldsV1"] == {
        "f:spec": {"f:replicas": {}, "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}}


# --- errors -----------------------------------------------------------------------------------------------------------


def test_apply_without_a_field_manager_is_invalid_patch_options() -> None:
    with pytest.raises(ApiError) as caught:
        ssa.apply(None, configmap({}), manager="", now=T0)

    assert caught.value.status == 422 and caught.value.reason == "Invalid"
    assert caught.value.message == ('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                                    'is required for apply patch')
    assert caught.value.details == {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
        {"reason": "FieldValueRequired", "message": "Required value: is required for apply patch",
         "field": "fieldManager"}]}


def test_field_manager_length_and_characters() -> None:
    with pytest.raises(ApiError, match="fieldManager: Too long: must have at most 128 bytes"):
        ssa.validate_field_manager("x" * 129, apply=True)
    with pytest.raises(ApiError, match=r"invalid character U\+0007 \(at position 1\)"):
        ssa.validate_field_manager("a\u0007", apply=False)
    ssa.validate_field_manager("", apply=False)


@pytest.mark.parametrize(("config", "message"), [
    ({**configmap({}), "metadata": {"name": "test-cm", "managedFields": []}}, "metadata.managedFields must be nil"),
    ({"kind": "ConfigMap", "metadata": {"name": "test-cm"}}, "invalid object type: /, Kind=ConfigMap"),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}},
     "the name of the object ( based on URL) was undeterminable: name must be provided"),
])
def test_bad_apply_bodies_are_bad_requests(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiError) as caught:
        ssa.apply(None, config, manager="kubectl", now=T0)

    assert (caught.value.status, caught.value.reason, caught.value.message) == (400, "BadRequest", message)


def test_apply_of_another_kind_or_name_is_a_bad_request() -> None:
    live = stored(ssa.apply(None, configmap({"a": "1"}), manager="kubectl", now=T0))

    with pytest.raises(ApiError, match=r"^invalid object type: apps/v1, Kind=Deployment$"):
        ssa.apply(live, deployment({}), manager="kubectl", now=T1)
    with pytest.raises(ApiError, match=r"the name of the object \(other\) does not match the name on the URL"):
        ssa.apply(live, {**configmap({}), "metadata": {"name": "other"}}, manager="kubectl", now=T1)
    with pytest.raises(ApiError, match=r"the name of the object \(test-cm\) does not match the name on the URL \(x\)"):
        ssa.apply(None, configmap({}), manager="kubectl", now=T1, name="x")


def test_a_stale_resource_version_is_an_optimistic_lock_conflict() -> None:
    live = stored(ssa.apply(None, deployment({"replicas": 1}), manager="helm", now=T0), "7")
    config = deployment({"replicas": 2})
    config["metadata"]["resourceVersion"] = "6"

    error = conflict(lambda: ssa.apply(live, config, manager="helm", now=T1, resource="deployments.apps"))

    assert error.message == ('Operation cannot be fulfilled on deployments.apps "web": the object has been modified; '
                             'please apply your changes to the latest version and try again')
    assert error.details == {"name": "web", "group": "apps", "kind": "deployments"}
    config["metadata"]["resourceVersion"] = "7"
    assert ssa.apply(live, config, manager="helm", now=T1)["spec"]["replicas"] == 2


def test_duplicate_list_map_keys_in_an_apply_fail_like_the_api_server() -> None:
    config = deployment(containers({"name": "app"}, {"name": "app", "image": "x"}))

    with pytest.raises(ApiError) as caught:
        ssa.apply(None, config, manager="helm", now=T0)

    assert caught.value.status == 500
    assert caught.value.message == ('failed to create typed patch object (shop/web; apps/v1, Kind=Deployment): '
                                    '.spec.template.spec.containers: duplicate entries for key [name="app"]')


def test_a_list_map_item_without_its_key_fails() -> None:
    with pytest.raises(ApiError, match=r'omits all key fields \["name"\]'):
        ssa.apply(None, deployment(containers({"image": "x"})), manager="helm", now=T0)


# --- update bookkeeping -----------------------------------------------------------------------------------------------


def test_update_entries_are_per_api_version_and_merge_for_one_manager() -> None:
    live = stored(ssa.apply(None, configmap({"a": "1", "b": "1"}), manager="helm", now=T0))
    step = copy.deepcopy(live)
    step["data"]["a"] = "2"
    live = stored(ssa.record_update(live, step, manager="ctl", now=T1), "2")
    step = copy.deepcopy(live)
    step["data"]["b"] = "2"

    obj = ssa.record_update(live, step, manager="ctl", now=T2)

    assert owned(obj, "ctl", "Update") == [".data.a", ".data.b"]
    assert entry(obj, "ctl", "Update")["time"] == T2


def test_an_update_that_changes_nothing_leaves_managed_fields_alone() -> None:
    live = stored(ssa.apply(None, configmap({"a": "1"}), manager="helm", now=T0))

    obj = ssa.record_update(live, copy.deepcopy(live), manager="ctl", now=T1)

    assert entries(obj) == entries(live)


def test_an_update_may_reset_managed_fields_with_one_empty_entry() -> None:
    live = stored(ssa.apply(None, configmap({"a": "1"}), manager="helm", now=T0))
    reset = copy.deepcopy(live)
    reset["metadata"]["managedFields"] = [{}]

    assert "managedFields" not in ssa.record_update(live, reset, manager="ctl", now=T1)["metadata"]


def test_update_managers_are_capped_at_ten() -> None:
    live = stored(ssa.apply(None, configmap({}), manager="helm", now=T0))
    for index in range(12):
        step = copy.deepcopy(live)
        step["data"][f"k{index}"] = "v"
        live = stored(ssa.record_update(live, step, manager=f"m{index}", now=f"2024-01-01T01:{index:02d}:00Z"))

    updaters = [e["manager"] for e in entries(live) if e["operation"] == "Update"]
    assert len(updaters) == 10
    assert updaters[0] == "ancient-changes"
    assert owned(live, "ancient-changes", "Update") == [".data.k0", ".data.k1", ".data.k2"]


def test_kubectl_keeps_the_last_applied_annotation_in_sync() -> None:
    annotation = "kubectl.kubernetes.io/last-applied-configuration"
    live = configmap({"a": "1"})
    live["metadata"]["annotations"] = {annotation: "{}"}
    live = stored(live)
    config = configmap({"a": "2"})

    obj = ssa.apply(live, config, manager="kubectl", now=T0)

    assert json.loads(obj["metadata"]["annotations"][annotation]) == config
    assert obj["metadata"]["annotations"][annotation].endswith("\n")
    untouched = ssa.apply(live, config, manager="helm", now=T0)
    assert untouched["metadata"]["annotations"][annotation] == "{}"


def test_manager_from_user_agent() -> None:
    assert ssa.manager_from_user_agent("", "kubectl/v1.32.0 (linux/amd64) kubernetes/abc") == "kubectl"
    assert ssa.manager_from_user_agent("helm", "Helm/4.0") == "helm"
    assert ssa.manager_from_user_agent(None, "a\u0007b/1") == "ab"


# --- FieldsV1 ---------------------------------------------------------------------------------------------------------


def test_fields_v1_round_trip_and_order() -> None:
    fields = {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {"f:list": {"k:{\"a\":1,\"b\":\"x\"}": {".": {}, "f:a": {}}, "v:2": {}, "v:\"a\"": {}, "i:0": {}}},
    }
    decoded = ssa.decode_fields_v1(fields)

    assert ssa.encode_fields_v1(decoded) == fields
    assert list(ssa.encode_fields_v1(decoded)["f:spec"]["f:list"]) == [
        'k:{"a":1,"b":"x"}', "v:2", 'v:"a"', "i:0"]  # field < key < value < index; numbers before strings
    # Set.Iterate: each level's members, then its children.
    assert [ssa.path_string(p) for p in decoded.paths()] == [
        ".metadata.labels", ".metadata.labels.app", '.spec.list[a=1,b="x"]', '.spec.list[=2]', '.spec.list[="a"]',
        ".spec.list[0]", '.spec.list[a=1,b="x"].a']


def test_fields_v1_membership() -> None:
    decoded = ssa.decode_fields_v1({"f:a": {}, "f:b": {"f:c": {}}, "f:d": {".": {}, "f:e": {}}, "x:unknown": {}})

    assert decoded.has((PathElement.field("a"),))
    assert not decoded.has((PathElement.field("b"),))  # a node with children only is not owned itself
    assert decoded.has((PathElement.field("d"),))
    assert decoded.has((PathElement.field("d"), PathElement.field("e")))


def test_key_elements_serialize_like_go() -> None:
    assert PathElement.key({"protocol": "TCP", "containerPort": 80}).serialize() == (
        'k:{"containerPort":80,"protocol":"TCP"}')
    assert PathElement.value("<a&b>").serialize() == 'v:"\\u003ca\\u0026b\\u003e"'
    assert str(PathElement.key({"port": 1.5})) == "[port=1.5]"


def test_fields_of_is_to_field_set() -> None:
    obj = configmap({"a": "1"}, {"x": "y"})

    assert [ssa.path_string(p) for p in ssa.fields_of(obj).paths()] == [
        ".apiVersion", ".kind", ".data.a", ".metadata.name", ".metadata.namespace", ".metadata.labels.x"]


def test_set_operations() -> None:
    a = FieldSet.from_paths([("spec", "a"), ("spec", "b")])
    b = FieldSet.from_paths([("spec", "b"), ("status",)])

    assert [ssa.path_string(p) for p in a.union(b).paths()] == [".status", ".spec.a", ".spec.b"]
    assert [ssa.path_string(p) for p in a.intersection(b).paths()] == [".spec.b"]
    assert [ssa.path_string(p) for p in a.difference(b).paths()] == [".spec.a"]
    assert b.recursive_difference(FieldSet.from_paths([("status",)])) == FieldSet.from_paths([("spec", "b")])


# --- structured-merge-diff's own scenarios (merge/*_test.go), on a custom resource ------------------------------------

NESTED_SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "listOfLists": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {
                        "name": {"type": "string"},
                        "value": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}}},
    "struct": {"type": "object", "properties": {"name": {"type": "string"}, "value": {"type": "integer"}}},
}}


def run_ops(ops: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    live: dict[str, Any] | None = None
    for step, (operation, manager, body) in enumerate(ops):
        now = f"2024-01-01T00:00:{step:02d}Z"
        config = {"apiVersion": "example.com/v1", "kind": "Nested", "metadata": {"name": "n"}, **body}
        if operation == "apply":
            live = stored(ssa.apply(live, config, manager=manager, schema=NESTED_SCHEMA, now=now), str(step))
        else:
            assert live is not None
            config["metadata"] = copy.deepcopy(live["metadata"])
            live = stored(ssa.record_update(live, config, manager=manager, schema=NESTED_SCHEMA, now=now), str(step))
    assert live is not None
    return live


def test_smd_remove_one_keep_one_with_dangling_subitem() -> None:
    live = run_ops([
        ("apply", "apply-one", {"listOfLists": [{"name": "a"}, {"name": "b", "value": ["c"]}]}),
        ("apply", "apply-two", {"listOfLists": [{"name": "b", "value": ["d"]}]}),
        ("update", "controller", {"listOfLists": [{"name": "a"}, {"name": "b", "value": ["c", "d", "e"]}]}),
        ("apply", "apply-one", {"listOfLists": [{"name": "a"}]}),
    ])

    assert live["listOfLists"] == [{"name": "a"}, {"name": "b", "value": ["d", "e"]}]
    assert owned(live, "apply-one") == ['.listOfLists[name="a"]', '.listOfLists[name="a"].name']
    assert owned(live, "apply-two") == ['.listOfLists[name="b"]', '.listOfLists[name="b"].name',
                                        '.listOfLists[name="b"].value[="d"]']
    assert owned(live, "controller", "Update") == ['.listOfLists[name="b"].value[="e"]']


def test_smd_remove_one_with_dangling_subitem_keep_one() -> None:
    live = run_ops([
        ("apply", "apply-one", {"listOfLists": [{"name": "a"}, {"name": "b", "value": ["c"]}]}),
        ("apply", "apply-two", {"listOfLists": [{"name": "a", "value": ["b"]}]}),
        ("update", "controller", {"listOfLists": [{"name": "a", "value": ["b"]}, {"name": "b", "value": ["c", "d"]}]}),
        ("apply", "apply-one", {"listOfLists": [{"name": "a"}]}),
    ])

    assert live["listOfLists"] == [{"name": "a", "value": ["b"]}]
    assert ssa.managed_fields(live, "controller", "Update") is None


@pytest.mark.parametrize("last", [{}, {"struct": {}}, {"struct": None}])
def test_smd_struct_apply_update_then_release(last: dict[str, Any]) -> None:
    live = run_ops([
        ("apply", "default", {"struct": {"name": "a"}}),
        ("update", "controller", {"struct": {"name": "a", "value": 1}}),
        ("apply", "default", last),
    ])

    assert live["struct"] == {"value": 1}
    assert owned(live, "controller", "Update") == [".struct.value"]


def test_smd_struct_taken_over_by_an_update_is_not_pruned() -> None:
    live = run_ops([
        ("apply", "default", {"struct": {"name": "a"}}),
        ("update", "controller", {"struct": {"name": "b", "value": 1}}),
        ("apply", "default", {"struct": None}),
    ])

    assert live["struct"] == {"name": "b", "value": 1}

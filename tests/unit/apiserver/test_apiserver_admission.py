"""OwnerReferencesPermissionEnforcement (plugin/pkg/admission/gc/gc_admission.go) in the emulator."""

from __future__ import annotations

from typing import Any

from llmapp_sandbox.apiserver.admission import (
    RestMapping,
    check_owner_references,
    new_blocking_owner_refs,
    owner_references_changed,
)
from llmapp_sandbox.apiserver.gofmt import go_quote
from llmapp_sandbox.apiserver.rbac import Authorizer, RequestInfo, UserInfo, request_info, service_account_user

RUNNER = service_account_user("team-a", "llmapp-jobrunner")
RBAC = "rbac.authorization.k8s.io/v1"
CONFIGMAPS = request_info("POST", "/api/v1/namespaces/team-a/configmaps", {})
KINDS: dict[tuple[str, str], RestMapping] = {
    ("batch/v1", "Job"): ("batch", "jobs"), ("v1", "ConfigMap"): ("", "configmaps"),
    ("llmops.dev/v1alpha1", "LLMApp"): ("llmops.dev", "llmapps"), ("v1", "Namespace"): ("", "namespaces", False),
}


def rest_mapping(api_version: str, kind: str) -> RestMapping | None:
    return KINDS.get((api_version, kind))


def authorizer(*rules: dict[str, Any]) -> Authorizer:
    return Authorizer([
        {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "runner", "namespace": "team-a"},
         "rules": list(rules)},
        {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "runner", "namespace": "team-a"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "runner"},
         "subjects": [{"kind": "ServiceAccount", "name": "llmapp-jobrunner", "namespace": "team-a"}]},
    ])


def job_ref(block: bool | None = True, uid: str = "job-uid", name: str = "apply-1") -> dict[str, Any]:
    ref: dict[str, Any] = {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid, "controller": True}
    if block is not None:
        ref["blockOwnerDeletion"] = block
    return ref


def configmap(*refs: dict[str, Any], name: str = "plan-output") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "team-a"}
    if refs:
        meta["ownerReferences"] = list(refs)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"plan": "..."}}


def check(authz: Authorizer, verb: str, new: dict[str, Any], old: dict[str, Any] | None = None,
          info: RequestInfo = CONFIGMAPS, user: UserInfo = RUNNER) -> Any:
    return check_owner_references(user, verb, info, old, new, authz.authorize, rest_mapping)


CAN_CREATE = {"verbs": ["create", "get", "update", "patch"], "apiGroups": [""], "resources": ["configmaps"]}
CAN_DELETE = {"verbs": ["delete"], "apiGroups": [""], "resources": ["configmaps"]}
CAN_FINALIZE_JOBS = {"verbs": ["update"], "apiGroups": ["batch"], "resources": ["jobs/finalizers"]}
FINALIZERS_MESSAGE = ('configmaps "plan-output" is forbidden: cannot set blockOwnerDeletion if an ownerReference '
                      "refers to a resource you can't set finalizers on: , <nil>")


def test_blocking_owner_ref_to_a_job_without_jobs_finalizers_is_refused() -> None:
    """The fact observed on a real server: a ServiceAccount without update on jobs/finalizers."""
    error = check(authorizer(CAN_CREATE, CAN_DELETE), "create", configmap(job_ref()))
    assert error is not None
    assert (error.status, error.reason) == (403, "Forbidden")
    assert error.message == FINALIZERS_MESSAGE
    assert "Forbidden: cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set " \
           "finalizers on" in f"{error.reason}: {error.message.split('is forbidden: ')[1]}"
    assert error.details == {"name": "plan-output", "kind": "configmaps"}


def test_jobs_finalizers_and_configmaps_delete_make_it_pass() -> None:
    assert check(authorizer(CAN_CREATE, CAN_DELETE, CAN_FINALIZE_JOBS), "create", configmap(job_ref())) is None
    # on an update that adds the blocking reference as well
    authz = authorizer(CAN_CREATE, CAN_DELETE, CAN_FINALIZE_JOBS)
    assert check(authz, "update", configmap(job_ref()), old=configmap()) is None


def test_finalizers_on_an_other_job_name_is_not_enough() -> None:
    named = {"verbs": ["update"], "apiGroups": ["batch"], "resources": ["jobs/finalizers"], "resourceNames": ["x"]}
    assert check(authorizer(CAN_CREATE, named), "create", configmap(job_ref())) is not None
    named["resourceNames"] = ["apply-1"]
    assert check(authorizer(CAN_CREATE, named), "create", configmap(job_ref())) is None


def test_update_on_jobs_itself_is_not_update_on_jobs_finalizers() -> None:
    jobs = {"verbs": ["*"], "apiGroups": ["batch"], "resources": ["jobs"]}
    assert check(authorizer(CAN_CREATE, jobs), "create", configmap(job_ref())).message == FINALIZERS_MESSAGE


def test_non_blocking_owner_ref_needs_nothing_on_create() -> None:
    # The plugin skips the delete check on create: who can create an object could as well not create it.
    assert check(authorizer(CAN_CREATE), "create", configmap(job_ref(block=False))) is None
    assert check(authorizer(CAN_CREATE), "create", configmap(job_ref(block=None))) is None


def test_non_blocking_owner_ref_needs_only_delete_on_update() -> None:
    new, old = configmap(job_ref(block=False)), configmap()
    error = check(authorizer(CAN_CREATE), "update", new, old)
    assert error is not None
    assert error.message == ('configmaps "plan-output" is forbidden: cannot set an ownerRef on a resource you '
                             "can't delete: , <nil>")
    assert check(authorizer(CAN_CREATE, CAN_DELETE), "update", new, old) is None
    assert check(authorizer(CAN_CREATE, CAN_DELETE), "patch", new, old) is None


def test_blocking_ref_on_update_needs_delete_first() -> None:
    error = check(authorizer(CAN_CREATE, CAN_FINALIZE_JOBS), "update", configmap(job_ref()), configmap())
    assert error is not None and "can't delete" in error.message


def test_unchanged_owner_refs_need_nothing() -> None:
    obj = configmap(job_ref())
    assert check(authorizer(), "update", obj, configmap(job_ref())) is None
    assert check(authorizer(), "create", configmap()) is None


def test_only_newly_blocking_refs_need_finalizers() -> None:
    authz = authorizer(CAN_CREATE, CAN_DELETE)
    # already blocking before: only the (changed) list needs delete
    old = configmap(job_ref())
    new = configmap(job_ref(), {"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": "cm-uid"})
    assert check(authz, "update", new, old) is None
    # false -> true is newly blocking
    assert check(authz, "update", configmap(job_ref()), configmap(job_ref(block=False))).message == FINALIZERS_MESSAGE
    # unset -> true too
    assert check(authz, "update", configmap(job_ref()), configmap(job_ref(block=None))).message == FINALIZERS_MESSAGE
    # a new UID is a new reference
    assert check(authz, "update", configmap(job_ref(uid="new")), configmap(job_ref())).message == FINALIZERS_MESSAGE


def test_unknown_owner_kind_is_refused() -> None:
    ref = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "u", "blockOwnerDeletion": True}
    error = check(authorizer(CAN_CREATE, CAN_DELETE, CAN_FINALIZE_JOBS), "create", configmap(ref))
    assert error is not None
    assert error.message == ('configmaps "plan-output" is forbidden: cannot set blockOwnerDeletion in this case '
                             'because cannot find RESTMapping for APIVersion example.com/v1 Kind Widget: '
                             'no matches for kind "Widget" in version "example.com/v1"')
    # a known kind in an unserved version does not map either (RESTMappings is version-exact)
    ref = {**job_ref(), "apiVersion": "batch/v2"}
    error = check(authorizer(CAN_CREATE, CAN_DELETE, CAN_FINALIZE_JOBS), "create", configmap(ref))
    assert error is not None and 'no matches for kind "Job" in version "batch/v2"' in error.message
    # ...but without blockOwnerDeletion the kind is never looked up
    ref = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "u"}
    assert check(authorizer(CAN_CREATE), "create", configmap(ref)) is None


def test_malformed_owner_api_version() -> None:
    ref = {"apiVersion": "a/b/c", "kind": "Widget", "name": "w", "uid": "u", "blockOwnerDeletion": True}
    error = check(authorizer(CAN_CREATE), "create", configmap(ref))
    assert error is not None and error.message.endswith("Kind Widget: unexpected GroupVersion string: a/b/c")


def test_cluster_scoped_owner_is_checked_at_cluster_scope() -> None:
    ref = {"apiVersion": "v1", "kind": "Namespace", "name": "team-a", "uid": "ns", "blockOwnerDeletion": True}
    namespaces = {"verbs": ["update"], "apiGroups": [""], "resources": ["namespaces/finalizers"]}
    # a RoleBinding in team-a does not grant cluster-scoped namespaces/finalizers
    assert check(authorizer(CAN_CREATE, namespaces), "create", configmap(ref)) is not None
    authz = Authorizer([
        {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": "ns-finalizer"}, "rules": [namespaces]},
        {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": "ns-finalizer"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ns-finalizer"},
         "subjects": [{"kind": "ServiceAccount", "name": "llmapp-jobrunner", "namespace": "team-a"}]},
    ])
    assert check(authz, "create", configmap(ref)) is None


def test_custom_resource_owner() -> None:
    ref = {"apiVersion": "llmops.dev/v1alpha1", "kind": "LLMApp", "name": "rags", "uid": "app",
           "blockOwnerDeletion": True, "controller": True}
    error = check(authorizer(CAN_CREATE, {"verbs": ["*"], "apiGroups": ["llmops.dev"], "resources": ["llmapps"]}),
                  "create", configmap(ref))
    assert error is not None and error.message == FINALIZERS_MESSAGE
    finalizers = {"verbs": ["update"], "apiGroups": ["llmops.dev"], "resources": ["llmapps/finalizers"]}
    assert check(authorizer(CAN_CREATE, finalizers), "create", configmap(ref)) is None


def test_update_anything_finalizers_short_circuits() -> None:
    everything = {"verbs": ["update"], "apiGroups": ["*"], "resources": ["*/finalizers"]}
    authz = Authorizer([
        {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": "f"}, "rules": [everything]},
        {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": "f"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "f"},
         "subjects": [{"kind": "ServiceAccount", "name": "llmapp-jobrunner", "namespace": "team-a"}]},
    ])
    ref = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "u", "blockOwnerDeletion": True}
    assert check(authz, "create", configmap(ref)) is None  # not even REST-mapped


def test_system_masters_pass() -> None:
    admin = UserInfo("kubernetes-admin", ("system:masters", "system:authenticated"))
    ref = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "u", "blockOwnerDeletion": True}
    assert check(Authorizer([]), "update", configmap(ref), configmap(), user=admin) is None


def test_pods_status_is_whitelisted_and_other_operations_ignored() -> None:
    status = request_info("PUT", "/api/v1/namespaces/team-a/pods/p/status", {})
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team-a",
                                                            "ownerReferences": [job_ref()]}}
    assert check(authorizer(), "update", pod, {"metadata": {"name": "p"}}, info=status) is None
    assert check(authorizer(), "delete", configmap(job_ref())) is None


def test_reason_of_the_authorizer_is_quoted_into_the_message() -> None:
    authz = Authorizer([
        {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "runner", "namespace": "team-a"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "missing"},
         "subjects": [{"kind": "ServiceAccount", "name": "llmapp-jobrunner", "namespace": "team-a"}]},
    ])
    error = check(authz, "create", configmap(job_ref()))
    assert error is not None
    assert error.message.endswith("finalizers on: RBAC: role.rbac.authorization.k8s.io \"missing\" not found, <nil>")


def test_generated_name_is_used_when_the_object_has_no_name_yet() -> None:
    obj = configmap(job_ref())
    obj["metadata"].pop("name")
    obj["metadata"]["generateName"] = "plan-"
    error = check(authorizer(CAN_CREATE), "create", obj)
    assert error is not None and error.message.startswith(f"configmaps {go_quote('plan-')} is forbidden")


def test_custom_resource_object_message_is_group_qualified() -> None:
    info = request_info("PUT", "/apis/llmops.dev/v1alpha1/namespaces/team-a/llmapps/rags", {})
    app = {"apiVersion": "llmops.dev/v1alpha1", "kind": "LLMApp",
           "metadata": {"name": "rags", "namespace": "team-a", "ownerReferences": [job_ref(block=False)]}}
    error = check(authorizer(), "update", app, {"metadata": {"name": "rags"}}, info=info)
    assert error is not None
    assert error.message == ('llmapps.llmops.dev "rags" is forbidden: cannot set an ownerRef on a resource you '
                             "can't delete: , <nil>")
    assert error.details == {"name": "rags", "group": "llmops.dev", "kind": "llmapps"}


def test_helpers() -> None:
    assert owner_references_changed(configmap(job_ref()), None)
    assert not owner_references_changed(configmap(), None)
    assert owner_references_changed(configmap(job_ref(block=None)), configmap(job_ref(block=False)))
    assert not owner_references_changed(configmap(job_ref()), configmap(job_ref()))
    assert owner_references_changed(configmap(job_ref(uid="a"), job_ref(uid="b")),
                                    configmap(job_ref(uid="b"), job_ref(uid="a")))  # order matters
    assert new_blocking_owner_refs(configmap(job_ref(block=False)), None) == []

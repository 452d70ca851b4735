"""RBAC authorization, request attributes and the 403 message of the emulated kube-apiserver."""

from __future__ import annotations

from typing import Any

import pytest

from llmapp_sandbox.apiserver.errors import ApiError
from llmapp_sandbox.apiserver.rbac import (
    ANONYMOUS,
    Authorizer,
    RequestInfo,
    TokenBook,
    UserInfo,
    forbidden,
    request_info,
    service_account_user,
)

OPERATOR = service_account_user("llmapp-system", "llmapp-operator")
RBAC = "rbac.authorization.k8s.io/v1"


def role(name: str, namespace: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": name, "namespace": namespace},
            "rules": list(rules)}


def cluster_role(name: str, *rules: dict[str, Any], labels: dict[str, str] | None = None,
                 aggregate: dict[str, str] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": RBAC, "kind": "ClusterRole",
                           "metadata": {"name": name, "labels": labels or {}}, "rules": list(rules)}
    if aggregate is not None:
        obj["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": aggregate}]}
    return obj


def sa_subject(namespace: str | None = "llmapp-system", name: str = "llmapp-operator") -> dict[str, str]:
    subject = {"kind": "ServiceAccount", "name": name}
    if namespace is not None:
        subject["namespace"] = namespace
    return subject


def role_binding(name: str, namespace: str, role_kind: str, role_name: str,
                 *subjects: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
            "subjects": list(subjects) or [sa_subject()]}


def cluster_role_binding(name: str, role_name: str, *subjects: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
            "subjects": list(subjects) or [sa_subject()]}


def rule(verbs: list[str], groups: list[str], resources: list[str], names: list[str] | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {"verbs": verbs, "apiGroups": groups, "resources": resources}
    if names:
        r["resourceNames"] = names
    return r


def can(authz: Authorizer, method: str, path: str, query: dict[str, str] | None = None,
        user: UserInfo = OPERATOR) -> bool:
    return authz.authorize(user, request_info(method, path, query or {})).allowed


LLMAPPS = "/apis/llmops.dev/v1alpha1/namespaces/team-a/llmapps"


# ---------------------------------------------------------------------------------------------- requestinfo


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    ("GET", "/api/v1/namespaces/ns/secrets/name", {}, ("get", "", "ns", "secrets", "", "name")),
    ("GET", "/api/v1/namespaces/ns/secrets", {}, ("list", "", "ns", "secrets", "", "")),
    ("GET", "/api/v1/namespaces/ns/secrets", {"watch": "true"}, ("watch", "", "ns", "secrets", "", "")),
    ("GET", "/api/v1/namespaces/ns/secrets", {"watch": "false"}, ("list", "", "ns", "secrets", "", "")),
    ("GET", "/api/v1/namespaces/ns/secrets", {"watch": "0"}, ("list", "", "ns", "secrets", "", "")),
    ("GET", "/api/v1/namespaces/ns/secrets", {"watch": "1"}, ("watch", "", "ns", "secrets", "", "")),
    ("GET", "/api/v1/watch/namespaces/ns/secrets", {}, ("watch", "", "ns", "secrets", "", "")),
    ("GET", "/api/v1/watch/namespaces/ns/secrets/x", {}, ("watch", "", "ns", "secrets", "", "x")),
    ("GET", "/api/v1/secrets", {}, ("list", "", "", "secrets", "", "")),
    ("POST", f"{LLMAPPS}", {}, ("create", "llmops.dev", "team-a", "llmapps", "", "")),
    ("PUT", f"{LLMAPPS}/rags", {}, ("update", "llmops.dev", "team-a", "llmapps", "", "rags")),
    ("PATCH", f"{LLMAPPS}/rags/status", {}, ("patch", "llmops.dev", "team-a", "llmapps", "status", "rags")),
    ("PUT", f"{LLMAPPS}/rags/finalizers", {}, ("update", "llmops.dev", "team-a", "llmapps", "finalizers", "rags")),
    ("DELETE", f"{LLMAPPS}/rags", {}, ("delete", "llmops.dev", "team-a", "llmapps", "", "rags")),
    ("DELETE", f"{LLMAPPS}", {}, ("deletecollection", "llmops.dev", "team-a", "llmapps", "", "")),
    ("GET", "/api/v1/namespaces/ns/pods/p/log", {}, ("get", "", "ns", "pods", "log", "p")),
    ("HEAD", "/api/v1/namespaces/ns/pods/p", {}, ("get", "", "ns", "pods", "", "p")),
    # A namespace is itself "in" its namespace; status and finalize are namespace subresources.
    ("GET", "/api/v1/namespaces/ns", {}, ("get", "", "ns", "namespaces", "", "ns")),
    ("PUT", "/api/v1/namespaces/ns/finalize", {}, ("update", "", "ns", "namespaces", "finalize", "ns")),
    ("GET", "/api/v1/namespaces", {}, ("list", "", "", "namespaces", "", "")),
    ("GET", "/apis/apps/v1/deployments", {}, ("list", "apps", "", "deployments", "", "")),
    # A list with an exact metadata.name field selector is authorized as a named request.
    ("GET", "/api/v1/namespaces/ns/secrets", {"fieldSelector": "metadata.name=one"},
     ("list", "", "ns", "secrets", "", "one")),
    ("GET", "/api/v1/namespaces/ns/secrets", {"fieldSelector": "metadata.name=one", "watch": "true"},
     ("watch", "", "ns", "secrets", "", "one")),
    ("GET", "/api/v1/namespaces/ns/secrets", {"fieldSelector": "metadata.name!=one"},
     ("list", "", "ns", "secrets", "", "")),
    ("GET", "/api/v1/namespaces/ns/secrets", {"fieldSelector": "metadata.name=one", "labelSelector": "a b"},
     ("list", "", "ns", "secrets", "", "")),
])
def test_request_info_resource_requests(method: str, path: str, query: dict[str, str],
                                        expected: tuple[str, ...]) -> None:
    info = request_info(method, path, query)
    assert info.is_resource_request
    assert (info.verb, info.api_group, info.namespace, info.resource, info.subresource, info.name) == expected


@pytest.mark.parametrize(("method", "path", "verb"), [
    ("GET", "/api", "get"), ("GET", "/api/v1", "get"), ("GET", "/apis", "get"), ("GET", "/apis/llmops.dev", "get"),
    ("GET", "/apis/llmops.dev/v1alpha1", "get"), ("GET", "/version", "get"), ("GET", "/openapi/v3", "get"),
    ("GET", "/openapi/v3/apis/llmops.dev/v1alpha1", "get"), ("GET", "/healthz", "get"), ("POST", "/livez", "post"),
    ("GET", "/", "get"),
])
def test_request_info_non_resource_requests(method: str, path: str, verb: str) -> None:
    info = request_info(method, path, {})
    assert not info.is_resource_request
    assert (info.verb, info.path) == (verb, path)


def test_watch_prefix_without_a_resource_is_an_internal_error() -> None:
    with pytest.raises(ApiError) as raised:
        request_info("GET", "/api/v1/watch", {})
    assert raised.value.status == 500


# ---------------------------------------------------------------------------------------------- rule matching


def test_patch_on_llmapps_does_not_grant_llmapps_status() -> None:
    authz = Authorizer([role("op", "team-a", rule(["get", "patch"], ["llmops.dev"], ["llmapps"])),
                        role_binding("op", "team-a", "Role", "op")])
    assert can(authz, "PATCH", f"{LLMAPPS}/rags")
    assert not can(authz, "PATCH", f"{LLMAPPS}/rags/status")
    authz = Authorizer([role("op", "team-a", rule(["patch"], ["llmops.dev"], ["llmapps/status"])),
                        role_binding("op", "team-a", "Role", "op")])
    assert can(authz, "PATCH", f"{LLMAPPS}/rags/status")
    assert not can(authz, "PATCH", f"{LLMAPPS}/rags")


def test_star_subresource_and_star_resource() -> None:
    authz = Authorizer([role("op", "team-a", rule(["update"], ["llmops.dev"], ["*/finalizers"])),
                        role_binding("op", "team-a", "Role", "op")])
    assert can(authz, "PUT", f"{LLMAPPS}/rags/finalizers")
    assert not can(authz, "PUT", f"{LLMAPPS}/rags")
    assert not can(authz, "PUT", f"{LLMAPPS}/rags/status")
    authz = Authorizer([role("op", "team-a", rule(["*"], ["*"], ["*"])), role_binding("op", "team-a", "Role", "op")])
    assert can(authz, "PUT", f"{LLMAPPS}/rags/status")
    assert can(authz, "DELETE", "/api/v1/namespaces/team-a/secrets/s")


def test_api_group_must_match() -> None:
    authz = Authorizer([role("op", "team-a", rule(["get"], [""], ["llmapps"])),
                        role_binding("op", "team-a", "Role", "op")])
    assert not can(authz, "GET", f"{LLMAPPS}/rags")


def test_resource_names_apply_to_named_requests_only() -> None:
    authz = Authorizer([
        role("op", "team-a", rule(["get", "list", "watch", "update", "delete", "create", "deletecollection"], [""],
                                  ["secrets"], ["gh-token"])),
        role_binding("op", "team-a", "Role", "op"),
    ])
    secrets = "/api/v1/namespaces/team-a/secrets"
    assert can(authz, "GET", f"{secrets}/gh-token")
    assert can(authz, "PUT", f"{secrets}/gh-token")
    assert can(authz, "DELETE", f"{secrets}/gh-token")
    assert not can(authz, "GET", f"{secrets}/other")
    assert not can(authz, "GET", secrets)  # list
    assert not can(authz, "GET", secrets, {"watch": "true"})  # watch
    assert not can(authz, "POST", secrets)  # create has no name in the URL
    assert not can(authz, "DELETE", secrets)  # deletecollection
    # ...unless the list/watch names the object through an exact metadata.name field selector
    assert can(authz, "GET", secrets, {"fieldSelector": "metadata.name=gh-token"})
    assert can(authz, "GET", secrets, {"fieldSelector": "metadata.name=gh-token", "watch": "1"})
    assert not can(authz, "GET", secrets, {"fieldSelector": "metadata.name=other"})


def test_list_vs_get_and_watch_are_separate_verbs() -> None:
    authz = Authorizer([role("op", "team-a", rule(["get"], [""], ["configmaps"])),
                        role_binding("op", "team-a", "Role", "op")])
    cms = "/api/v1/namespaces/team-a/configmaps"
    assert can(authz, "GET", f"{cms}/one")
    assert not can(authz, "GET", cms)
    assert not can(authz, "GET", cms, {"watch": "true"})
    authz = Authorizer([role("op", "team-a", rule(["list"], [""], ["configmaps"])),
                        role_binding("op", "team-a", "Role", "op")])
    assert can(authz, "GET", cms)
    assert not can(authz, "GET", f"{cms}/one")
    assert not can(authz, "GET", cms, {"watch": "true"})
    assert not can(authz, "GET", "/api/v1/watch/namespaces/team-a/configmaps")
    authz = Authorizer([role("op", "team-a", rule(["watch"], [""], ["configmaps"])),
                        role_binding("op", "team-a", "Role", "op")])
    assert can(authz, "GET", cms, {"watch": "true"})
    assert can(authz, "GET", "/api/v1/watch/namespaces/team-a/configmaps")
    assert not can(authz, "GET", cms)


def test_cluster_role_bound_by_role_binding_applies_only_in_that_namespace() -> None:
    authz = Authorizer([cluster_role("reader", rule(["get", "list"], [""], ["secrets"])),
                        role_binding("reader", "team-a", "ClusterRole", "reader")])
    assert can(authz, "GET", "/api/v1/namespaces/team-a/secrets/s")
    assert can(authz, "GET", "/api/v1/namespaces/team-a/secrets")
    assert not can(authz, "GET", "/api/v1/namespaces/team-b/secrets/s")
    assert not can(authz, "GET", "/api/v1/secrets")  # all namespaces is cluster scope
    authz = Authorizer([cluster_role("reader", rule(["get", "list"], [""], ["secrets"])),
                        cluster_role_binding("reader", "reader")])
    assert can(authz, "GET", "/api/v1/namespaces/team-b/secrets/s")
    assert can(authz, "GET", "/api/v1/secrets")


def test_role_in_one_namespace_does_not_apply_in_another() -> None:
    authz = Authorizer([role("op", "team-a", rule(["get"], [""], ["secrets"])),
                        role_binding("op", "team-b", "Role", "op")])  # no Role "op" in team-b
    assert not can(authz, "GET", "/api/v1/namespaces/team-a/secrets/s")
    assert not can(authz, "GET", "/api/v1/namespaces/team-b/secrets/s")


def test_cluster_scoped_resources_need_cluster_role_binding() -> None:
    authz = Authorizer([cluster_role("crd", rule(["get", "list"], ["apiextensions.k8s.io"],
                                                 ["customresourcedefinitions"])),
                        role_binding("crd", "team-a", "ClusterRole", "crd")])
    assert not can(authz, "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/llmapps.llmops.dev")
    authz = Authorizer([cluster_role("crd", rule(["get", "list"], ["apiextensions.k8s.io"],
                                                 ["customresourcedefinitions"])),
                        cluster_role_binding("crd", "crd")])
    assert can(authz, "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/llmapps.llmops.dev")


def test_subject_kinds() -> None:
    objects = [cluster_role("r", rule(["get"], [""], ["pods"])),
               role_binding("u", "a", "ClusterRole", "r", {"kind": "User", "name": "alice",
                                                            "apiGroup": "rbac.authorization.k8s.io"}),
               role_binding("g", "b", "ClusterRole", "r", {"kind": "Group", "name": "devs",
                                                            "apiGroup": "rbac.authorization.k8s.io"}),
               # a ServiceAccount subject without namespace defaults to the RoleBinding's namespace
               role_binding("s", "c", "ClusterRole", "r", sa_subject(None, "builder")),
               # ... but in a ClusterRoleBinding it matches nothing
               cluster_role_binding("s", "r", sa_subject(None, "builder"))]
    authz = Authorizer(objects)
    alice, dev = UserInfo("alice", ("system:authenticated",)), UserInfo("bob", ("devs", "system:authenticated"))
    assert can(authz, "GET", "/api/v1/namespaces/a/pods/p", user=alice)
    assert not can(authz, "GET", "/api/v1/namespaces/b/pods/p", user=alice)
    assert can(authz, "GET", "/api/v1/namespaces/b/pods/p", user=dev)
    assert can(authz, "GET", "/api/v1/namespaces/c/pods/p", user=service_account_user("c", "builder"))
    assert not can(authz, "GET", "/api/v1/namespaces/c/pods/p", user=service_account_user("d", "builder"))
    assert not can(authz, "GET", "/api/v1/namespaces/x/pods/p", user=service_account_user("c", "builder"))
    # the group of all service accounts of a namespace
    authz = Authorizer([cluster_role("r", rule(["get"], [""], ["pods"])),
                        cluster_role_binding("all", "r", {"kind": "Group", "name": "system:serviceaccounts:c"})])
    assert can(authz, "GET", "/api/v1/namespaces/x/pods/p", user=service_account_user("c", "anyone"))
    assert not can(authz, "GET", "/api/v1/namespaces/x/pods/p", user=service_account_user("d", "anyone"))


def test_binding_to_missing_role_grants_nothing_and_says_so() -> None:
    authz = Authorizer([role_binding("op", "team-a", "ClusterRole", "llmapp-operator")])
    info = request_info("GET", "/api/v1/namespaces/team-a/secrets", {})
    decision = authz.authorize(OPERATOR, info)
    assert not decision.allowed
    assert decision.reason == 'RBAC: clusterrole.rbac.authorization.k8s.io "llmapp-operator" not found'
    assert authz.forbidden(OPERATOR, info).message == (
        'secrets is forbidden: User "system:serviceaccount:llmapp-system:llmapp-operator" cannot list resource '
        '"secrets" in API group "" in the namespace "team-a": '
        'RBAC: clusterrole.rbac.authorization.k8s.io "llmapp-operator" not found')
    authz = Authorizer([role_binding("op", "team-a", "Role", "gone"), role_binding("op2", "team-a", "Role", "gone2")])
    assert authz.authorize(OPERATOR, info).reason == ('RBAC: [role.rbac.authorization.k8s.io "gone" not found, '
                                                       'role.rbac.authorization.k8s.io "gone2" not found]')


def test_system_masters_can_do_anything() -> None:
    authz = Authorizer([])
    admin = UserInfo("kubernetes-admin", ("system:masters", "system:authenticated"))
    assert can(authz, "DELETE", "/api/v1/namespaces/kube-system", user=admin)
    assert can(authz, "GET", "/metrics", user=admin)
    assert can(authz, "PUT", f"{LLMAPPS}/rags/status", user=admin)


def test_discovery_and_public_info_for_authenticated_and_anonymous() -> None:
    authz = Authorizer([])
    for path in ["/api", "/api/v1", "/apis", "/apis/llmops.dev/v1alpha1", "/version", "/openapi/v3",
                 "/openapi/v3/apis/llmops.dev/v1alpha1", "/healthz", "/livez", "/readyz"]:
        assert can(authz, "GET", path), path
    assert not can(authz, "GET", "/metrics")
    assert not can(authz, "POST", "/api")
    # anonymous users only get the public info endpoints
    for path in ["/healthz", "/livez", "/readyz", "/version"]:
        assert can(authz, "GET", path, user=ANONYMOUS), path
    for path in ["/api", "/apis", "/openapi/v3"]:
        assert not can(authz, "GET", path, user=ANONYMOUS), path
    assert not can(authz, "GET", "/api/v1/namespaces", user=ANONYMOUS)


def test_basic_user_self_reviews() -> None:
    authz = Authorizer([])
    assert can(authz, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
    assert can(authz, "POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews")
    assert not can(authz, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews")
    assert not can(authz, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", user=ANONYMOUS)


def test_non_resource_urls_with_wildcards() -> None:
    authz = Authorizer([cluster_role("m", {"verbs": ["get"], "nonResourceURLs": ["/metrics", "/logs/*"]}),
                        cluster_role_binding("m", "m")])
    assert can(authz, "GET", "/metrics")
    assert can(authz, "GET", "/logs/kube-apiserver.log")
    assert not can(authz, "GET", "/metrics/slis")
    assert not can(authz, "POST", "/metrics")


def test_aggregated_cluster_roles() -> None:
    authz = Authorizer([
        cluster_role("llmapp-view", rule(["get", "list", "watch"], ["llmops.dev"], ["llmapps"]),
                     labels={"rbac.authorization.k8s.io/aggregate-to-view": "true"}),
        cluster_role("llmapp-all", aggregate={"example.com/llmapp": "true"}),
        cluster_role("llmapp-part", rule(["delete"], ["llmops.dev"], ["llmapps"]),
                     labels={"example.com/llmapp": "true"}),
        role_binding("viewer", "team-a", "ClusterRole", "view"),
        role_binding("all", "team-a", "ClusterRole", "llmapp-all", sa_subject("team-a", "deleter")),
    ])
    assert can(authz, "GET", f"{LLMAPPS}/rags")  # via view (aggregates aggregate-to-view)
    assert can(authz, "GET", "/api/v1/namespaces/team-a/configmaps/c")  # bootstrap view rules
    assert not can(authz, "GET", "/api/v1/namespaces/team-a/secrets/s")  # view never reads secrets
    assert not can(authz, "DELETE", f"{LLMAPPS}/rags")
    assert can(authz, "DELETE", f"{LLMAPPS}/rags", user=service_account_user("team-a", "deleter"))


def test_edit_role_includes_view_through_nested_aggregation() -> None:
    authz = Authorizer([role_binding("editor", "team-a", "ClusterRole", "edit")])
    assert can(authz, "GET", "/api/v1/namespaces/team-a/configmaps/c")  # from view via edit
    assert can(authz, "PATCH", "/api/v1/namespaces/team-a/secrets/s")
    assert not can(authz, "GET", "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/roles/r")
    authz = Authorizer([role_binding("admin", "team-a", "ClusterRole", "admin")])
    assert can(authz, "GET", "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/roles/r")
    assert can(authz, "GET", "/api/v1/namespaces/team-a/configmaps/c")  # admin <- edit <- view


def test_non_rbac_objects_are_ignored() -> None:
    authz = Authorizer([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "a"}}])
    assert not can(authz, "GET", "/api/v1/namespaces/a/configmaps/x")


# ---------------------------------------------------------------------------------------------- 403 messages


def test_forbidden_message_for_a_named_subresource() -> None:
    authz = Authorizer([])
    error = authz.forbidden(OPERATOR, request_info("PATCH", f"{LLMAPPS}/rags/status", {}))
    assert error.status == 403
    assert error.reason == "Forbidden"
    assert error.message == (
        'llmapps.llmops.dev "rags" is forbidden: User "system:serviceaccount:llmapp-system:llmapp-operator" '
        'cannot patch resource "llmapps/status" in API group "llmops.dev" in the namespace "team-a"')
    assert error.details == {"name": "rags", "group": "llmops.dev", "kind": "llmapps"}
    body = error.body()
    assert body["kind"] == "Status" and body["code"] == 403 and body["details"]["kind"] == "llmapps"


def test_forbidden_message_for_a_list() -> None:
    error = Authorizer([]).forbidden(OPERATOR, request_info("GET", "/api/v1/namespaces/x/secrets", {}))
    assert error.message == ('secrets is forbidden: User "system:serviceaccount:llmapp-system:llmapp-operator" '
                             'cannot list resource "secrets" in API group "" in the namespace "x"')
    assert error.details == {"kind": "secrets"}


def test_forbidden_message_at_cluster_scope() -> None:
    error = Authorizer([]).forbidden(OPERATOR, request_info("GET", "/apis/llmops.dev/v1alpha1/llmapps",
                                                            {"watch": "true"}))
    assert error.message == ('llmapps.llmops.dev is forbidden: User '
                             '"system:serviceaccount:llmapp-system:llmapp-operator" cannot watch resource "llmapps" '
                             'in API group "llmops.dev" at the cluster scope')
    error = Authorizer([]).forbidden(OPERATOR, request_info("GET", "/api/v1/namespaces/team-a", {}))
    assert error.message == ('namespaces "team-a" is forbidden: User '
                             '"system:serviceaccount:llmapp-system:llmapp-operator" cannot get resource "namespaces" '
                             'in API group "" in the namespace "team-a"')


def test_forbidden_message_for_a_non_resource_path() -> None:
    error = Authorizer([]).forbidden(UserInfo("x"), request_info("GET", "/openapi/v3", {}))
    assert error.message == 'forbidden: User "x" cannot get path "/openapi/v3"'
    assert error.body()["details"] == {}
    anonymous = Authorizer([]).forbidden(ANONYMOUS, request_info("GET", "/", {}))
    assert anonymous.message == 'forbidden: User "system:anonymous" cannot get path "/"'


def test_forbidden_escapes_html_characters_in_the_message() -> None:
    error = forbidden(UserInfo("<b>&"), RequestInfo(False, "/x", "get"))
    assert error.message == 'forbidden: User "&lt;b&gt;&amp;" cannot get path "/x"'


def test_check_raises_only_when_denied() -> None:
    authz = Authorizer([role("op", "team-a", rule(["get"], [""], ["secrets"])),
                        role_binding("op", "team-a", "Role", "op")])
    authz.check(OPERATOR, request_info("GET", "/api/v1/namespaces/team-a/secrets/s", {}))
    with pytest.raises(ApiError) as raised:
        authz.check(OPERATOR, request_info("GET", "/api/v1/namespaces/team-a/secrets", {}))
    assert raised.value.status == 403


def test_allowed_reason_names_the_binding() -> None:
    authz = Authorizer([role("op", "team-a", rule(["get"], [""], ["secrets"])),
                        role_binding("op-binding", "team-a", "Role", "op")])
    decision = authz.authorize(OPERATOR, request_info("GET", "/api/v1/namespaces/team-a/secrets/s", {}))
    assert decision.allowed
    assert decision.reason == ('RBAC: allowed by RoleBinding "op-binding/team-a" of Role "op" to ServiceAccount '
                               '"llmapp-operator/llmapp-system"')


# ---------------------------------------------------------------------------------------------- tokens


def test_token_book() -> None:
    book = TokenBook()
    assert book.authenticate(f"Bearer {book.admin_token}").groups[0] == "system:masters"
    token = book.mint_service_account_token("llmapp-system", "llmapp-operator")
    user = book.authenticate(f"Bearer {token}")
    assert user == OPERATOR
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:llmapp-system", "system:authenticated")
    assert book.authenticate(f"bearer {token}") == user  # the scheme is case-insensitive
    assert book.authenticate(None) == ANONYMOUS
    assert book.authenticate("Basic dXNlcjpwdw==") == ANONYMOUS
    with pytest.raises(ApiError) as raised:
        book.authenticate("Bearer not-a-token")
    assert (raised.value.status, raised.value.reason, raised.value.message) == (401, "Unauthorized", "Unauthorized")
    assert raised.value.body().get("details") is None
    alice = book.authenticate(f"Bearer {book.mint('alice', ['devs'])}")
    assert alice.groups == ("devs", "system:authenticated")
    book.revoke(token)
    with pytest.raises(ApiError):
        book.authenticate(f"Bearer {token}")

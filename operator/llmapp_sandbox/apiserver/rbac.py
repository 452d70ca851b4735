"""Authentication tokens, request attributes and RBAC authorization, as kube-apiserver v1.32 does them.

Ported from (behaviour and message texts):

* `staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`: HTTP method + path + query to
  verb / API group / version / namespace / resource / subresource / name (`request_info`).
* `plugin/pkg/auth/authorizer/rbac/rbac.go` and `pkg/apis/rbac/v1/evaluation_helpers.go`: rule matching
  (`VerbMatches`, `APIGroupMatches`, `ResourceMatches` with `*/subresource`, `ResourceNameMatches`,
  `NonResourceURLMatches` with a trailing `*`).
* `pkg/registry/rbac/validation/rule.go`: which bindings apply (ClusterRoleBindings, then RoleBindings
  of the request's namespace; ServiceAccount subjects defaulting to the binding's namespace) and the
  resolution errors (`clusterrole.rbac.authorization.k8s.io "x" not found`) that end up in the denial
  reason.
* `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`: the default ClusterRoles and
  ClusterRoleBindings that matter to clients (cluster-admin, system:discovery, system:public-info-viewer,
  system:basic-user, system:monitoring, system:service-account-issuer-discovery, admin/edit/view with
  their aggregation).
* The `system:masters` privileged-group authorizer that kube-apiserver puts before RBAC.
* `pkg/controller/clusterroleaggregation`: aggregated ClusterRoles get the rules of the ClusterRoles
  their `aggregationRule` selects (computed immediately here, to a fixed point).
* `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go` (`Forbidden`,
  `forbiddenMessage`) with `apierrors.NewForbidden`: the 403 Status (`forbidden`).
* The bearer token authenticator and anonymous fallback (`TokenBook.authenticate`).
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmapp_sandbox.apiserver.errors import ApiError
from llmapp_sandbox.apiserver.selectors import (
    LabelSelector,
    SelectorError,
    field_selector,
    go_quote,
    label_selector,
    label_selector_from_dict,
)

__all__ = [
    "ADMIN_USER",
    "ANONYMOUS",
    "Authorizer",
    "Decision",
    "ForbiddenError",
    "RequestInfo",
    "TokenBook",
    "UserInfo",
    "bootstrap_policy",
    "forbidden",
    "request_info",
    "resource_attributes",
    "rule_allows",
    "service_account_user",
]

RBAC_GROUP = "rbac.authorization.k8s.io"
SYSTEM_MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
SERVICE_ACCOUNTS = "system:serviceaccounts"


# --------------------------------------------------------------------------------------------------
# Users and tokens
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def in_group(self, group: str) -> bool:
        return group in self.groups


ANONYMOUS = UserInfo("system:anonymous", (UNAUTHENTICATED,))
ADMIN_USER = UserInfo("kubernetes-admin", (SYSTEM_MASTERS, AUTHENTICATED))


def service_account_user(namespace: str, name: str, uid: str = "") -> UserInfo:
    """serviceaccount.UserInfo, with the `system:authenticated` group the authenticator adds."""
    return UserInfo(f"system:serviceaccount:{namespace}:{name}",
                    (SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{namespace}", AUTHENTICATED), uid)


class TokenBook:
    """Bearer tokens the emulator accepts: token -> user. One admin token (group system:masters) is made up front."""

    def __init__(self, admin_token: str | None = None) -> None:
        self._users: dict[str, UserInfo] = {}
        self.admin_token = admin_token or self._new_token()
        self._users[self.admin_token] = ADMIN_USER

    @staticmethod
    def _new_token() -> str:
        return secrets.token_urlsafe(32)

    def add(self, token: str, user: UserInfo) -> str:
        self._users[token] = user
        return token

    def mint(self, name: str, groups: Sequence[str] = ()) -> str:
        """A token for a plain user; `system:authenticated` is added as the real authenticator does."""
        all_groups = tuple(groups) + (() if AUTHENTICATED in groups else (AUTHENTICATED,))
        return self.add(self._new_token(), UserInfo(name, all_groups))

    def mint_service_account_token(self, namespace: str, name: str) -> str:
        return self.add(self._new_token(), service_account_user(namespace, name))

    def revoke(self, token: str) -> None:
        self._users.pop(token, None)

    def lookup(self, token: str) -> UserInfo | None:
        return self._users.get(token)

    def authenticate(self, authorization: str | None) -> UserInfo:
        """The `Authorization` header to a user, as the bearer token + anonymous authenticators decide.

        No header, or one that is not `Bearer <token>`: the anonymous user. An empty or unknown bearer
        token: 401 `Unauthorized` (an authenticator error is not retried as anonymous).
        """
        auth = (authorization or "").strip()
        if not auth:
            return ANONYMOUS
        parts = auth.split(" ", 2)
        if len(parts) < 2 or parts[0].lower() != "bearer":
            return ANONYMOUS
        token = parts[1]
        if not token:
            return ANONYMOUS  # "Bearer  x": empty token, the authenticator abstains (and warns)
        user = self._users.get(token)
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return user


# --------------------------------------------------------------------------------------------------
# Request attributes
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestInfo:
    """request.RequestInfo, which is also the authorizer.Attributes the emulator authorizes."""

    is_resource_request: bool
    path: str
    verb: str
    api_prefix: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    parts: tuple[str, ...] = ()


def resource_attributes(verb: str, resource: str, *, group: str = "", version: str = "v1", namespace: str = "",
                        name: str = "", subresource: str = "") -> RequestInfo:
    """An authorizer.AttributesRecord for a resource request (what admission plugins build)."""
    return RequestInfo(True, "", verb, "api" if not group else "apis", group, version, namespace, resource,
                       subresource, name)


_SPECIAL_VERBS = {"proxy", "watch"}
_NAMESPACE_SUBRESOURCES = {"status", "finalize"}
_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def _truthy_query_bool(value: str) -> bool:
    """Convert_Slice_string_To_bool: anything but `0` or (case-insensitively) `false` is true, even ``."""
    return not (value == "0" or value.lower() == "false")


def _valid_path_segment_name(name: str) -> bool:
    """path.IsValidPathSegmentName."""
    return name not in (".", "..") and "/" not in name and "%" not in name


def request_info(method: str, path: str, query: Mapping[str, str] | None = None) -> RequestInfo:
    """RequestInfoFactory.NewRequestInfo with APIPrefixes {api, apis} and GrouplessAPIPrefixes {api}.

    `path` is the URL path (already unescaped), `query` the query parameters (first value of each).
    A `/watch/` path with nothing after it raises the 500 the real filter answers.
    """
    query = query or {}
    parts = [p for p in path.strip("/").split("/")] if path.strip("/") else []
    verb = method.lower()
    non_resource = RequestInfo(False, path, verb)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return non_resource
    prefix, current = parts[0], parts[1:]
    group = ""
    if prefix != "api":
        if len(current) < 3:
            return non_resource
        group, current = current[0], current[1:]
    version, current = current[0], current[1:]
    if current[0] in _SPECIAL_VERBS:
        if len(current) < 2:
            raise ApiError(500, "InternalError", f"Internal Server Error: {go_quote(path)}: failed to create "
                           f"RequestInfo: unable to determine kind and namespace from url, {path}")
        verb, current = current[0], current[1:]
    else:
        verb = _METHOD_VERBS.get(method.upper(), "")
    namespace = ""
    if current[0] == "namespaces" and len(current) > 1:
        namespace = current[1]
        # another step after the namespace name that is not a namespace subresource: a namespaced resource
        if len(current) > 2 and current[2] not in _NAMESPACE_SUBRESOURCES:
            current = current[2:]
    resource = name = subresource = ""
    if len(current) >= 3 and verb != "proxy":
        subresource = current[2]
    if len(current) >= 2:
        name = current[1]
    if len(current) >= 1:
        resource = current[0]
    if not name and verb == "get":
        verb = "list"
        options_valid = True
        watch = False
        if "watch" in query:
            watch = _truthy_query_bool(query["watch"])
        # ListOptions decoding: a bad labelSelector/fieldSelector makes the whole decode fail, and then
        # only `watch` is honoured and no name is taken from the field selector.
        selected_name: str | None = None
        try:
            for integer in ("limit", "timeoutSeconds"):
                if integer in query and not re.fullmatch(r"[+-]?[0-9]+", query[integer]):
                    raise SelectorError(f"invalid {integer}")
            if query.get("labelSelector"):
                label_selector(query["labelSelector"])
            if query.get("fieldSelector"):
                selected_name = field_selector(query["fieldSelector"]).requires_exact_match("metadata.name")
        except SelectorError:
            options_valid = False
        if watch:
            verb = "watch"
        if options_valid and selected_name is not None and _valid_path_segment_name(selected_name):
            name = selected_name
    if not name and verb == "delete":
        verb = "deletecollection"
    return RequestInfo(True, path, verb, prefix, group, version, namespace, resource, subresource, name,
                       tuple(current))


# --------------------------------------------------------------------------------------------------
# RBAC objects and rule matching
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyRule:
    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, rule: Mapping[str, Any]) -> PolicyRule:
        def strings(key: str) -> tuple[str, ...]:
            return tuple(str(v) for v in rule.get(key) or [])

        return cls(strings("verbs"), strings("apiGroups"), strings("resources"), strings("resourceNames"),
                   strings("nonResourceURLs"))


def rule_allows(info: RequestInfo, rule: PolicyRule) -> bool:
    """rbac.RuleAllows."""
    if not any(v == "*" or v == info.verb for v in rule.verbs):
        return False
    if not info.is_resource_request:
        return any(url == "*" or url == info.path or (url.endswith("*") and info.path.startswith(url.rstrip("*")))
                   for url in rule.non_resource_urls)
    if not any(g == "*" or g == info.api_group for g in rule.api_groups):
        return False
    combined = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
    resource_ok = False
    for ruled in rule.resources:
        if ruled == "*" or ruled == combined:
            resource_ok = True
            break
        if (info.subresource and len(ruled) == len(info.subresource) + 2 and ruled.startswith("*/")
                and ruled.endswith(info.subresource)):
            resource_ok = True
            break
    if not resource_ok:
        return False
    # An empty name (list, watch, create, deletecollection without a name) never matches resourceNames.
    return not rule.resource_names or info.name in rule.resource_names


@dataclass(frozen=True)
class Subject:
    kind: str
    name: str
    namespace: str = ""

    def describe(self, binding_namespace: str) -> str:
        if self.kind == "ServiceAccount":
            return f"{self.kind} {go_quote(self.name + '/' + (self.namespace or binding_namespace))}"
        return f"{self.kind} {go_quote(self.name)}"


@dataclass(frozen=True)
class Binding:
    kind: str  # RoleBinding or ClusterRoleBinding
    name: str
    namespace: str
    role_kind: str
    role_name: str
    subjects: tuple[Subject, ...]

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Binding:
        meta = obj.get("metadata") or {}
        ref = obj.get("roleRef") or {}
        subjects = tuple(Subject(str(s.get("kind", "")), str(s.get("name", "")), str(s.get("namespace") or ""))
                         for s in obj.get("subjects") or [])
        namespace = str(meta.get("namespace") or "") if obj.get("kind") == "RoleBinding" else ""
        return cls(str(obj.get("kind")), str(meta.get("name", "")), namespace, str(ref.get("kind", "")),
                   str(ref.get("name", "")), subjects)

    def applying_subject(self, user: UserInfo) -> Subject | None:
        """appliesTo: the first subject naming this user (pkg/registry/rbac/validation/rule.go)."""
        for subject in self.subjects:
            if subject.kind == "User" and subject.name == user.name:
                return subject
            if subject.kind == "Group" and subject.name in user.groups:
                return subject
            if subject.kind == "ServiceAccount":
                namespace = subject.namespace or self.namespace
                if namespace and user.name == f"system:serviceaccount:{namespace}:{subject.name}":
                    return subject
        return None

    def describe(self, subject: Subject) -> str:
        if self.kind == "ClusterRoleBinding":
            return (f"ClusterRoleBinding {go_quote(self.name)} of {self.role_kind} {go_quote(self.role_name)} "
                    f"to {subject.describe('')}")
        return (f"RoleBinding {go_quote(self.name + '/' + self.namespace)} of {self.role_kind} "
                f"{go_quote(self.role_name)} to {subject.describe(self.namespace)}")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in ((obj.get("metadata") or {}).get("labels") or {}).items()}


# --------------------------------------------------------------------------------------------------
# Bootstrap policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go), the parts clients meet
# --------------------------------------------------------------------------------------------------

_READ = ["get", "list", "watch"]
_WRITE = ["create", "update", "patch", "delete", "deletecollection"]
_READ_WRITE = _READ + _WRITE
_BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}


def _rule(verbs: Sequence[str], groups: Sequence[str] = (), resources: Sequence[str] = (),
          urls: Sequence[str] = (), names: Sequence[str] = ()) -> dict[str, Any]:
    rule: dict[str, Any] = {"verbs": list(verbs)}
    if urls:
        rule["nonResourceURLs"] = list(urls)
    else:
        rule["apiGroups"] = list(groups)
        rule["resources"] = list(resources)
    if names:
        rule["resourceNames"] = list(names)
    return rule


def _cluster_role(name: str, rules: list[dict[str, Any]], labels: Mapping[str, str] | None = None,
                  aggregate_from: str | None = None) -> dict[str, Any]:
    role: dict[str, Any] = {
        "apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {**_BOOTSTRAP_LABELS, **(labels or {})},
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "rules": rules,
    }
    if aggregate_from:
        role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {aggregate_from: "true"}}]}
    return role


def _cluster_binding(name: str, *, groups: Sequence[str] = (), users: Sequence[str] = ()) -> dict[str, Any]:
    subjects = [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in groups]
    subjects += [{"apiGroup": RBAC_GROUP, "kind": "User", "name": u} for u in users]
    return {
        "apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": dict(_BOOTSTRAP_LABELS),
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
        "subjects": subjects,
    }


def bootstrap_policy() -> list[dict[str, Any]]:
    """The default ClusterRoles and ClusterRoleBindings (a subset of policy.go), as API objects."""
    to_admin = "rbac.authorization.k8s.io/aggregate-to-admin"
    to_edit = "rbac.authorization.k8s.io/aggregate-to-edit"
    to_view = "rbac.authorization.k8s.io/aggregate-to-view"
    roles = [
        _cluster_role("cluster-admin", [_rule(["*"], ["*"], ["*"]), _rule(["*"], urls=["*"])]),
        _cluster_role("system:discovery", [_rule(["get"], urls=[
            "/livez", "/readyz", "/healthz", "/version", "/version/", "/openapi", "/openapi/*", "/api", "/api/*",
            "/apis", "/apis/*"])]),
        _cluster_role("system:monitoring", [_rule(["get"], urls=[
            "/metrics", "/metrics/slis", "/livez", "/readyz", "/healthz", "/livez/*", "/readyz/*", "/healthz/*"])]),
        _cluster_role("system:basic-user", [
            _rule(["create"], ["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
            _rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"])]),
        _cluster_role("system:public-info-viewer", [_rule(["get"], urls=[
            "/livez", "/readyz", "/healthz", "/version", "/version/"])]),
        _cluster_role("system:service-account-issuer-discovery", [_rule(["get"], urls=[
            "/.well-known/openid-configuration", "/.well-known/openid-configuration/", "/openid/v1/jwks",
            "/openid/v1/jwks/"])]),
        _cluster_role("admin", [], aggregate_from=to_admin),
        _cluster_role("edit", [], labels={to_admin: "true"}, aggregate_from=to_edit),
        _cluster_role("view", [], labels={to_edit: "true"}, aggregate_from=to_view),
        _cluster_role("system:aggregate-to-admin", [
            _rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
            _rule(_READ_WRITE, [RBAC_GROUP], ["roles", "rolebindings"])], labels={to_admin: "true"}),
        _cluster_role("system:aggregate-to-edit", [
            _rule(_READ, [""], ["pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets",
                                "services/proxy"]),
            _rule(["impersonate"], [""], ["serviceaccounts"]),
            _rule(_WRITE, [""], ["pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"]),
            _rule(["create"], [""], ["pods/eviction"]),
            _rule(_WRITE, [""], ["replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
                                 "services", "services/proxy", "persistentvolumeclaims", "configmaps", "secrets",
                                 "events"]),
            _rule(["create"], [""], ["serviceaccounts/token"]),
            _rule(_WRITE, ["apps"], ["statefulsets", "statefulsets/scale", "daemonsets", "deployments",
                                     "deployments/scale", "deployments/rollback", "replicasets", "replicasets/scale"]),
            _rule(_WRITE, ["autoscaling"], ["horizontalpodautoscalers"]),
            _rule(_WRITE, ["batch"], ["jobs", "cronjobs"]),
            _rule(_WRITE, ["extensions"], ["daemonsets", "deployments", "deployments/scale", "deployments/rollback",
                                           "ingresses", "replicasets", "replicasets/scale",
                                           "replicationcontrollers/scale", "networkpolicies"]),
            _rule(_WRITE, ["policy"], ["poddisruptionbudgets"]),
            _rule(_WRITE, ["networking.k8s.io"], ["networkpolicies", "ingresses"]),
            _rule(_READ_WRITE, ["coordination.k8s.io"], ["leases"])], labels={to_edit: "true"}),
        _cluster_role("system:aggregate-to-view", [
            _rule(_READ, [""], ["pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
                                "services", "services/status", "endpoints", "persistentvolumeclaims",
                                "persistentvolumeclaims/status", "configmaps"]),
            _rule(_READ, [""], ["limitranges", "resourcequotas", "bindings", "events", "pods/status",
                                "resourcequotas/status", "namespaces/status", "replicationcontrollers/status",
                                "pods/log"]),
            _rule(_READ, [""], ["namespaces"]),
            _rule(_READ, ["discovery.k8s.io"], ["endpointslices"]),
            _rule(_READ, ["apps"], ["controllerrevisions", "statefulsets", "statefulsets/status", "statefulsets/scale",
                                    "daemonsets", "daemonsets/status", "deployments", "deployments/status",
                                    "deployments/scale", "replicasets", "replicasets/status", "replicasets/scale"]),
            _rule(_READ, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
            _rule(_READ, ["batch"], ["jobs", "cronjobs", "cronjobs/status", "jobs/status"]),
            _rule(_READ, ["extensions"], ["daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                                          "deployments/status", "ingresses", "ingresses/status", "replicasets",
                                          "replicasets/scale", "replicasets/status", "replicationcontrollers/scale",
                                          "networkpolicies"]),
            _rule(_READ, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
            _rule(_READ, ["networking.k8s.io"], ["networkpolicies", "ingresses", "ingresses/status"])],
            labels={to_view: "true"}),
    ]
    bindings = [
        _cluster_binding("cluster-admin", groups=[SYSTEM_MASTERS]),
        _cluster_binding("system:monitoring", groups=["system:monitoring"]),
        _cluster_binding("system:discovery", groups=[AUTHENTICATED]),
        _cluster_binding("system:basic-user", groups=[AUTHENTICATED]),
        _cluster_binding("system:public-info-viewer", groups=[AUTHENTICATED, UNAUTHENTICATED]),
        _cluster_binding("system:service-account-issuer-discovery", groups=[SERVICE_ACCOUNTS]),
    ]
    return roles + bindings


# --------------------------------------------------------------------------------------------------
# The authorizer
# --------------------------------------------------------------------------------------------------


class Authorizer:
    """The union `system:masters` privileged-group authorizer, then RBAC (Node authorizer: no opinion).

    Built from stored Role / ClusterRole / RoleBinding / ClusterRoleBinding objects (other kinds are
    ignored) on top of the bootstrap policy; a stored object replaces a bootstrap one of the same name.
    Call `Authorizer(objects)` again after RBAC objects change: real RBAC reads informer caches that
    lag by milliseconds, this one is exact.
    """

    def __init__(self, objects: Iterable[Mapping[str, Any]] = (), *, include_bootstrap: bool = True) -> None:
        cluster_roles: dict[str, Mapping[str, Any]] = {}
        roles: dict[tuple[str, str], Mapping[str, Any]] = {}
        bindings: dict[tuple[str, str, str], Mapping[str, Any]] = {}
        sources: list[Mapping[str, Any]] = [*(bootstrap_policy() if include_bootstrap else []), *objects]
        for obj in sources:
            api_version = str(obj.get("apiVersion", ""))
            if not api_version.startswith(RBAC_GROUP + "/"):
                continue
            kind = obj.get("kind")
            meta = obj.get("metadata") or {}
            name, namespace = str(meta.get("name", "")), str(meta.get("namespace") or "")
            if kind == "ClusterRole":
                cluster_roles[name] = obj
            elif kind == "Role":
                roles[(namespace, name)] = obj
            elif kind == "ClusterRoleBinding":
                bindings[("ClusterRoleBinding", "", name)] = obj
            elif kind == "RoleBinding":
                bindings[("RoleBinding", namespace, name)] = obj
        self._cluster_rules = self._aggregate(cluster_roles)
        self._role_rules = {key: tuple(PolicyRule.from_dict(r) for r in obj.get("rules") or [])
                            for key, obj in roles.items()}
        # Listers answer in no particular order; sort so that denial reasons are stable.
        self._cluster_bindings = [Binding.from_dict(bindings[k]) for k in sorted(bindings)
                                  if k[0] == "ClusterRoleBinding"]
        self._role_bindings: dict[str, list[Binding]] = {}
        for key in sorted(bindings):
            if key[0] == "RoleBinding":
                self._role_bindings.setdefault(key[1], []).append(Binding.from_dict(bindings[key]))

    @staticmethod
    def _aggregate(cluster_roles: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[PolicyRule, ...]]:
        """The clusterrole-aggregation controller, run to a fixed point (nested aggregation: admin <- edit <- view)."""
        rules: dict[str, list[dict[str, Any]]] = {n: list(o.get("rules") or []) for n, o in cluster_roles.items()}
        selectors: dict[str, list[LabelSelector]] = {}
        for name, obj in cluster_roles.items():
            aggregation = obj.get("aggregationRule")
            if aggregation:
                # a selector that does not parse: the controller errors out and leaves the role as it is
                with contextlib.suppress(SelectorError):
                    selectors[name] = [label_selector_from_dict(s)
                                       for s in aggregation.get("clusterRoleSelectors") or []]
        for _ in range(len(selectors) + 1):
            changed = False
            for name, selector_list in selectors.items():
                new_rules: list[dict[str, Any]] = []
                for selector in selector_list:
                    for other in sorted(cluster_roles):
                        if other == name or not selector.matches(_labels(cluster_roles[other])):
                            continue
                        for rule in rules[other]:
                            if rule not in new_rules:
                                new_rules.append(rule)
                if new_rules != rules[name]:
                    rules[name], changed = new_rules, True
            if not changed:
                break
        return {name: tuple(PolicyRule.from_dict(r) for r in role_rules) for name, role_rules in rules.items()}

    def _role_reference_rules(self, binding: Binding) -> tuple[PolicyRule, ...] | str:
        if binding.role_kind == "Role":
            found = self._role_rules.get((binding.namespace, binding.role_name))
            return found if found is not None else f"role.{RBAC_GROUP} {go_quote(binding.role_name)} not found"
        if binding.role_kind == "ClusterRole":
            cluster = self._cluster_rules.get(binding.role_name)
            if cluster is None:
                return f"clusterrole.{RBAC_GROUP} {go_quote(binding.role_name)} not found"
            return cluster
        return f"unsupported role reference kind: {go_quote(binding.role_kind)}"

    def _rbac(self, user: UserInfo, info: RequestInfo) -> Decision:
        errors: list[str] = []
        candidates = list(self._cluster_bindings)
        if info.namespace:
            candidates += self._role_bindings.get(info.namespace, [])
        for binding in candidates:
            subject = binding.applying_subject(user)
            if subject is None:
                continue
            rules = self._role_reference_rules(binding)
            if isinstance(rules, str):
                errors.append(rules)
                continue
            if any(rule_allows(info, rule) for rule in rules):
                return Decision(True, f"RBAC: allowed by {binding.describe(subject)}")
        if not errors:
            return Decision(False, "")
        unique = list(dict.fromkeys(errors))
        return Decision(False, "RBAC: " + (unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"))

    def authorize(self, user: UserInfo, info: RequestInfo) -> Decision:
        if SYSTEM_MASTERS in user.groups:
            return Decision(True, "")
        return self._rbac(user, info)

    def allowed(self, user: UserInfo, verb: str, resource: str, *, group: str = "", namespace: str = "",
                name: str = "", subresource: str = "") -> bool:
        info = resource_attributes(verb, resource, group=group, namespace=namespace, name=name,
                                   subresource=subresource)
        return self.authorize(user, info).allowed

    def check(self, user: UserInfo, info: RequestInfo) -> None:
        """Raise the 403 the authorization filter answers when the request is not allowed."""
        decision = self.authorize(user, info)
        if not decision.allowed:
            raise forbidden(user, info, decision.reason)

    def forbidden(self, user: UserInfo, info: RequestInfo) -> ApiError:
        return forbidden(user, info, self.authorize(user, info).reason)


# --------------------------------------------------------------------------------------------------
# The 403
# --------------------------------------------------------------------------------------------------


class ForbiddenError(ApiError):
    """A 403 Status; `details` is always present (`{}` for non-resource requests), as NewForbidden sets it."""

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["details"] = dict(self.details or {})
        return body


_SANITIZE = re.compile(r"[&<>]")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def _forbidden_message(user: UserInfo, info: RequestInfo) -> str:
    if not info.is_resource_request:
        return f"User {go_quote(user.name)} cannot {info.verb} path {go_quote(info.path)}"
    resource = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
    where = (f"in the namespace {go_quote(info.namespace)}" if info.namespace else "at the cluster scope")
    return (f"User {go_quote(user.name)} cannot {info.verb} resource {go_quote(resource)} in API group "
            f"{go_quote(info.api_group)} {where}")


def forbidden(user: UserInfo, info: RequestInfo, reason: str = "") -> ForbiddenError:
    """responsewriters.Forbidden: `<resource>.<group> "<name>" is forbidden: User ... cannot ...[: reason]`."""
    message = _SANITIZE.sub(lambda m: _HTML[m.group(0)], _forbidden_message(user, info))
    if reason:
        message = f"{message}: {reason}"
    qualified = ""
    if info.is_resource_request and info.resource:
        qualified = f"{info.resource}.{info.api_group}" if info.api_group else info.resource
    if not qualified:
        text = f"forbidden: {message}"
    elif not info.name:
        text = f"{qualified} is forbidden: {message}"
    else:
        text = f"{qualified} {go_quote(info.name)} is forbidden: {message}"
    details: dict[str, Any] = {}
    if info.name:
        details["name"] = info.name
    if info.is_resource_request and info.api_group:
        details["group"] = info.api_group
    if info.is_resource_request and info.resource:
        details["kind"] = info.resource
    return ForbiddenError(403, "Forbidden", text, details)

"""The OwnerReferencesPermissionEnforcement admission plugin (`plugin/pkg/admission/gc/gc_admission.go`).

What the current plugin (v1.32) does, in order, on CREATE and UPDATE (PATCH is an UPDATE to admission):

1. `pods/status` is skipped (whitelisted: the pod status strategy keeps ownerRefs).
2. If the ownerReferences did not change (same length and each element deep-equal, in order), allow.
3. On UPDATE only, the user must be allowed to `delete` the object itself (same group, resource,
   subresource, namespace and name), else
   `<resource>[.<group>] "<name>" is forbidden: cannot set an ownerRef on a resource you can't delete: <reason>, <err>`.
   CREATE skips this check ("if you are creating a thing, you should always be allowed to set an owner
   ref since you logically had the power to never create it").
4. The ownerReferences that are new (by UID) or went from unset/false to `blockOwnerDeletion: true` are
   collected. None: allow.
5. If the user may `update` `*/finalizers` of `*` in API group `*` named `*` (cluster-wide wildcard), allow.
6. Each such reference's apiVersion/kind is REST-mapped (version-exact, as `RESTMappings(gk, version)`);
   an unknown kind is refused: `cannot set blockOwnerDeletion in this case because cannot find RESTMapping
   for APIVersion <v> Kind <k>: no matches for kind "<k>" in version "<v>"`. So a blocking reference to a
   kind the server does not serve is always refused (except for users passing step 5).
7. The user must be allowed to `update` `<owner resource>/finalizers` named after the owner (in the
   object's namespace if the owner is namespaced, cluster scope otherwise), else
   `... is forbidden: cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set
   finalizers on: <reason>, <err>`.

`<reason>` is the authorizer's reason (usually empty) and `<err>` its error (`<nil>`), which is why real
messages end in `: , <nil>`. The admission attributes name is the object's name (after generateName).
In the real server this runs after the object passed validation, so ownerReferences are well formed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from llmapp_sandbox.apiserver.errors import ApiError
from llmapp_sandbox.apiserver.rbac import Decision, RequestInfo, UserInfo, resource_attributes
from llmapp_sandbox.apiserver.selectors import go_quote

__all__ = ["AuthorizeFn", "RestMapping", "RestMappingFn", "check_owner_references", "new_blocking_owner_refs",
           "owner_references_changed"]

AuthorizeFn = Callable[[UserInfo, RequestInfo], Decision]
# (group, resource) or (group, resource, namespaced); namespaced defaults to True.
RestMapping = tuple[str, str] | tuple[str, str, bool]
# (apiVersion, kind) -> the owner's REST mapping in exactly that version, or None when the server has none.
RestMappingFn = Callable[[str, str], RestMapping | None]

_WHITELIST = {("", "pods", "status")}


def _owner_refs(obj: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if obj is None:
        return []
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [r for r in refs if isinstance(r, Mapping)]


def _normalized(ref: Mapping[str, Any]) -> dict[str, Any]:
    """An OwnerReference as the typed struct holds it: apiequality.Semantic.DeepEqual compares these."""
    return {
        "apiVersion": ref.get("apiVersion") or "",
        "kind": ref.get("kind") or "",
        "name": ref.get("name") or "",
        "uid": ref.get("uid") or "",
        "controller": ref.get("controller"),
        "blockOwnerDeletion": ref.get("blockOwnerDeletion"),
    }


def owner_references_changed(new_obj: Mapping[str, Any], old_obj: Mapping[str, Any] | None) -> bool:
    """isChangingOwnerReference."""
    new_refs = _owner_refs(new_obj)
    if old_obj is None:
        return len(new_refs) > 0
    old_refs = _owner_refs(old_obj)
    if len(old_refs) != len(new_refs):
        return True
    return any(_normalized(a) != _normalized(b) for a, b in zip(old_refs, new_refs, strict=True))


def new_blocking_owner_refs(new_obj: Mapping[str, Any], old_obj: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """newBlockingOwnerDeletionRefs: blocking refs that are new by UID, or were not blocking before."""
    blocking = [r for r in _owner_refs(new_obj) if r.get("blockOwnerDeletion") is True]
    if not blocking or old_obj is None:
        return blocking
    old_by_uid = {str(r.get("uid") or ""): r for r in _owner_refs(old_obj)}
    result = []
    for ref in blocking:
        old = old_by_uid.get(str(ref.get("uid") or ""))
        if old is None or old.get("blockOwnerDeletion") is not True:
            result.append(ref)
    return result


def _parse_group_version(api_version: str) -> tuple[str, str]:
    """schema.ParseGroupVersion; raises ValueError with the Go message."""
    if not api_version or api_version == "/":
        return "", ""
    count = api_version.count("/")
    if count == 0:
        return "", api_version
    if count == 1:
        group, version = api_version.split("/")
        return group, version
    raise ValueError(f"unexpected GroupVersion string: {api_version}")


def _group_version_string(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def _admission_forbidden(resource: str, group: str, name: str, detail: str) -> ApiError:
    """admission.NewForbidden -> apierrors.NewForbidden(attributes resource, object name, err)."""
    qualified = f"{resource}.{group}" if group else resource
    text = f"{qualified} {go_quote(name)} is forbidden: {detail}" if name else f"{qualified} is forbidden: {detail}"
    details = {"name": name, "group": group, "kind": resource}
    return ApiError(403, "Forbidden", text, {k: v for k, v in details.items() if v})


def _object_name(obj: Mapping[str, Any]) -> str:
    """extractResourceName: the object's name, else its generateName, else "Unknown"."""
    meta = obj.get("metadata") or {}
    return str(meta.get("name") or meta.get("generateName") or "Unknown")


def check_owner_references(user: UserInfo, verb: str, resource_info: RequestInfo, old_obj: Mapping[str, Any] | None,
                           new_obj: Mapping[str, Any], authorize: AuthorizeFn,
                           rest_mapping: RestMappingFn) -> ApiError | None:
    """Run the plugin for a create/update/patch of `new_obj` at `resource_info`; the 403 to answer, or None.

    `resource_info` gives the group, version, resource, subresource and namespace being written; `verb`
    is `create` (or an update that creates), `update` or `patch`. `authorize` is the server's whole
    authorizer (e.g. `Authorizer.authorize`), `rest_mapping` its discovery.
    """
    if verb not in ("create", "update", "patch"):
        return None
    creating = verb == "create" or old_obj is None
    group, resource, subresource = resource_info.api_group, resource_info.resource, resource_info.subresource
    if (group, resource, subresource) in _WHITELIST:
        return None
    if not owner_references_changed(new_obj, None if creating else old_obj):
        return None
    name = _object_name(new_obj)

    def refuse(detail: str) -> ApiError:
        return _admission_forbidden(resource, group, name, detail)

    if not creating:
        record = resource_attributes("delete", resource, group=group, version=resource_info.api_version,
                                     namespace=resource_info.namespace, subresource=subresource,
                                     name=resource_info.name or name)
        decision = authorize(user, record)
        if not decision.allowed:
            return refuse(f"cannot set an ownerRef on a resource you can't delete: {decision.reason}, <nil>")

    blocking = new_blocking_owner_refs(new_obj, None if creating else old_obj)
    if not blocking:
        return None
    anything = resource_attributes("update", "*", group="*", version="*", subresource="finalizers", name="*")
    if authorize(user, anything).allowed:
        return None

    for ref in blocking:
        api_version, kind = str(ref.get("apiVersion") or ""), str(ref.get("kind") or "")
        try:
            owner_group, owner_version = _parse_group_version(api_version)
        except ValueError as err:
            return refuse(f"cannot set blockOwnerDeletion in this case because cannot find RESTMapping for "
                          f"APIVersion {api_version} Kind {kind}: {err}")
        mapping = rest_mapping(api_version, kind)
        if mapping is None:
            no_match = (f"no matches for kind {go_quote(kind)} in version "
                        f"{go_quote(_group_version_string(owner_group, owner_version))}")
            return refuse(f"cannot set blockOwnerDeletion in this case because cannot find RESTMapping for "
                          f"APIVersion {api_version} Kind {kind}: {no_match}")
        namespaced = mapping[2] if len(mapping) == 3 else True
        record = resource_attributes("update", mapping[1], group=mapping[0], version=owner_version,
                                     namespace=resource_info.namespace if namespaced else "",
                                     subresource="finalizers", name=str(ref.get("name") or ""))
        decision = authorize(user, record)
        if not decision.allowed:
            return refuse("cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set "
                          f"finalizers on: {decision.reason}, <nil>")
    return None

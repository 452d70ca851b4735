"""The emulator's storage and the rules a real kube-apiserver applies to every write.

Every write goes through one path per verb, in the order the real server's handlers use: decode
(patch), admission of the object (namespace lifecycle, immutable metadata, finalizers of a
terminating object, owner references), then for custom resources pruning, defaulting and
validation against the CRD's structural schema and CEL rules, then the size limits, and last the
bookkeeping (resourceVersion, generation, managedFields). Reads default custom resources again, as
the real server does for objects stored before a default existed.

Also here, because they change what clients see: the namespace controller (a deleted namespace
empties itself, then goes), the garbage collector (objects whose owners are all gone are deleted)
and the CRD controller (a created CRD becomes a served kind with Established=True).
"""

from __future__ import annotations

import base64
import collections
import copy
import datetime
import json
import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmapp_sandbox.apiserver import errors as fe
from llmapp_sandbox.apiserver import schema as structural
from llmapp_sandbox.apiserver import ssa
from llmapp_sandbox.apiserver.errors import ApiError, FieldError
from llmapp_sandbox.apiserver.kinds import BUILTINS, LABEL_NAMED, Kind, kinds_of_crd
from llmapp_sandbox.apiserver.patches import (
    APPLY,
    JSON_PATCH,
    MERGE,
    STRATEGIC,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from llmapp_sandbox.apiserver.selectors import (
    FieldSelector,
    LabelSelector,
    field_values,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
)
from llmapp_sandbox.apiserver.sharding import ShardSelector

PREVIOUS = "previous"                   # the key of an event's object before the change (never sent)
ANNOTATIONS_LIMIT = 256 * 1024          # metadata.annotations, all keys and values together
OBJECT_LIMIT = 1536 * 1024              # etcd's default --max-request-bytes
HISTORY_SIZE = 50_000
ObjectKey = tuple[str, str, str, str]   # (group, plural, namespace or "", name)

# Metadata a client cannot change through an update (ObjectMetaUpdateValidation resets or refuses).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
_SERVER_OWNED = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation",
                 "resourceVersion", "selfLink")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class WriteOptions:
    """What the query string says about a write."""

    dry_run: bool = False
    field_validation: str = "Warn"        # Strict | Warn | Ignore (the server's default is Warn)
    field_manager: str | None = None
    force: bool = False
    user: str = ""


@dataclass
class Result:
    obj: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    created: bool = False


@dataclass(eq=False)
class Watcher:
    kind: Kind
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    queue: collections.deque[dict[str, Any] | None] = field(default_factory=collections.deque)
    wake: Callable[[], None] = lambda: None
    shards: ShardSelector = field(default_factory=ShardSelector)   # honoured only with the 1.36 feature on

    def put(self, event: dict[str, Any] | None) -> None:
        self.queue.append(event)
        self.wake()


class Store:
    def __init__(self, *, owner_references_enforcement: bool = False) -> None:
        self.kinds: dict[tuple[str, str, str], Kind] = {}          # (group, version, plural)
        self.objects: dict[ObjectKey, dict[str, Any]] = {}
        self.revision = 0
        self.history: collections.deque[tuple[tuple[str, str], dict[str, Any]]] = collections.deque(
            maxlen=HISTORY_SIZE)
        self.history_floor = 0
        self.gone_once = False
        self.watchers: set[Watcher] = set()
        self.owner_references_enforcement = owner_references_enforcement
        self._defaulted_for: dict[ObjectKey, int] = {}               # objects defaulted at a schema revision
        self._schema_revision: dict[tuple[str, str], int] = collections.defaultdict(int)
        self.kinds_revision = 0                                      # bumped when the served kinds change
        for kind in BUILTINS:
            self.kinds[(kind.group, kind.version, kind.plural)] = kind
        self._bootstrap_namespaces()

    # -- kinds -----------------------------------------------------------------------------------
    def kind(self, group: str, version: str, plural: str) -> Kind | None:
        return self.kinds.get((group, version, plural))

    def kind_of(self, api_version: str, kind_name: str) -> Kind | None:
        for kind in self.kinds.values():
            if kind.api_version == api_version and kind.kind == kind_name:
                return kind
        return None

    def served(self) -> list[Kind]:
        return list(self.kinds.values())

    def _register_crd(self, crd: dict[str, Any]) -> None:
        name = crd["metadata"]["name"]
        for key in [key for key, kind in self.kinds.items() if kind.crd == name]:
            del self.kinds[key]
        for kind in kinds_of_crd(crd):
            self.kinds[(kind.group, kind.version, kind.plural)] = kind
            self._schema_revision[(kind.group, kind.plural)] += 1
        self.kinds_revision += 1

    def _unregister_crd(self, crd: dict[str, Any]) -> None:
        name = crd["metadata"]["name"]
        group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
        for served in [served for served, kind in self.kinds.items() if kind.crd == name]:
            del self.kinds[served]
        self.kinds_revision += 1
        for key in [key for key in self.objects if key[0] == group and key[1] == plural]:
            obj = self.objects.pop(key)
            self._touch(obj)
            self._notify("DELETED", (group, plural), obj)

    # -- reads -----------------------------------------------------------------------------------
    def key(self, kind: Kind, namespace: str | None, name: str) -> ObjectKey:
        return (kind.group, kind.plural, namespace or "" if kind.namespaced else "", name)

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self._stored(kind, namespace, name)
        if obj is None:
            raise not_found(kind, name)
        return self._as_read(kind, obj)

    def _stored(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self.objects.get(self.key(kind, namespace, name))

    def _as_read(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        """A copy as served: the version asked for, defaults of the current schema filled in."""
        out = copy.deepcopy(obj)
        out["apiVersion"] = kind.api_version
        if kind.schema is not None:
            key = self.key(kind, obj["metadata"].get("namespace"), obj["metadata"]["name"])
            if self._defaulted_for.get(key) != self._schema_revision[(kind.group, kind.plural)]:
                out = structural.apply_defaults(out, kind.schema)
        return out

    def items(self, kind: Kind, namespace: str | None = None) -> Iterator[dict[str, Any]]:
        """The stored objects themselves (no copies): for read-only scans."""
        for (group, plural, ns, _), obj in self.objects.items():
            if group == kind.group and plural == kind.plural and (namespace is None or ns == namespace):
                yield obj

    def select(self, kind: Kind, namespace: str | None, labels: LabelSelector, fields: FieldSelector,
               shards: ShardSelector | None = None) -> tuple[list[dict[str, Any]], str]:
        items = [self._as_read(kind, obj) for obj in self.items(kind, namespace)
                 if self._selected(kind, obj, labels, fields, shards)]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return items, str(self.revision)

    def _selected(self, kind: Kind, obj: Mapping[str, Any], labels: LabelSelector, fields: FieldSelector,
                  shards: ShardSelector | None = None) -> bool:
        if shards is not None and not shards.matches(obj):
            return False
        if not labels.empty() and not labels.matches(obj.get("metadata", {}).get("labels") or {}):
            return False
        return fields.empty() or fields.matches(field_values(kind.kind, obj, namespaced=kind.namespaced))

    # -- create ----------------------------------------------------------------------------------
    def create(self, kind: Kind, namespace: str | None, body: Any, options: WriteOptions, *,
               admit: Callable[[dict[str, Any] | None, dict[str, Any]], None] = lambda old, new: None,
               applied: bool = False) -> Result:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
        obj = copy.deepcopy(body)
        self._check_type(kind, obj)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        if kind.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and namespace and body_ns != namespace:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the "
                                                  "namespace sent on the request")
            meta["namespace"] = namespace or body_ns or "default"
            self._check_namespace_open(kind, meta["namespace"], meta.get("name") or meta.get("generateName", ""))
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise invalid(kind, "", [FieldError("metadata.name", fe.REQUIRED, "name or generateName is required")])
            meta["name"] = meta["generateName"] + "".join(secrets.choice("bcdfghjklmnpqrstvwxz2456789")
                                                          for _ in range(5))
        for server_owned in _SERVER_OWNED:
            meta.pop(server_owned, None)
        if kind.subresources & {"status"} and kind.is_custom:
            obj.pop("status", None)      # the status subresource: status is not set on create
        warnings = self._prepare(kind, obj, None, options)
        meta = obj["metadata"]   # pruning and defaulting made a new object
        if kind.kind == "Secret":
            _fold_string_data(obj)
        self._validate_metadata(kind, obj)
        admit(None, obj)
        key = self.key(kind, meta.get("namespace"), meta["name"])
        if key in self.objects:
            raise ApiError(409, "AlreadyExists", f'{kind.qualified} "{meta["name"]}" already exists',
                           {"name": meta["name"], "group": kind.group, "kind": kind.plural})
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now())
        if kind.has_generation:
            meta["generation"] = 1
        obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
        if not applied:   # server-side apply recorded its own managedFields entry
            obj = self._managed(kind, None, obj, options)
        if kind.kind == "Namespace":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
        if kind.kind == "CustomResourceDefinition":
            obj["status"] = _crd_status(obj)
        self._check_size(kind, obj)
        if options.dry_run:
            return Result(obj, warnings)
        obj["metadata"]["resourceVersion"] = self._bump()
        self.objects[key] = obj
        self._defaulted_for[key] = self._schema_revision[(kind.group, kind.plural)]
        self._notify("ADDED", (kind.group, kind.plural), obj)
        if kind.kind == "CustomResourceDefinition":
            self._register_crd(obj)
        return Result(self._as_read(kind, obj), warnings)

    def apply_create(self, kind: Kind, namespace: str | None, name: str, applied: dict[str, Any],
                     options: WriteOptions, admit: Callable[[dict[str, Any] | None, dict[str, Any]], None]) -> Result:
        """Server-side apply to a missing object: create it, owned by the applier."""
        body = ssa.apply(None, applied, manager=options.field_manager or "", force=options.force,
                         schema=kind.schema, now=now())
        body.setdefault("metadata", {})["name"] = name
        result = self.create(kind, namespace, body, options, admit=admit, applied=True)
        result.created = True
        return result

    # -- update ----------------------------------------------------------------------------------
    def update(self, kind: Kind, namespace: str | None, name: str, body: Any, content_type: str,
               subresource: str | None, options: WriteOptions, *, replace: bool,
               admit: Callable[[dict[str, Any] | None, dict[str, Any]], None] = lambda old, new: None) -> Result:
        key = self.key(kind, namespace, name)
        stored = self.objects.get(key)
        if stored is None:
            if content_type == APPLY and subresource is None:
                return self.apply_create(kind, namespace, name, body, options, admit)
            raise not_found(kind, name)
        old = self._as_read(kind, stored)
        if replace:
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
            patched = copy.deepcopy(body)
            self._check_type(kind, patched)
            wanted = (patched.get("metadata") or {}).get("resourceVersion")
            if not wanted:
                raise invalid(kind, name, [FieldError("metadata.resourceVersion", fe.INVALID,
                                                      "must be specified for an update", 0)])
        elif content_type == JSON_PATCH:
            patched = json_patch(old, body)
            wanted = None
        elif content_type == STRATEGIC:
            if kind.is_custom:
                raise ApiError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - '
                               f'accepted media types include: {JSON_PATCH}, {MERGE}, {APPLY}')
            patched = strategic_merge_patch(old, body)
            wanted = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
        elif content_type == APPLY:
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
            self._check_type(kind, body)
            patched = ssa.apply(old, body, manager=options.field_manager or "", force=options.force,
                                schema=kind.schema, now=now())
            wanted = (body.get("metadata") or {}).get("resourceVersion")
        elif content_type == MERGE:
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
            patched = merge_patch(old, body)
            wanted = (body.get("metadata") or {}).get("resourceVersion")
        else:
            raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                           f"accepted media types include: {JSON_PATCH}, {MERGE}, {APPLY}"
                           + ("" if kind.is_custom else f", {STRATEGIC}"))
        if wanted and wanted != stored["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {kind.qualified} "{name}": the object '
                           "has been modified; please apply your changes to the latest version and try again",
                           {"name": name, "group": kind.group, "kind": kind.plural})
        new = self._merge_subresource(kind, old, patched, subresource)
        warnings = self._prepare(kind, new, old, options, subresource=subresource)
        if kind.kind == "Secret":
            _fold_string_data(new)
        self._check_finalizers_of_terminating(kind, old, new)
        self._validate_metadata(kind, new)
        admit(old, new)
        if _without_managed(new) == _without_managed(old):
            return Result(old, warnings)    # a no-op write changes nothing, not even resourceVersion
        if kind.has_generation and _spec_part(new) != _spec_part(old):
            new["metadata"]["generation"] = int(old["metadata"].get("generation") or 0) + 1
        if content_type != APPLY:
            new = self._managed(kind, old, new, options, subresource=subresource)
        if kind.kind == "CustomResourceDefinition":
            new["status"] = _crd_status(new)
        self._check_size(kind, new)
        if options.dry_run:
            return Result(new, warnings)
        new["metadata"]["resourceVersion"] = self._bump()
        return Result(self._store_update(kind, key, new), warnings)

    def _store_update(self, kind: Kind, key: ObjectKey, new: dict[str, Any]) -> dict[str, Any]:
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._remove(kind, key, new)
            return self._as_read(kind, new)
        previous = self.objects.get(key)
        self.objects[key] = new
        self._defaulted_for[key] = self._schema_revision[(kind.group, kind.plural)]
        self._notify("MODIFIED", (kind.group, kind.plural), new, previous)
        if kind.kind == "CustomResourceDefinition":
            self._register_crd(new)
        if kind.kind == "Namespace" and meta.get("deletionTimestamp"):
            self._namespace_controller(meta["name"])
        return self._as_read(kind, new)

    def _merge_subresource(self, kind: Kind, old: dict[str, Any], patched: dict[str, Any],
                           subresource: str | None) -> dict[str, Any]:
        """Status writes change status only; main-resource writes keep the stored status (with the
        status subresource) and never change server-owned metadata."""
        if not isinstance(patched.get("metadata", {}), dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        if subresource == "status":
            new = copy.deepcopy(old)
            if "status" in patched:
                new["status"] = patched["status"]
            else:
                new.pop("status", None)
            return new
        if subresource not in (None, "finalize"):
            raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested "
                                                    f"resource {kind.plural}/{subresource}")
        new = copy.deepcopy(patched)
        if "status" in kind.subresources:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        meta = new.setdefault("metadata", {})
        # BeforeUpdate keeps the stored uid only when none is given; a different one fails
        # ValidateObjectMetaUpdate (metadata.uid is immutable).
        if meta.get("uid") and meta["uid"] != old["metadata"].get("uid"):
            raise invalid(kind, old["metadata"]["name"], [FieldError("metadata.uid", fe.INVALID,
                                                                     "field is immutable", meta["uid"])])
        for name in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if name in old["metadata"]:
                meta[name] = old["metadata"][name]
            else:
                meta.pop(name, None)
        for name in ("name", "namespace"):
            if meta.get(name, old["metadata"].get(name)) != old["metadata"].get(name):
                raise invalid(kind, old["metadata"]["name"], [FieldError(f"metadata.{name}", fe.INVALID,
                                                                         "field is immutable", meta.get(name))])
            if name in old["metadata"]:
                meta[name] = old["metadata"][name]
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        new["apiVersion"], new["kind"] = kind.api_version, kind.kind
        return new

    def _check_finalizers_of_terminating(self, kind: Kind, old: dict[str, Any], new: dict[str, Any]) -> None:
        if not old["metadata"].get("deletionTimestamp"):
            return
        added = set(new["metadata"].get("finalizers") or ()) - set(old["metadata"].get("finalizers") or ())
        if added:
            raise invalid(kind, old["metadata"]["name"], [FieldError(
                "metadata.finalizers", fe.FORBIDDEN, "no new finalizers can be added if the object is being deleted, "
                f"found new finalizers []string{{{', '.join(json.dumps(f) for f in sorted(added))}}}")])

    # -- delete ----------------------------------------------------------------------------------
    def delete(self, kind: Kind, namespace: str | None, name: str, options: Mapping[str, Any], *,
               dry_run: bool = False) -> tuple[int, dict[str, Any]]:
        key = self.key(kind, namespace, name)
        stored = self.objects.get(key)
        if stored is None:
            raise not_found(kind, name)
        preconditions = options.get("preconditions") or {}
        meta = stored["metadata"]
        for field_name in ("uid", "resourceVersion"):
            if preconditions.get(field_name) and preconditions[field_name] != meta.get(field_name):
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {kind.qualified} "{name}": '
                               f"Precondition failed: {field_name.upper() if field_name == 'uid' else field_name}: "
                               f"{preconditions[field_name]}, {field_name}: {meta.get(field_name)}")
        if dry_run:
            return 200, self._as_read(kind, stored)
        policy = options.get("propagationPolicy") or ("Orphan" if options.get("orphanDependents") else None)
        if kind.kind == "Namespace":
            return 200, self._delete_namespace(kind, key, stored)
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                new = copy.deepcopy(stored)
                new["metadata"]["deletionTimestamp"] = now()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                if kind.has_generation:
                    new["metadata"]["generation"] = int(meta.get("generation") or 0) + 1
                new["metadata"]["resourceVersion"] = self._bump()
                self.objects[key] = new
                self._notify("MODIFIED", (kind.group, kind.plural), new, stored)
                stored = new
            return 200, self._as_read(kind, stored)
        self._remove(kind, key, stored, orphan=policy == "Orphan")
        return 200, {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success",
                     "details": {"name": name, "group": kind.group, "kind": kind.plural, "uid": meta.get("uid")}}

    def _remove(self, kind: Kind, key: ObjectKey, obj: dict[str, Any], *, orphan: bool = False) -> None:
        self.objects.pop(key, None)
        self._defaulted_for.pop(key, None)
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = self._bump()
        self._notify("DELETED", (kind.group, kind.plural), gone)
        if kind.kind == "CustomResourceDefinition":
            self._unregister_crd(gone)
        self._collect_garbage(str(obj["metadata"].get("uid")), orphan=orphan)
        namespace = obj["metadata"].get("namespace")
        if namespace:
            ns = self.objects.get(("", "namespaces", "", namespace))
            if ns is not None and ns["metadata"].get("deletionTimestamp"):
                self._namespace_controller(namespace)

    # -- the controllers that change what clients observe -------------------------------------------
    def _collect_garbage(self, uid: str, *, orphan: bool) -> None:
        """Background propagation: dependents whose owners are all gone are deleted; with Orphan
        their owner reference is dropped instead."""
        uids = {o["metadata"].get("uid") for o in self.objects.values()}
        for key, obj in list(self.objects.items()):
            refs = obj["metadata"].get("ownerReferences") or []
            if not any(ref.get("uid") == uid for ref in refs):
                continue
            kind = next((k for k in self.kinds.values() if (k.group, k.plural) == key[:2] and k.storage_version), None)
            if kind is None:
                continue
            if orphan:
                new = copy.deepcopy(obj)
                new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid] or None
                if new["metadata"]["ownerReferences"] is None:
                    del new["metadata"]["ownerReferences"]
                new["metadata"]["resourceVersion"] = self._bump()
                self._store_update(kind, key, new)
            elif not any(ref.get("uid") in uids for ref in refs):
                self.delete(kind, key[2] or None, key[3], {})

    def _delete_namespace(self, kind: Kind, key: ObjectKey, ns: dict[str, Any]) -> dict[str, Any]:
        if not ns["metadata"].get("deletionTimestamp"):
            new = copy.deepcopy(ns)
            new["metadata"]["deletionTimestamp"] = now()
            new["status"] = {"phase": "Terminating"}
            new["metadata"]["resourceVersion"] = self._bump()
            self.objects[key] = new
            self._notify("MODIFIED", ("", "namespaces"), new, ns)
            ns = new
        self._namespace_controller(ns["metadata"]["name"])
        return self._as_read(kind, self.objects.get(key, ns))

    def _namespace_controller(self, namespace: str) -> None:
        """Delete everything in a terminating namespace (objects with finalizers wait for them),
        then finalize and remove the namespace once it is empty."""
        key = ("", "namespaces", "", namespace)
        ns = self.objects.get(key)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        contents = [(k, o) for k, o in self.objects.items() if k[2] == namespace]
        for (group, plural, _, name), obj in contents:
            kind = next((k for k in self.kinds.values() if (k.group, k.plural) == (group, plural)
                         and k.storage_version), None)
            if kind is not None and not obj["metadata"].get("deletionTimestamp"):
                self.delete(kind, namespace, name, {})
        if any(k[2] == namespace for k in self.objects):
            return
        if key in self.objects:
            self._remove(self.kinds[("", "v1", "namespaces")], key, self.objects[key])

    def _check_namespace_open(self, kind: Kind, namespace: str, name: str) -> None:
        ns = self.objects.get(("", "namespaces", "", namespace))
        if ns is None:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found',
                           {"name": namespace, "kind": "namespaces"})
        if ns["metadata"].get("deletionTimestamp"):
            message = f"unable to create new content in namespace {namespace} because it is being terminated"
            raise ApiError(403, "Forbidden", f'{kind.qualified} "{name}" is forbidden: {message}',
                           {"name": name, "group": kind.group, "kind": kind.plural,
                            "causes": [{"reason": "NamespaceTerminating", "message": message,
                                        "field": "metadata.namespace"}]})

    def _bootstrap_namespaces(self) -> None:
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            obj = {"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": now(),
                                "labels": {"kubernetes.io/metadata.name": name},
                                "resourceVersion": self._bump()},
                   "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
            self.objects[("", "namespaces", "", name)] = obj

    # -- the rules every write passes --------------------------------------------------------------
    def _check_type(self, kind: Kind, obj: dict[str, Any]) -> None:
        api_version, kind_name = obj.get("apiVersion"), obj.get("kind")
        if api_version and api_version != kind.api_version or kind_name and kind_name != kind.kind:
            raise ApiError(400, "BadRequest", f"the API version in the data ({api_version}) does not match the "
                                              f"expected API version ({kind.api_version})"
                           if api_version != kind.api_version else
                           f"the kind in the data ({kind_name}) does not match the expected kind ({kind.kind})")

    def _prepare(self, kind: Kind, obj: dict[str, Any], old: dict[str, Any] | None, options: WriteOptions, *,
                 subresource: str | None = None) -> list[str]:
        """Pruning, defaulting and validation of a custom resource; CRD admission for a CRD."""
        warnings: list[str] = []
        if kind.kind == "Namespace" and isinstance(obj.get("metadata"), dict) and obj["metadata"].get("name"):
            # The namespace strategy (PrepareForCreate/PrepareForUpdate) always sets this label to
            # the name, so selectors can pick namespaces by name; a client cannot change or drop it.
            labels = obj["metadata"].get("labels")
            obj["metadata"]["labels"] = {**(labels if isinstance(labels, dict) else {}),
                                         NAMESPACE_NAME_LABEL: obj["metadata"]["name"]}
        if kind.kind == "CustomResourceDefinition":
            errors = structural.check_crd(obj)
            if errors:
                raise invalid(kind, obj.get("metadata", {}).get("name", ""), errors)
            if old is not None and old["spec"].get("group") != obj["spec"].get("group"):
                raise invalid(kind, obj["metadata"]["name"], [FieldError("spec.group", fe.INVALID,
                                                                         "field is immutable", obj["spec"]["group"])])
            return warnings
        if kind.schema is None:
            return warnings
        pruned, unknown = structural.prune(obj, kind.schema)
        if unknown and subresource is None or unknown and subresource == "status":
            relevant = [path for path in unknown if subresource != "status" or path.startswith("status")]
            if relevant and options.field_validation == "Strict":
                raise ApiError(400, "BadRequest", "strict decoding error: " + ", ".join(
                    f'unknown field "{path}"' for path in relevant))
            if relevant and options.field_validation == "Warn":
                warnings += [f'unknown field "{path}"' for path in relevant]
        obj.clear()
        obj.update(structural.apply_defaults(pruned, kind.schema))
        errors = structural.validate(obj, kind.schema, old=old if old is not None else structural.MISSING)
        if subresource == "status":
            errors = [e for e in errors if e.path.startswith("status")]
        if old is not None:
            # Validation ratcheting (CRDValidationRatcheting, on by default since 1.30): a value the
            # update leaves as it was may stay invalid, e.g. an object stored under an older schema.
            errors = [e for e in errors if not _unchanged(e.path, old, obj)]
        if errors:
            raise invalid(kind, obj.get("metadata", {}).get("name", ""), errors)
        return warnings

    def _validate_metadata(self, kind: Kind, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        errors: list[FieldError] = []
        name = str(meta.get("name") or "")
        if kind.plural in LABEL_NAMED or kind.kind == "Namespace":
            if len(name) > 63 or not _is_dns_label(name):
                errors.append(FieldError("metadata.name", fe.INVALID, "a lowercase RFC 1123 label must consist of "
                                         "lower case alphanumeric characters or '-', and must start and end with an "
                                         "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                                         "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')", name))
        elif kind.kind == "CustomResourceDefinition":
            pass   # checked with the rest of the CRD (it must be <plural>.<group>)
        else:
            errors += [FieldError("metadata.name", fe.INVALID, detail, name) for detail in is_dns1123_subdomain(name)]
        for key, value in (meta.get("labels") or {}).items():
            errors += [FieldError("metadata.labels", fe.INVALID, detail, key) for detail in is_qualified_name(key)]
            errors += [FieldError("metadata.labels", fe.INVALID, detail, value)
                       for detail in is_valid_label_value(str(value))]
        annotations = meta.get("annotations") or {}
        for key in annotations:
            errors += [FieldError("metadata.annotations", fe.INVALID, detail, key)
                       for detail in is_qualified_name(key.lower())]
        total = sum(len(k.encode()) + len(str(v).encode()) for k, v in annotations.items())
        if total > ANNOTATIONS_LIMIT:
            errors.append(FieldError("metadata.annotations", fe.TOO_LONG,
                                     f"may not be more than {ANNOTATIONS_LIMIT} bytes"))
        for finalizer in meta.get("finalizers") or ():
            errors += [FieldError("metadata.finalizers[0]", fe.INVALID, detail, finalizer)
                       for detail in is_qualified_name(finalizer)]
        if errors:
            raise invalid(kind, name, errors)

    def _check_size(self, kind: Kind, obj: dict[str, Any]) -> None:
        size = len(json.dumps(obj, separators=(",", ":")).encode())
        if size > OBJECT_LIMIT:
            raise ApiError(413, "RequestEntityTooLarge", "etcdserver: request is too large")

    def _managed(self, kind: Kind, old: dict[str, Any] | None, new: dict[str, Any], options: WriteOptions, *,
                 subresource: str | None = None) -> dict[str, Any]:
        manager = options.field_manager or options.user or "unknown"
        return ssa.record_update(old, new, manager=manager, subresource=subresource, schema=kind.schema, now=now())

    # -- revisions and watches -----------------------------------------------------------------------
    def _bump(self) -> str:
        self.revision += 1
        return str(self.revision)

    def _touch(self, obj: dict[str, Any]) -> None:
        obj["metadata"]["resourceVersion"] = self._bump()

    def _notify(self, event_type: str, resource: tuple[str, str], obj: dict[str, Any],
                previous: dict[str, Any] | None = None) -> None:
        # The object before a modification rides along (never sent): a filtered watch compares the
        # selection before and after, as the watch cache does.
        event = {"type": event_type, "object": obj, PREVIOUS: previous}
        if len(self.history) == self.history.maxlen:
            self.history_floor = int(self.history[0][1]["object"]["metadata"]["resourceVersion"])
        self.history.append((resource, event))
        for watcher in self.watchers:
            if (watcher.kind.group, watcher.kind.plural) == resource and watcher.namespace in (
                    None, obj["metadata"].get("namespace")):
                watcher.put(event)

    def backlog(self, watcher: Watcher, since: int) -> list[dict[str, Any]]:
        """Events after `since` for a new watch; without `since`, the current objects as ADDED."""
        resource = (watcher.kind.group, watcher.kind.plural)
        if since:
            return [event for res, event in self.history if res == resource
                    and int(event["object"]["metadata"]["resourceVersion"]) > since
                    and watcher.namespace in (None, event["object"]["metadata"].get("namespace"))]
        return [{"type": "ADDED", "object": obj} for obj in self.items(watcher.kind, watcher.namespace)]

    def expired(self, since: int) -> bool:
        return bool(since) and (since < self.history_floor or self.gone_once)

    def seed(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        """Create as a POST would (watchers are told), without validation: for test set-up."""
        meta = obj.setdefault("metadata", {})
        ns = meta.get("namespace") if kind.namespaced else None
        if ns and ("", "namespaces", "", ns) not in self.objects:
            self.create(self.kinds[("", "v1", "namespaces")], None, {"metadata": {"name": ns}}, WriteOptions())
        return self.create(kind, ns, obj, WriteOptions(field_validation="Ignore")).obj

    def filter_event(self, watcher: Watcher, event: dict[str, Any]) -> dict[str, Any] | None:
        """What a watcher with selectors receives, by the selection before and after the change
        (k8s.io/apiserver/pkg/storage/cacher, cacheWatcher.convertToWatchEvent): entering it is
        ADDED, staying MODIFIED, leaving it DELETED with the object as it was before (at the new
        resourceVersion); outside both, nothing."""
        obj = event["object"]
        now_in = self._selected(watcher.kind, obj, watcher.labels, watcher.fields, watcher.shards)
        if event["type"] == "DELETED":
            kind = "DELETED" if now_in else None
        elif event["type"] == "ADDED":
            kind = "ADDED" if now_in else None
        else:
            previous = event.get(PREVIOUS)
            was_in = previous is None or self._selected(watcher.kind, previous, watcher.labels, watcher.fields,
                                                        watcher.shards)
            if not now_in and was_in and previous is not None:
                # Leaving: the object as it was, at the event's resourceVersion (updateResourceVersion).
                gone = self._as_read(watcher.kind, previous)
                gone["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"]
                return {"type": "DELETED", "object": gone}
            kind = ("MODIFIED" if was_in else "ADDED") if now_in else None
        return None if kind is None else {"type": kind, "object": self._as_read(watcher.kind, obj)}


def _path_parts(path: str) -> list[str | int]:
    """`spec.app.secrets[1].name` -> ["spec", "app", "secrets", 1, "name"]; map keys in [] stay strings."""
    parts: list[str | int] = []
    for piece in path.replace("]", "").split("."):
        name, *subscripts = piece.split("[")
        if name:
            parts.append(name)
        parts += [int(sub) if sub.isdigit() else sub for sub in subscripts]
    return parts


def _at(obj: Any, parts: list[str | int]) -> Any:
    for part in parts:
        if isinstance(obj, list) and isinstance(part, int) and part < len(obj):
            obj = obj[part]
        elif isinstance(obj, dict) and str(part) in obj:
            obj = obj[str(part)]
        else:
            return _ABSENT
    return obj


_ABSENT = object()


def _unchanged(path: str, old: Any, new: Any) -> bool:
    parts = _path_parts(path)
    before, after = _at(old, parts), _at(new, parts)
    return before is not _ABSENT and before == after


def _is_dns_label(name: str) -> bool:
    import re

    return bool(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name))


def _spec_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key not in ("metadata", "status")}


def _without_managed(obj: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    meta.pop("resourceVersion", None)
    out["metadata"] = meta
    return out


def _fold_string_data(secret: dict[str, Any]) -> None:
    """A Secret's write-only `stringData` is merged into base64 `data`, as the API server does."""
    for key, value in (secret.pop("stringData", None) or {}).items():
        secret.setdefault("data", {})[key] = base64.b64encode(str(value).encode()).decode()


def _crd_status(crd: Mapping[str, Any]) -> dict[str, Any]:
    """What the CRD controllers write once a CRD is admitted: names accepted, established."""
    stamp = now()
    conditions = [{"type": condition, "status": "True", "reason": reason, "message": message,
                   "lastTransitionTime": stamp}
                  for condition, reason, message in (
                      ("NamesAccepted", "NoConflicts", "no conflicts found"),
                      ("Established", "InitialNamesAccepted", "the initial names have been accepted"))]
    return {"acceptedNames": copy.deepcopy(crd["spec"]["names"]), "conditions": conditions,
            "storedVersions": [v["name"] for v in crd["spec"].get("versions", []) if v.get("storage")]}


def not_found(kind: Kind, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{kind.qualified} "{name}" not found',
                    {"name": name, "group": kind.group, "kind": kind.plural})


def invalid(kind: Kind, name: str, errors: Iterable[FieldError]) -> ApiError:
    return fe.invalid(kind.kind, kind.group, name, list(errors))

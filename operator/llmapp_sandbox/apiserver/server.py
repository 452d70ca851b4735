"""An in-process Kubernetes API server for the sandbox and the tests, on aiohttp.

It speaks the HTTP API the way kube-apiserver v1.32 does, where the operator (Kopf and the
kubernetes client), the real `kubectl` and Helm's Go SDK depend on it, and it fails where the real
server fails (docs/fidelity.md lists each behaviour, its source, and the known gaps):

- authentication by bearer token (ServiceAccount tokens minted here), RBAC from the Roles and
  bindings stored in it, and OwnerReferencesPermissionEnforcement as an option;
- discovery, OpenAPI v3 (kubectl's validation and `explain`), Table and PartialObjectMetadata
  responses (kubectl's printer columns);
- CRD admission and, for custom resources, pruning, defaulting, validation with CEL, strict field
  validation and server-side apply (store.py has the rules every write passes);
- label and field selectors, limit/continue, watches that resume from a resourceVersion (410 Gone
  when it is too old), BOOKMARK events and `timeoutSeconds`.

Requests are counted (not recorded) so benchmarks and tests can count API calls per object, and a
fault injector answers chosen requests with an error status.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import json
import pathlib
import weakref
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp.web
import yaml

from llmapp_sandbox.apiserver import openapi, protobuf, tables
from llmapp_sandbox.apiserver.admission import check_owner_references
from llmapp_sandbox.apiserver.errors import ApiError
from llmapp_sandbox.apiserver.kinds import Kind
from llmapp_sandbox.apiserver.patches import APPLY, JSON_PATCH, MERGE, STRATEGIC
from llmapp_sandbox.apiserver.rbac import Authorizer, RequestInfo, TokenBook, UserInfo, request_info
from llmapp_sandbox.apiserver.selectors import parse_field_selector, parse_label_selector
from llmapp_sandbox.apiserver.sharding import ShardSelector, parse_shard_selector
from llmapp_sandbox.apiserver.store import Store, Watcher, WriteOptions

SERVER_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.13", "gitCommit": "emulator",
                  "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23",
                  "compiler": "gc", "platform": "linux/amd64"}
# The feature gate only exists from 1.36: an emulator that honours shardSelector says it is 1.36.
SERVER_VERSION_136 = {**SERVER_VERSION, "minor": "36", "gitVersion": "v1.36.0", "goVersion": "go1.25"}
RequestKey = tuple[str, str, str | None]            # (verb, plural, subresource)
CallKey = tuple[str, str, str, str, str | None]     # (user agent, verb, group, plural, subresource)
_RBAC_KINDS = {"roles", "rolebindings", "clusterroles", "clusterrolebindings"}
# How requests are counted: the HTTP method, with LIST and WATCH told apart from GET.
_COUNTED_VERB = {"get": "GET", "list": "LIST", "watch": "WATCH", "create": "POST", "update": "PUT", "patch": "PATCH",
                 "delete": "DELETE", "deletecollection": "DELETE"}


@dataclass
class Fault:
    verb: str
    plural: str
    subresource: str | None
    status: int
    times: int


class ApiServer:
    """The emulator: one store, the HTTP API over it, and the test hooks."""

    instances: ClassVar[weakref.WeakSet[ApiServer]] = weakref.WeakSet()

    def __init__(self, *, rbac: bool = False, owner_references_enforcement: bool = False,
                 bookmark_seconds: float = 5.0, sharded_list_watch: bool = False) -> None:
        # Kubernetes 1.36 with the ShardedListAndWatch gate on honours ?shardSelector=; 1.32 ignores it.
        self.sharded_list_watch = sharded_list_watch
        self.store = Store(owner_references_enforcement=owner_references_enforcement)
        self.tokens = TokenBook()
        self.rbac = rbac
        self.owner_references_enforcement = owner_references_enforcement
        self.bookmark_seconds = bookmark_seconds
        self.request_counts: collections.Counter[RequestKey] = collections.Counter()
        self.calls: collections.Counter[CallKey] = collections.Counter()
        # (user, verb, group, resource, subresource, namespace) of every request RBAC refused.
        self.denied: list[tuple[str, str, str, str, str, str]] = []
        self.pod_logs: dict[tuple[str, str], str] = {}
        self._faults: list[Fault] = []
        self._authorizer: Authorizer | None = None
        self._authorizer_revision = -1
        self._openapi_cache: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        ApiServer.instances.add(self)

    # -- test & benchmark hooks ------------------------------------------------------------------
    def reset_counts(self) -> None:
        self.request_counts.clear()
        self.calls.clear()

    def fail_next(self, verb: str, plural: str, status: int, *, subresource: str | None = None,
                  times: int = 1) -> None:
        """Answer the next `times` matching requests with `status` (409, 410, 500, ...)."""
        self._faults.append(Fault(verb.upper(), plural, subresource, status, times))

    def drop_watches(self) -> None:
        """Close every open watch stream, as an API server restart or a load balancer would."""
        for watcher in list(self.store.watchers):
            watcher.put(None)

    def expire_history(self) -> None:
        """Compact the event history: the next watch resuming from a resourceVersion gets 410 Gone
        (once; clients then LIST again, as they must with a real API server)."""
        self.store.history.clear()
        self.store.history_floor = self.store.revision
        self.store.gone_once = True

    def _kind(self, plural: str, group: str | None = None) -> Kind:
        for kind in self.store.served():
            if kind.plural == plural and (group is None or kind.group == group) and kind.storage_version:
                return kind
        raise KeyError(f"{plural} is not served")

    def get_object(self, plural: str, namespace: str | None, name: str, group: str | None = None
                   ) -> dict[str, Any] | None:
        kind = self._kind(plural, group)
        try:
            return self.store.get(kind, namespace, name)
        except ApiError:
            return None

    def peek_objects(self, plural: str, namespace: str | None = None, group: str | None = None
                     ) -> list[dict[str, Any]]:
        """The stored objects themselves, not copies: for read-only scans at scale (benchmarks)."""
        return list(self.store.items(self._kind(plural, group), namespace))

    def list_objects(self, plural: str, namespace: str | None = None, group: str | None = None
                     ) -> list[dict[str, Any]]:
        return [copy.deepcopy(obj) for obj in self.peek_objects(plural, namespace, group)]

    def create_object(self, plural: str, obj: dict[str, Any], group: str | None = None) -> dict[str, Any]:
        """Create as a POST by an administrator would (validated, watchers told), without HTTP; the
        namespace is created first when missing."""
        return self.store.seed(self._kind(plural, group), copy.deepcopy(obj))

    def update_object(self, plural: str, obj: dict[str, Any], group: str | None = None) -> dict[str, Any]:
        """Replace as a PUT by an administrator would (validated, watchers told), e.g. a new CRD version."""
        kind = self._kind(plural, group)
        meta = obj.get("metadata") or {}
        current = self.store.get(kind, meta.get("namespace"), meta["name"])
        body = copy.deepcopy(obj)
        body.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
        return self.store.update(kind, meta.get("namespace"), meta["name"], body, "", None,
                                 WriteOptions(user="kubernetes-admin"), replace=True).obj

    def apply_manifests(self, documents: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Create each object as `kubectl create -f` by an administrator would (CRDs first)."""
        created = []
        ordered = sorted((dict(d) for d in documents if d), key=lambda d: d.get("kind") != "CustomResourceDefinition")
        for doc in ordered:
            api_version, kind_name = doc.get("apiVersion", ""), doc.get("kind", "")
            kind = self.store.kind_of(api_version, kind_name)
            if kind is None:
                raise ApiError(404, "NotFound", f'no matches for kind "{kind_name}" in version "{api_version}"')
            created.append(self.store.seed(kind, copy.deepcopy(doc)))
        return created

    # -- authentication and authorization ----------------------------------------------------------
    def authorizer(self) -> Authorizer:
        revision = self._rbac_revision()
        if self._authorizer is None or revision != self._authorizer_revision:
            objects = [obj for kind in self.store.served() if kind.plural in _RBAC_KINDS
                       for obj in self.store.items(kind)]
            self._authorizer = Authorizer(objects)
            self._authorizer_revision = revision
        return self._authorizer

    def _rbac_revision(self) -> int:
        return hash(tuple(sorted(
            (key, obj["metadata"].get("resourceVersion", "")) for key, obj in self.store.objects.items()
            if key[1] in _RBAC_KINDS and key[0] == "rbac.authorization.k8s.io")))

    def _admit(self, user: UserInfo, verb: str, info: RequestInfo) -> Any:
        def admit(old: dict[str, Any] | None, new: dict[str, Any]) -> None:
            if not self.owner_references_enforcement:
                return
            refused = check_owner_references(user, verb, info, old, new, self.authorizer().authorize, self._mapping)
            if refused is not None:
                raise refused
        return admit

    def _mapping(self, api_version: str, kind_name: str) -> tuple[str, str, bool] | None:
        kind = self.store.kind_of(api_version, kind_name)
        return None if kind is None else (kind.group, kind.plural, kind.namespaced)

    # -- HTTP entry ------------------------------------------------------------------------------
    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        try:
            user = self.tokens.authenticate(request.headers.get("Authorization"))
            query = {key: request.query.get(key, "") for key in request.query}
            info = request_info(request.method, request.path, query)
            if self.rbac and not user.in_group("system:masters"):
                decision = self.authorizer().authorize(user, info)
                if not decision.allowed:
                    self.denied.append((user.name, info.verb, info.api_group, info.resource, info.subresource,
                                        info.namespace))
                    raise self.authorizer().forbidden(user, info)
            if not info.is_resource_request:
                return self._non_resource(request)
            return await self._resource(request, info, user, query)
        except ApiError as exc:
            response = aiohttp.web.json_response(exc.body(), status=exc.status, headers=exc.headers)
            response.force_close()
            return response

    def _non_resource(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        body: Any
        if path == "/version":
            body = SERVER_VERSION_136 if self.sharded_list_watch else SERVER_VERSION
        elif path in ("/healthz", "/livez", "/readyz"):
            return _text("ok")
        elif path == "/api":
            body = {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}]}
        elif path == "/apis":
            body = {"kind": "APIGroupList", "apiVersion": "v1", "groups": self._groups()}
        elif path.startswith("/apis/") and path.count("/") == 2:
            group = next((g for g in self._groups() if g["name"] == path.split("/")[2]), None)
            if group is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            body = {"kind": "APIGroup", "apiVersion": "v1", **group}
        elif path == "/api/v1" or path.startswith("/apis/") and path.count("/") == 3:
            body = self._resource_list(path)
        elif path == "/openapi/v2":
            # An empty OpenAPI v2 document (protobuf encoding of an empty message is no bytes): clients
            # that fall back to v2 for a kind v3 does not publish then find no schema for it, as on a
            # real server, instead of failing on a 404. docs/fidelity.md lists v2 as a gap.
            response = aiohttp.web.Response(
                body=b"", content_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
            response.force_close()
            return response
        elif path == "/openapi/v3":
            body = openapi.openapi_v3_index(self._group_versions(), self._openapi_hashes())
        elif path.startswith("/openapi/v3/"):
            parsed = openapi.parse_openapi_v3_path(path)
            if parsed is None or parsed not in self._group_versions():
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            body = self._openapi_document(*parsed)
        elif path == "/":
            body = {"paths": sorted({"/api", "/api/v1", "/apis", "/openapi/v3", "/version", "/healthz", "/livez",
                                     "/readyz"} | {f"/apis/{g}/{v}" for g, v in self._group_versions() if g})}
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return _json(body)

    def _group_versions(self) -> list[tuple[str, str]]:
        return sorted({(kind.group, kind.version) for kind in self.store.served()})

    def _groups(self) -> list[dict[str, Any]]:
        groups: dict[str, list[str]] = collections.defaultdict(list)
        for group, version in self._group_versions():
            if group:
                groups[group].append(version)
        result = []
        for group, versions in sorted(groups.items()):
            preferred = next((k.version for k in self.store.served() if k.group == group and k.storage_version),
                             versions[0])
            entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
            result.append({"name": group, "versions": entries,
                           "preferredVersion": {"groupVersion": f"{group}/{preferred}", "version": preferred}})
        return result

    def _resource_list(self, path: str) -> dict[str, Any]:
        parts = path.strip("/").split("/")
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        kinds = [k for k in self.store.served() if (k.group, k.version) == (group, version)]
        if not kinds:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        resources = []
        for kind in kinds:
            entry: dict[str, Any] = {"name": kind.plural, "singularName": kind.singular, "namespaced": kind.namespaced,
                                     "kind": kind.kind, "verbs": sorted(kind.verbs)}
            if kind.short_names:
                entry["shortNames"] = list(kind.short_names)
            if kind.categories:
                entry["categories"] = list(kind.categories)
            resources.append(entry)
            for sub in sorted(kind.subresources):
                resources.append({"name": f"{kind.plural}/{sub}", "singularName": "", "namespaced": kind.namespaced,
                                  "kind": "Status" if sub == "finalize" else kind.kind if sub != "log" else "Pod",
                                  "verbs": ["get", "patch", "update"] if sub not in ("log", "token") else
                                  (["get"] if sub == "log" else ["create"])})
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}".lstrip("/"),
                "resources": resources}

    def _openapi_document(self, group: str, version: str) -> dict[str, Any]:
        revision = self.store.kinds_revision
        cached = self._openapi_cache.get((group, version))
        if cached is not None and cached[0] == revision:
            return cached[1]
        infos = [openapi.KindInfo(kind=k.kind, plural=k.plural, namespaced=k.namespaced, schema=k.schema,
                                  subresources=k.subresources, verbs=k.verbs, builtin=not k.is_custom)
                 for k in self.store.served() if (k.group, k.version) == (group, version)]
        document = openapi.openapi_v3_document(group, version, infos)
        self._openapi_cache[(group, version)] = (revision, document)
        return document

    def _openapi_hashes(self) -> dict[tuple[str, str], str]:
        return {gv: openapi.document_hash(self._openapi_document(*gv)) for gv in self._group_versions()}

    async def _resource(self, request: aiohttp.web.Request, info: RequestInfo, user: UserInfo,
                        query: Mapping[str, str]) -> aiohttp.web.StreamResponse:
        kind = self.store.kind(info.api_group, info.api_version, info.resource)
        verb = info.verb
        counted = _COUNTED_VERB.get(verb, verb.upper())   # GET, LIST, WATCH, POST, PUT, PATCH, DELETE
        self.request_counts[(counted, info.resource, info.subresource or None)] += 1
        self.calls[(request.headers.get("User-Agent", ""), counted, info.api_group, info.resource,
                    info.subresource or None)] += 1
        self._inject_fault(counted, info.resource, info.subresource or None)
        if kind is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        namespace = info.namespace or None
        if kind.namespaced is False and info.namespace and info.resource != "namespaces":
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if verb == "watch":
            return await self._watch(request, kind, namespace, query)
        if kind.plural == "pods" and info.subresource == "log":
            return self._pod_log(namespace or "", info.name)
        if kind.plural == "selfsubjectaccessreviews":
            return _json(self._access_review(user, await _body(request)), status=201)
        if kind.plural == "serviceaccounts" and info.subresource == "token":
            self.store.get(kind, namespace, info.name)
            token = self.tokens.mint_service_account_token(namespace or "", info.name)
            return _json({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                          "metadata": {"name": info.name, "namespace": namespace},
                          "status": {"token": token, "expirationTimestamp": "2099-01-01T00:00:00Z"}}, status=201)
        options = WriteOptions(dry_run="All" in request.query.getall("dryRun", []),
                               field_validation=query.get("fieldValidation") or "Warn",
                               field_manager=query.get("fieldManager") or None,
                               force=query.get("force", "").lower() == "true", user=user.name)
        if options.field_validation not in ("Strict", "Warn", "Ignore"):
            raise ApiError(400, "BadRequest", f'invalid fieldValidation directive: {options.field_validation}')
        admit = self._admit(user, verb, info)
        negotiated = tables.negotiate(request.headers.get("Accept"))
        if verb == "list":
            labels = parse_label_selector(query.get("labelSelector"))
            fields = parse_field_selector(query.get("fieldSelector"), kind.kind, kind.group,
                                          cluster_scoped=not kind.namespaced)
            shards = self._shards(query)
            items, revision = self.store.select(kind, namespace, labels, fields, shards)
            items, continue_token, remaining = _page(items, query, revision)
            meta: dict[str, Any] = {"resourceVersion": revision}
            if continue_token:
                meta.update({"continue": continue_token, "remainingItemCount": remaining})
            if not shards.empty():
                meta["shardInfo"] = {"selector": shards.text}
            return self._respond({"apiVersion": kind.api_version, "kind": f"{kind.kind}List", "metadata": meta,
                                  "items": items}, negotiated, kind, query, many=True)
        if verb == "create":
            if info.subresource:
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                                                        "resource")
            result = self.store.create(kind, namespace, await _body(request), options, admit=admit)
            return self._respond(result.obj, negotiated, kind, query, status=201, warnings=result.warnings)
        if verb == "get":
            obj = self.store.get(kind, namespace, info.name)
            if info.subresource and info.subresource not in kind.subresources:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return self._respond(obj, negotiated, kind, query)
        if verb in ("update", "patch"):
            content_type = (request.headers.get("Content-Type") or "application/json").split(";")[0].strip()
            if verb == "patch" and content_type == APPLY and not options.field_manager:
                raise ApiError(400, "BadRequest", "PATCH requests must have a fieldManager for server-side apply: "
                                                  "fieldManager is required for apply requests")
            if verb == "patch" and content_type not in (APPLY, JSON_PATCH, MERGE, STRATEGIC):
                raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                               f"accepted media types include: {JSON_PATCH}, {MERGE}, {APPLY}"
                               + ("" if kind.is_custom else f", {STRATEGIC}"))
            if info.subresource and info.subresource not in kind.subresources:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            body = await _body(request, yaml_ok=content_type == APPLY)
            result = self.store.update(kind, namespace, info.name, body, content_type if verb == "patch" else "",
                                       info.subresource or None, options, replace=verb == "update", admit=admit)
            return self._respond(result.obj, negotiated, kind, query, warnings=result.warnings,
                                 status=201 if result.created else 200)
        if verb == "delete":
            delete_options = await _body(request, optional=True) or {}
            status, obj = self.store.delete(kind, namespace, info.name, delete_options,
                                            dry_run=options.dry_run)
            return _json(obj, status=status)
        if verb == "deletecollection":
            labels = parse_label_selector(query.get("labelSelector"))
            fields = parse_field_selector(query.get("fieldSelector"), kind.kind, kind.group,
                                          cluster_scoped=not kind.namespaced)
            items, _ = self.store.select(kind, namespace, labels, fields)
            for obj in items:
                with contextlib.suppress(ApiError):
                    self.store.delete(kind, obj["metadata"].get("namespace"), obj["metadata"]["name"], {})
            return _json({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success"})
        raise ApiError(405, "MethodNotAllowed", f"{request.method} is not supported")

    def _shards(self, query: Mapping[str, str]) -> ShardSelector:
        return parse_shard_selector(query.get("shardSelector")) if self.sharded_list_watch else ShardSelector()

    def _respond(self, obj: dict[str, Any], negotiated: tables.Negotiated, kind: Kind, query: Mapping[str, str], *,
                 many: bool = False, status: int = 200, warnings: list[str] | None = None) -> aiohttp.web.Response:
        body: Any = obj
        if negotiated.table:
            items = obj["items"] if many else [obj]
            body = tables.to_table(items, tables.columns_for(kind), include_object=tables.include_object_option(query),
                                   list_meta=obj["metadata"] if many else None,
                                   version=negotiated.convert_version or "v1")
        elif negotiated.convert_kind in ("PartialObjectMetadata", "PartialObjectMetadataList"):
            body = (tables.partial_object_metadata_list(obj["items"], obj["metadata"]) if many
                    else tables.partial_object_metadata(obj))
        headers = {"Warning": ", ".join(f'299 - {json.dumps(w)}' for w in warnings)} if warnings else None
        return _json(body, status=status, headers=headers)

    def _access_review(self, user: UserInfo, body: Any) -> dict[str, Any]:
        spec = (body or {}).get("spec") or {}
        attrs = spec.get("resourceAttributes") or {}
        from llmapp_sandbox.apiserver.rbac import resource_attributes

        info = resource_attributes(attrs.get("verb", ""), attrs.get("resource", ""), group=attrs.get("group", ""),
                                   version=attrs.get("version", "v1"), namespace=attrs.get("namespace", ""),
                                   name=attrs.get("name", ""), subresource=attrs.get("subresource", ""))
        allowed = not self.rbac or user.in_group("system:masters") or self.authorizer().authorize(user, info).allowed
        return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {},
                "spec": spec, "status": {"allowed": allowed}}

    def _pod_log(self, namespace: str, name: str) -> aiohttp.web.StreamResponse:
        self.store.get(self._kind("pods"), namespace, name)
        return _text(self.pod_logs.get((namespace, name), ""))

    def _inject_fault(self, verb: str, plural: str, subresource: str | None) -> None:
        for fault in self._faults:
            if fault.times > 0 and fault.verb == verb and fault.plural == plural and fault.subresource == subresource:
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
                raise ApiError(fault.status, "Injected", f"injected fault {fault.status}")

    # -- watch -----------------------------------------------------------------------------------
    async def _watch(self, request: aiohttp.web.Request, kind: Kind, namespace: str | None,
                     query: Mapping[str, str]) -> aiohttp.web.StreamResponse:
        since = int(query.get("resourceVersion") or 0)
        timeout = float(query.get("timeoutSeconds") or 0) or None
        bookmarks = query.get("allowWatchBookmarks", "").lower() == "true"
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"), kind.kind, kind.group,
                                      cluster_scoped=not kind.namespaced)
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def notify() -> None:
            loop.call_soon_threadsafe(wake.set)

        watcher = Watcher(kind, namespace, labels, fields, wake=notify, shards=self._shards(query))
        # Replay and subscribe in one synchronous step: nothing can happen in between.
        self.store.watchers.add(watcher)
        expired = self.store.expired(since)
        if expired:
            self.store.gone_once = False
            gone = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 410,
                    "reason": "Expired", "message": f"too old resource version: {since} ({self.store.history_floor})"}
            backlog: list[dict[str, Any]] = [{"type": "ERROR", "object": gone}]
        else:
            backlog = self.store.backlog(watcher, since)
        replayed = max((int(e["object"].get("metadata", {}).get("resourceVersion", 0)) for e in backlog), default=0)
        floor = max(since, replayed)
        response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                                   "Transfer-Encoding": "chunked"})
        response.force_close()
        deadline = loop.time() + timeout if timeout else None
        last_sent = str(floor or self.store.revision)
        try:
            await response.prepare(request)
            for initial in backlog:
                out = initial if initial["type"] == "ERROR" else self.store.filter_event(watcher, initial)
                if out is not None:
                    await response.write(json.dumps(out).encode() + b"\n")
            if expired:
                return response
            next_bookmark = loop.time() + self.bookmark_seconds
            while True:
                while watcher.queue:
                    event = watcher.queue.popleft()
                    if event is None:
                        raise asyncio.CancelledError   # dropped on purpose (fault injection)
                    revision = int(event["object"]["metadata"].get("resourceVersion", 0))
                    if revision <= floor:
                        continue   # the client already has this state from its LIST
                    out = self.store.filter_event(watcher, event)
                    last_sent = str(revision)
                    if out is not None:
                        await response.write(json.dumps(out).encode() + b"\n")
                wake.clear()
                now = loop.time()
                if deadline is not None and now >= deadline:
                    break
                if bookmarks and now >= next_bookmark:
                    await response.write(json.dumps(_bookmark(kind, str(max(int(last_sent), self.store.revision))))
                                         .encode() + b"\n")
                    next_bookmark = now + self.bookmark_seconds
                wait = min(x for x in (deadline, next_bookmark if bookmarks else None, now + 3600) if x) - now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), max(wait, 0.0))
            if bookmarks:
                await response.write(json.dumps(_bookmark(kind, str(self.store.revision))).encode() + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.watchers.discard(watcher)
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write_eof()
        return response


def _bookmark(kind: Kind, revision: str) -> dict[str, Any]:
    return {"type": "BOOKMARK", "object": {"kind": kind.kind, "apiVersion": kind.api_version,
                                           "metadata": {"resourceVersion": revision,
                                                        "annotations": {"k8s.io/initial-events-end": "true"}}}}


def _page(items: list[dict[str, Any]], query: Mapping[str, str], revision: str
          ) -> tuple[list[dict[str, Any]], str, int]:
    """limit/continue: a continue token is the offset at the revision of the first page."""
    limit = int(query.get("limit") or 0)
    offset = 0
    if query.get("continue"):
        try:
            offset = int(query["continue"].split(":", 1)[0])
        except ValueError:
            raise ApiError(400, "BadRequest", "continue key is not valid") from None
    if limit <= 0:
        return items[offset:], "", 0
    page = items[offset:offset + limit]
    rest = len(items) - offset - len(page)
    return page, (f"{offset + limit}:{revision}" if rest > 0 else ""), rest


async def _body(request: aiohttp.web.Request, *, yaml_ok: bool = False, optional: bool = False) -> Any:
    raw = await request.read()
    if not raw:
        if optional:
            return None
        raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
    if (request.headers.get("Content-Type") or "").startswith(protobuf.MEDIA_TYPE):
        return protobuf.decode(raw)
    try:
        return yaml.safe_load(raw) if yaml_ok else json.loads(raw)
    except (ValueError, yaml.YAMLError):
        raise ApiError(400, "BadRequest", "the body of the request was in an unknown format") from None


def _json(body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> aiohttp.web.Response:
    response = aiohttp.web.Response(text=json.dumps(body), status=status, content_type="application/json",
                                    headers=headers)
    response.force_close()   # no keep-alive: a stopping client never waits for idle connections
    return response


def _text(text: str) -> aiohttp.web.Response:
    response = aiohttp.web.Response(text=text, content_type="text/plain")
    response.force_close()
    return response


SandboxApiServer = ApiServer   # the name tests and benchmarks knew it by


@dataclass
class RunningApiServer:
    server: ApiServer
    url: str

    @property
    def admin_token(self) -> str:
        return self.server.tokens.admin_token

    def write_kubeconfig(self, path: pathlib.Path, namespace: str = "default", *, token: str | None = None
                         ) -> pathlib.Path:
        """A kubeconfig for this server: as the administrator, or as the identity of `token`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "sandbox",
            "clusters": [{"name": "sandbox", "cluster": {"server": self.url}}],
            "users": [{"name": "sandbox", "user": {"token": token or self.admin_token}}],
            "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": "sandbox",
                                                          "namespace": namespace}}],
        }, indent=2))
        path.chmod(0o600)
        return path


@contextlib.asynccontextmanager
async def running_apiserver(crds: Iterable[dict[str, Any]] = (), *, namespaces: Iterable[str] = (),
                            rbac: bool = False, owner_references_enforcement: bool = False,
                            bookmark_seconds: float = 5.0, sharded_list_watch: bool = False
                            ) -> AsyncIterator[RunningApiServer]:
    """Start the emulator on a free 127.0.0.1 port in the current event loop; `crds` are created
    through CRD admission, as `kubectl apply -f crds/` would, and `namespaces` exist from the start."""
    server = ApiServer(rbac=rbac, owner_references_enforcement=owner_references_enforcement,
                       bookmark_seconds=bookmark_seconds, sharded_list_watch=sharded_list_watch)
    server.apply_manifests([*crds, *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                                     for name in namespaces)])
    app = aiohttp.web.Application(client_max_size=3 * 1024 * 1024)   # the real server's request limit
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = aiohttp.web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0, shutdown_timeout=0.5)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield RunningApiServer(server=server, url=f"http://127.0.0.1:{port}")
    finally:
        server.drop_watches()
        await runner.cleanup()

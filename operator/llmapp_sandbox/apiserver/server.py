"""An in-process Kubernetes API server for the sandbox and the tests, built on kmock.

kmock (the API mock Kopf itself is tested with) serves HTTP and discovery. This subclass keeps
the objects and answers reads, writes and watches the way a real API server does, because Kopf
and the operator's status logic depend on those details:

- metadata.uid / resourceVersion / creationTimestamp / generation maintained on every write;
  `generation` moves only when something other than metadata or status changes;
- the status subresource: main-resource writes keep the stored status, `/status` writes change
  only status; a write that changes nothing is elided (no new resourceVersion, no watch event);
- POST answers 201, `generateName` works, a duplicate name answers 409;
- merge-patch (RFC 7386) and JSON-patch with `test` answering 422 on mismatch;
- DELETE with finalizers sets deletionTimestamp once; the object goes when they are gone;
- LIST carries a resourceVersion; WATCH from a resourceVersion replays nothing older, and the
  snapshot and the subscription happen in one step so no event is lost in between;
- `timeoutSeconds` ends a watch like a real server does; responses close their connection.

Requests are counted (not recorded) so benchmarks and tests can count API calls per object, and
a small fault injector answers chosen requests with an error status.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import copy
import datetime
import json
import pathlib
import secrets
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import rendering

HISTORY_SIZE = 50_000
ResourceKey = tuple[str, str, str]  # (group, version, plural)
ObjectKey = tuple[ResourceKey, str | None, str]  # (resource, namespace, name)
RequestKey = tuple[str, str, str | None]  # (verb, plural, subresource)
CallKey = tuple[str, str, str, str, str | None]  # (user agent, verb, group, plural, subresource)


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


@dataclass
class ResourceKind:
    kind: str
    namespaced: bool
    status_subresource: bool


@dataclass
class Fault:
    verb: str
    plural: str
    subresource: str | None
    status: int
    times: int


@dataclass(eq=False)
class Watcher:
    resource: ResourceKey
    namespace: str | None
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~") for part in path.lstrip("/").split("/")] if path else []


def json_patch(target: Any, operations: list[dict[str, Any]]) -> Any:
    """RFC 6902 subset Kopf uses: test, add, replace, remove."""
    doc = copy.deepcopy(target)
    for op in operations:
        parts = _pointer(op["path"])
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1] if parts else ""
        kind = op["op"]
        if kind == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != op.get("value"):
                raise ApiError(422, "Invalid", f"test operation failed at {op['path']}")
        elif kind in ("add", "replace"):
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if kind == "add":
                    parent.insert(index, op["value"])
                else:
                    parent[index] = op["value"]
            else:
                parent[last] = op["value"]
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                parent.pop(last, None)
        else:
            raise ApiError(422, "Invalid", f"unsupported JSON-patch op {kind}")
    return doc


def _fold_string_data(secret: dict[str, Any]) -> None:
    """A Secret's write-only `stringData` is merged into base64 `data`, as the API server does."""
    for key, value in (secret.pop("stringData", None) or {}).items():
        secret.setdefault("data", {})[key] = base64.b64encode(str(value).encode()).decode()


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key not in ("metadata", "status")}


@attrs.define(kw_only=True)
class SandboxApiServer(kmock.KubernetesScaffold):
    keep_requests: bool = False
    request_counts: collections.Counter[RequestKey] = attrs.field(factory=collections.Counter)
    # Who called what: lets tests compare the operator's calls with the RBAC the chart grants.
    calls: collections.Counter[CallKey] = attrs.field(factory=collections.Counter)
    _objects: dict[ObjectKey, dict[str, Any]] = attrs.field(factory=dict)
    _kinds: dict[ResourceKey, ResourceKind] = attrs.field(factory=dict)
    _watchers: set[Watcher] = attrs.field(factory=set)
    _faults: list[Fault] = attrs.field(factory=list)
    _revision: int = 0
    # Recent events, so a watch from resourceVersion N replays what happened after N (as etcd's
    # watch cache does); a watch from before the oldest kept event gets 410 Gone.
    _history: collections.deque[tuple[ResourceKey, dict[str, Any]]] = attrs.field(
        factory=lambda: collections.deque(maxlen=HISTORY_SIZE))
    _history_floor: int = 0
    _gone_once: bool = False
    pod_logs: dict[tuple[str, str], str] = attrs.field(factory=dict)  # (namespace, pod) -> container log

    # -- set-up ----------------------------------------------------------------------------------
    def register(self, group: str, version: str, plural: str, kind: str, *, namespaced: bool = True,
                 status_subresource: bool = False, singular: str | None = None,
                 shortnames: Iterable[str] = ()) -> None:
        self._kinds[(group, version, plural)] = ResourceKind(kind, namespaced, status_subresource)
        self.resources[kmock.resource(group, version, plural)] = kmock.ResourceInfo(
            kind=kind, singular=singular or kind.lower(), shortnames=set(shortnames),
            namespaced=namespaced, subresources={"status"} if status_subresource else set(),
            verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
        )

    def register_builtins(self) -> None:
        self.register("", "v1", "events", "Event")
        self.register("", "v1", "secrets", "Secret")
        self.register("", "v1", "configmaps", "ConfigMap")
        self.register("", "v1", "namespaces", "Namespace", namespaced=False, status_subresource=True)
        self.register("events.k8s.io", "v1", "events", "Event")
        self.register("coordination.k8s.io", "v1", "leases", "Lease")
        # The job runner's objects. Nothing here runs Jobs: tests play their life (status, pods, logs).
        self.register("batch", "v1", "jobs", "Job", status_subresource=True)
        self.register("", "v1", "pods", "Pod", status_subresource=True)

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
        for watcher in list(self._watchers):
            watcher.queue.put_nowait(None)

    def expire_history(self) -> None:
        """Compact the event history: the next watch resuming from a resourceVersion gets 410 Gone
        (once; clients then LIST again, as they must with a real API server)."""
        self._history.clear()
        self._history_floor = self._revision
        self._gone_once = True

    def _resource(self, plural: str) -> ResourceKey:
        for resource in self._kinds:
            if resource[2] == plural:
                return resource
        raise KeyError(f"{plural} is not registered")

    def _key(self, plural: str, namespace: str | None, name: str) -> ObjectKey:
        resource = self._resource(plural)
        return (resource, namespace if self._kinds[resource].namespaced else None, name)

    def get_object(self, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        obj = self._objects.get(self._key(plural, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def peek_objects(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """The stored objects themselves, not copies: for read-only scans at scale (benchmarks)."""
        return [obj for (resource, ns, _), obj in self._objects.items()
                if resource[2] == plural and (namespace is None or ns == namespace)]

    def list_objects(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return [copy.deepcopy(obj) for obj in self.peek_objects(plural, namespace)]

    def create_object(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create as a POST would (watchers are told), without an HTTP round trip."""
        return self._create(self._resource(plural), obj.get("metadata", {}).get("namespace"), obj)

    # -- HTTP entry ------------------------------------------------------------------------------
    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        response = await super().__call__(raw_request)
        if not response.prepared:
            response.force_close()  # discovery answers too: a stopping client never waits on keep-alive
        if not self.keep_requests:
            self._requests.clear()  # kmock re-scans its record on every request; keep it empty
        return response

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        raw = request._raw_request
        path = raw.path if raw is not None else ""
        if raw is not None and len(path) > 1 and path.endswith("/"):
            # Real API servers answer discovery URLs with a trailing slash too.
            request = await rendering.Request._parse(raw.clone(rel_url=raw.rel_url.with_path(path.rstrip("/"))))
        if request.resource is None or request.action is None or not request.resource.plural:
            return await super()._handle(request)  # discovery: kmock's scaffold answers it
        resource: ResourceKey = (request.resource.group or "", request.resource.version or "",
                                 request.resource.plural or "")
        verb = (raw.method if raw is not None else "GET").upper()
        if request.action == kmock.action.WATCH:
            verb = "WATCH"
        elif request.action == kmock.action.LIST:
            verb = "LIST"
        self.request_counts[(verb, resource[2], request.subresource)] += 1
        agent = raw.headers.get("User-Agent", "") if raw is not None else ""
        self.calls[(agent, verb, resource[0], resource[2], request.subresource)] += 1
        try:
            self._inject_fault(verb, resource[2], request.subresource)
            if resource not in self._kinds:
                raise ApiError(404, "NotFound", f"the server could not find the resource {resource[2]}")
            if verb == "WATCH":
                return await self._watch(request, resource)
            if resource[2] == "pods" and request.subresource == "log":
                return self._pod_log(request.namespace or "", request.name or "")
            status, body = self._dispatch(verb, request, resource)
        except ApiError as exc:
            status, body = exc.status, {"apiVersion": "v1", "kind": "Status", "status": "Failure",
                                        "code": exc.status, "reason": exc.reason, "message": exc.message}
        response = aiohttp.web.json_response(body, status=status)
        response.force_close()  # no keep-alive: a stopping client never waits for idle connections
        return response

    def _pod_log(self, namespace: str, name: str) -> aiohttp.web.StreamResponse:
        if self._objects.get((("", "v1", "pods"), namespace, name)) is None:
            raise ApiError(404, "NotFound", f'pods "{name}" not found')
        # The whole log, whatever tailLines asks: tests write short ones.
        response = aiohttp.web.Response(text=self.pod_logs.get((namespace, name), ""), content_type="text/plain")
        response.force_close()
        return response

    def _inject_fault(self, verb: str, plural: str, subresource: str | None) -> None:
        for fault in self._faults:
            if fault.times > 0 and fault.verb == verb and fault.plural == plural and fault.subresource == subresource:
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
                raise ApiError(fault.status, "Injected", f"injected fault {fault.status}")

    def _dispatch(self, verb: str, request: rendering.Request, resource: ResourceKey) -> tuple[int, Any]:
        namespace = request.namespace
        if verb == "LIST":
            return 200, self._list(resource, namespace)
        if verb == "POST":
            return 201, self._create(resource, namespace, request.data)
        if request.name is None:
            raise ApiError(405, "MethodNotAllowed", f"{verb} needs an object name")
        key: ObjectKey = (resource, namespace, request.name)
        if verb == "GET":
            obj = self._objects.get(key)
            if obj is None:
                raise ApiError(404, "NotFound", f'{resource[2]} "{request.name}" not found')
            return 200, copy.deepcopy(obj)
        if verb in ("PATCH", "PUT"):
            content_type = (request.headers.get("Content-Type") or "").split(";")[0]
            return 200, self._update(key, request.data, content_type, request.subresource, replace=verb == "PUT")
        if verb == "DELETE":
            return 200, self._delete(key)
        raise ApiError(405, "MethodNotAllowed", f"{verb} is not supported")

    # -- store operations (synchronous: atomic within the event loop) -----------------------------
    def _bump(self) -> str:
        self._revision += 1
        return str(self._revision)

    def _notify(self, event_type: str, resource: ResourceKey, obj: dict[str, Any]) -> None:
        namespace = obj.get("metadata", {}).get("namespace")
        event = {"type": event_type, "object": copy.deepcopy(obj)}
        if len(self._history) == self._history.maxlen:
            self._history_floor = int(self._history[0][1]["object"]["metadata"]["resourceVersion"])
        self._history.append((resource, event))
        for watcher in self._watchers:
            if watcher.resource == resource and watcher.namespace in (None, namespace):
                watcher.queue.put_nowait(event)

    def _list(self, resource: ResourceKey, namespace: str | None) -> dict[str, Any]:
        items = [copy.deepcopy(obj) for (res, ns, _), obj in self._objects.items()
                 if res == resource and (namespace is None or ns == namespace)]
        kind = self._kinds[resource].kind
        return {"apiVersion": "/".join(filter(None, resource[:2])), "kind": f"{kind}List",
                "metadata": {"resourceVersion": str(self._revision)}, "items": items}

    def _create(self, resource: ResourceKey, namespace: str | None, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ApiError(400, "BadRequest", "the body must be a JSON object")
        obj = copy.deepcopy(data)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ApiError(422, "Invalid", "metadata.name or metadata.generateName is required")
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        kind = self._kinds[resource]
        if kind.namespaced:
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        key: ObjectKey = (resource, meta.get("namespace") if kind.namespaced else None, meta["name"])
        if key in self._objects:
            raise ApiError(409, "AlreadyExists", f'{resource[2]} "{meta["name"]}" already exists')
        if kind.status_subresource:
            obj.pop("status", None)
        if kind.kind == "Secret":
            _fold_string_data(obj)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1, resourceVersion=self._bump())
        meta.pop("deletionTimestamp", None)
        obj.setdefault("apiVersion", "/".join(filter(None, resource[:2])))
        obj.setdefault("kind", kind.kind)
        self._objects[key] = obj
        self._notify("ADDED", resource, obj)
        return copy.deepcopy(obj)

    def _update(self, key: ObjectKey, data: Any, content_type: str, subresource: str | None,
                *, replace: bool) -> dict[str, Any]:
        old = self._objects.get(key)
        if old is None:
            raise ApiError(404, "NotFound", f'{key[0][2]} "{key[2]}" not found')
        if replace:
            patched = copy.deepcopy(data)
        elif content_type == "application/json-patch+json" or isinstance(data, list):
            patched = json_patch(old, data)
        else:
            patched = merge_patch(old, data)
        wanted_rv = (data.get("metadata") or {}).get("resourceVersion") if isinstance(data, dict) else None
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified; please apply your changes "
                                            "to the latest version and try again")
        new = self._apply_subresource_rules(key[0], old, patched, subresource)
        if self._kinds[key[0]].kind == "Secret":
            _fold_string_data(new)
        if new == old:
            return copy.deepcopy(old)  # no-op writes change nothing, not even resourceVersion
        if _spec_part(new) != _spec_part(old):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        new["metadata"]["resourceVersion"] = self._bump()
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            del self._objects[key]
            self._notify("DELETED", key[0], new)
        else:
            self._objects[key] = new
            self._notify("MODIFIED", key[0], new)
        return copy.deepcopy(new)

    def _apply_subresource_rules(self, resource: ResourceKey, old: dict[str, Any], patched: dict[str, Any],
                                 subresource: str | None) -> dict[str, Any]:
        if self._kinds[resource].status_subresource:
            if subresource == "status":
                new = copy.deepcopy(old)
                if "status" in patched:
                    new["status"] = patched["status"]
                else:
                    new.pop("status", None)
                return new
            patched = copy.deepcopy(patched)
            if "status" in old:
                patched["status"] = copy.deepcopy(old["status"])
            else:
                patched.pop("status", None)
        new = copy.deepcopy(patched)
        meta = new.setdefault("metadata", {})
        for field_name in ("uid", "creationTimestamp", "generation", "resourceVersion", "name", "namespace",
                           "deletionTimestamp"):
            if field_name in old["metadata"]:
                meta[field_name] = old["metadata"][field_name]
            else:
                meta.pop(field_name, None)
        return new

    def _delete(self, key: ObjectKey) -> dict[str, Any]:
        obj = self._objects.get(key)
        if obj is None:
            raise ApiError(404, "NotFound", f'{key[0][2]} "{key[2]}" not found')
        meta = obj["metadata"]
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = _now()
                meta["resourceVersion"] = self._bump()
                self._notify("MODIFIED", key[0], obj)
            return copy.deepcopy(obj)
        del self._objects[key]
        meta["resourceVersion"] = self._bump()
        self._notify("DELETED", key[0], obj)
        return copy.deepcopy(obj)

    # -- watch -----------------------------------------------------------------------------------
    async def _watch(self, request: rendering.Request, resource: ResourceKey) -> aiohttp.web.StreamResponse:
        raw = request._raw_request
        assert raw is not None
        since = int(request.params.get("resourceVersion") or 0)
        timeout = float(request.params.get("timeoutSeconds") or 0) or None
        watcher = Watcher(resource, request.namespace)
        # Replay and subscribe in one synchronous step: nothing can happen in between. From a
        # resourceVersion: the events after it (a LIST already gave the state at it); without one:
        # the current objects as ADDED, like a real API server.
        self._watchers.add(watcher)
        backlog: list[dict[str, Any]]
        expired = since and (since < self._history_floor or self._gone_once)
        if expired:
            self._gone_once = False
            backlog = [{"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                                    "code": 410, "reason": "Expired",
                                                    "message": f"too old resource version: {since}"}}]
        elif since:
            backlog = [event for res, event in self._history
                       if res == resource and int(event["object"]["metadata"]["resourceVersion"]) > since
                       and request.namespace in (None, event["object"]["metadata"].get("namespace"))]
        else:
            backlog = [{"type": "ADDED", "object": copy.deepcopy(obj)}
                       for (res, ns, _), obj in self._objects.items()
                       if res == resource and request.namespace in (None, ns)]
        replayed = max((int(e["object"].get("metadata", {}).get("resourceVersion", 0)) for e in backlog), default=0)
        since = max(since, replayed)  # live events already replayed are not sent twice
        response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.force_close()
        try:
            await response.prepare(raw)
            for initial in backlog:
                await response.write(json.dumps(initial).encode() + b"\n")
            deadline = asyncio.get_running_loop().time() + timeout if timeout else None
            while True:
                remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
                if remaining is not None and remaining <= 0:
                    break
                try:
                    event: dict[str, Any] | None = await asyncio.wait_for(watcher.queue.get(), remaining)
                except TimeoutError:
                    break
                if event is None:
                    break  # dropped on purpose (fault injection)
                revision = int(event["object"]["metadata"].get("resourceVersion", 0))
                if revision <= since:
                    continue  # the client already has this state from its LIST
                await response.write(json.dumps(event).encode() + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._watchers.discard(watcher)
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write_eof()
        return response


def register_crd(server: SandboxApiServer, crd: dict[str, Any]) -> None:
    """Serve the kind an apiextensions.k8s.io/v1 CustomResourceDefinition describes."""
    spec = crd["spec"]
    names = spec["names"]
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        server.register(
            spec["group"], version["name"], names["plural"], names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            status_subresource="status" in (version.get("subresources") or {}),
            singular=names.get("singular"), shortnames=names.get("shortNames", ()),
        )


@dataclass
class RunningApiServer:
    server: SandboxApiServer
    url: str

    def write_kubeconfig(self, path: pathlib.Path, namespace: str = "default") -> pathlib.Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "sandbox",
            "clusters": [{"name": "sandbox", "cluster": {"server": self.url}}],
            "users": [{"name": "sandbox", "user": {}}],
            "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": "sandbox",
                                                          "namespace": namespace}}],
        }, indent=2))
        return path


@contextlib.asynccontextmanager
async def running_apiserver(crds: Iterable[dict[str, Any]] = (), *, keep_requests: bool = False
                            ) -> AsyncIterator[RunningApiServer]:
    """Start the emulator on a free 127.0.0.1 port in the current event loop."""
    server = SandboxApiServer(keep_requests=keep_requests)
    server.register_builtins()
    for crd in crds:
        register_crd(server, crd)
    async with server, kmock.Server(server) as http:
        yield RunningApiServer(server=server, url=str(http.url).rstrip("/"))

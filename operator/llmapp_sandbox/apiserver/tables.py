"""meta.k8s.io Table responses: the server-side columns `kubectl get` prints.

`kubectl get` sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;
v=v1beta1;g=meta.k8s.io,application/json` and prints whatever columns the server returns. The
negotiation here follows apiserver's (pkg/endpoints/handlers/negotiation): clauses sorted by q,
the first one the server can produce wins, and a header naming nothing producible falls back to
plain JSON rather than 406.

Columns:

- CRDs (apiextensions' tableconvertor): `Name` first, then the version's additionalPrinterColumns
  in order; with none declared, `Age` (`crd_columns`). A cell is the first value the column's
  JSONPath finds (see `jsonpath.first_value`); nothing found, or an evaluation error, is null
  (kubectl prints an empty cell). `string` columns print the value as Go's fmt would (`map[a:b]`, and
  `<no value>` for a JSON null); `integer`, `number`, `boolean` keep values of their own type
  (integers truncate floats, numbers widen integers), anything else is null; `date` renders an
  RFC 3339 string as a short age (`5m`, `3d`), `<invalid>` when it does not parse, `<unknown>` when
  empty.
- Built-in kinds (`builtin_columns`): the well-known columns of kubectl's printers
  (pkg/printers/internalversion) for the kinds the emulator serves: Namespace (Status),
  Secret (Type, Data), ConfigMap (Data), ServiceAccount (Secrets), Pod (Ready, Status, Restarts,
  IP/Node wide), Job (Status, Completions, Duration), Deployment (Ready, Up-to-date, Available),
  Service (Type, Cluster-IP, External-IP, Port(s)), Lease (Holder), Event (Last Seen, Type, Reason,
  Object, Message; Name last at priority 1, as printers.go has it), RoleBinding/ClusterRoleBinding
  (Role); Role, ClusterRole and
  CustomResourceDefinition have `Created At` like the real server. Other kinds: Name and Age
  (printers' Age is the long HumanDuration form, `3m20s`). Pod status and Event times are
  simplified (no init-container or readiness-gate detail).

`includeObject` (query parameter) is Metadata by default: each row carries a PartialObjectMetadata
of the object (kubectl's `--show-labels` and `-L` read its labels); Object carries the object
itself, None carries null. kubectl 1.32 sends no `includeObject` for a plain `get` (so Metadata),
and `includeObject=Object` (without `limit`) for `--sort-by`.
"""

from __future__ import annotations

import copy
import datetime
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import jsonpath
from .gofmt import go_sprint

TABLE_GROUP = "meta.k8s.io"
INCLUDE_OBJECT_VALUES = ("None", "Metadata", "Object")

NAME_DESCRIPTION = ("Name must be unique within a namespace. Is required when creating resources, although some "
                    "resources may allow a client to request the generation of an appropriate name automatically. "
                    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
                    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/"
                    "names#names")
CREATION_TIMESTAMP_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not "
    "guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is "
    "represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata")


# -- negotiation ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Negotiated:
    """The outcome of Accept negotiation: what to serialize, and which conversion (if any) to apply."""

    media_type: str  # "application/json", ...
    convert_kind: str | None = None  # "Table", "PartialObjectMetadata", "PartialObjectMetadataList"
    convert_version: str | None = None  # "v1" or "v1beta1"
    pretty: bool = False

    @property
    def table(self) -> bool:
        return self.convert_kind == "Table"


def _parse_accept(header: str) -> list[tuple[str, str, float, dict[str, str]]]:
    """goautoneg.ParseAccept: (type, subtype, q, params), best first (stable for equal q)."""
    clauses: list[tuple[str, str, float, dict[str, str]]] = []
    for part in header.split(","):
        pieces = part.strip(" ").split(";")
        media = pieces[0].split("/")
        main = media[0].strip(" ")
        if len(media) == 1 and main == "*":
            sub = "*"
        elif len(media) == 2:
            sub = media[1].strip(" ")
        else:
            continue
        q, params = 1.0, {}
        for param in pieces[1:]:
            kv = param.split("=", 1)
            if len(kv) != 2:
                continue
            key = kv[0].strip(" ")
            if key == "q":
                try:
                    q = float(kv[1])
                except ValueError:
                    q = 0.0
            else:
                params[key] = kv[1].strip(" ")
        clauses.append((main, sub, q, params))
    return sorted(clauses, key=lambda clause: (-clause[2], clause[0] == "*", clause[1] == "*"))


def negotiate(accept: str | None, supported: Sequence[str] = ("application/json",)) -> Negotiated:
    """Pick the response form for an Accept header among `supported` media types (first is the default)."""
    if not accept:
        return Negotiated(supported[0])
    for main, sub, _q, params in _parse_accept(accept):
        for media_type in supported:
            s_main, s_sub = media_type.split("/", 1)
            if not ((main == s_main and sub == s_sub) or (main == s_main and sub == "*") or (main == sub == "*")):
                continue
            kind, group, version = params.get("as"), params.get("g"), params.get("v")
            if params.get("stream"):
                continue  # a watch stream is not a response form this negotiation serves
            if params.get("sv"):
                continue
            if kind is None and group is None and version is None:
                return Negotiated(media_type, pretty=params.get("pretty") == "1")
            if group != TABLE_GROUP or version not in ("v1", "v1beta1"):
                continue
            if kind == "Table" and s_sub in ("json", "yaml"):
                return Negotiated(media_type, "Table", version, params.get("pretty") == "1")
            if kind in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                return Negotiated(media_type, kind, version, params.get("pretty") == "1")
    return Negotiated(supported[0])


def wants_table(accept: str | None) -> bool:
    """Whether a response to this Accept header is a Table."""
    return negotiate(accept).table


def table_version(accept: str | None) -> str | None:
    """The Table's version the client asked for ("v1" or "v1beta1"), or None for no Table."""
    negotiated = negotiate(accept)
    return negotiated.convert_version if negotiated.table else None


class TableOptionsError(ValueError):
    """A 400 BadRequest: the message is the real server's."""


def include_object_option(query: Mapping[str, str]) -> str:
    """The `includeObject` query parameter, validated as ValidateTableOptions does ("" means Metadata)."""
    value = query.get("includeObject", "") or "Metadata"
    if value not in INCLUDE_OBJECT_VALUES:
        raise TableOptionsError(f'Unable to convert to Table as requested: includeObject: Unsupported value: '
                                f'"{value}": supported values: "Metadata", "None", "Object"')
    return value


# -- durations ----------------------------------------------------------------------------------------
def parse_time(value: str) -> datetime.datetime | None:
    """metav1.Time from RFC 3339 (fractional seconds allowed); None for the zero time ("" or "null")."""
    if value in ("", "null"):
        return None
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})", value)
    if match is None:
        raise ValueError(f"not RFC 3339: {value!r}")
    base = datetime.datetime.fromisoformat(value[:19]).replace(tzinfo=datetime.UTC)
    if match.group(7):
        base += datetime.timedelta(microseconds=int((match.group(7)[1:] + "000000")[:6]))
    zone = match.group(8)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        base -= sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return base


def short_human_duration(delta: datetime.timedelta) -> str:
    """apimachinery duration.ShortHumanDuration: `0s`, `59s`, `5m`, `3h`, `12d`, `2y`."""
    total = delta.total_seconds()
    seconds = int(total)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60:
        return f"{seconds}s"
    minutes = int(total / 60)
    if minutes < 60:
        return f"{minutes}m"
    hours = int(total / 3600)
    if hours < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{int(total / 3600 / 24 / 365)}y"


def human_duration(delta: datetime.timedelta) -> str:
    """apimachinery duration.HumanDuration (kubectl printers' Age): `90s`, `3m20s`, `5h10m`, `2d3h`, `1y20d`."""
    total = delta.total_seconds()
    seconds = int(total)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = int(total // 60)
    if minutes < 10:
        rest = int(total) % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = int(total // 3600)
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def _since(value: Any, now: datetime.datetime, *, short: bool) -> str:
    """Age of an RFC 3339 timestamp; `<unknown>` for none, `<invalid>` for garbage."""
    if not isinstance(value, str):
        return "<unknown>"
    try:
        when = parse_time(value)
    except ValueError:
        return "<invalid>"
    if when is None:
        return "<unknown>"
    return (short_human_duration if short else human_duration)(now - when)


# -- columns ------------------------------------------------------------------------------------------
Cell = Any  # str | int | float | bool | None
Extractor = Callable[[Mapping[str, Any], datetime.datetime], Cell]


@dataclass(frozen=True)
class Column:
    """One TableColumnDefinition and how to compute its cell from an object (at time `now`)."""

    name: str
    type: str
    extract: Extractor
    format: str = ""
    description: str = ""
    priority: int = 0

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format, "description": self.description,
                "priority": self.priority}


def _name_cell(obj: Mapping[str, Any], _now: datetime.datetime) -> Cell:
    return (obj.get("metadata") or {}).get("name", "")


NAME_COLUMN = Column("Name", "string", _name_cell, format="name", description=NAME_DESCRIPTION)


def cell_for_json_value(column_type: str, value: Any, now: datetime.datetime) -> Cell:
    """apiextensions' cellForJSONValue, for the non-string column types."""
    if value is None:
        return None
    if column_type == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value)
        return None
    if column_type == "number":
        if isinstance(value, bool):
            return None
        return float(value) if isinstance(value, int | float) else None
    if column_type == "boolean":
        return value if isinstance(value, bool) else None
    if column_type == "string":
        return value if isinstance(value, str) else None
    if column_type == "date":
        if isinstance(value, str):
            try:
                when = parse_time(value)
            except ValueError:
                return "<invalid>"
            return "<unknown>" if when is None else short_human_duration(now - when)
        return None
    return None


def printer_column(definition: Mapping[str, Any]) -> Column:
    """One CRD additionalPrinterColumn (name, type, format, description, priority, jsonPath) as a Column."""
    json_path = definition["jsonPath"]
    path = jsonpath.column_path(json_path)
    column_type = definition.get("type", "string")

    def extract(obj: Mapping[str, Any], now: datetime.datetime) -> Cell:
        value = jsonpath.first_value(path, obj)
        if value is jsonpath.MISSING:
            return None
        if column_type == "string":
            return "<no value>" if value is None else go_sprint(value)
        return cell_for_json_value(column_type, value, now)

    description = (definition.get("description")
                   or f"Custom resource definition column (in JSONPath format): {json_path}")
    return Column(definition["name"], column_type, extract, format=definition.get("format", ""),
                  description=description, priority=int(definition.get("priority", 0)))


def crd_columns(additional_printer_columns: Sequence[Mapping[str, Any]] | None) -> list[Column]:
    """A CRD version's columns after Name; with none declared, the server's default Age column."""
    definitions = list(additional_printer_columns or [])
    if not definitions:
        definitions = [{"name": "Age", "type": "date", "description": CREATION_TIMESTAMP_DESCRIPTION,
                        "jsonPath": ".metadata.creationTimestamp"}]
    return [printer_column(definition) for definition in definitions]


# -- built-in kinds -----------------------------------------------------------------------------------
def _get(obj: Mapping[str, Any], *path: str) -> Any:
    cur: Any = obj
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def _age_column(description: str = CREATION_TIMESTAMP_DESCRIPTION) -> Column:
    return Column("Age", "string",
                  lambda obj, now: _since(_get(obj, "metadata", "creationTimestamp"), now, short=False),
                  description=description)


def _created_at(obj: Mapping[str, Any], _now: datetime.datetime) -> Cell:
    value = _get(obj, "metadata", "creationTimestamp")
    try:
        when = parse_time(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    return (when or datetime.datetime(1, 1, 1, tzinfo=datetime.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


CREATED_AT_COLUMN = Column("Created At", "date", _created_at, description=CREATION_TIMESTAMP_DESCRIPTION)


def _string_column(name: str, description: str, *path: str, priority: int = 0, default: str = "") -> Column:
    def extract(obj: Mapping[str, Any], _now: datetime.datetime) -> Cell:
        value = _get(obj, *path)
        return default if value in (None, "") else str(value)
    return Column(name, "string", extract, description=description, priority=priority)


def _count_column(name: str, description: str, *keys: str) -> Column:
    def extract(obj: Mapping[str, Any], _now: datetime.datetime) -> Cell:
        return sum(len(obj.get(key) or {}) for key in keys)
    return Column(name, "integer", extract, description=description)


def _pod_ready(obj: Mapping[str, Any], _now: datetime.datetime) -> Cell:
    containers = _get(obj, "spec", "containers") or []
    statuses = _get(obj, "status", "containerStatuses") or []
    ready = sum(1 for status in statuses if status.get("ready"))
    return f"{ready}/{len(containers)}"


def _pod_status(obj: Mapping[str, Any], _now: datetime.datetime) -> Cell:
    status = obj.get("status") or {}
    reason = status.get("reason") or status.get("phase") or ""
    for container in reversed(status.get("containerStatuses") or []):
        state = container.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
        elif state.get("terminated"):
            terminated = state["terminated"]
            reason = (f"Signal:{terminated['signal']}" if terminated.get("signal")
                      else f"ExitCode:{terminated.get('exitCode', 0)}")
    if _get(obj, "metadata", "deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason


def _pod_restarts(obj: Mapping[str, Any], _now: datetime.datetime) -> Cell:
    return str(sum(int(c.get("restartCount") or 0) for c in _get(obj, "status", "containerStatuses") or []))


def _condition_true(obj: Mapping[str, Any], condition: str) -> bool:
    return any(c.get("type") == condition and c.get("status") == "True"
               for c in _get(obj, "status", "conditions") or [])


def _job_status(obj: Mapping[str, Any], _now: datetime.datetime) -> Cell:
    for condition, text in (("Failed", "Failed"), ("Complete", "Complete"), ("Suspended", "Suspended"),
                            ("FailureTarget", "FailureTarget"), ("SuccessCriteriaMet", "SuccessCriteriaMet")):
        if _condition_true(obj, condition):
            return text
    if _get(obj, "metadata", "deletionTimestamp"):
        return "Terminating"
    return "Running"


def _job_completions(obj: Mapping[str, Any], _now: datetime.datetime) -> Cell:
    succeeded = int(_get(obj, "status", "succeeded") or 0)
    completions = _get(obj, "spec", "completions")
    if completions is not None:
        return f"{succeeded}/{completions}"
    parallelism = _get(obj, "spec", "parallelism")
    if parallelism is not None and int(parallelism) > 1:
        return f"{succeeded}/1 of {parallelism}"
    return f"{succeeded}/1"


def _job_duration(obj: Mapping[str, Any], now: datetime.datetime) -> Cell:
    start, end = _get(obj, "status", "startTime"), _get(obj, "status", "completionTime")
    try:
        started = parse_time(start) if isinstance(start, str) else None
        finished = parse_time(end) if isinstance(end, str) else None
    except ValueError:
        return ""
    if started is None:
        return ""
    return human_duration((finished or now) - started)


def _deployment_ready(obj: Mapping[str, Any], _now: datetime.datetime) -> Cell:
    return f"{int(_get(obj, 'status', 'readyReplicas') or 0)}/{int(_get(obj, 'spec', 'replicas') or 0)}"


def _int_cell(*path: str) -> Extractor:
    return lambda obj, _now: int(_get(obj, *path) or 0)


def _service_external_ip(obj: Mapping[str, Any], _now: datetime.datetime) -> Cell:
    service_type = _get(obj, "spec", "type") or "ClusterIP"
    external = list(_get(obj, "spec", "externalIPs") or [])
    if service_type == "LoadBalancer":
        ingress = [i.get("ip") or i.get("hostname") for i in _get(obj, "status", "loadBalancer", "ingress") or []]
        found = [ip for ip in ingress + external if ip]
        return ",".join(found) if found else "<pending>"
    if service_type == "ExternalName":
        return _get(obj, "spec", "externalName") or "<none>"
    return ",".join(external) if external else "<none>"


def _service_ports(obj: Mapping[str, Any], _now: datetime.datetime) -> Cell:
    ports = []
    for port in _get(obj, "spec", "ports") or []:
        text = f"{port.get('port')}"
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        ports.append(f"{text}/{port.get('protocol') or 'TCP'}")
    return ",".join(ports) if ports else "<none>"


def _role_ref(obj: Mapping[str, Any], _now: datetime.datetime) -> Cell:
    ref = obj.get("roleRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


def _subjects(kind: str) -> Extractor:
    def extract(obj: Mapping[str, Any], _now: datetime.datetime) -> Cell:
        names = []
        for subject in obj.get("subjects") or []:
            if subject.get("kind") == kind:
                names.append(f"{subject.get('namespace', '')}/{subject.get('name', '')}" if kind == "ServiceAccount"
                             else subject.get("name", ""))
        return ", ".join(names)
    return extract


def _event_last_seen(obj: Mapping[str, Any], now: datetime.datetime) -> Cell:
    series = obj.get("series") or {}
    for value in (series.get("lastObservedTime"), obj.get("lastTimestamp"), obj.get("deprecatedLastTimestamp"),
                  obj.get("eventTime")):
        if value:
            return _since(value, now, short=False)
    return _since(_get(obj, "metadata", "creationTimestamp"), now, short=False)


def _event_object(obj: Mapping[str, Any], _now: datetime.datetime) -> Cell:
    ref = obj.get("involvedObject") or obj.get("regarding") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def _event_message(obj: Mapping[str, Any], _now: datetime.datetime) -> Cell:
    return str(obj.get("message") or obj.get("note") or "").strip()


def _event_subobject(obj: Mapping[str, Any], _now: datetime.datetime) -> Cell:
    return str((obj.get("involvedObject") or obj.get("regarding") or {}).get("fieldPath") or "")


def _event_source(obj: Mapping[str, Any], _now: datetime.datetime) -> Cell:
    source = obj.get("source") or {}
    component = source.get("component") or obj.get("reportingController") or ""
    host = source.get("host") or ""
    return f"{component}, {host}" if host else str(component)


def _event_first_seen(obj: Mapping[str, Any], now: datetime.datetime) -> Cell:
    value = obj.get("firstTimestamp") or obj.get("eventTime") or _get(obj, "metadata", "creationTimestamp")
    return _since(value, now, short=False)


def _event_count(obj: Mapping[str, Any], _now: datetime.datetime) -> Cell:
    return str((obj.get("series") or {}).get("count") or obj.get("count") or 1)


_BUILTIN_COLUMNS: dict[tuple[str, str], list[Column]] = {
    ("", "Namespace"): [_string_column("Status", "The status of the namespace", "status", "phase"), _age_column()],
    ("", "Secret"): [_string_column("Type", "The type of the secret", "type"),
                     _count_column("Data", "The number of entries in data", "data"), _age_column()],
    ("", "ConfigMap"): [_count_column("Data", "The number of entries in data", "data", "binaryData"), _age_column()],
    ("", "ServiceAccount"): [_count_column("Secrets", "The number of secrets", "secrets"), _age_column()],
    ("", "Pod"): [
        Column("Ready", "string", _pod_ready, description="The aggregate readiness state of this pod for accepting "
               "traffic."),
        Column("Status", "string", _pod_status, description="The aggregate status of the containers in this pod."),
        Column("Restarts", "string", _pod_restarts, description="The number of times the containers in this pod "
               "have been restarted and when the last container in this pod has restarted."),
        _age_column(),
        _string_column("IP", "The IP address assigned to the pod", "status", "podIP", priority=1, default="<none>"),
        _string_column("Node", "The name of the node this pod is running on", "spec", "nodeName", priority=1,
                       default="<none>"),
    ],
    ("", "Service"): [
        _string_column("Type", "The type of the service", "spec", "type", default="ClusterIP"),
        _string_column("Cluster-IP", "The IP address of the service", "spec", "clusterIP", default="<none>"),
        Column("External-IP", "string", _service_external_ip, description="The external IPs of the service"),
        Column("Port(s)", "string", _service_ports, description="The ports of the service"),
        _age_column(),
    ],
    ("", "Event"): [
        Column("Last Seen", "string", _event_last_seen, description="Time when last event occurred"),
        _string_column("Type", "Type of the event", "type"),
        _string_column("Reason", "Reason why the event was generated", "reason"),
        Column("Object", "string", _event_object, description="Object the event is about"),
        Column("Subobject", "string", _event_subobject, priority=1, description="The field of the object"),
        Column("Source", "string", _event_source, priority=1, description="The component reporting this event"),
        Column("Message", "string", _event_message, description="The human readable description"),
        Column("First Seen", "string", _event_first_seen, priority=1, description="The time first recorded"),
        Column("Count", "string", _event_count, priority=1, description="The number of times it occurred"),
        # printers.go puts an Event's Name last, at priority 1 (`-o wide`), not first.
        Column("Name", "string", _name_cell, priority=1, description=NAME_DESCRIPTION),
    ],
    ("batch", "Job"): [
        Column("Status", "string", _job_status, description="Status of the job."),
        Column("Completions", "string", _job_completions, description="The desired number of successfully finished "
               "pods the job should be run with."),
        Column("Duration", "string", _job_duration, description="Time required to complete the job."),
        _age_column(),
    ],
    ("apps", "Deployment"): [
        Column("Ready", "string", _deployment_ready, description="Number of the pod with ready state"),
        Column("Up-to-date", "integer", _int_cell("status", "updatedReplicas"), description="Total number of "
               "non-terminated pods targeted by this deployment that have the desired template spec."),
        Column("Available", "integer", _int_cell("status", "availableReplicas"), description="Total number of "
               "available pods (ready for at least minReadySeconds) targeted by this deployment."),
        _age_column(),
    ],
    ("coordination.k8s.io", "Lease"): [_string_column("Holder", "The holder of the lease", "spec", "holderIdentity"),
                                       _age_column()],
    ("rbac.authorization.k8s.io", "Role"): [CREATED_AT_COLUMN],
    ("rbac.authorization.k8s.io", "ClusterRole"): [CREATED_AT_COLUMN],
    ("rbac.authorization.k8s.io", "RoleBinding"): [
        Column("Role", "string", _role_ref, description="Role referenced by the binding"), _age_column(),
        Column("Users", "string", _subjects("User"), description="Users in the binding", priority=1),
        Column("Groups", "string", _subjects("Group"), description="Groups in the binding", priority=1),
        Column("ServiceAccounts", "string", _subjects("ServiceAccount"), description="ServiceAccounts in the binding",
               priority=1),
    ],
    ("apiextensions.k8s.io", "CustomResourceDefinition"): [CREATED_AT_COLUMN],
}
_BUILTIN_COLUMNS[("rbac.authorization.k8s.io", "ClusterRoleBinding")] = _BUILTIN_COLUMNS[
    ("rbac.authorization.k8s.io", "RoleBinding")]
_BUILTIN_COLUMNS[("events.k8s.io", "Event")] = _BUILTIN_COLUMNS[("", "Event")]


def builtin_columns(group: str, kind: str) -> list[Column]:
    """The columns after Name for one of Kubernetes' own kinds (Age alone for kinds not listed)."""
    return list(_BUILTIN_COLUMNS.get((group, kind), [_age_column()]))


def columns_for(kind: Any) -> list[Column]:
    """The columns of a served kind, read duck-typed from a `kinds.Kind`-like object: a custom kind
    (`is_custom`/`crd` set) uses its `printer_columns`, a built-in one `builtin_columns`."""
    custom = bool(getattr(kind, "is_custom", False) or getattr(kind, "crd", None))
    if custom:
        return crd_columns(list(getattr(kind, "printer_columns", ()) or ()))
    return builtin_columns(getattr(kind, "group", ""), getattr(kind, "kind", ""))


# -- the table ---------------------------------------------------------------------------------------
def partial_object_metadata(obj: Mapping[str, Any], version: str = "v1") -> dict[str, Any]:
    """meta.AsPartialObjectMetadata: the object's metadata under kind PartialObjectMetadata."""
    return {"kind": "PartialObjectMetadata", "apiVersion": f"{TABLE_GROUP}/{version}",
            "metadata": copy.deepcopy(dict(obj.get("metadata") or {}))}


def partial_object_metadata_list(objects: Iterable[Mapping[str, Any]], list_meta: Mapping[str, Any] | None = None,
                                 version: str = "v1") -> dict[str, Any]:
    """A PartialObjectMetadataList (Accept: ...;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1)."""
    return {"kind": "PartialObjectMetadataList", "apiVersion": f"{TABLE_GROUP}/{version}",
            "metadata": dict(list_meta or {}), "items": [partial_object_metadata(obj, version) for obj in objects]}


def to_table(objects: Iterable[Mapping[str, Any]], columns: Sequence[Column | Mapping[str, Any]], *,
             include_object: str = "Metadata", list_meta: Mapping[str, Any] | None = None,
             now: datetime.datetime | None = None, version: str = "v1", no_headers: bool = False) -> dict[str, Any]:
    """A Table of `objects` with the Name column first, then `columns`.

    `columns` are Column objects (`crd_columns(...)`, `builtin_columns(...)`) or raw CRD printer
    column mappings (taken one to one; use `crd_columns` for the default-Age rule).
    `list_meta` is the LIST's metadata (resourceVersion, continue, remainingItemCount); for a
    single-object GET pass None and the table takes the object's resourceVersion.
    """
    if include_object not in INCLUDE_OBJECT_VALUES:
        raise TableOptionsError(f'Unable to convert to Table as requested: includeObject: Unsupported value: '
                                f'"{include_object}": supported values: "Metadata", "None", "Object"')
    moment = now or datetime.datetime.now(datetime.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    given = [c if isinstance(c, Column) else printer_column(c) for c in columns]
    # Name first, unless the kind's printer places it itself (an Event's is last, at priority 1).
    resolved = given if any(c.extract is _name_cell for c in given) else [NAME_COLUMN, *given]
    items = list(objects)
    metadata: dict[str, Any] = {}
    if list_meta is not None:
        for key in ("resourceVersion", "continue", "remainingItemCount"):
            if list_meta.get(key) not in (None, ""):
                metadata[key] = list_meta[key]
    elif len(items) == 1 and _get(items[0], "metadata", "resourceVersion"):
        metadata["resourceVersion"] = items[0]["metadata"]["resourceVersion"]
    rows = []
    for obj in items:
        cells = [column.extract(obj, moment) for column in resolved]
        if include_object == "Object":
            row_object: Any = copy.deepcopy(dict(obj))
        elif include_object == "Metadata":
            row_object = partial_object_metadata(obj, version)
        else:
            row_object = None
        rows.append({"cells": cells, "object": row_object})
    return {
        "kind": "Table",
        "apiVersion": f"{TABLE_GROUP}/{version}",
        "metadata": metadata,
        "columnDefinitions": None if no_headers else [column.definition() for column in resolved],
        "rows": rows,
    }

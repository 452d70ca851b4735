"""Server-side apply and `metadata.managedFields`, computed the way kube-apiserver computes them.

A port of the parts of sigs.k8s.io/structured-merge-diff (`typed` merge/compare/tofieldset/remove,
`merge.Updater`, `fieldpath` sets and their FieldsV1 encoding) and of
k8s.io/apimachinery/pkg/util/managedfields/internal (manager identities, stripped metadata, the cap of
ten Update managers, the conflict message) that Helm 4, `kubectl apply --server-side` and Argo CD's
server-side apply depend on. Pure functions over JSON-like dicts; the caller stores the result.

* `apply()` merges an applied configuration into the live object (or `None` for a create), prunes
  what the same manager applied last time and no longer applies (unless someone else owns it),
  rejects changes to fields other managers own with the API server's 409, and records an `Apply`
  entry. `force=True` takes the fields over instead.
* `record_update()` records an `Update` entry for a create/update/merge patch/JSON patch: the fields
  that write added or changed join its entry and leave every other manager's entry (Apply ones too,
  as the real `Updater.Update` does with force); removed fields leave every entry. Never conflicts.
* `fields_of()` is `ToFieldSet`; `FieldSet.to_fields_v1()`/`from_fields_v1()` the FieldsV1 codec.

Merge rules come from a schema:

* Custom resources: pass the version's `openAPIV3Schema`. `x-kubernetes-list-type` (`atomic` when
  absent, as for every CRD list), `x-kubernetes-list-map-keys` (a key's `default` stands in for a
  missing key), `x-kubernetes-map-type: atomic`, and `x-kubernetes-preserve-unknown-fields`/schemaless
  parts treated as granular maps with atomic lists. `metadata` always follows ObjectMeta's rules.
* Built-in kinds (`schema=None`): there is no Go type here, so a small table stands in for the
  `+listType`/`patchMergeKey` markers. Keyed lists: containers/initContainers/ephemeralContainers by
  name; container ports by containerPort+protocol and Service ports by port+protocol (protocol
  defaults to TCP); env by name; volumeMounts by mountPath; volumeDevices by devicePath; volumes,
  imagePullSecrets, schedulingGates, resourceClaims by name; hostAliases by ip; readinessGates by
  conditionType; topologySpreadConstraints by topologyKey+whenUnsatisfiable; status.conditions by
  type; ownerReferences by uid; metadata.finalizers is a set. Every other list is atomic (Role
  rules, RoleBinding subjects, tolerations, args, command, envFrom, Ingress rules, ...). Maps are
  structs except labels, annotations, ConfigMap/Secret data, nodeSelector, resource limits/requests,
  Service selector (string maps); LabelSelectors, roleRef and the env `*KeyRef` selectors are atomic.
  Go zero values matter for Update entries (a value struct such as `spec` or `template` is never
  "added", so it gets no `.`); the table approximates that for spec, status, template, metadata,
  strategy, updateStrategy, resources, jobTemplate and `containers`.

Not modelled: version conversion (managers at other apiVersions are compared as if the schema were
the same), schema-change reconciliation of old entries, the client-side-apply upgrade path of
`kubectl apply --server-side` (LastAppliedManager; the annotation is still kept in sync for the
`kubectl` manager), field validation, defaulting, and the URL namespace check.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Any, Final

from llmapp_sandbox.apiserver.errors import INVALID, REQUIRED, TOO_LONG, ApiError, FieldError
from llmapp_sandbox.apiserver.gofmt import go_json

__all__ = [
    "FIELD_MANAGER_MAX_LENGTH", "MAX_UPDATE_MANAGERS", "FieldSet", "PathElement", "apply", "decode_fields_v1",
    "encode_fields_v1", "fields_of", "manager_from_user_agent", "managed_fields", "path_string", "record_update",
    "validate_field_manager",
]

FIELD_MANAGER_MAX_LENGTH: Final = 128  # validation.FieldManagerMaxLength
MAX_UPDATE_MANAGERS: Final = 10  # internal.DefaultMaxUpdateManagers
_ANCIENT_CHANGES: Final = "ancient-changes"
_LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"
_OPTIMISTIC_LOCK: Final = "the object has been modified; please apply your changes to the latest version and try again"


class _Missing:
    """An absent value, as opposed to an explicit JSON null (`None`)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<missing>"

    def __deepcopy__(self, memo: dict[int, Any]) -> _Missing:
        return self


MISSING: Final = _Missing()


class _TypedError(Exception):
    """A structured-merge-diff ValidationError: `.spec.containers: duplicate entries for key [name="a"]`."""

    def __init__(self, path: Sequence[PathElement], message: str) -> None:
        self.path = "".join(str(pe) for pe in path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


# --- JSON the way Go writes it (jsoniter ConfigCompatibleWithStandardLibrary) ---------------------------


def _go_v_float(number: float) -> str:
    """fmt's %v for a float64: %g with the shortest digits, %e past exponent 6 (`1e+06`)."""
    if number != number or number in (float("inf"), float("-inf")):
        return repr(number)
    sign, digits, exponent = Decimal(repr(number)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(str(d) for d in digits)
    point = exponent + len(text) - 1
    prefix = "-" if sign else ""
    if number == 0:
        return prefix + "0"
    if point < -4 or point >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if point < 0 else '+'}{abs(point):02d}"
    if point >= len(text) - 1:
        return prefix + text + "0" * (point - len(text) + 1)
    if point >= 0:
        return prefix + text[:point + 1] + "." + text[point + 1:]
    return prefix + "0." + "0" * (-point - 1) + text


def _go_to_string(value: Any) -> str:
    """value.ToString: how conflict paths print list keys and set values."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_v_float(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_go_to_string(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "".join(f"{key}={_go_to_string(item)}" for key, item in value.items())
    return str(value)


def _value_order(value: Any) -> tuple[Any, ...]:
    """value.Compare's total order: numbers < strings < bools < lists < maps < null."""
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, int | float):
        return (0, float(value))
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, list):
        return (3, tuple(_value_order(item) for item in value))
    if isinstance(value, Mapping):
        return (4, tuple((key, _value_order(value[key])) for key in sorted(value)))
    return (5,)


def _equal(left: Any, right: Any) -> bool:
    """value.Equals: like ==, but a bool never equals a number."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return float(left) == float(right)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(_equal(left[key], right[key]) for key in left)
    return type(left) is type(right) and bool(left == right)


# --- field paths and sets -------------------------------------------------------------------------------

_KIND_ORDER: Final = {"f": 0, "k": 1, "v": 2, "i": 3}


@dataclass(frozen=True)
class PathElement:
    """One step of a field path, kept in its FieldsV1 form (`f:name`, `k:{"name":"a"}`, `v:"x"`, `i:0`)."""

    kind: str
    text: str

    @staticmethod
    def field(name: str) -> PathElement:
        return PathElement("f", name)

    @staticmethod
    def key(fields: Mapping[str, Any]) -> PathElement:
        return PathElement("k", go_json(dict(fields)))

    @staticmethod
    def value(value: Any) -> PathElement:
        return PathElement("v", go_json(value))

    @staticmethod
    def index(index: int) -> PathElement:
        return PathElement("i", str(index))

    @staticmethod
    def parse(serialized: str) -> PathElement | None:
        """DeserializePathElement; `None` for an unknown element type (which FieldsV1 readers skip)."""
        if len(serialized) < 2:
            raise ValueError("key must be 2 characters long:")
        kind, separator, body = serialized[0], serialized[1], serialized[2:]
        if separator != ":":
            raise ValueError(f"missing colon: {serialized}")
        if kind == "f":
            return PathElement.field(body)
        if kind == "v":
            return PathElement.value(json.loads(body))
        if kind == "k":
            fields = json.loads(body)
            if not isinstance(fields, dict):
                raise ValueError(f"expected an object for a key, got {body}")
            return PathElement.key(fields)
        if kind == "i":
            return PathElement.index(int(body))
        return None

    def serialize(self) -> str:
        return f"{self.kind}:{self.text}"

    @cached_property
    def decoded(self) -> Any:
        """The field name, index, set value or key fields (a dict) this element names."""
        if self.kind == "f":
            return self.text
        if self.kind == "i":
            return int(self.text)
        return json.loads(self.text)

    @cached_property
    def order(self) -> tuple[Any, ...]:
        decoded = self.decoded
        if self.kind == "k":
            return (1, tuple((name, _value_order(decoded[name])) for name in sorted(decoded)))
        if self.kind == "v":
            return (2, _value_order(decoded))
        return (_KIND_ORDER[self.kind], decoded)

    def __str__(self) -> str:
        if self.kind == "f":
            return "." + self.text
        if self.kind == "k":
            decoded = self.decoded
            return "[" + ",".join(f"{name}={_go_to_string(decoded[name])}" for name in sorted(decoded)) + "]"
        if self.kind == "v":
            return f"[={_go_to_string(self.decoded)}]"
        return f"[{self.text}]"


Path = tuple[PathElement, ...]


def path_string(path: Iterable[PathElement]) -> str:
    """fieldpath.Path.String(): `.spec.containers[name="app"].image`."""
    return "".join(str(pe) for pe in path)


class FieldSet:
    """fieldpath.Set: members (paths owned themselves) and children (paths below), as in FieldsV1."""

    __slots__ = ("children", "members")

    def __init__(self) -> None:
        self.members: set[PathElement] = set()
        self.children: dict[PathElement, FieldSet] = {}

    @classmethod
    def from_paths(cls, paths: Iterable[Iterable[PathElement | str]]) -> FieldSet:
        """A set of paths; a plain string step is a field name (`[("status",)]` is `.status`)."""
        out = cls()
        for path in paths:
            out.insert(tuple(step if isinstance(step, PathElement) else PathElement.field(step) for step in path))
        return out

    def insert(self, path: Sequence[PathElement]) -> None:
        if not path:
            return
        node = self
        for pe in path[:-1]:
            node = node.children.setdefault(pe, FieldSet())
        node.members.add(path[-1])

    def has(self, path: Sequence[PathElement]) -> bool:
        if not path:
            return False
        node: FieldSet | None = self
        for pe in path[:-1]:
            node = node.children.get(pe) if node else None
        return node is not None and path[-1] in node.members

    def empty(self) -> bool:
        return not self.members and all(child.empty() for child in self.children.values())

    def with_prefix(self, pe: PathElement) -> FieldSet:
        return self.children.get(pe) or FieldSet()

    def copy(self) -> FieldSet:
        out = FieldSet()
        out.members = set(self.members)
        out.children = {pe: child.copy() for pe, child in self.children.items() if not child.empty()}
        return out

    def union(self, other: FieldSet) -> FieldSet:
        out = FieldSet()
        out.members = self.members | other.members
        for pe in self.children.keys() | other.children.keys():
            mine, theirs = self.children.get(pe), other.children.get(pe)
            merged = mine.union(theirs) if mine and theirs else (mine or theirs or FieldSet()).copy()
            if not merged.empty():
                out.children[pe] = merged
        return out

    def intersection(self, other: FieldSet) -> FieldSet:
        out = FieldSet()
        out.members = self.members & other.members
        for pe in self.children.keys() & other.children.keys():
            common = self.children[pe].intersection(other.children[pe])
            if not common.empty():
                out.children[pe] = common
        return out

    def difference(self, other: FieldSet) -> FieldSet:
        """Set.Difference: members minus members, children minus the matching children only."""
        out = FieldSet()
        out.members = self.members - other.members
        for pe, child in self.children.items():
            rest = child.difference(other.children[pe]) if pe in other.children else child.copy()
            if not rest.empty():
                out.children[pe] = rest
        return out

    def recursive_difference(self, other: FieldSet) -> FieldSet:
        """Set.RecursiveDifference: a member of `other` takes everything below it out too."""
        out = FieldSet()
        out.members = self.members - other.members
        for pe, child in self.children.items():
            if pe in other.members:
                continue
            rest = child.recursive_difference(other.children[pe]) if pe in other.children else child.copy()
            if not rest.empty():
                out.children[pe] = rest
        return out

    def paths(self) -> Iterator[Path]:
        """Set.Iterate's order: this level's members, then each child's paths, both sorted."""
        yield from self._paths(())

    def _paths(self, prefix: Path) -> Iterator[Path]:
        for pe in sorted(self.members, key=lambda element: element.order):
            yield (*prefix, pe)
        for pe in sorted(self.children, key=lambda element: element.order):
            yield from self.children[pe]._paths((*prefix, pe))

    def to_fields_v1(self) -> dict[str, Any]:
        """FieldsV1 as the API server writes it: sorted, `.: {}` first where a node is also owned itself."""
        return self._emit(include_self=False)

    def _emit(self, include_self: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        children = {pe: child for pe, child in self.children.items() if not child.empty()}
        if include_self and (self.members or children):
            out["."] = {}
        for pe in sorted(self.members | children.keys(), key=lambda element: element.order):
            child = children.get(pe)
            out[pe.serialize()] = child._emit(include_self=pe in self.members) if child else {}
        return out

    @classmethod
    def from_fields_v1(cls, fields: Mapping[str, Any]) -> FieldSet:
        """Set.FromJSON: `{}` is a member, `.` marks a node with children as a member too."""
        found, _ = cls._read(fields)
        return found or cls()

    @classmethod
    def _read(cls, fields: Any) -> tuple[FieldSet | None, bool]:
        if not isinstance(fields, Mapping):
            raise ValueError(f"expected an object in FieldsV1, got {type(fields).__name__}")
        children: FieldSet | None = None
        is_member = False
        for key, sub in fields.items():
            if key == ".":
                is_member = True
                continue
            pe = PathElement.parse(key)
            if pe is None:
                continue
            grandchildren, child_is_member = cls._read(sub)
            if children is None and (child_is_member or grandchildren is not None):
                children = cls()
            if child_is_member:
                assert children is not None
                children.members.add(pe)
            if grandchildren is not None:
                assert children is not None
                children.children[pe] = grandchildren
        if children is None:
            is_member = True
        return children, is_member

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSet):
            return NotImplemented
        return self.to_fields_v1() == other.to_fields_v1()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FieldSet({[path_string(path) for path in self.paths()]})"


def decode_fields_v1(fields: Mapping[str, Any]) -> FieldSet:
    return FieldSet.from_fields_v1(fields)


def encode_fields_v1(fields: FieldSet) -> dict[str, Any]:
    return fields.to_fields_v1()


# --- merge rules ------------------------------------------------------------------------------------------


class _Node:
    """The merge rules of one position in an object (what smd resolves from a TypeRef)."""

    def field(self, name: str) -> tuple[_Node, bool]:
        """The rules for map key `name`, and whether it is a declared (struct) field."""
        return _DEDUCED, False

    def item(self) -> _Node:
        return _DEDUCED

    def map_atomic(self) -> bool:
        return False

    def list_type(self) -> str:
        return "atomic"

    def list_keys(self) -> tuple[str, ...]:
        return ()

    def key_default(self, name: str) -> Any:
        return MISSING

    def zero(self, name: str) -> Any:
        """What Go's zero value puts at `name` when this struct exists but the field is unset."""
        return MISSING

    def keeps_null(self) -> bool:
        return True


class _Deduced(_Node):
    """`__untyped_deduced_`: schemaless or x-kubernetes-preserve-unknown-fields data."""


_DEDUCED: Final = _Deduced()

_CONTAINER_LISTS: Final = frozenset({"containers", "initContainers", "ephemeralContainers"})
_STRING_MAPS: Final = frozenset({"nodeSelector", "limits", "requests", "capacity", "allocatable", "hard", "used",
                                 "matchLabels"})
_ATOMIC_STRUCTS: Final = frozenset({"podSelector", "namespaceSelector", "labelSelector", "roleRef", "secretKeyRef",
                                    "configMapKeyRef", "fieldRef", "resourceFieldRef"})
_VALUE_STRUCTS: Final = frozenset({"spec", "status", "template", "metadata", "strategy", "updateStrategy",
                                   "resources", "jobTemplate"})
_TCP: Final = {"protocol": "TCP"}


class _Builtin(_Node):
    """Merge rules for built-in kinds, from the field names on the way down (see the module docstring)."""

    def __init__(self, kind: str, names: tuple[str, ...], is_item: bool = False) -> None:
        self.kind, self.names, self.is_item = kind, names, is_item

    def _last(self, offset: int = 1) -> str:
        return self.names[-offset] if len(self.names) >= offset else ""

    def _string_map(self) -> bool:
        if self.is_item or not self.names:
            return False
        last, names = self._last(), self.names
        if last in ("labels", "annotations") and self._last(2) == "metadata":
            return True
        if names in (("data",), ("binaryData",), ("stringData",)) and self.kind in ("ConfigMap", "Secret"):
            return True
        if names == ("spec", "selector") and self.kind in ("Service", "ReplicationController"):
            return True
        if names == ("parameters",) and self.kind == "StorageClass":
            return True
        return last in _STRING_MAPS

    def field(self, name: str) -> tuple[_Node, bool]:
        return _Builtin(self.kind, (*self.names, name)), not self._string_map()

    def item(self) -> _Node:
        return _Builtin(self.kind, self.names, is_item=True)

    def map_atomic(self) -> bool:
        if self.is_item:
            return self._last() == "imagePullSecrets"  # LocalObjectReference is +structType=atomic
        last = self._last()
        if last == "selector":
            return not self._string_map()  # metav1.LabelSelector is +structType=atomic
        return last in _ATOMIC_STRUCTS

    def _list_rule(self) -> tuple[str, tuple[str, ...], Mapping[str, Any]]:
        if self.is_item:
            return "atomic", (), {}
        last, parent, names = self._last(), self._last(2), self.names
        if last in _CONTAINER_LISTS:
            return "map", ("name",), {}
        if last == "ports":
            if parent in _CONTAINER_LISTS:
                return "map", ("containerPort", "protocol"), _TCP
            if self.kind == "Service" and names == ("spec", "ports"):
                return "map", ("port", "protocol"), _TCP
            return "atomic", (), {}
        if parent in _CONTAINER_LISTS:
            by_container = {"env": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
                            "resizePolicy": "resourceName"}
            if last in by_container:
                return "map", (by_container[last],), {}
        if parent == "metadata":
            if last == "ownerReferences":
                return "map", ("uid",), {}
            if last == "finalizers":
                return "set", (), {}
        if parent == "status":
            if last == "conditions":
                return "map", ("type",), {}
            if last in ("podIPs", "hostIPs"):
                return "map", ("ip",), {}
            if last == "addresses" and self.kind == "Node":
                return "map", ("type",), {}
        if parent == "resources" and last == "claims":
            return "map", ("name",), {}
        by_name: dict[str, tuple[str, ...]] = {
            "imagePullSecrets": ("name",), "schedulingGates": ("name",), "resourceClaims": ("name",),
            "hostAliases": ("ip",), "readinessGates": ("conditionType",),
            "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
        }
        if last in by_name:
            return "map", by_name[last], {}
        if last == "volumes" and parent == "spec":
            return "map", ("name",), {}
        return "atomic", (), {}

    def list_type(self) -> str:
        return self._list_rule()[0]

    def list_keys(self) -> tuple[str, ...]:
        return self._list_rule()[1]

    def key_default(self, name: str) -> Any:
        return self._list_rule()[2].get(name, MISSING)

    def zero(self, name: str) -> Any:
        if self._string_map():
            return MISSING
        if name in _VALUE_STRUCTS:
            return {}
        if name == "containers" and self._last() == "spec":
            return None  # `containers` has no omitempty: a nil slice is written as null
        return MISSING

    def keeps_null(self) -> bool:
        return False  # a Go struct has no nulls


class _OpenApi(_Node):
    """Merge rules from a CRD's structural OpenAPI v3 schema."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema

    def field(self, name: str) -> tuple[_Node, bool]:
        properties = self.schema.get("properties") or {}
        if isinstance(properties.get(name), Mapping):
            return _OpenApi(properties[name]), True
        if self.schema.get("x-kubernetes-embedded-resource"):
            if name == "metadata":
                return _Builtin("", ("metadata",)), True
            if name in ("apiVersion", "kind"):
                return _OpenApi({"type": "string"}), True
        additional = self.schema.get("additionalProperties")
        if isinstance(additional, Mapping):
            return _OpenApi(additional), False
        return _DEDUCED, False

    def item(self) -> _Node:
        items = self.schema.get("items")
        return _OpenApi(items) if isinstance(items, Mapping) else _DEDUCED

    def map_atomic(self) -> bool:
        return self.schema.get("x-kubernetes-map-type") == "atomic"

    def list_type(self) -> str:
        list_type = self.schema.get("x-kubernetes-list-type") or "atomic"
        return list_type if list_type in ("atomic", "set", "map") else "atomic"

    def list_keys(self) -> tuple[str, ...]:
        return tuple(self.schema.get("x-kubernetes-list-map-keys") or ())

    def key_default(self, name: str) -> Any:
        items = self.schema.get("items")
        if isinstance(items, Mapping):
            prop = (items.get("properties") or {}).get(name)
            if isinstance(prop, Mapping) and "default" in prop:
                return prop["default"]
        return MISSING

    def keeps_null(self) -> bool:
        return bool(self.schema.get("nullable"))


class _CrdRoot(_OpenApi):
    """A custom resource: its schema, with ObjectMeta's rules for `metadata`."""

    def __init__(self, schema: Mapping[str, Any], kind: str) -> None:
        super().__init__(schema)
        self.kind = kind

    def field(self, name: str) -> tuple[_Node, bool]:
        if name == "metadata":
            return _Builtin(self.kind, ("metadata",)), True
        if name in ("apiVersion", "kind"):
            return _OpenApi({"type": "string"}), True
        return super().field(name)

    def map_atomic(self) -> bool:
        return False


def _root(obj: Mapping[str, Any], schema: Mapping[str, Any] | None) -> _Node:
    kind = str(obj.get("kind") or "")
    if schema is None:
        return _Builtin(kind, ())
    if isinstance(schema.get("openAPIV3Schema"), Mapping):
        schema = schema["openAPIV3Schema"]
    return _CrdRoot(schema, kind)


# --- typed walks: ToFieldSet, Merge, Compare, RemoveItems ---------------------------------------------------


def _item_element(node: _Node, item: Any, path: Path, index: int) -> PathElement:
    """listItemToPathElement, for an associative (set or map) list."""
    if node.list_type() == "map":
        keys = node.list_keys()
        if item is None:
            raise _TypedError(path, f"element {index}: associative list with keys may not have a null element")
        if not isinstance(item, Mapping):
            raise _TypedError(path, f"element {index}: associative list with keys may not have non-map elements")
        fields: dict[str, Any] = {}
        for key in keys:
            if key in item:
                fields[key] = item[key]
            else:
                default = node.key_default(key)
                if default is not MISSING and default is not None:
                    fields[key] = default
        if keys and not fields:
            quoted = "[" + " ".join(json.dumps(key) for key in keys) + "]"
            raise _TypedError(path, f"element {index}: associative list with keys has an element that omits all key "
                                    f"fields {quoted} (and doesn't have default values for any key fields)")
        return PathElement.key(fields)
    if isinstance(item, Mapping):
        raise _TypedError(path, f"element {index}: associative list without keys has an element that's a map type")
    if isinstance(item, list):
        raise _TypedError(path, f"element {index}: not supported: associative list with lists as elements")
    if item is None:
        raise _TypedError(path, f"element {index}: associative list without keys has an element that's an explicit "
                                f"null")
    return PathElement.value(item)


def _to_field_set(value: Any, node: _Node, path: Path, out: FieldSet, allow_duplicates: bool) -> None:
    if isinstance(value, Mapping):
        if node.map_atomic():
            out.insert(path)
            return
        for key, child in value.items():
            child_node, declared = node.field(key)
            child_path = (*path, PathElement.field(key))
            _to_field_set(child, child_node, child_path, out, allow_duplicates)
            if child is None or (isinstance(child, Mapping) and not child) or not declared:
                out.insert(child_path)
    elif isinstance(value, list):
        if node.list_type() == "atomic":
            out.insert(path)
            return
        elements = [_item_element(node, item, path, index) for index, item in enumerate(value)]
        seen: set[PathElement] = set()
        duplicates: set[PathElement] = set()
        for pe in elements:
            if pe in seen:
                if not allow_duplicates:
                    raise _TypedError(path, f"duplicate entries for key {pe}")
                if pe not in duplicates:
                    out.insert((*path, pe))
                    duplicates.add(pe)
            seen.add(pe)
        for pe, item in zip(elements, value, strict=True):
            if pe in duplicates:
                continue
            _to_field_set(item, node.item(), (*path, pe), out, allow_duplicates)
            out.insert((*path, pe))
    else:
        out.insert(path)


def _typed_fields(obj: Mapping[str, Any], root: _Node, allow_duplicates: bool) -> FieldSet:
    out = FieldSet()
    _to_field_set(obj, root, (), out, allow_duplicates)
    return out


def fields_of(obj: Mapping[str, Any], schema: Mapping[str, Any] | None = None) -> FieldSet:
    """typed.ToFieldSet: every field `obj` sets, as an applier of `obj` would own them (metadata not stripped)."""
    try:
        return _typed_fields(obj, _root(obj, schema), allow_duplicates=True)
    except _TypedError as error:
        raise ValueError(str(error)) from error


def _merge(lhs: Any, rhs: Any, node: _Node, path: Path) -> Any:
    """mergingWalker with ruleKeepRHS: the applied value wins, granular maps and lists merge item by item."""
    if rhs is MISSING:
        return copy.deepcopy(lhs)
    if lhs is MISSING:
        return copy.deepcopy(rhs)
    if rhs is None:
        # A null over a granular map or list merges as nothing (the walker sees an empty rhs).
        if isinstance(lhs, Mapping) and lhs and not node.map_atomic():
            return copy.deepcopy(lhs)
        if isinstance(lhs, list) and lhs and node.list_type() != "atomic":
            return copy.deepcopy(lhs)
        return None
    if isinstance(rhs, Mapping) and isinstance(lhs, Mapping | None):
        left: Mapping[str, Any] = lhs or {}
        if node.map_atomic() or (not left and not rhs):
            return copy.deepcopy(rhs)
        out: dict[str, Any] = {}
        for key in [*left, *(key for key in rhs if key not in left)]:
            merged = _merge(left.get(key, MISSING), rhs.get(key, MISSING), node.field(key)[0],
                            (*path, PathElement.field(key)))
            if merged is not MISSING:
                out[key] = merged
        return out
    if isinstance(rhs, list) and isinstance(lhs, list | None):
        left_items: list[Any] = lhs or []
        if node.list_type() == "atomic" or (not left_items and not rhs):
            return copy.deepcopy(rhs)
        return _merge_list(left_items, rhs, node, path)
    return copy.deepcopy(rhs)


def _merge_list(lhs: list[Any], rhs: list[Any], node: _Node, path: Path) -> list[Any]:
    """visitListItems: applied order for shared items, live-only items kept where they were."""
    rhs_pes = [_item_element(node, item, path, index) for index, item in enumerate(rhs)]
    observed_rhs = dict(zip(rhs_pes, rhs, strict=True))
    lhs_pes: list[PathElement] = []
    observed_lhs: dict[PathElement, Any] = {}
    for index, item in enumerate(lhs):
        pe = _item_element(node, item, path, index)
        observed_lhs[pe] = None if pe in observed_lhs else item  # duplicated live items merge as null
        lhs_pes.append(pe)
    item_node = node.item()

    def merged(pe: PathElement, left: Any, right: Any) -> Any:
        return _merge(left, right, item_node, (*path, pe))

    shared = [pe for pe in rhs_pes if pe in observed_lhs]
    next_shared = shared.pop(0) if shared else None
    done: set[PathElement] = set()
    out: list[Any] = []
    left_index = right_index = 0
    while left_index < len(lhs_pes) or right_index < len(rhs_pes):
        if left_index < len(lhs_pes) and right_index < len(rhs_pes):
            pe = lhs_pes[left_index]
            if pe == rhs_pes[right_index]:
                done.add(pe)
                out.append(merged(pe, observed_lhs[pe], observed_rhs[pe]))
                left_index += 1
                right_index += 1
                next_shared = shared.pop(0) if shared else None
                continue
            if pe in observed_rhs and next_shared is not None and next_shared != pe:
                left_index += 1
                continue
        if left_index < len(lhs_pes):
            pe = lhs_pes[left_index]
            if pe not in observed_rhs:
                out.append(merged(pe, lhs[left_index], MISSING))
                left_index += 1
                continue
            if pe in done:
                left_index += 1
        if right_index < len(rhs_pes):
            pe = rhs_pes[right_index]
            done.add(pe)
            out.append(merged(pe, observed_lhs.get(pe, MISSING), observed_rhs[pe]))
            right_index += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop(0) if shared else None
    return out


@dataclass
class _Comparison:
    added: FieldSet
    modified: FieldSet
    removed: FieldSet

    def exclude(self, ignored: FieldSet | None) -> _Comparison:
        if ignored is None or ignored.empty():
            return self
        return _Comparison(self.added.recursive_difference(ignored), self.modified.recursive_difference(ignored),
                           self.removed.recursive_difference(ignored))


def _shape(value: Any) -> str:
    if value is MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "map"
    return "list" if isinstance(value, list) else "scalar"


def _compare(lhs: Any, rhs: Any, node: _Node, path: Path, out: _Comparison) -> None:
    """compareWalker: which fields `rhs` added, modified and removed relative to `lhs`."""

    def leaf() -> None:
        if lhs is MISSING:
            out.added.insert(path)
        elif rhs is MISSING:
            out.removed.insert(path)
        elif not _equal(lhs, rhs):
            out.modified.insert(path)

    # A null facing a map or list is that map or list, empty (the walker dereferences it to nil).
    shapes = {_shape(lhs), _shape(rhs)} - {"missing", "null"}
    if shapes == {"map"}:
        left: Mapping[str, Any] = lhs if isinstance(lhs, Mapping) else {}
        right: Mapping[str, Any] = rhs if isinstance(rhs, Mapping) else {}
        if node.map_atomic() or (not left and not right):
            leaf()
            return
        for key in [*left, *(key for key in right if key not in left)]:
            left_child, right_child = left.get(key, MISSING), right.get(key, MISSING)
            if left_child is MISSING and isinstance(lhs, Mapping):
                left_child = _zero_for(node, key, right_child)
            if right_child is MISSING and isinstance(rhs, Mapping):
                right_child = _zero_for(node, key, left_child)
            if left_child is MISSING and right_child is MISSING:
                continue
            _compare(left_child, right_child, node.field(key)[0], (*path, PathElement.field(key)), out)
    elif shapes == {"list"}:
        left_items: list[Any] = lhs if isinstance(lhs, list) else []
        right_items: list[Any] = rhs if isinstance(rhs, list) else []
        if node.list_type() == "atomic" or (not left_items and not right_items):
            leaf()
            return
        _compare_list(left_items, right_items, node, path, out)
    else:
        leaf()
        return
    if path and lhs is MISSING:
        out.added.insert(path)
    elif path and rhs is MISSING:
        out.removed.insert(path)


def _zero_for(node: _Node, key: str, other: Any) -> Any:
    zero = node.zero(key)
    if zero is MISSING or other is MISSING or type(zero) is type(other) or (zero is None and isinstance(other, list)):
        return zero
    return MISSING


def _compare_list(lhs: list[Any], rhs: list[Any], node: _Node, path: Path, out: _Comparison) -> None:
    left: dict[PathElement, list[Any]] = {}
    right: dict[PathElement, list[Any]] = {}
    for index, item in enumerate(lhs):
        left.setdefault(_item_element(node, item, path, index), []).append(item)
    for index, item in enumerate(rhs):
        right.setdefault(_item_element(node, item, path, index), []).append(item)
    item_node = node.item()
    for pe in [*left, *(pe for pe in right if pe not in left)]:
        left_items, right_items = left.get(pe, []), right.get(pe, [])
        item_path = (*path, pe)
        if len(left_items) <= 1 and len(right_items) <= 1:
            _compare(left_items[0] if left_items else MISSING, right_items[0] if right_items else MISSING,
                     item_node, item_path, out)
        elif len(left_items) >= 2 and len(right_items) >= 2:
            if not _equal(left_items, right_items):
                out.modified.insert(item_path)
        elif len(left_items) >= 2:
            if right_items:
                _compare(MISSING, right_items[0], item_node, item_path, out)
            out.removed.insert(item_path)
        else:
            if left_items:
                _compare(left_items[0], MISSING, item_node, item_path, out)
            out.added.insert(item_path)


def _comparison(live: Mapping[str, Any], new: Mapping[str, Any], root: _Node) -> _Comparison:
    out = _Comparison(FieldSet(), FieldSet(), FieldSet())
    _compare(live, new, root, (), out)
    return out


def _remove_items(value: Any, remove: FieldSet, node: _Node, path: Path) -> Any:
    """removingWalker: drop the members of `remove` (with everything below them); emptied containers turn null."""
    if isinstance(value, Mapping):
        if not value or node.map_atomic():
            return None
        out: dict[str, Any] = {}
        for key, child in value.items():
            pe = PathElement.field(key)
            if pe in remove.members:
                continue
            below = remove.children.get(pe)
            if below is not None and not below.empty():
                child = _remove_items(child, below, node.field(key)[0], (*path, pe))
            out[key] = child
        return out or None
    if isinstance(value, list):
        if not value or node.list_type() == "atomic":
            return None
        items: list[Any] = []
        for index, item in enumerate(value):
            pe = _item_element(node, item, path, index)
            if pe in remove.members:
                continue
            below = remove.children.get(pe)
            if below is not None and not below.empty():
                item = _remove_items(item, below, node.item(), (*path, pe))
                if item is None:
                    item = {}
            items.append(item)
        return items or None
    return value


def _ensure_named(fields: FieldSet, node: _Node) -> FieldSet:
    """Set.EnsureNamedFieldsAreMembers: a struct field with owned children counts as owned itself."""
    out = FieldSet()
    out.members = set(fields.members)
    for pe, child in fields.children.items():
        if pe.kind == "f":
            child_node, declared = node.field(pe.text)
            if declared:
                out.members.add(pe)
        else:
            child_node = node.item()
        out.children[pe] = _ensure_named(child, child_node)
    return out


def _drop_nulls(value: Any, node: _Node) -> Any:
    """Nulls the typed round trip (Go structs, CRD null pruning) would not keep."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, child in value.items():
            child_node = node.field(key)[0]
            if child is None and not child_node.keeps_null():
                continue
            out[key] = _drop_nulls(child, child_node)
        return out
    if isinstance(value, list):
        return [_drop_nulls(item, node.item()) for item in value]
    return value


# --- managedFields entries --------------------------------------------------------------------------------


@dataclass
class _Entry:
    manager: str
    operation: str
    api_version: str
    subresource: str
    time: str | None
    fields: FieldSet

    @property
    def ident(self) -> _Ident:
        """BuildManagerIdentifier: an applier keeps one entry whatever apiVersion it applies with."""
        return self.manager, self.operation, self.api_version if self.operation == "Update" else "", self.subresource

    def identifier(self) -> str:
        """The identifier as JSON, which orders managers when the cap merges old ones."""
        manager, operation, api_version, subresource = self.ident
        parts = {"manager": manager, "operation": operation, "apiVersion": api_version, "subresource": subresource}
        return json.dumps({key: value for key, value in parts.items() if value}, separators=(",", ":"))

    def printed(self) -> str:
        """printManager: `"kubectl"`, `"kube-controller-manager" using apps/v1`, `"x" with subresource "status"`."""
        text = json.dumps(self.manager, ensure_ascii=False)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource, ensure_ascii=False)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text

    def encode(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version}
        if self.time:
            entry["time"] = self.time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = self.fields.to_fields_v1()
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


_Ident = tuple[str, str, str, str]
Managers = dict[_Ident, _Entry]


def _decode_managers(entries: Any) -> Managers:
    """DecodeManagedFields; raises ValueError with the API server's wording."""
    managers: Managers = {}
    if entries is None:
        return managers
    if not isinstance(entries, list):
        raise ValueError("managedFields must be a list")
    for index, raw in enumerate(entries):
        if not isinstance(raw, Mapping):
            raise ValueError(f"managed fields entry {index} is not an object")
        operation = raw.get("operation")
        if operation not in ("Apply", "Update"):
            raise ValueError("operation must be `Apply` or `Update`")
        api_version = raw.get("apiVersion") or ""
        if not api_version:
            raise ValueError("apiVersion must not be empty")
        fields_type = raw.get("fieldsType") or ""
        if not fields_type:
            raise ValueError(f"missing fieldsType in managed fields entry {index}")
        if fields_type != "FieldsV1":
            raise ValueError(f"invalid fieldsType {json.dumps(fields_type)} in managed fields entry {index}")
        try:
            fields = FieldSet.from_fields_v1(raw.get("fieldsV1") or {})
        except (ValueError, TypeError) as error:
            raise ValueError(f"error decoding versioned set from {dict(raw)}: error decoding set: {error}") from error
        entry = _Entry(str(raw.get("manager") or ""), str(operation), str(api_version),
                       str(raw.get("subresource") or ""), raw.get("time") or None, fields)
        managers[entry.ident] = entry
    return managers


def _seconds(time: str | None) -> int:
    if not time:
        return 0
    try:
        return int(datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def _encode_managers(managers: Managers) -> list[dict[str, Any]]:
    """encodeManagedFields, sorted by operation, time, manager, apiVersion, subresource."""
    entries = [entry for entry in managers.values() if not entry.fields.empty()]
    entries.sort(key=lambda e: (e.operation, _seconds(e.time), e.manager, e.api_version, e.subresource))
    return [entry.encode() for entry in entries]


def _strip_set() -> FieldSet:
    """stripMetaManager: fields never recorded in managedFields."""
    meta = ("name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName", "generation",
            "managedFields", "resourceVersion")
    return FieldSet.from_paths([("apiVersion",), ("kind",), ("metadata",), *(("metadata", name) for name in meta)])


_STRIP: Final = _strip_set()


def _cap_update_managers(managers: Managers, limit: int = MAX_UPDATE_MANAGERS) -> None:
    """capManagersManager: fold the oldest Update entries into `ancient-changes` per apiVersion."""
    updaters = [ident for ident, entry in managers.items() if entry.operation == "Update"]
    if len(updaters) <= limit:
        return
    updaters.sort(key=lambda ident: (_seconds(managers[ident].time), managers[ident].identifier()))
    first_of_version: dict[str, _Ident] = {}
    remaining = len(updaters)
    for ident in updaters:
        if remaining <= limit:
            break
        entry = managers[ident]
        bucket = (_ANCIENT_CHANGES, "Update", entry.api_version, "")
        if ident == bucket:  # an existing bucket takes the next ones (Go would fold a later one into itself)
            first_of_version.setdefault(entry.api_version, ident)
            continue
        if entry.api_version in first_of_version:
            if bucket not in managers:
                first = managers.pop(first_of_version[entry.api_version])
                managers[bucket] = _Entry(_ANCIENT_CHANGES, "Update", entry.api_version, "", first.time, first.fields)
            managers[bucket].fields = entry.fields.union(managers[bucket].fields)
            managers[bucket].time = entry.time
            del managers[ident]
            remaining -= 1
        else:
            first_of_version[entry.api_version] = ident


def managed_fields(obj: Mapping[str, Any], manager: str, operation: str = "Apply",
                   subresource: str | None = None) -> FieldSet | None:
    """The fields `manager` owns in `obj` through `operation` (the first entry that matches), if any."""
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if (entry.get("manager") == manager and entry.get("operation") == operation
                and (entry.get("subresource") or "") == (subresource or "")):
            return FieldSet.from_fields_v1(entry.get("fieldsV1") or {})
    return None


# --- errors ------------------------------------------------------------------------------------------------


def validate_field_manager(manager: str | None, *, apply: bool) -> None:
    """ValidatePatchOptions' fieldManager checks: required for apply, at most 128 bytes, printable."""
    errors: list[FieldError] = []
    text = manager or ""
    if apply and not text:
        errors.append(FieldError("fieldManager", REQUIRED, "is required for apply patch"))
    if len(text.encode()) > FIELD_MANAGER_MAX_LENGTH:
        errors.append(FieldError("fieldManager", TOO_LONG, f"must have at most {FIELD_MANAGER_MAX_LENGTH} bytes", text))
    position = 0
    for char in text:
        if not char.isprintable():
            errors.append(FieldError("fieldManager", INVALID,
                                     f"invalid character U+{ord(char):04X} (at position {position})", text))
        position += len(char.encode())
    if errors:
        rendered = [error.render() for error in errors]
        message = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
        raise ApiError(422, "Invalid", f'PatchOptions.meta.k8s.io "" is invalid: {message}',
                       {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [e.cause() for e in errors]})


def manager_from_user_agent(field_manager: str | None, user_agent: str | None) -> str:
    """managerOrUserAgent: the fieldManager, else the User-Agent up to its first `/` (printable, 128 bytes)."""
    if field_manager:
        return field_manager
    prefix, out = (user_agent or "").split("/")[0], ""
    for char in prefix:
        if not char.isprintable():
            continue
        if len((out + char).encode()) > FIELD_MANAGER_MAX_LENGTH:
            break
        out += char
    return out


def _conflict_error(conflicts: Sequence[tuple[_Entry, Path]]) -> ApiError:
    """NewConflictError: 409 with one FieldManagerConflict cause per field, grouped by manager when several."""
    ordered = sorted(conflicts, key=lambda conflict: conflict[0].identifier())
    causes = [{"type": "FieldManagerConflict", "message": f"conflict with {entry.printed()}",
               "field": path_string(path)} for entry, path in ordered]
    if len(ordered) == 1:
        entry, path = ordered[0]
        message = f"Apply failed with 1 conflict: conflict with {entry.printed()}: {path_string(path)}"
    else:
        lines: list[str] = []
        for entry, path in ordered:
            heading = f"conflicts with {entry.printed()}:"
            if heading not in lines:
                lines.append(heading)
            lines.append(f"- {path_string(path)}")
        message = f"Apply failed with {len(ordered)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, {"causes": causes})


def _bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def _gvk(api_version: str, kind: str) -> str:
    """schema.GroupVersionKind.String(): `apps/v1, Kind=Deployment`, `/v1, Kind=ConfigMap`."""
    group, _, version = api_version.rpartition("/")
    return f"{group}/{version}, Kind={kind}"


def _object_gvknn(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    gvk = _gvk(str(obj.get("apiVersion") or ""), str(obj.get("kind") or ""))
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}; {gvk}"


def _without_managed_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(obj))
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return out


def _with_managed_fields(obj: dict[str, Any], managers: Managers) -> dict[str, Any]:
    encoded = _encode_managers(managers)
    if encoded:
        obj.setdefault("metadata", {})["managedFields"] = encoded
    elif isinstance(obj.get("metadata"), dict):
        obj["metadata"].pop("managedFields", None)
    return obj


# --- apply and update -----------------------------------------------------------------------------------------


def apply(live: Mapping[str, Any] | None, applied: Mapping[str, Any], *, manager: str, force: bool = False,
          schema: Mapping[str, Any] | None = None, now: str, subresource: str | None = None,
          ignored: FieldSet | None = None, name: str | None = None, resource: str | None = None) -> dict[str, Any]:
    """Server-side apply of `applied` by `manager` onto `live` (`None` to create); returns the new object.

    `now` is the RFC 3339 time for the manager's entry. `subresource` is `"status"` for an apply to
    /status. `ignored` are the strategy's reset fields (never owned, never conflicting). `name` is the
    name in the URL (checked like the API server's checkName); `resource` (`deployments.apps`) words the
    optimistic-lock conflict when `metadata.resourceVersion` in `applied` is stale. Raises `ApiError`:
    422 without a fieldManager, 400 for a wrong type, managedFields in the body or a name mismatch,
    409 for ownership conflicts (unless `force`) and for a stale resourceVersion, 500 (as the API
    server does) for a body the schema cannot type, such as duplicate list-map keys.
    """
    validate_field_manager(manager, apply=True)
    if not isinstance(applied, Mapping):
        raise _bad_request("error decoding YAML: the applied configuration is not an object")
    api_version, kind = str(applied.get("apiVersion") or ""), str(applied.get("kind") or "")
    expected = (str(live.get("apiVersion") or ""), str(live.get("kind") or "")) if live else None
    if not api_version or not kind or (expected is not None and expected != (api_version, kind)):
        raise _bad_request(f"invalid object type: {_gvk(api_version, kind)}")
    applied_meta = applied.get("metadata")
    if applied_meta is not None and not isinstance(applied_meta, Mapping):
        raise _bad_request("error decoding YAML: metadata must be an object")
    if applied_meta and applied_meta.get("managedFields") is not None:
        raise _bad_request("metadata.managedFields must be nil")

    config = copy.deepcopy(dict(applied))
    base = _without_managed_fields(live) if live else {}
    root = _root(applied, schema)
    try:
        managers = _decode_managers(((live or {}).get("metadata") or {}).get("managedFields"))
    except ValueError as error:
        raise ApiError(500, "InternalError", f"Internal error occurred: failed to decode managed fields: {error}",
                       {"causes": [{"message": f"failed to decode managed fields: {error}"}]}) from error
    try:
        config_set = _typed_fields(config, root, allow_duplicates=False)
    except _TypedError as error:
        raise ApiError(500, "", f"failed to create typed patch object ({_object_gvknn(config)}): {error}") from error
    try:
        _typed_fields(base, root, allow_duplicates=True)
    except _TypedError as error:
        raise ApiError(500, "", f"failed to create typed live object ({_object_gvknn(base)}): {error}") from error
    if ignored is not None:
        config_set = config_set.recursive_difference(ignored)

    me = _Entry(manager, "Apply", api_version, subresource or "", None, config_set)
    previous = managers.get(me.ident)
    if previous is not None:
        me.time = previous.time
    managers[me.ident] = me

    merged = _merge(base, config, root, ())
    if previous is not None and not previous.fields.empty():
        owned = FieldSet()
        for entry in managers.values():
            owned = owned.union(_ensure_named(entry.fields, root))
        prune = _ensure_named(previous.fields, root).difference(owned)
        if not prune.empty():
            merged = _remove_items(merged, prune, root, ()) or {}

    if live:
        _reassign(base, merged, managers, me.ident, force, root, ignored)
    else:
        managers = {me.ident: me}
    me.fields = me.fields.difference(_STRIP)
    if me.fields.empty():
        managers.pop(me.ident, None)

    url_name = name if name is not None else str(((live or applied).get("metadata") or {}).get("name") or "")
    merged_name = str((merged.get("metadata") or {}).get("name") or "")
    if not merged_name:
        raise _bad_request(f"the name of the object ({url_name} based on URL) was undeterminable: "
                           "name must be provided")
    if merged_name != url_name:
        raise _bad_request(f"the name of the object ({merged_name}) does not match the name on the URL ({url_name})")
    if live:
        _check_resource_version(live, merged, resource)

    changed = not _equal(merged, base)
    if changed:
        me.time = now
        result = _drop_nulls(merged, root)
    else:
        result = base
    if manager == "kubectl":
        _sync_last_applied(result, config)
    return _with_managed_fields(result, managers)


def _reassign(live: Mapping[str, Any], new: Mapping[str, Any], managers: Managers, workflow: _Ident | None,
              force: bool, root: _Node, ignored: FieldSet | None) -> _Comparison:
    """Updater.update: conflicts with (or, forced, takeover from) every other manager; removals leave them all."""
    comparison = _comparison(live, new, root).exclude(ignored)
    changed = comparison.modified.union(comparison.added)
    conflicts: dict[_Ident, FieldSet] = {}
    for ident, entry in managers.items():
        if ident == workflow:
            continue
        overlap = entry.fields.intersection(changed)
        if not overlap.empty():
            conflicts[ident] = overlap
    if conflicts and not force:
        raise _conflict_error([(managers[ident], path) for ident, fields in conflicts.items()
                               for path in fields.paths()])
    for ident, entry in managers.items():
        if ident == workflow:
            continue
        if ident in conflicts:
            entry.fields = entry.fields.difference(conflicts[ident])
        if not comparison.removed.empty():
            entry.fields = entry.fields.difference(comparison.removed)
    for ident in [ident for ident, entry in managers.items() if entry.fields.empty()]:
        del managers[ident]
    return comparison


def _check_resource_version(live: Mapping[str, Any], merged: Mapping[str, Any], resource: str | None) -> None:
    live_meta, merged_meta = live.get("metadata") or {}, merged.get("metadata") or {}
    live_rv, new_rv = str(live_meta.get("resourceVersion") or ""), str(merged_meta.get("resourceVersion") or "")
    if not new_rv or new_rv == live_rv:
        return
    group = str(live.get("apiVersion") or "").rpartition("/")[0]
    qualified = resource or (str(live.get("kind") or "").lower() + "s" + (f".{group}" if group else ""))
    plural = qualified.split(".", 1)[0]
    name = str(live_meta.get("name") or "")
    raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {qualified} "{name}": {_OPTIMISTIC_LOCK}',
                   {"name": name, "group": group, "kind": plural})


def _sync_last_applied(result: dict[str, Any], config: Mapping[str, Any]) -> None:
    """lastAppliedUpdater: `kubectl` applies keep an existing client-side-apply annotation current."""
    annotations = (result.get("metadata") or {}).get("annotations")
    if not isinstance(annotations, dict) or not annotations.get(_LAST_APPLIED):
        return
    snapshot = copy.deepcopy(dict(config))
    snapshot_meta = snapshot.get("metadata")
    if isinstance(snapshot_meta, dict) and isinstance(snapshot_meta.get("annotations"), dict):
        snapshot_meta["annotations"].pop(_LAST_APPLIED, None)
        if not snapshot_meta["annotations"]:
            del snapshot_meta["annotations"]
    annotations[_LAST_APPLIED] = go_json(snapshot) + "\n"


def _is_reset(entries: Any) -> bool:
    """isResetManagedFields: `[]` or `[{}]` in a write clears managedFields."""
    return isinstance(entries, list) and (not entries or (len(entries) == 1 and entries[0] == {}))


def record_update(old: Mapping[str, Any] | None, new: Mapping[str, Any], *, manager: str,
                  subresource: str | None = None, schema: Mapping[str, Any] | None = None, now: str,
                  ignored: FieldSet | None = None) -> dict[str, Any]:
    """managedFields for a non-apply write (create, update, patch) of `new` over `old` (`None` for a create).

    Fields the write added or changed join `manager`'s Update entry (at `new`'s apiVersion) and leave
    every other entry; removed fields leave every entry. managedFields the client sent are kept when
    they decode (`[]` or `[{}]` resets them), except on a subresource. On a failure the old
    managedFields are kept, as UpdateNoErrors does. `manager` comes from manager_from_user_agent().
    """
    old_obj: Mapping[str, Any] = old or {}
    new_entries = (new.get("metadata") or {}).get("managedFields")
    old_entries = (old_obj.get("metadata") or {}).get("managedFields")
    result = _without_managed_fields(new)
    try:
        if subresource:
            managers = _decode_managers(old_entries)
        elif _is_reset(new_entries):
            managers = {}
        else:
            try:
                managers = _decode_managers(new_entries)
            except ValueError:
                managers = {}
            if not managers:
                managers = _decode_managers(old_entries)
    except ValueError:
        managers = {}
    base = _without_managed_fields(old_obj)
    root = _root(new, schema)
    try:
        comparison = _reassign(base, result, managers, None, True, root, ignored)
    except _TypedError:
        if old_entries is not None:
            result.setdefault("metadata", {})["managedFields"] = copy.deepcopy(old_entries)
        return result
    own = comparison.modified.union(comparison.added).difference(_STRIP)
    if ignored is not None:
        own = own.recursive_difference(ignored)
    if not own.empty():
        api_version = str(new.get("apiVersion") or old_obj.get("apiVersion") or "")
        entry = _Entry(manager or "unknown", "Update", api_version, subresource or "", now, own)
        previous = managers.get(entry.ident)
        if previous is not None:
            entry.fields = own.union(previous.fields)
        managers[entry.ident] = entry
        _cap_update_managers(managers)
    return _with_managed_fields(result, managers)

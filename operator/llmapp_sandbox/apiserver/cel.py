"""CEL for `x-kubernetes-validations`, as kube-apiserver v1.32 compiles, costs and evaluates it.

Pure functions, no I/O. `schema.py` drives these from CRD admission and from object validation.

What is emulated, and from where (kubernetes v1.32.13 staging repos, cel-go v0.22.0):

* Parsing uses cel-python's Lark grammar (`celpy.Environment().compile`). The parse tree is then converted
  into a small AST in which macros are expanded exactly as cel-go's `parser/macro.go` expands them
  (`all`, `exists`, `exists_one`, `map`, `filter` become comprehensions with an `__result__` accumulator,
  `has()` becomes a presence test).
* Type checking follows cel-go's checker closely enough to report what kube-apiserver reports at CRD
  admission: `undeclared reference to 'foo' (in container '')`, `undefined field 'cpux'`,
  `found no matching overload for '_+_' applied to '(int, string)'`, `type 'int' does not support field
  selection`, non-bool rules (`cel expression must evaluate to a bool`), literal regexes that RE2 rejects
  (`invalid matches argument`) and heterogeneous list/map literals. `self`/`oldSelf` are typed from the
  structural schema exactly as `apiserver/pkg/cel/common/schemas.go` (`SchemaDeclType`) does: objects with
  properties are object types (unknown property -> `undefined field`), `additionalProperties` maps are
  `map(string, V)`, `x-kubernetes-int-or-string` is `dyn`, `format: byte|duration|date|date-time` become
  `bytes|duration|timestamp`, property names are escaped (`__dash__`, `__dot__`, `__namespace__`, ...) and
  the root (and every `x-kubernetes-embedded-resource`) gains `apiVersion`, `kind`, `metadata.name` and
  `metadata.generateName` only. Errors are printed as cel-go prints them (`ERROR: <input>:1:5: ...` plus the
  source line and a caret).
* Libraries available to new expressions in 1.32 (compatibility version 1.31): the CEL standard library,
  cel-go's strings extension v2 (charAt, indexOf, lastIndexOf, lowerAscii, upperAscii, replace, split,
  substring, trim, join, format, strings.quote), sets (sets.contains/equivalent/intersects), the
  Kubernetes lists, regex, urls, quantity, IP and CIDR libraries. `matches`, `find` and `findAll` use RE2
  with Go's unanchored MatchString semantics. Not implemented (rejected at compile time with a message that
  says so, so nothing silently passes): optional types (`?.`, `optional.of`, `.orValue()`), the format
  library (`format.dns1123Label()` ...), authorizer functions and two-variable comprehensions (the last is
  not available to new expressions in 1.32 anyway).
* Runtime values follow `apiserver/pkg/cel/common/values.go`: absent or null object fields are
  `no such key: <name>`, list-type `set`/`map` lists compare order-insensitively and `+` merges them,
  `number` fields are always doubles, int-or-string values are int or string, formatted strings are
  converted lazily (a bad value is an error only when it is read).

Cost estimation (the part that rejects CRDs): this is a port of cel-go v0.22 `checker/cost.go` plus the
Kubernetes `library/cost.go` call estimator and the apiextensions `sizeEstimator`, over the AST above:

* every identifier/select costs 1, constants 0, calls 1 plus arguments unless a library estimate applies
  (string traversals cost `0.1 * size`, `matches`/`find` cost `(size+1)*0.1 * len(regex)*0.25`, list
  functions `size * (1 + element string size * 0.1)`, `contains` multiplies both string sizes, equality
  costs `0.1 * min(sizes)`...), comprehensions cost `range + init + result + N * (condition + step)`;
* sizes come from the schema: `maxItems`, `maxProperties`, `4 * maxLength` (bytes), the longest enum, or
  -- when unbounded -- what fits in a 3 MiB request (`(3 MiB - 2) / (min item size + 1)` list items,
  `3 MiB - 2` string bytes). Map keys are sized 0 and scalars from the schema are sized 0 (as upstream);
* the per-rule figure is multiplied by the product of `maxItems`/`maxProperties` of every enclosing list or
  map, or, when one of them is unbounded, by `3 MiB / (min serialized size of the node + 1)`.

The result is compared with StaticEstimatedCostLimit (10,000,000) per rule and StaticEstimatedCRDCostLimit
(100,000,000) per CRD with the real messages. Where this port is approximate (function result sizes of
seldom-used functions, the exact AST paths cel-go records after `?:`), it errs towards the same order of
magnitude; rules that are near a limit should be treated with suspicion in either direction.

At evaluation the emulator also enforces the per-call limit (1,000,000) and, through `schema.py`, the
per-object runtime budget (10,000,000) with a runtime cost that approximates cel-go's actual cost.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime as _dt
import ipaddress
import math
import re
import sys
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final, TypeGuard

import celpy
import lark
import re2
from celpy.celparser import CELParseError
from celpy.evaluation import celbytes, celstr

from llmapp_sandbox.apiserver.gofmt import go_format_float, go_quote


class _Missing:
    """Marker for "no value" (no old object, absent field)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()

# k8s.io/apiserver/pkg/apis/cel/config.go and apiextensions validation.go
PER_CALL_LIMIT: Final = 1_000_000
RUNTIME_CEL_COST_BUDGET: Final = 10_000_000
STATIC_ESTIMATED_COST_LIMIT: Final = 10_000_000
STATIC_ESTIMATED_CRD_COST_LIMIT: Final = 100_000_000
MAX_REQUEST_SIZE_BYTES: Final = 3 * 1024 * 1024
MAX_EVALUATED_MESSAGE_EXPRESSION_SIZE_BYTES: Final = 5 * 1024

_UINT64_MAX: Final = 2**64 - 1
_INT64_MAX: Final = 2**63 - 1
_INT64_MIN: Final = -(2**63)
_MAX_SCALAR_SIZE: Final = _UINT64_MAX  # "unbounded" in cel-go's SizeEstimate

_STRING_TRAVERSAL_COST_FACTOR: Final = 0.1
_REGEX_STRING_LENGTH_COST_FACTOR: Final = 0.25
_LIST_CREATE_BASE_COST: Final = 10
_MAP_CREATE_BASE_COST: Final = 30
_STRUCT_CREATE_BASE_COST: Final = 40

_ACCU: Final = "__result__"

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


class CelCompileError(Exception):
    """A rule or messageExpression the real server refuses at CRD admission.

    `message` is the detail the server prints (e.g. `compilation failed: ERROR: <input>:1:5: ...`),
    `field` names the ValidationRule field the error is reported at (`rule` or `messageExpression`),
    `required` is true when the server reports it as `Required value` rather than `Invalid value`.
    """

    def __init__(self, message: str, *, field: str = "rule", required: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.required = required
        self.compiled: CompiledRule | None = None  # the rule itself, when only its messageExpression failed


class CelEvalError(Exception):
    """Raised inside library functions; becomes a CEL error value."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _CostExceeded(Exception):
    pass


# --------------------------------------------------------------------------------------------------
# RE2 with Go regexp error messages
# --------------------------------------------------------------------------------------------------

_RE2_TO_GO_ERRORS: Final = (
    ("invalid perl operator", "invalid or unsupported Perl syntax"),
    ("missing ]", "missing closing ]"),
    ("missing )", "missing closing )"),
    ("unexpected )", "unexpected )"),
    ("bad repetition operator", "invalid nested repetition operator"),
    ("no argument for repetition operator", "missing argument to repetition operator"),
    ("invalid repetition size", "invalid repeat count"),
    ("invalid escape sequence", "invalid escape sequence"),
    ("trailing \\", "trailing backslash at end of expression"),
    ("invalid character class range", "invalid character class range"),
    ("invalid character class", "invalid character class"),
    ("invalid named capture group", "invalid named capture"),
    ("duplicate capture group name", "duplicate capture group name"),
    ("invalid UTF-8", "invalid UTF-8"),
    ("bad UTF-8", "invalid UTF-8"),
    ("pattern too large", "expression too large"),
    ("excessive depth", "expression nests too deeply"),
)

_regex_cache: dict[str, Any] = {}


class RegexError(Exception):
    """A pattern Go's regexp package rejects; `str()` is Go's error text."""


def compile_regex(pattern: str) -> Any:
    """Compile with RE2 (what Go's regexp accepts); raise RegexError worded like Go."""
    cached = _regex_cache.get(pattern)
    if cached is not None:
        return cached
    try:
        compiled = re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else b""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        code, _, arg = text.partition(": ")
        go_code = code
        for re2_code, go in _RE2_TO_GO_ERRORS:
            if code == re2_code:
                go_code = go
                break
        if code == "trailing \\":
            arg = ""
        raise RegexError(f"error parsing regexp: {go_code}: `{arg}`") from None
    if len(_regex_cache) > 512:
        _regex_cache.clear()
    _regex_cache[pattern] = compiled
    return compiled


def regex_search(pattern: str, text: str) -> bool:
    """Go regexp.MatchString: unanchored search."""
    return compile_regex(pattern).search(text) is not None


def _regex_find_all(pattern: str, text: str, limit: int) -> list[str]:
    """Go Regexp.FindAllString (empty matches right after a match are skipped)."""
    compiled = compile_regex(pattern)
    out: list[str] = []
    prev_end = -1
    for m in compiled.finditer(text):
        if limit >= 0 and len(out) >= limit:
            break
        start, end = m.span()
        if start == end and start == prev_end:
            continue
        out.append(m.group(0))
        prev_end = end
    return out


# --------------------------------------------------------------------------------------------------
# Property name escaping (apiserver/pkg/cel/escaping.go)
# --------------------------------------------------------------------------------------------------

_CEL_RESERVED: Final = frozenset({
    "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if",
    "import", "let", "loop", "package", "namespace", "return", "var", "void", "while",
})
_PARSER_RESERVED: Final = frozenset({
    "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop", "package",
    "namespace", "return", "var", "void", "while", "in",
})
_IDENT_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def escape_property_name(name: str) -> str | None:
    """The CEL field name of a schema property, or None when the property is not accessible."""
    if not name or name[0].isdigit():
        return None
    if name in _CEL_RESERVED:
        return f"__{name}__"
    out: list[str] = []
    i = 0
    while i < len(name):
        ch = name[i]
        if ch == "_" and i + 1 < len(name) and name[i + 1] == "_":
            out.append("__underscores__")
            i += 2
            continue
        if ch == ".":
            out.append("__dot__")
        elif ch == "-":
            out.append("__dash__")
        elif ch == "/":
            out.append("__slash__")
        elif ch in _IDENT_CHARS:
            out.append(ch)
        else:
            return None
        i += 1
    return "".join(out)


# --------------------------------------------------------------------------------------------------
# Types (cel-go types plus the DeclType size information of apiserver/pkg/cel/types.go)
# --------------------------------------------------------------------------------------------------

class CelType:
    """A CEL type; types derived from a schema also carry DeclType sizing (MaxElements, MinSerializedSize)."""

    __slots__ = ("kind", "elem", "key", "fields", "prop_names", "max_elements", "min_size", "name",
                 "schema", "list_type", "map_keys")

    def __init__(self, kind: str, *, elem: CelType | None = None, key: CelType | None = None,
                 fields: dict[str, CelType] | None = None, prop_names: dict[str, str] | None = None,
                 max_elements: int = 0, min_size: int = 1, name: str = "",
                 schema: dict[str, Any] | None = None) -> None:
        self.kind = kind
        self.elem = elem
        self.key = key
        self.fields = fields
        self.prop_names = prop_names
        self.max_elements = max_elements
        self.min_size = min_size
        self.name = name
        self.schema = schema
        self.list_type = "atomic"
        self.map_keys: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return format_type(self)


DYN: Final = CelType("dyn")
NULL: Final = CelType("null", min_size=4)
BOOL: Final = CelType("bool", min_size=4)
INT: Final = CelType("int")
UINT: Final = CelType("uint")
DOUBLE: Final = CelType("double")
STRING: Final = CelType("string", min_size=2)
BYTES: Final = CelType("bytes", min_size=2)
DURATION: Final = CelType("duration", min_size=3)
TIMESTAMP: Final = CelType("timestamp", min_size=12)
URL_T: Final = CelType("url")
QUANTITY_T: Final = CelType("quantity", min_size=8)
IP_T: Final = CelType("ip")
CIDR_T: Final = CelType("cidr")
ERROR_T: Final = CelType("error")
_PARAM_A: Final = CelType("param", name="A")
_PARAM_B: Final = CelType("param", name="B")


def _list_of(elem: CelType, max_elements: int = 0) -> CelType:
    return CelType("list", elem=elem, max_elements=max_elements, min_size=2)


def _map_of(key: CelType, elem: CelType, max_elements: int = 0) -> CelType:
    return CelType("map", key=key, elem=elem, max_elements=max_elements, min_size=2)


def _type_of(t: CelType) -> CelType:
    return CelType("type", elem=t)


_TYPE_NAMES: Final = {
    "dyn": "dyn", "null": "null_type", "bool": "bool", "int": "int", "uint": "uint", "double": "double",
    "string": "string", "bytes": "bytes", "duration": "google.protobuf.Duration",
    "timestamp": "google.protobuf.Timestamp", "url": "kubernetes.URL", "quantity": "kubernetes.Quantity",
    "ip": "net.IP", "cidr": "net.CIDR", "error": "*error*",
}


def format_type(t: CelType) -> str:
    """cel-go FormatCELType."""
    if t.kind == "list":
        return f"list({format_type(t.elem or DYN)})"
    if t.kind == "map":
        return f"map({format_type(t.key or DYN)}, {format_type(t.elem or DYN)})"
    if t.kind == "object":
        return t.name or "object"
    if t.kind == "type":
        return f"type({format_type(t.elem)})" if t.elem is not None else "type"
    if t.kind == "param":
        return t.name
    return _TYPE_NAMES.get(t.kind, t.kind)


def _is_scalar(t: CelType) -> bool:
    return t.kind in ("bool", "double", "duration", "int", "timestamp", "uint")


# --------------------------------------------------------------------------------------------------
# Schema -> DeclType (apiserver/pkg/cel/common/schemas.go SchemaDeclType)
# --------------------------------------------------------------------------------------------------

_MAX_DURATION_SIZE_JSON: Final = 32
_MAX_DATETIME_SIZE_JSON: Final = 32
_MIN_DURATION_SIZE_JSON: Final = 3
_JSON_DATE_SIZE: Final = 12
_MIN_DATETIME_SIZE_JSON: Final = 21


def with_type_and_object_meta(schema: dict[str, Any]) -> dict[str, Any]:
    """WithTypeAndObjectMeta: the root always exposes apiVersion, kind, metadata.name/generateName."""
    props = dict(schema.get("properties") or {})

    def typ(s: Any) -> Any:
        return s.get("type") if isinstance(s, dict) else None
    meta = props.get("metadata")
    meta_props = meta.get("properties") if isinstance(meta, dict) else None
    if (schema.get("properties") is not None and typ(props.get("kind")) == "string"
            and typ(props.get("apiVersion")) == "string" and typ(meta) == "object" and isinstance(meta_props, dict)
            and typ(meta_props.get("name")) == "string" and typ(meta_props.get("generateName")) == "string"):
        return schema
    props["kind"] = {"type": "string"}
    props["apiVersion"] = {"type": "string"}
    props["metadata"] = {"type": "object", "properties": {"name": {"type": "string"},
                                                           "generateName": {"type": "string"}}}
    out = dict(schema)
    out["properties"] = props
    return out


def _max_string_length_per_request(schema: dict[str, Any]) -> int:
    if schema.get("x-kubernetes-int-or-string"):
        return MAX_REQUEST_SIZE_BYTES - 2
    fmt = schema.get("format")
    if fmt == "duration":
        return _MAX_DURATION_SIZE_JSON
    if fmt == "date":
        return _JSON_DATE_SIZE
    if fmt == "date-time":
        return _MAX_DATETIME_SIZE_JSON
    return MAX_REQUEST_SIZE_BYTES - 2


def _zero_if_negative(v: Any) -> int:
    try:
        n = int(v)
    except (TypeError, ValueError):
        return 0
    return max(n, 0)


def schema_decl_type(schema: dict[str, Any] | None, is_resource_root: bool) -> CelType | None:
    """The CEL type (with sizes) of values of `schema`, or None when CEL cannot see them."""
    if not isinstance(schema, dict):
        return None
    if schema.get("x-kubernetes-int-or-string"):
        t = CelType("dyn", min_size=1, max_elements=MAX_REQUEST_SIZE_BYTES - 2, schema=schema)
        return t
    if is_resource_root:
        schema = with_type_and_object_meta(schema)
    typ = schema.get("type")
    if typ == "array":
        items = schema.get("items")
        if not isinstance(items, dict):
            return None
        items_t = schema_decl_type(items, bool(items.get("x-kubernetes-embedded-resource")))
        if items_t is None:
            return None
        if schema.get("maxItems") is not None:
            max_items = _zero_if_negative(schema["maxItems"])
        else:
            max_items = (MAX_REQUEST_SIZE_BYTES - 2) // (items_t.min_size + 1)
        t = _list_of(items_t, max_items)
        t.schema = schema
        t.list_type = schema.get("x-kubernetes-list-type") or "atomic"
        t.map_keys = tuple(schema.get("x-kubernetes-list-map-keys") or ())
        return t
    if typ == "object":
        ap = schema.get("additionalProperties")
        if isinstance(ap, dict):
            props_t = schema_decl_type(ap, bool(ap.get("x-kubernetes-embedded-resource")))
            if props_t is None:
                return None
            if schema.get("maxProperties") is not None:
                max_props = _zero_if_negative(schema["maxProperties"])
            else:
                max_props = (MAX_REQUEST_SIZE_BYTES - 2) // (props_t.min_size + 6)
            key_t = CelType("string", min_size=2, max_elements=0)
            t = _map_of(key_t, props_t, max_props)
            t.schema = schema
            return t
        fields: dict[str, CelType] = {}
        prop_names: dict[str, str] = {}
        required = set(schema.get("required") or [])
        min_size = 2
        for name, prop in (schema.get("properties") or {}).items():
            if not isinstance(prop, dict):
                continue
            ft = schema_decl_type(prop, bool(prop.get("x-kubernetes-embedded-resource")))
            if ft is None:
                continue
            escaped = escape_property_name(name)
            if escaped is not None:
                fields[escaped] = ft
                prop_names[escaped] = name
            if name in required and "default" not in prop:
                min_size += len(name) + ft.min_size + 4
        t = CelType("object", fields=fields, prop_names=prop_names, min_size=min_size, max_elements=0,
                    name="object", schema=schema)
        return t
    if typ == "string":
        fmt = schema.get("format")
        if fmt == "byte":
            t = CelType("bytes", min_size=2, schema=schema)
            t.max_elements = (_zero_if_negative(schema["maxLength"]) if schema.get("maxLength") is not None
                              else _max_string_length_per_request(schema))
            return t
        if fmt == "duration":
            return CelType("duration", min_size=_MIN_DURATION_SIZE_JSON,
                           max_elements=_max_string_length_per_request(schema), schema=schema)
        if fmt == "date":
            return CelType("timestamp", min_size=_JSON_DATE_SIZE,
                           max_elements=_max_string_length_per_request(schema), schema=schema)
        if fmt == "date-time":
            return CelType("timestamp", min_size=_MIN_DATETIME_SIZE_JSON,
                           max_elements=_max_string_length_per_request(schema), schema=schema)
        t = CelType("string", min_size=2, schema=schema)
        if schema.get("maxLength") is not None:
            t.max_elements = _zero_if_negative(schema["maxLength"]) * 4
        elif schema.get("enum"):
            # estimateMaxStringEnumLength: len() of a Go string counts bytes
            t.max_elements = max((len(e.encode("utf-8")) for e in schema["enum"] if isinstance(e, str)),
                                 default=0)
        else:
            t.max_elements = _max_string_length_per_request(schema)
        return t
    if typ == "boolean":
        return CelType("bool", min_size=4, schema=schema)
    if typ == "number":
        return CelType("double", min_size=1, schema=schema)
    if typ == "integer":
        return CelType("int", min_size=1, schema=schema)
    return None


def max_cardinality(min_size: int) -> int:
    """compilation.go maxCardinality: how often data of this minimal size fits into a request."""
    return MAX_REQUEST_SIZE_BYTES // (min_size + 1)


# --------------------------------------------------------------------------------------------------
# AST
# --------------------------------------------------------------------------------------------------

class _Node:
    __slots__ = ("id", "pos")

    def __init__(self, nid: int, pos: int) -> None:
        self.id = nid
        self.pos = pos


class _Lit(_Node):
    __slots__ = ("value", "lit_kind")

    def __init__(self, nid: int, pos: int, value: Any, lit_kind: str) -> None:
        super().__init__(nid, pos)
        self.value = value
        self.lit_kind = lit_kind


class _Ident(_Node):
    __slots__ = ("name",)

    def __init__(self, nid: int, pos: int, name: str) -> None:
        super().__init__(nid, pos)
        self.name = name


class _Select(_Node):
    __slots__ = ("operand", "field", "test_only", "key")

    def __init__(self, nid: int, pos: int, operand: _Node, fld: str, test_only: bool = False) -> None:
        super().__init__(nid, pos)
        self.operand = operand
        self.field = fld
        self.test_only = test_only
        self.key = fld  # the JSON key read at runtime (unescaped for object fields)


class _Call(_Node):
    __slots__ = ("fn", "args", "target")

    def __init__(self, nid: int, pos: int, fn: str, args: list[_Node], target: _Node | None = None) -> None:
        super().__init__(nid, pos)
        self.fn = fn
        self.args = args
        self.target = target


class _ListLit(_Node):
    __slots__ = ("elems",)

    def __init__(self, nid: int, pos: int, elems: list[_Node]) -> None:
        super().__init__(nid, pos)
        self.elems = elems


class _MapLit(_Node):
    __slots__ = ("entries",)

    def __init__(self, nid: int, pos: int, entries: list[tuple[_Node, _Node]]) -> None:
        super().__init__(nid, pos)
        self.entries = entries


class _Comp(_Node):
    __slots__ = ("macro", "iter_var", "iter_range", "accu_init", "cond", "step", "result", "user_args")

    def __init__(self, nid: int, pos: int, macro: str, iter_var: str, iter_range: _Node, accu_init: _Node,
                 cond: _Node, step: _Node, result: _Node, user_args: list[_Node]) -> None:
        super().__init__(nid, pos)
        self.macro = macro
        self.iter_var = iter_var
        self.iter_range = iter_range
        self.accu_init = accu_init
        self.cond = cond
        self.step = step
        self.result = result
        self.user_args = user_args


class _SyntaxError(Exception):
    def __init__(self, pos: int, message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message


_OPERATOR_TOKENS: Final = {
    "relation_lt": ("<", "_<_"), "relation_le": ("<=", "_<=_"), "relation_gt": (">", "_>_"),
    "relation_ge": (">=", "_>=_"), "relation_eq": ("==", "_==_"), "relation_ne": ("!=", "_!=_"),
    "relation_in": ("in", "@in"), "addition_add": ("+", "_+_"), "addition_sub": ("-", "_-_"),
    "multiplication_mul": ("*", "_*_"), "multiplication_div": ("/", "_/_"),
    "multiplication_mod": ("%", "_%_"),
}

_QUALIFIED_FUNCTIONS: Final = frozenset({
    "sets.contains", "sets.equivalent", "sets.intersects", "strings.quote", "ip.isCanonical",
})
_UNSUPPORTED_NAMESPACES: Final = frozenset({"optional", "format"})


class _Builder:
    """Lark parse tree -> AST, with cel-go macro expansion."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.next_id = 1

    def _id(self) -> int:
        nid = self.next_id
        self.next_id += 1
        return nid

    @staticmethod
    def _start(tree: Any) -> int:
        if isinstance(tree, lark.Token):
            return int(tree.start_pos or 0)
        meta = getattr(tree, "meta", None)
        if meta is not None and not getattr(meta, "empty", True) and getattr(meta, "start_pos", None) is not None:
            return int(meta.start_pos)
        for child in getattr(tree, "children", []):
            return _Builder._start(child)
        return 0

    @staticmethod
    def _end(tree: Any) -> int:
        if isinstance(tree, lark.Token):
            return int(tree.end_pos or 0)
        meta = getattr(tree, "meta", None)
        if meta is not None and not getattr(meta, "empty", True) and getattr(meta, "end_pos", None) is not None:
            return int(meta.end_pos)
        children = getattr(tree, "children", [])
        return _Builder._end(children[-1]) if children else 0

    def _find(self, text: str, lo: int, hi: int, default: int) -> int:
        found = self.source.find(text, lo, hi if hi > lo else None)
        return found if found >= 0 else default

    def build(self, tree: Any) -> _Node:
        method = getattr(self, "b_" + str(tree.data), None)
        if method is None:
            raise _SyntaxError(self._start(tree), f"unsupported syntax: {tree.data}")
        node: _Node = method(tree)
        return node

    def b_expr(self, tree: Any) -> _Node:
        ch = tree.children
        if len(ch) == 1:
            return self.build(ch[0])
        cond, left, right = ch
        pos = self._find("?", self._end(cond), self._start(left), self._start(left))
        return _Call(self._id(), pos, "_?_:_", [self.build(cond), self.build(left), self.build(right)])

    def _logical(self, tree: Any, rule: str, op_text: str, fn: str) -> _Node:
        """`a || b || c`: flattened iteratively and balanced like cel-go's parser balancer."""
        terms: list[Any] = []
        node = tree
        while str(getattr(node, "data", "")) == rule and len(node.children) == 2:
            terms.append(node.children[1])
            node = node.children[0]
        if str(getattr(node, "data", "")) == rule:
            node = node.children[0]
        terms.append(node)
        terms.reverse()
        if len(terms) == 1:
            return self.build(terms[0])
        built = [self.build(t) for t in terms]
        ops = [self._find(op_text, self._end(terms[i]), self._start(terms[i + 1]), self._start(terms[i + 1]))
               for i in range(len(terms) - 1)]

        def balanced(lo: int, hi: int) -> _Node:
            mid = (lo + hi + 1) // 2
            left = built[mid] if mid == lo else balanced(lo, mid - 1)
            right = built[mid + 1] if mid == hi else balanced(mid + 1, hi)
            return _Call(self._id(), ops[mid], fn, [left, right])
        return balanced(0, len(ops) - 1)

    def b_conditionalor(self, tree: Any) -> _Node:
        return self._logical(tree, "conditionalor", "||", "_||_")

    def b_conditionaland(self, tree: Any) -> _Node:
        return self._logical(tree, "conditionaland", "&&", "_&&_")

    def _operator_chain(self, tree: Any) -> _Node:
        """Left-associative operators, built iteratively (long chains must not exhaust Python's stack)."""
        rule = str(tree.data)
        links: list[tuple[Any, Any]] = []  # (operator tree, right operand), outermost first
        node = tree
        while str(getattr(node, "data", "")) == rule and len(node.children) == 2:
            op_tree, right = node.children
            links.append((op_tree, right))
            node = op_tree.children[0]
        if str(getattr(node, "data", "")) == rule:
            node = node.children[0]
        result = self.build(node)
        left_tree = node
        for op_tree, right in reversed(links):
            op_text, fn = _OPERATOR_TOKENS[str(op_tree.data)]
            pos = self._find(op_text, self._end(left_tree), self._start(right), self._start(right))
            result = _Call(self._id(), pos, fn, [result, self.build(right)])
            left_tree = right
        return result

    b_relation = _operator_chain
    b_addition = _operator_chain
    b_multiplication = _operator_chain

    def b_unary(self, tree: Any) -> _Node:
        ch = tree.children
        if len(ch) == 1:
            return self.build(ch[0])
        op, operand = ch
        pos = self._start(op)
        fn = "!_" if str(op.data) == "unary_not" else "-_"
        inner = self.build(operand)
        if fn == "-_" and isinstance(inner, _Lit) and inner.lit_kind in ("int", "double") \
                and self.source[pos + 1:pos + 2].isdigit():
            # cel-go folds a minus directly in front of a numeric literal into the literal
            return _Lit(inner.id, pos, -inner.value, inner.lit_kind)
        return _Call(self._id(), pos, fn, [inner])

    def b_member(self, tree: Any) -> _Node:
        return self.build(tree.children[0])

    def _check_ident(self, name: str, pos: int) -> None:
        if name in _PARSER_RESERVED:
            raise _SyntaxError(pos, f"reserved identifier: {name}")

    def b_member_dot(self, tree: Any) -> _Node:
        operand, ident = tree.children
        pos = self._find(".", self._end(operand), self._start(ident), self._start(ident) - 1)
        self._check_ident(str(ident), self._start(ident))
        return _Select(self._id(), pos, self.build(operand), str(ident))

    def _args(self, exprlist: Any | None) -> list[Any]:
        return list(exprlist.children) if exprlist is not None else []

    def b_member_dot_arg(self, tree: Any) -> _Node:
        ch = tree.children
        operand, ident = ch[0], ch[1]
        raw_args = self._args(ch[2] if len(ch) > 2 else None)
        name = str(ident)
        self._check_ident(name, self._start(ident))
        pos = self._find("(", self._end(ident), len(self.source), self._end(ident))
        if name in ("all", "exists", "exists_one") and len(raw_args) == 2:
            return self._quantifier(name, pos, operand, raw_args)
        if name == "map" and len(raw_args) in (2, 3):
            return self._map_macro(pos, operand, raw_args)
        if name == "filter" and len(raw_args) == 2:
            return self._filter_macro(pos, operand, raw_args)
        target = self.build(operand)
        args = [self.build(a) for a in raw_args]
        if isinstance(target, _Ident):
            qualified = f"{target.name}.{name}"
            if qualified in _QUALIFIED_FUNCTIONS or target.name in _UNSUPPORTED_NAMESPACES:
                return _Call(self._id(), pos, qualified, args)
        return _Call(self._id(), pos, name, args, target)

    def _iter_var(self, raw: Any, message: str) -> str:
        node = self.build(raw)
        if not isinstance(node, _Ident):
            raise _SyntaxError(node.pos, message)
        return node.name

    def _accu(self, pos: int) -> _Ident:
        return _Ident(self._id(), pos, _ACCU)

    def _quantifier(self, kind: str, pos: int, operand: Any, raw_args: list[Any]) -> _Node:
        var = self._iter_var(raw_args[0], "argument must be a simple name")
        rng = self.build(operand)
        pred = self.build(raw_args[1])
        if kind == "all":
            init: _Node = _Lit(self._id(), pos, True, "bool")
            cond: _Node = _Call(self._id(), pos, "@not_strictly_false", [self._accu(pos)])
            step: _Node = _Call(self._id(), pos, "_&&_", [self._accu(pos), pred])
            result: _Node = self._accu(pos)
        elif kind == "exists":
            init = _Lit(self._id(), pos, False, "bool")
            cond = _Call(self._id(), pos, "@not_strictly_false",
                         [_Call(self._id(), pos, "!_", [self._accu(pos)])])
            step = _Call(self._id(), pos, "_||_", [self._accu(pos), pred])
            result = self._accu(pos)
        else:
            init = _Lit(self._id(), pos, 0, "int")
            cond = _Lit(self._id(), pos, True, "bool")
            step = _Call(self._id(), pos, "_?_:_", [
                pred, _Call(self._id(), pos, "_+_", [self._accu(pos), _Lit(self._id(), pos, 1, "int")]),
                self._accu(pos)])
            result = _Call(self._id(), pos, "_==_", [self._accu(pos), _Lit(self._id(), pos, 1, "int")])
        return _Comp(self._id(), pos, kind, var, rng, init, cond, step, result, [pred])

    def _map_macro(self, pos: int, operand: Any, raw_args: list[Any]) -> _Node:
        var = self._iter_var(raw_args[0], "argument is not an identifier")
        rng = self.build(operand)
        if len(raw_args) == 3:
            flt: _Node | None = self.build(raw_args[1])
            fn = self.build(raw_args[2])
        else:
            flt = None
            fn = self.build(raw_args[1])
        init = _ListLit(self._id(), pos, [])
        cond = _Lit(self._id(), pos, True, "bool")
        step: _Node = _Call(self._id(), pos, "_+_", [self._accu(pos), _ListLit(self._id(), pos, [fn])])
        if flt is not None:
            step = _Call(self._id(), pos, "_?_:_", [flt, step, self._accu(pos)])
        user = [fn] if flt is None else [flt, fn]
        return _Comp(self._id(), pos, "map", var, rng, init, cond, step, self._accu(pos), user)

    def _filter_macro(self, pos: int, operand: Any, raw_args: list[Any]) -> _Node:
        var = self._iter_var(raw_args[0], "argument is not an identifier")
        rng = self.build(operand)
        flt = self.build(raw_args[1])
        init = _ListLit(self._id(), pos, [])
        cond = _Lit(self._id(), pos, True, "bool")
        step: _Node = _Call(self._id(), pos, "_+_", [
            self._accu(pos), _ListLit(self._id(), pos, [_Ident(self._id(), pos, var)])])
        step = _Call(self._id(), pos, "_?_:_", [flt, step, self._accu(pos)])
        return _Comp(self._id(), pos, "filter", var, rng, init, cond, step, self._accu(pos), [flt])

    def b_member_index(self, tree: Any) -> _Node:
        operand, index = tree.children
        pos = self._find("[", self._end(operand), self._start(index), self._start(index))
        return _Call(self._id(), pos, "_[_]", [self.build(operand), self.build(index)])

    def b_member_object(self, tree: Any) -> _Node:
        operand = tree.children[0]
        name = self.source[self._start(operand):self._end(operand)].strip()
        raise _SyntaxError(self._start(operand), f"undeclared reference to '{name}' (in container '')")

    def b_primary(self, tree: Any) -> _Node:
        return self.build(tree.children[0])

    def b_paren_expr(self, tree: Any) -> _Node:
        return self.build(tree.children[0])

    def b_ident(self, tree: Any) -> _Node:
        tok = tree.children[0]
        self._check_ident(str(tok), self._start(tok))
        return _Ident(self._id(), self._start(tok), str(tok))

    def b_dot_ident(self, tree: Any) -> _Node:
        tok = tree.children[0]
        return _Ident(self._id(), self._start(tok), str(tok))

    def b_ident_arg(self, tree: Any) -> _Node:
        ch = tree.children
        tok = ch[0]
        name = str(tok)
        raw_args = self._args(ch[1] if len(ch) > 1 else None)
        pos = self._find("(", self._end(tok), len(self.source), self._end(tok))
        if name == "has" and len(raw_args) == 1:
            arg = self.build(raw_args[0])
            if not isinstance(arg, _Select):
                raise _SyntaxError(arg.pos, "invalid argument to has() macro")
            arg.test_only = True
            return arg
        self._check_ident(name, self._start(tok))
        return _Call(self._id(), pos, name, [self.build(a) for a in raw_args])

    b_dot_ident_arg = b_ident_arg

    def b_list_lit(self, tree: Any) -> _Node:
        pos = self._start(tree)
        elems = self._args(tree.children[0] if tree.children else None)
        return _ListLit(self._id(), pos, [self.build(e) for e in elems])

    def b_map_lit(self, tree: Any) -> _Node:
        pos = self._start(tree)
        raw = list(tree.children[0].children) if tree.children else []
        entries = [(self.build(raw[i]), self.build(raw[i + 1])) for i in range(0, len(raw) - 1, 2)]
        return _MapLit(self._id(), pos, entries)

    def b_literal(self, tree: Any) -> _Node:
        tok = tree.children[0]
        pos = self._start(tok)
        kind = tok.type
        text = str(tok)
        if kind == "INT_LIT":
            value = int(text, 16) if text.lstrip("-").startswith("0x") else int(text)
            if text.startswith("-") and text.lstrip("-").startswith("0x"):
                value = -int(text[1:], 16)
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise _SyntaxError(pos, "invalid int literal")
            return _Lit(self._id(), pos, value, "int")
        if kind == "UINT_LIT":
            body = text[:-1]
            value = int(body, 16) if body.startswith("0x") else int(body)
            if value < 0 or value > _UINT64_MAX:
                raise _SyntaxError(pos, "invalid uint literal")
            return _Lit(self._id(), pos, CelUint(value), "uint")
        if kind == "FLOAT_LIT":
            return _Lit(self._id(), pos, float(text), "double")
        if kind in ("STRING_LIT", "MLSTRING_LIT"):
            return _Lit(self._id(), pos, str(celstr(tok)), "string")
        if kind == "BYTES_LIT":
            return _Lit(self._id(), pos, bytes(celbytes(tok)), "bytes")
        if kind == "BOOL_LIT":
            return _Lit(self._id(), pos, text == "true", "bool")
        if kind == "NULL_LIT":
            return _Lit(self._id(), pos, None, "null")
        raise _SyntaxError(pos, f"unsupported literal {text}")


_ENV: celpy.Environment | None = None


def _parse(source: str) -> _Node:
    global _ENV
    if _ENV is None:
        limit = sys.getrecursionlimit()
        _ENV = celpy.Environment()
        sys.setrecursionlimit(limit)  # celpy raises the process-wide limit; keep ours
    try:
        tree = _ENV.compile(source)
    except CELParseError as exc:
        line = getattr(exc, "line", None) or 1
        column = getattr(exc, "column", None) or 1
        offset = _offset_of(source, int(line), int(column) - 1)
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise _SyntaxError(offset, f"Syntax error: {first.strip()}") from None
    try:
        with _DeepStack():
            ast = _Builder(source).build(tree)
    except RecursionError:
        raise _SyntaxError(-1, f"expression recursion limit exceeded: {_MAX_RECURSION_DEPTH}") from None
    if _ast_depth(ast) > _MAX_RECURSION_DEPTH:
        raise _SyntaxError(-1, f"expression recursion limit exceeded: {_MAX_RECURSION_DEPTH}")
    return ast


_MAX_RECURSION_DEPTH: Final = 250  # cel-go parser default


def _children(n: _Node) -> list[_Node]:
    if isinstance(n, _Select):
        return [n.operand]
    if isinstance(n, _Call):
        return ([n.target] if n.target is not None else []) + list(n.args)
    if isinstance(n, _ListLit):
        return list(n.elems)
    if isinstance(n, _MapLit):
        return [x for kv in n.entries for x in kv]
    if isinstance(n, _Comp):
        return [n.iter_range, n.accu_init, n.cond, n.step, n.result]
    return []


def _ast_depth(root: _Node) -> int:
    deepest = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((c, depth + 1) for c in _children(node))
    return deepest


class _DeepStack:
    """Temporarily allow deep (but bounded) recursion for checking and evaluating nested expressions."""

    def __enter__(self) -> None:
        self.old = sys.getrecursionlimit()
        if self.old < 20000:
            sys.setrecursionlimit(20000)

    def __exit__(self, *exc: object) -> None:
        sys.setrecursionlimit(self.old)


def _offset_of(source: str, line: int, col: int) -> int:
    lines = source.split("\n")
    return sum(len(x) + 1 for x in lines[:max(line - 1, 0)]) + max(col, 0)


def _display_error(source: str, pos: int, message: str) -> str:
    """cel-go common.Error.ToDisplayString (pos -1: common.NoLocation)."""
    if pos < 0:
        return f"ERROR: <input>:-1:0: {message}"
    before = source[:pos]
    line = before.count("\n") + 1
    col = pos - (before.rfind("\n") + 1)
    out = f"ERROR: <input>:{line}:{col + 1}: {message}"
    snippet = source.split("\n")[line - 1] if source else ""
    if len(snippet) <= 16384:
        snippet = snippet.replace("\t", " ")
        ind = "".join("\uff0e" if ord(c) > 0x7F else "." for c in snippet[:col])
        caret = "\uff3e" if col < len(snippet) and ord(snippet[col]) > 0x7F else "^"
        out += "\n | " + snippet + "\n | " + ind + caret
    return out


# --------------------------------------------------------------------------------------------------
# Runtime values
# --------------------------------------------------------------------------------------------------

class CelUint(int):
    """A CEL uint (Python int subclass so arithmetic stays exact)."""

    def __repr__(self) -> str:
        return f"{int(self)}u"


class CelErr:
    """A CEL error value (errors are values in CEL: `&&`, `||` and `all()` may absorb them)."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"CelErr({self.message!r})"


class CelList(list[Any]):
    """A list value; lists from `x-kubernetes-list-type: set|map` compare and concatenate like upstream."""

    __slots__ = ("list_type", "map_keys", "from_schema")

    def __init__(self, items: Iterable[Any] = (), list_type: str = "atomic", map_keys: Sequence[str] = (),
                 from_schema: bool = False) -> None:
        super().__init__(items)
        self.list_type = list_type
        self.map_keys = tuple(map_keys)
        self.from_schema = from_schema


@dataclass(frozen=True, order=True)
class Duration:
    nanos: int

    def __str__(self) -> str:
        return _format_duration(self.nanos)


@dataclass(frozen=True, order=True)
class Timestamp:
    nanos: int  # since the Unix epoch, UTC

    def __str__(self) -> str:
        return _format_timestamp(self.nanos)


@dataclass(frozen=True)
class TypeValue:
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Opaque:
    """Data preserved by x-kubernetes-preserve-unknown-fields: only equality is supported."""

    raw: Any

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and _json_deep_equal(self.raw, other.raw)

    def __hash__(self) -> int:
        return 0


@dataclass(frozen=True)
class URLValue:
    raw: str
    scheme: str
    host: str
    path: str
    raw_path: str
    query: str

    def hostname(self) -> str:
        host = self.host
        if host.startswith("["):
            end = host.find("]")
            return host[1:end] if end >= 0 else host[1:]
        i = host.rfind(":")
        if i >= 0 and (host[i + 1:].isdigit() or host[i + 1:] == ""):
            return host[:i]
        return host

    def port(self) -> str:
        host = self.host
        if host.startswith("["):
            end = host.find("]")
            rest = host[end + 1:] if end >= 0 else ""
            return rest[1:] if rest.startswith(":") else ""
        i = host.rfind(":")
        if i >= 0:
            return host[i + 1:]
        return ""


@dataclass(frozen=True)
class Quantity:
    value: Fraction
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class IPValue:
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address

    def __str__(self) -> str:
        return str(self.addr)


@dataclass(frozen=True)
class CIDRValue:
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address
    prefix: int

    def __str__(self) -> str:
        return f"{self.addr}/{self.prefix}"

    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(f"{self.addr}/{self.prefix}", strict=False)


def _json_deep_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_deep_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) and type(a) is type(b)


# ---- durations and timestamps --------------------------------------------------------------------

_DURATION_UNITS: Final = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
                          "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_GO_DURATION_RE: Final = re.compile(r"([0-9]*(?:\.[0-9]*)?)([a-zµμ]+)")


def parse_go_duration(text: str) -> int:
    """time.ParseDuration: nanoseconds, or ValueError worded like Go."""
    orig = text
    err = ValueError(f'time: invalid duration "{orig}"')
    neg = False
    if text[:1] in "+-" and text:
        neg = text[0] == "-"
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise err
    total = Fraction(0)
    pos = 0
    while pos < len(text):
        m = _GO_DURATION_RE.match(text, pos)
        if not m or m.group(1) in ("", "."):
            raise err
        unit = m.group(2)
        if unit not in _DURATION_UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{orig}"')
        total += Fraction(m.group(1)) * _DURATION_UNITS[unit]
        pos = m.end()
    nanos = int(total)
    if nanos > _INT64_MAX:
        raise ValueError(f'time: invalid duration "{orig}"')
    return -nanos if neg else nanos


def parse_strfmt_duration(text: str) -> int:
    """kube-openapi strfmt.ParseDuration (Go durations plus `3 days`-style forms)."""
    try:
        return parse_go_duration(text)
    except ValueError:
        pass
    units = (("ns", "nano"), ("us", "µs", "micro"), ("ms", "milli"), ("s", "sec"), ("m", "min"),
             ("h", "hr", "hour"), ("d", "day"), ("w", "wk", "week"))
    mult = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9,
            "d": 86400 * 10**9, "w": 7 * 86400 * 10**9}
    total = 0
    ok = False
    for m in re2.compile(r"((\d+)\s*([A-Za-zµ]+))", _RE2_OPTIONS).finditer(text):
        factor = int(m.group(2))
        unit = m.group(3).strip().lower()
        for variants in units:
            last = len(variants) - 1
            for i, variant in enumerate(variants):
                if (last == i and unit.startswith(variant)) or variant.lower() == unit:
                    ok = True
                    total += factor * mult[variants[0]]
    if ok:
        return total
    raise ValueError(f"unable to parse {text} as duration")


def _format_duration(nanos: int) -> str:
    """cel-go string(duration): seconds with up to 9 fractional digits and an `s` suffix."""
    neg = nanos < 0
    n = abs(nanos)
    secs, frac = divmod(n, 1_000_000_000)
    text = str(secs)
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return ("-" if neg else "") + text + "s"


_RFC3339_RE: Final = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_MIN_TS_SECONDS: Final = -62135596800  # 0001-01-01T00:00:00Z
_MAX_TS_SECONDS: Final = 253402300799  # 9999-12-31T23:59:59Z


def _civil_to_seconds(year: int, month: int, day: int, hh: int, mm: int, ss: int) -> int:
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1] and hh < 24 and mm < 60
            and ss < 60):
        raise ValueError("out of range")
    days = (_dt.date(year, month, day) - _dt.date(1970, 1, 1)).days
    return days * 86400 + hh * 3600 + mm * 60 + ss


def parse_rfc3339(text: str, *, allow_local: bool = False) -> int:
    """time.Parse(time.RFC3339, s) -> nanoseconds since epoch (UTC)."""
    m = _RFC3339_RE.match(text)
    if m is None and allow_local:
        m = re.match(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?()$", text)
    if m is None:
        raise ValueError(f'parsing time "{text}" as "2006-01-02T15:04:05Z07:00": cannot parse')
    year, month, day, hh, mm, ss = (int(m.group(i)) for i in range(1, 7))
    try:
        secs = _civil_to_seconds(year, month, day, hh, mm, ss)
    except (ValueError, OverflowError):
        raise ValueError(f'parsing time "{text}": day out of range') from None
    frac = m.group(7)
    nanos = int((frac[1:] + "000000000")[:9]) if frac else 0
    zone = m.group(8)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        zh, zm = int(zone[1:3]), int(zone[4:6])
        if zh > 23 or zm > 59:
            raise ValueError(f'parsing time "{text}": time zone offset out of range')
        secs -= sign * (zh * 3600 + zm * 60)
    return secs * 1_000_000_000 + nanos


def parse_date(text: str) -> int:
    m = re.match(r"^(\d{4})-(\d{2})-(\d{2})$", text)
    if m is None:
        raise ValueError(f'parsing time "{text}" as "2006-01-02": cannot parse')
    return _civil_to_seconds(int(m.group(1)), int(m.group(2)), int(m.group(3)), 0, 0, 0) * 1_000_000_000


def _check_timestamp(nanos: int) -> Timestamp:
    secs = nanos // 1_000_000_000
    if secs < _MIN_TS_SECONDS or secs > _MAX_TS_SECONDS:
        raise CelEvalError("timestamp overflow")
    return Timestamp(nanos)


def _check_duration(nanos: int) -> Duration:
    if not _INT64_MIN <= nanos <= _INT64_MAX:
        raise CelEvalError("duration overflow")
    return Duration(nanos)


def _format_timestamp(nanos: int) -> str:
    secs, frac = divmod(nanos, 1_000_000_000)
    when = _dt.datetime(1970, 1, 1) + _dt.timedelta(seconds=secs)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def _tz_offset_seconds(tz: str | None, secs: int) -> int:
    if not tz or tz == "UTC":
        return 0
    m = re.match(r"^([+-]?)(\d{1,2}):(\d{2})$", tz)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        return sign * (int(m.group(2)) * 3600 + int(m.group(3)) * 60)
    try:
        import zoneinfo
        zone = zoneinfo.ZoneInfo(tz)
    except Exception:
        raise CelEvalError(f"unknown time zone {tz}") from None
    when = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC) + _dt.timedelta(seconds=secs)
    offset = when.astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _civil(ts: Timestamp, tz: str | None) -> tuple[_dt.datetime, int]:
    secs, frac = divmod(ts.nanos, 1_000_000_000)
    secs += _tz_offset_seconds(tz, secs)
    return _dt.datetime(1970, 1, 1) + _dt.timedelta(seconds=secs), frac


# ---- quantities (k8s.io/apimachinery/pkg/api/resource) -------------------------------------------

_QUANTITY_ERR: Final = ("quantities must match the regular expression "
                        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
_QUANTITY_RE: Final = re.compile(r"^([+-]?)([0-9]*)(?:\.([0-9]*))?((?:[eE][-+]?[0-9]+)|[a-zA-Z]*)$")
_BINARY_SUFFIXES: Final = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIXES: Final[dict[str, Fraction]] = {
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1), "k": Fraction(10**3),
    "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12), "P": Fraction(10**15), "E": Fraction(10**18)}


def parse_quantity(text: str) -> Quantity:
    m = _QUANTITY_RE.match(text)
    if not text or m is None or (not m.group(2) and not m.group(3)):
        raise CelEvalError(_QUANTITY_ERR)
    sign, whole, frac, suffix = m.group(1), m.group(2), m.group(3) or "", m.group(4)
    number = Fraction(int(whole or "0")) + (Fraction(int(frac), 10 ** len(frac)) if frac else 0)
    if suffix in _BINARY_SUFFIXES:
        value = number * _BINARY_SUFFIXES[suffix]
    elif suffix in _DECIMAL_SUFFIXES:
        value = number * _DECIMAL_SUFFIXES[suffix]
    elif suffix[:1] in ("e", "E") and len(suffix) > 1:
        value = number * Fraction(10) ** int(suffix[1:])
    else:
        raise CelEvalError(_QUANTITY_ERR)
    return Quantity(-value if sign == "-" else value, text)


# ---- IPs and CIDRs (apiserver/pkg/cel/library/ip.go, cidr.go) --------------------------------------

def parse_ip(text: str) -> IPValue:
    if "%" in text:
        raise CelEvalError(f"IP address with zone value is not allowed: {text}")
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise CelEvalError(f"IP Address {text!r} parse error during conversion from string: "
                           f"ParseAddr({text!r}): unable to parse IP") from None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        raise CelEvalError(f"IPv4-mapped IPv6 address is not allowed: {text}")
    return IPValue(addr)


def parse_cidr(text: str) -> CIDRValue:
    addr_text, sep, prefix_text = text.partition("/")
    if not sep or not prefix_text.isdigit() or (len(prefix_text) > 1 and prefix_text[0] == "0"):
        raise CelEvalError(f"network address parse error during conversion from string: "
                           f"netip.ParsePrefix({text!r}): bad prefix")
    ip = parse_ip(addr_text)
    prefix = int(prefix_text)
    if prefix > ip.addr.max_prefixlen:
        raise CelEvalError(f"network address parse error during conversion from string: "
                           f"netip.ParsePrefix({text!r}): prefix length out of range")
    return CIDRValue(ip.addr, prefix)


# ---- URLs (Go net/url ParseRequestURI, approximately) ---------------------------------------------

_SCHEME_RE: Final = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")


def parse_request_uri(text: str) -> URLValue:
    """url.ParseRequestURI: an absolute URI or an absolute path; raise CelEvalError otherwise."""
    if text == "":
        raise CelEvalError('parse "": empty url')
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise CelEvalError(f'parse {go_quote(text)}: net/url: invalid control character in URL')
    rest = text
    scheme = ""
    m = _SCHEME_RE.match(rest)
    if m:
        scheme = m.group(1).lower()
        rest = rest[m.end():]
    elif not rest.startswith("/"):
        raise CelEvalError(f"parse {go_quote(text)}: invalid URI for request")
    query = ""
    if "?" in rest:
        rest, query = rest.split("?", 1)
    host = ""
    if scheme and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        path = slash + path
        if "@" in authority:
            authority = authority.rsplit("@", 1)[1]
        host = authority
        if not _valid_host(host):
            raise CelEvalError(f"parse {go_quote(text)}: invalid character in host name")
    elif scheme and not rest.startswith("/"):
        raise CelEvalError(f"parse {go_quote(text)}: invalid URI for request")
    else:
        path = rest
    try:
        unescaped = urllib.parse.unquote(path, errors="strict")
    except UnicodeDecodeError:
        unescaped = path
    if re.search(r"%(?![0-9A-Fa-f]{2})", path):
        raise CelEvalError(f"parse {go_quote(text)}: invalid URL escape")
    return URLValue(text, scheme, host, unescaped, path, query)


def _valid_host(host: str) -> bool:
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return False
        rest = host[end + 1:]
        return rest == "" or (rest.startswith(":") and (rest[1:].isdigit() or rest[1:] == ""))
    hostname, _, port = host.rpartition(":") if ":" in host else (host, "", "")
    if ":" in host and port and not port.isdigit():
        return False
    return not any(c in hostname for c in " <>\"{}|\\^`")


# ---- JSON -> CEL (apiserver/pkg/cel/common/values.go UnstructuredToVal) ---------------------------

_STRFMT_DATETIME_RE: Final = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


def _parse_strfmt_datetime(text: str) -> int:
    if text == "":
        raise ValueError("empty")
    m = _STRFMT_DATETIME_RE.match(text)
    if m is None:
        raise ValueError(f'parsing time "{text}": cannot parse')
    return parse_rfc3339(text, allow_local=m.group(8) is None)


def to_cel(value: Any, schema: dict[str, Any] | None, is_resource_root: bool = False) -> Any:
    """A JSON value as the CEL value a rule on `schema` sees."""
    if not isinstance(schema, dict):
        return Opaque(value)
    if value is None:
        return None if schema.get("nullable") else CelErr(
            "invalid data, got null for schema with nullable=false")
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return CelErr("invalid data, expected XIntOrString value to be either a string or integer")
    typ = schema.get("type")
    if typ == "object":
        if not isinstance(value, dict):
            return CelErr("invalid data, expected a map for the provided schema with type=object")
        embedded = bool(schema.get("x-kubernetes-embedded-resource")) or is_resource_root
        props: dict[str, Any] | None = schema.get("properties")
        if embedded or props is not None:
            if embedded:
                schema = with_type_and_object_meta(schema)
            props = schema.get("properties") or {}
            out: dict[str, Any] = {}
            for k, v in value.items():
                if k in props:
                    if v is None:
                        continue  # null-valued fields are absent for objects with properties
                    out[k] = to_cel(v, props[k], bool(props[k].get("x-kubernetes-embedded-resource")))
                else:
                    out[k] = Opaque(v)
            return out
        ap = schema.get("additionalProperties")
        if isinstance(ap, dict):
            emb = bool(ap.get("x-kubernetes-embedded-resource"))
            return {k: to_cel(v, ap, emb) for k, v in value.items()}
        return {k: Opaque(v) for k, v in value.items()}
    if typ == "array":
        if not isinstance(value, list):
            return CelErr("invalid data, expected an array for the provided schema with type=array")
        items = schema.get("items")
        if not isinstance(items, dict):
            return CelErr("invalid array type, expected Items with a non-empty Schema")
        emb = bool(items.get("x-kubernetes-embedded-resource"))
        return CelList((to_cel(v, items, emb) for v in value), schema.get("x-kubernetes-list-type") or "atomic",
                       schema.get("x-kubernetes-list-map-keys") or (), from_schema=True)
    if typ == "string":
        if not isinstance(value, str):
            return CelErr(f"invalid data, expected string, got {_go_type_name(value)}")
        fmt = schema.get("format")
        try:
            if fmt == "duration":
                return Duration(parse_strfmt_duration(value))
            if fmt == "date":
                return Timestamp(parse_date(value))
            if fmt == "date-time":
                return Timestamp(_parse_strfmt_datetime(value))
            if fmt == "byte":
                return base64.b64decode(value, validate=True)
        except (ValueError, binascii.Error) as exc:
            label = {"duration": "duration", "date": "date formatted string",
                     "date-time": "date-time formatted string", "byte": "byte formatted string"}[str(fmt)]
            return CelErr(f"Invalid {label} {value}: {exc}")
        return value
    if typ == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return CelErr(f"invalid data, expected float, got {_go_type_name(value)}")
        return float(value)
    if typ == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return CelErr(f"invalid data, expected int, got {_go_type_name(value)}")
        return value
    if typ == "boolean":
        if not isinstance(value, bool):
            return CelErr(f"invalid data, expected bool, got {_go_type_name(value)}")
        return value
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return Opaque(value)
    return CelErr("invalid type, expected object, array, number, integer, boolean or string, or no type with "
                  "x-kubernetes-int-or-string or x-kubernetes-preserve-unknown-fields is true, got "
                  f"{typ or ''}")


def _go_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return "<nil>"


# --------------------------------------------------------------------------------------------------
# Function declarations (overload ids follow cel-go / Kubernetes so the cost model can match them)
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Overload:
    oid: str
    member: bool
    params: tuple[CelType, ...]
    result: CelType


_FUNCS: dict[str, list[_Overload]] = {}


def _decl(fn: str, oid: str, params: Sequence[CelType], result: CelType, *, member: bool = False) -> None:
    _FUNCS.setdefault(fn, []).append(_Overload(oid, member, tuple(params), result))


def _declare_functions() -> None:
    a, b = _PARAM_A, _PARAM_B
    list_a = _list_of(a)
    map_ab = _map_of(a, b)
    for oid, t in (("int64", INT), ("uint64", UINT), ("double", DOUBLE), ("string", STRING),
                   ("bytes", BYTES)):
        _decl("_+_", f"add_{oid}", (t, t), t)
    _decl("_+_", "add_list", (list_a, list_a), list_a)
    _decl("_+_", "add_timestamp_duration", (TIMESTAMP, DURATION), TIMESTAMP)
    _decl("_+_", "add_duration_timestamp", (DURATION, TIMESTAMP), TIMESTAMP)
    _decl("_+_", "add_duration_duration", (DURATION, DURATION), DURATION)
    for oid, t in (("int64", INT), ("uint64", UINT), ("double", DOUBLE)):
        _decl("_-_", f"subtract_{oid}", (t, t), t)
        _decl("_*_", f"multiply_{oid}", (t, t), t)
        _decl("_/_", f"divide_{oid}", (t, t), t)
    _decl("_-_", "subtract_timestamp_timestamp", (TIMESTAMP, TIMESTAMP), DURATION)
    _decl("_-_", "subtract_timestamp_duration", (TIMESTAMP, DURATION), TIMESTAMP)
    _decl("_-_", "subtract_duration_duration", (DURATION, DURATION), DURATION)
    _decl("_%_", "modulo_int64", (INT, INT), INT)
    _decl("_%_", "modulo_uint64", (UINT, UINT), UINT)
    _decl("-_", "negate_int64", (INT,), INT)
    _decl("-_", "negate_double", (DOUBLE,), DOUBLE)
    _decl("!_", "logical_not", (BOOL,), BOOL)
    _decl("_&&_", "logical_and", (BOOL, BOOL), BOOL)
    _decl("_||_", "logical_or", (BOOL, BOOL), BOOL)
    _decl("@not_strictly_false", "not_strictly_false", (BOOL,), BOOL)
    _decl("_?_:_", "conditional", (BOOL, a, a), a)
    _decl("_==_", "equals", (a, a), BOOL)
    _decl("_!=_", "not_equals", (a, a), BOOL)
    comparable = (("bool", BOOL), ("int64", INT), ("uint64", UINT), ("double", DOUBLE), ("string", STRING),
                  ("bytes", BYTES), ("timestamp", TIMESTAMP), ("duration", DURATION))
    cross = (("int64_uint64", INT, UINT), ("int64_double", INT, DOUBLE), ("uint64_int64", UINT, INT),
             ("uint64_double", UINT, DOUBLE), ("double_int64", DOUBLE, INT), ("double_uint64", DOUBLE, UINT))
    for fn, prefix in (("_<_", "less"), ("_<=_", "less_equals"), ("_>_", "greater"),
                       ("_>=_", "greater_equals")):
        for oid, t in comparable:
            _decl(fn, f"{prefix}_{oid}", (t, t), BOOL)
        for oid, t1, t2 in cross:
            _decl(fn, f"{prefix}_{oid}", (t1, t2), BOOL)
    _decl("@in", "in_list", (a, list_a), BOOL)
    _decl("@in", "in_map", (a, map_ab), BOOL)
    _decl("_[_]", "index_list", (list_a, INT), a)
    _decl("_[_]", "index_map", (map_ab, a), b)
    for oid, t in (("string", STRING), ("bytes", BYTES), ("list", list_a), ("map", map_ab)):
        _decl("size", f"size_{oid}", (t,), INT)
        _decl("size", f"{oid}_size", (t,), INT, member=True)
    _decl("contains", "contains_string", (STRING, STRING), BOOL, member=True)
    _decl("startsWith", "starts_with_string", (STRING, STRING), BOOL, member=True)
    _decl("endsWith", "ends_with_string", (STRING, STRING), BOOL, member=True)
    _decl("matches", "matches", (STRING, STRING), BOOL)
    _decl("matches", "matches_string", (STRING, STRING), BOOL, member=True)
    for src, t in (("int64", INT), ("uint64", UINT), ("double", DOUBLE), ("string", STRING),
                   ("timestamp", TIMESTAMP)):
        _decl("int", f"{src}_to_int64", (t,), INT)
    for src, t in (("uint64", UINT), ("int64", INT), ("double", DOUBLE), ("string", STRING)):
        _decl("uint", f"{src}_to_uint64", (t,), UINT)
    for src, t in (("double", DOUBLE), ("int64", INT), ("uint64", UINT), ("string", STRING)):
        _decl("double", f"{src}_to_double", (t,), DOUBLE)
    for src, t in (("string", STRING), ("int64", INT), ("uint64", UINT), ("double", DOUBLE), ("bool", BOOL),
                   ("bytes", BYTES), ("timestamp", TIMESTAMP), ("duration", DURATION), ("ip", IP_T),
                   ("cidr", CIDR_T)):
        _decl("string", f"{src}_to_string", (t,), STRING)
    _decl("bytes", "bytes_to_bytes", (BYTES,), BYTES)
    _decl("bytes", "string_to_bytes", (STRING,), BYTES)
    _decl("bool", "bool_to_bool", (BOOL,), BOOL)
    _decl("bool", "string_to_bool", (STRING,), BOOL)
    _decl("duration", "duration_to_duration", (DURATION,), DURATION)
    _decl("duration", "string_to_duration", (STRING,), DURATION)
    _decl("timestamp", "timestamp_to_timestamp", (TIMESTAMP,), TIMESTAMP)
    _decl("timestamp", "string_to_timestamp", (STRING,), TIMESTAMP)
    _decl("timestamp", "int64_to_timestamp", (INT,), TIMESTAMP)
    _decl("dyn", "to_dyn", (a,), DYN)
    _decl("type", "type", (a,), _type_of(a))
    for fn, oid in (("getFullYear", "timestamp_to_year"), ("getMonth", "timestamp_to_month"),
                    ("getDayOfYear", "timestamp_to_day_of_year"), ("getDayOfMonth", "timestamp_to_day_of_month_0"),
                    ("getDate", "timestamp_to_day_of_month_1"), ("getDayOfWeek", "timestamp_to_day_of_week"),
                    ("getHours", "timestamp_to_hours"), ("getMinutes", "timestamp_to_minutes"),
                    ("getSeconds", "timestamp_to_seconds"), ("getMilliseconds", "timestamp_to_milliseconds")):
        _decl(fn, oid, (TIMESTAMP,), INT, member=True)
        _decl(fn, oid + "_with_tz", (TIMESTAMP, STRING), INT, member=True)
    for fn, oid in (("getHours", "duration_to_hours"), ("getMinutes", "duration_to_minutes"),
                    ("getSeconds", "duration_to_seconds"), ("getMilliseconds", "duration_to_milliseconds")):
        _decl(fn, oid, (DURATION,), INT, member=True)
    # cel-go ext.Strings(version 2)
    list_string = _list_of(STRING)
    _decl("charAt", "string_char_at_int", (STRING, INT), STRING, member=True)
    _decl("indexOf", "string_index_of_string", (STRING, STRING), INT, member=True)
    _decl("indexOf", "string_index_of_string_int", (STRING, STRING, INT), INT, member=True)
    _decl("lastIndexOf", "string_last_index_of_string", (STRING, STRING), INT, member=True)
    _decl("lastIndexOf", "string_last_index_of_string_int", (STRING, STRING, INT), INT, member=True)
    _decl("lowerAscii", "string_lower_ascii", (STRING,), STRING, member=True)
    _decl("upperAscii", "string_upper_ascii", (STRING,), STRING, member=True)
    _decl("trim", "string_trim", (STRING,), STRING, member=True)
    _decl("replace", "string_replace_string_string", (STRING, STRING, STRING), STRING, member=True)
    _decl("replace", "string_replace_string_string_int", (STRING, STRING, STRING, INT), STRING, member=True)
    _decl("split", "string_split_string", (STRING, STRING), list_string, member=True)
    _decl("split", "string_split_string_int", (STRING, STRING, INT), list_string, member=True)
    _decl("substring", "string_substring_int", (STRING, INT), STRING, member=True)
    _decl("substring", "string_substring_int_int", (STRING, INT, INT), STRING, member=True)
    _decl("join", "list_join", (list_string,), STRING, member=True)
    _decl("join", "list_join_string", (list_string, STRING), STRING, member=True)
    _decl("format", "string_format", (STRING, _list_of(DYN)), STRING, member=True)
    _decl("strings.quote", "strings_quote", (STRING,), STRING)
    # cel-go ext.Sets
    for fn in ("contains", "equivalent", "intersects"):
        _decl(f"sets.{fn}", f"list_sets_{fn}_list", (list_a, list_a), BOOL)
    # Kubernetes lists library
    summable = (("int", INT), ("uint", UINT), ("double", DOUBLE), ("duration", DURATION))
    comparables = (("int", INT), ("uint", UINT), ("double", DOUBLE), ("bool", BOOL), ("duration", DURATION),
                   ("timestamp", TIMESTAMP), ("string", STRING), ("bytes", BYTES))
    for name, t in comparables:
        _decl("isSorted", f"list_{name}_is_sorted_bool", (_list_of(t),), BOOL, member=True)
        _decl("max", f"list_{name}_max_{name}", (_list_of(t),), t, member=True)
        _decl("min", f"list_{name}_min_{name}", (_list_of(t),), t, member=True)
    for name, t in summable:
        _decl("sum", f"list_{name}_sum_{name}", (_list_of(t),), t, member=True)
    _decl("indexOf", "list_a_index_of_int", (list_a, a), INT, member=True)
    _decl("lastIndexOf", "list_a_last_index_of_int", (list_a, a), INT, member=True)
    # Kubernetes regex library
    _decl("find", "string_find_string", (STRING, STRING), STRING, member=True)
    _decl("findAll", "string_find_all_string", (STRING, STRING), list_string, member=True)
    _decl("findAll", "string_find_all_string_int", (STRING, STRING, INT), list_string, member=True)
    # Kubernetes urls library
    _decl("url", "string_to_url", (STRING,), URL_T)
    _decl("isURL", "is_url_string", (STRING,), BOOL)
    for fn, oid in (("getScheme", "url_get_scheme"), ("getHost", "url_get_host"),
                    ("getHostname", "url_get_hostname"), ("getPort", "url_get_port"),
                    ("getEscapedPath", "url_get_escaped_path")):
        _decl(fn, oid, (URL_T,), STRING, member=True)
    _decl("getQuery", "url_get_query", (URL_T,), _map_of(STRING, list_string), member=True)
    # Kubernetes quantity library
    _decl("quantity", "string_to_quantity", (STRING,), QUANTITY_T)
    _decl("isQuantity", "is_quantity_string", (STRING,), BOOL)
    _decl("sign", "quantity_sign", (QUANTITY_T,), INT, member=True)
    _decl("isInteger", "quantity_is_integer", (QUANTITY_T,), BOOL, member=True)
    _decl("asInteger", "quantity_get_int", (QUANTITY_T,), INT, member=True)
    _decl("asApproximateFloat", "quantity_get_float", (QUANTITY_T,), DOUBLE, member=True)
    _decl("add", "quantity_add", (QUANTITY_T, QUANTITY_T), QUANTITY_T, member=True)
    _decl("add", "quantity_add_int", (QUANTITY_T, INT), QUANTITY_T, member=True)
    _decl("sub", "quantity_sub", (QUANTITY_T, QUANTITY_T), QUANTITY_T, member=True)
    _decl("sub", "quantity_sub_int", (QUANTITY_T, INT), QUANTITY_T, member=True)
    _decl("isLessThan", "quantity_less", (QUANTITY_T, QUANTITY_T), BOOL, member=True)
    _decl("isGreaterThan", "quantity_greater", (QUANTITY_T, QUANTITY_T), BOOL, member=True)
    _decl("compareTo", "quantity_compare_to", (QUANTITY_T, QUANTITY_T), INT, member=True)
    # Kubernetes IP and CIDR libraries
    _decl("isIP", "is_ip", (STRING,), BOOL)
    _decl("ip", "string_to_ip", (STRING,), IP_T)
    _decl("ip.isCanonical", "ip_is_canonical", (STRING,), BOOL)
    _decl("family", "ip_family", (IP_T,), INT, member=True)
    for fn, oid in (("isUnspecified", "ip_is_unspecified"), ("isLoopback", "ip_is_loopback"),
                    ("isLinkLocalMulticast", "ip_is_link_local_multicast"),
                    ("isLinkLocalUnicast", "ip_is_link_local_unicast"),
                    ("isGlobalUnicast", "ip_is_global_unicast")):
        _decl(fn, oid, (IP_T,), BOOL, member=True)
    _decl("isCIDR", "is_cidr", (STRING,), BOOL)
    _decl("cidr", "string_to_cidr", (STRING,), CIDR_T)
    _decl("containsIP", "cidr_contains_ip_string", (CIDR_T, STRING), BOOL, member=True)
    _decl("containsIP", "cidr_contains_ip_ip", (CIDR_T, IP_T), BOOL, member=True)
    _decl("containsCIDR", "cidr_contains_cidr_string", (CIDR_T, STRING), BOOL, member=True)
    _decl("containsCIDR", "cidr_contains_cidr", (CIDR_T, CIDR_T), BOOL, member=True)
    _decl("ip", "cidr_ip", (CIDR_T,), IP_T, member=True)
    _decl("masked", "cidr_masked", (CIDR_T,), CIDR_T, member=True)
    _decl("prefixLength", "cidr_prefix_length", (CIDR_T,), INT, member=True)


_declare_functions()

# Functions cel-go/Kubernetes declare that this emulator does not evaluate: compile errors, never silent passes.
_UNSUPPORTED_FUNCTIONS: Final = frozenset({
    "optional.of", "optional.ofNonZeroValue", "optional.none", "hasValue", "orValue", "optMap", "optFlatMap",
    "format.named", "validate",
})

_TYPE_IDENTS: Final = {
    "int": INT, "uint": UINT, "double": DOUBLE, "bool": BOOL, "string": STRING, "bytes": BYTES,
    "list": _list_of(DYN), "map": _map_of(DYN, DYN), "null_type": NULL, "type": _type_of(DYN),
}


# --------------------------------------------------------------------------------------------------
# Type checker
# --------------------------------------------------------------------------------------------------

def _resolve_param(t: CelType, subst: dict[str, CelType]) -> CelType:
    seen = 0
    while t.kind == "param" and t.name in subst and seen < 16:
        t = subst[t.name]
        seen += 1
    return t


def _assignable(expected: CelType, actual: CelType, subst: dict[str, CelType]) -> bool:
    expected = _resolve_param(expected, subst)
    actual = _resolve_param(actual, subst)
    if expected.kind == "param":
        subst[expected.name] = actual
        return True
    if actual.kind == "param":
        subst[actual.name] = expected
        return True
    if expected.kind in ("dyn", "error") or actual.kind in ("dyn", "error"):
        return True
    if expected.kind == "null" or actual.kind == "null":
        other = actual if expected.kind == "null" else expected
        return other.kind in ("null", "object", "timestamp", "duration")
    if expected.kind != actual.kind:
        return False
    if expected.kind == "list":
        return _assignable(expected.elem or DYN, actual.elem or DYN, subst)
    if expected.kind == "map":
        return (_assignable(expected.key or DYN, actual.key or DYN, subst)
                and _assignable(expected.elem or DYN, actual.elem or DYN, subst))
    if expected.kind == "object":
        return expected is actual or expected.schema is actual.schema or _same_object(expected, actual)
    return True


def _same_object(a: CelType, b: CelType) -> bool:
    fa, fb = a.fields or {}, b.fields or {}
    if fa.keys() != fb.keys():
        return False
    return all(format_type(fa[k]) == format_type(fb[k]) and _assignable(fa[k], fb[k], {}) for k in fa)


def _substitute(t: CelType, subst: dict[str, CelType]) -> CelType:
    t = _resolve_param(t, subst)
    if t.kind == "param":
        return DYN
    if t.kind == "list":
        elem = _substitute(t.elem or DYN, subst)
        return t if elem is t.elem else _list_of(elem)
    if t.kind == "map":
        key, elem = _substitute(t.key or DYN, subst), _substitute(t.elem or DYN, subst)
        return t if key is t.key and elem is t.elem else _map_of(key, elem)
    if t.kind == "type" and t.elem is not None:
        return _type_of(_substitute(t.elem, subst))
    return t


def _signature(arg_types: Sequence[CelType], member: bool) -> str:
    names = [format_type(t) for t in arg_types]
    if member:
        return f"{names[0]}.({', '.join(names[1:])})"
    return f"({', '.join(names)})"


class _Checker:
    def __init__(self, variables: dict[str, CelType]) -> None:
        self.vars = variables
        self.types: dict[int, CelType] = {}
        self.overloads: dict[int, list[str]] = {}
        self.errors: list[tuple[int, str]] = []
        self.scopes: list[dict[str, CelType]] = []
        self.referenced: set[str] = set()
        self.nodes: dict[int, _Node] = {}

    def error(self, pos: int, message: str) -> CelType:
        self.errors.append((pos, message))
        return ERROR_T

    def check(self, n: _Node) -> CelType:
        cached = self.types.get(n.id)
        if cached is not None:
            return cached
        self.nodes[n.id] = n
        t = self._check(n)
        self.types[n.id] = t
        return t

    def _check(self, n: _Node) -> CelType:
        if isinstance(n, _Lit):
            return {"int": INT, "uint": UINT, "double": DOUBLE, "string": STRING, "bytes": BYTES, "bool": BOOL,
                    "null": NULL}[n.lit_kind]
        if isinstance(n, _Ident):
            for scope in reversed(self.scopes):
                if n.name in scope:
                    return scope[n.name]
            if n.name in self.vars:
                self.referenced.add(n.name)
                return self.vars[n.name]
            if n.name in _TYPE_IDENTS:
                return _type_of(_TYPE_IDENTS[n.name])
            return self.error(n.pos, f"undeclared reference to '{n.name}' (in container '')")
        if isinstance(n, _Select):
            return self._check_select(n)
        if isinstance(n, _Call):
            return self._check_call(n)
        if isinstance(n, _ListLit):
            elem: CelType | None = None
            for e in n.elems:
                et = self.check(e)
                if elem is None:
                    elem = et
                elif format_type(elem) != format_type(et):
                    elem = DYN
            return _list_of(elem if elem is not None and elem.kind != "error" else DYN)
        if isinstance(n, _MapLit):
            kt: CelType | None = None
            vt: CelType | None = None
            for k, v in n.entries:
                ktt, vtt = self.check(k), self.check(v)
                if ktt.kind not in ("int", "uint", "bool", "string", "dyn", "error"):
                    self.error(k.pos, f"unsupported map key type: {format_type(ktt)}")
                if kt is None or vt is None:
                    kt, vt = ktt, vtt
                    continue
                if format_type(kt) != format_type(ktt):
                    kt = DYN
                if format_type(vt) != format_type(vtt):
                    vt = DYN
            return _map_of(kt or DYN, vt or DYN)
        if isinstance(n, _Comp):
            return self._check_comp(n)
        raise AssertionError(n)

    def _check_select(self, n: _Select) -> CelType:
        ot = self.check(n.operand)
        if ot.kind == "object":
            ft = (ot.fields or {}).get(n.field)
            if ft is None:
                return self.error(n.pos, f"undefined field '{n.field}'")
            n.key = (ot.prop_names or {}).get(n.field, n.field)
            return BOOL if n.test_only else ft
        if ot.kind == "map":
            if not _assignable(ot.key or DYN, STRING, {}):
                return self.error(n.pos, f"type '{format_type(ot)}' does not support field selection")
            return BOOL if n.test_only else (ot.elem or DYN)
        if ot.kind in ("dyn", "error"):
            return BOOL if n.test_only else ot
        return self.error(n.pos, f"type '{format_type(ot)}' does not support field selection")

    def _check_call(self, n: _Call) -> CelType:
        if n.fn in _UNSUPPORTED_FUNCTIONS or n.fn.split(".", 1)[0] in _UNSUPPORTED_NAMESPACES \
                and n.fn not in _FUNCS:
            for arg in ([n.target] if n.target else []) + n.args:
                self.check(arg)
            return self.error(n.pos, f"function '{n.fn}' is not implemented by this API server emulator "
                                     "(it may be valid on a real kube-apiserver)")
        arg_nodes = ([n.target] if n.target is not None else []) + n.args
        arg_types = [self.check(a) for a in arg_nodes]
        member = n.target is not None
        candidates = _FUNCS.get(n.fn)
        if candidates is None:
            return self.error(n.pos, f"undeclared reference to '{n.fn}' (in container '')")
        if any(t.kind == "error" for t in arg_types):
            return ERROR_T
        matches: list[tuple[_Overload, CelType]] = []
        for ov in candidates:
            if ov.member != member or len(ov.params) != len(arg_types):
                continue
            subst: dict[str, CelType] = {}
            if all(_assignable(p, at, subst) for p, at in zip(ov.params, arg_types, strict=True)):
                matches.append((ov, _substitute(ov.result, subst)))
        if not matches:
            return self.error(n.pos, f"found no matching overload for '{n.fn}' applied to "
                                     f"'{_signature(arg_types, member)}'")
        self.overloads[n.id] = [ov.oid for ov, _ in matches]
        results = [r for _, r in matches]
        first = results[0]
        if all(format_type(r) == format_type(first) for r in results):
            if n.fn == "_[_]" and first.kind != "dyn" and arg_types[0].kind in ("list", "map"):
                return arg_types[0].elem or first
            return first
        return DYN

    def _check_comp(self, n: _Comp) -> CelType:
        rt = self.check(n.iter_range)
        if rt.kind == "list":
            iv = rt.elem or DYN
        elif rt.kind == "map":
            iv = rt.key or DYN
        elif rt.kind in ("dyn", "error"):
            iv = DYN
        else:
            self.error(n.iter_range.pos, f"expression of type '{format_type(rt)}' cannot be range of a "
                                         "comprehension (must be list, map, or dynamic)")
            iv = ERROR_T
        self.scopes.append({n.iter_var: iv})
        user_types = [self.check(u) for u in n.user_args]
        self.scopes.pop()
        if n.macro in ("all", "exists"):
            accu = BOOL
        elif n.macro == "exists_one":
            accu = INT
        elif n.macro == "map":
            accu = _list_of(user_types[-1] if user_types[-1].kind != "error" else DYN)
        else:
            accu = _list_of(iv if iv.kind != "error" else DYN)
        self.check(n.accu_init)
        self.types[n.accu_init.id] = accu if n.macro in ("map", "filter") else self.types[n.accu_init.id]
        self.scopes.append({n.iter_var: iv, _ACCU: accu})
        self.check(n.cond)
        self.check(n.step)
        self.scopes.pop()
        self.scopes.append({_ACCU: accu})
        result = self.check(n.result)
        self.scopes.pop()
        return BOOL if n.macro in ("all", "exists", "exists_one") else (result if result.kind != "error" else accu)

    def validate_literals(self, root: _Node) -> None:
        """cel-go AST validators of the Kubernetes base environment (after a successful type-check).

        ValidateRegexLiterals / ValidateDurationLiterals / ValidateTimestampLiterals check the first
        argument of `matches`, `duration` and `timestamp` calls when it is a literal;
        ValidateHomogeneousAggregateLiterals rejects list and map literals whose elements do not all have the
        same type (dyn counts as a different type), except inside `format()` calls.
        """
        self._walk_literals(root, False)

    def _walk_literals(self, node: _Node, in_format: bool) -> None:
        if isinstance(node, _Call):
            if node.args:
                arg = node.args[0]
                if isinstance(arg, _Lit) and arg.lit_kind == "string" and node.fn in ("matches", "duration",
                                                                                        "timestamp"):
                    try:
                        if node.fn == "matches":
                            compile_regex(str(arg.value))
                        elif node.fn == "duration":
                            parse_go_duration(str(arg.value))
                        else:
                            _check_timestamp(parse_rfc3339(str(arg.value)))
                    except (RegexError, ValueError, CelEvalError):
                        self.error(arg.pos, f"invalid {node.fn} argument")
            inner = in_format or node.fn == "format"
            for child in ([node.target] if node.target is not None else []) + node.args:
                self._walk_literals(child, inner)
            return
        if isinstance(node, _ListLit):
            if not in_format:
                first: str | None = None
                for e in node.elems:
                    et = format_type(self.types.get(e.id, DYN))
                    if first is None:
                        first = et
                    elif et != first:
                        self.error(e.pos, f"expected type '{first}' but found '{et}'")
                        break
            for e in node.elems:
                self._walk_literals(e, in_format)
            return
        if isinstance(node, _MapLit):
            if not in_format:
                kfirst: str | None = None
                vfirst: str | None = None
                for k, v in node.entries:
                    kt, vt = format_type(self.types.get(k.id, DYN)), format_type(self.types.get(v.id, DYN))
                    if kfirst is None or vfirst is None:
                        kfirst, vfirst = kt, vt
                        continue
                    if kt != kfirst:
                        self.error(k.pos, f"expected type '{kfirst}' but found '{kt}'")
                    if vt != vfirst:
                        self.error(v.pos, f"expected type '{vfirst}' but found '{vt}'")
            for k, v in node.entries:
                self._walk_literals(k, in_format)
                self._walk_literals(v, in_format)
            return
        if isinstance(node, _Select):
            self._walk_literals(node.operand, in_format)
            return
        if isinstance(node, _Comp):
            for child in (node.iter_range, node.accu_init, node.cond, node.step, node.result):
                self._walk_literals(child, in_format)


# --------------------------------------------------------------------------------------------------
# Static cost estimation (cel-go checker/cost.go + apiserver library/cost.go + apiextensions sizeEstimator)
# --------------------------------------------------------------------------------------------------

_Est = tuple[int, int]  # (min, max), saturating at 2^64-1 like cel-go's uint64 arithmetic
_MAXU: Final = _UINT64_MAX


def _sat(x: int) -> int:
    return _MAXU if x > _MAXU else x


def _add(a: _Est, b: _Est) -> _Est:
    return _sat(a[0] + b[0]), _sat(a[1] + b[1])


def _mul(a: _Est, b: _Est) -> _Est:
    return _sat(a[0] * b[0]), _sat(a[1] * b[1])


def _factor(x: int, f: float) -> int:
    if x > 0 and f > 0 and x > _MAXU / f:
        return _MAXU
    ceil = math.ceil(x * f)
    return _MAXU if ceil >= 2**64 else int(ceil)


def _mulf(a: _Est, f: float) -> _Est:
    return _factor(a[0], f), _factor(a[1], f)


def _union(a: _Est, b: _Est) -> _Est:
    return min(a[0], b[0]), max(a[1], b[1])


class _AstNode:
    """checker.AstNode: path, type, expression, derived size."""

    __slots__ = ("path", "type", "expr", "derived")

    def __init__(self, path: list[str] | None, typ: CelType, expr: _Node | None, derived: _Est | None) -> None:
        self.path = path
        self.type = typ
        self.expr = expr
        self.derived = derived

    def computed_size(self) -> _Est | None:
        if self.derived is not None:
            return self.derived
        e = self.expr
        if isinstance(e, _Lit):
            if e.lit_kind == "string":
                return len(str(e.value)), len(str(e.value))
            if e.lit_kind == "bytes":
                return len(e.value), len(e.value)
            return 1, 1
        if isinstance(e, _ListLit):
            return len(e.elems), len(e.elems)
        if isinstance(e, _MapLit):
            return len(e.entries), len(e.entries)
        return None


class _Coster:
    def __init__(self, checker: _Checker, root: CelType | None) -> None:
        self.types = checker.types
        self.overloads = checker.overloads
        self.root = root
        self.paths: dict[int, list[str]] = {}
        self.iter_ranges: dict[str, list[_Node]] = {}
        self.computed: dict[int, _Est] = {}

    # -- size estimation -------------------------------------------------------------------------
    def _decl_size(self, node: _AstNode) -> _Est | None:
        """apiextensions sizeEstimator.EstimateSize: walk the schema DeclType along the path."""
        if not node.path or self.root is None:
            return None
        cur: CelType | None = self.root
        for name in node.path[1:]:
            if cur is None:
                return None
            if name in ("@items", "@values"):
                cur = cur.elem
            elif name == "@keys":
                cur = cur.key
            else:
                cur = (cur.fields or {}).get(name) if cur.kind == "object" else None
            if cur is None:
                return None
        if cur is None:
            return None
        return 0, cur.max_elements

    def size(self, node: _AstNode) -> _Est:
        """coster.sizeEstimate."""
        computed = node.computed_size()
        if computed is not None:
            return computed
        decl = self._decl_size(node)
        if decl is not None:
            return decl
        if _is_scalar(node.type):
            return 1, 1
        return 0, _MAXU

    def lib_size(self, node: _AstNode) -> _Est:
        """library CostEstimator.sizeEstimate (no scalar fallback)."""
        computed = node.computed_size()
        if computed is not None:
            return computed
        decl = self._decl_size(node)
        if decl is not None:
            return decl
        return 0, _MAXU

    def ast_node(self, e: _Node) -> _AstNode:
        path = self.paths.get(e.id)
        if path and path[0] == _ACCU:
            path = None
        return _AstNode(path, self.types.get(e.id, DYN), e, self.computed.get(e.id))

    def _list_element_node(self, lst: _AstNode) -> _AstNode | None:
        if lst.type.kind != "list":
            return None
        path = None if lst.path is None else [*lst.path, "@items"]
        return _AstNode(path, lst.type.elem or DYN, None, None)

    # -- cost ------------------------------------------------------------------------------------
    def cost(self, e: _Node) -> _Est:
        if isinstance(e, _Lit):
            return 0, 0
        if isinstance(e, _Ident):
            stack = self.iter_ranges.get(e.name)
            if stack:
                rng = stack[-1]
                kind = self.types.get(rng.id, DYN).kind
                if kind == "list":
                    self.paths[e.id] = [*self.paths.get(rng.id, []), "@items"]
                elif kind == "map":
                    self.paths[e.id] = [*self.paths.get(rng.id, []), "@keys"]
            else:
                self.paths[e.id] = [e.name]
            return 1, 1
        if isinstance(e, _Select):
            if e.test_only:
                return self.cost(e.operand)  # PresenceTestHasCost(false)
            sel = self.cost(e.operand)
            if self.types.get(e.operand.id, DYN).kind in ("map", "object", "param"):
                sel = _add(sel, (1, 1))
            self.paths[e.id] = [*self.paths.get(e.operand.id, []), e.field]
            return sel
        if isinstance(e, _Call):
            return self._cost_call(e)
        total: _Est = (0, 0)
        if isinstance(e, _ListLit):
            for el in e.elems:
                total = _add(total, self.cost(el))
            return _add(total, (_LIST_CREATE_BASE_COST, _LIST_CREATE_BASE_COST))
        if isinstance(e, _MapLit):
            for k, v in e.entries:
                total = _add(_add(total, self.cost(k)), self.cost(v))
            return _add(total, (_MAP_CREATE_BASE_COST, _MAP_CREATE_BASE_COST))
        if isinstance(e, _Comp):
            total = _add(self.cost(e.iter_range), self.cost(e.accu_init))
            self.iter_ranges.setdefault(e.iter_var, []).append(e.iter_range)
            loop = self.cost(e.cond)
            step = self.cost(e.step)
            self.iter_ranges[e.iter_var].pop()
            total = _add(total, self.cost(e.result))
            range_cnt = self.size(self.ast_node(e.iter_range))
            self.computed[e.id] = range_cnt
            return _add(total, _mul(range_cnt, _add(step, loop)))
        return 0, 0

    def _cost_call(self, e: _Call) -> _Est:
        arg_costs = [self.cost(a) for a in e.args]
        arg_nodes = [self.ast_node(a) for a in e.args]
        overload_ids = self.overloads.get(e.id, [])
        if not overload_ids:
            return 0, 0
        total: _Est = (0, 0)
        target: _AstNode | None = None
        if e.target is not None:
            total = _add(total, self.cost(e.target))
            target = self.ast_node(e.target)
        fn_cost: _Est = (_MAXU, 0)
        result_size: _Est | None = None
        for oid in overload_ids:
            est, rsize = self._function_cost(e.fn, oid, target, arg_nodes, arg_costs)
            fn_cost = _union(fn_cost, est)
            if rsize is not None:
                result_size = rsize if result_size is None else _union(result_size, rsize)
            if oid == "index_list" and e.args:
                self.paths[e.id] = [*self.paths.get(e.args[0].id, []), "@items"]
            elif oid == "index_map" and e.args:
                self.paths[e.id] = [*self.paths.get(e.args[0].id, []), "@values"]
        if result_size is not None:
            self.computed[e.id] = result_size
        return _add(total, fn_cost)

    def _function_cost(self, fn: str, oid: str, target: _AstNode | None, args: list[_AstNode],
                       arg_costs: list[_Est]) -> tuple[_Est, _Est | None]:
        arg_sum: _Est = (0, 0)
        for c in arg_costs:
            arg_sum = _add(arg_sum, c)
        lib = self._library_call_cost(fn, oid, target, args)
        if lib is not None:
            return _add(lib[0], arg_sum), lib[1]
        if oid == "string_format" and target is not None:
            return _add(_mulf(self.size(target), _STRING_TRAVERSAL_COST_FACTOR), arg_sum), None
        if oid == "string_to_bytes" and len(args) == 1:
            sz = self.size(args[0])
            return _add(_mulf(sz, _STRING_TRAVERSAL_COST_FACTOR), arg_sum), (sz[0], _sat(sz[1] * 4))
        if oid == "bytes_to_string" and len(args) == 1:
            sz = self.size(args[0])
            return _add(_mulf(sz, _STRING_TRAVERSAL_COST_FACTOR), arg_sum), (sz[0] // 4, sz[1])
        if oid == "strings_quote" and len(args) == 1:
            sz = self.size(args[0])
            return _add(_mulf(sz, _STRING_TRAVERSAL_COST_FACTOR), arg_sum), (sz[0] + 2, _sat(sz[1] * 2 + 2))
        if oid in ("starts_with_string", "ends_with_string") and len(args) == 1:
            return _add(_mulf(self.size(args[0]), _STRING_TRAVERSAL_COST_FACTOR), arg_sum), None
        if oid == "in_list" and len(args) == 2:
            return _add(_mulf(self.size(args[1]), 1), arg_sum), None
        if oid == "matches_string" and target is not None and len(args) == 1:
            str_cost = _mulf(_add(self.size(target), (1, 1)), _STRING_TRAVERSAL_COST_FACTOR)
            regex_cost = _mulf(self.size(args[0]), _REGEX_STRING_LENGTH_COST_FACTOR)
            return _add(_mul(str_cost, regex_cost), arg_sum), None
        if oid == "contains_string" and target is not None and len(args) == 1:
            str_cost = _mulf(self.size(target), _STRING_TRAVERSAL_COST_FACTOR)
            sub_cost = _mulf(self.size(args[0]), _STRING_TRAVERSAL_COST_FACTOR)
            return _add(_mul(str_cost, sub_cost), arg_sum), None
        if oid in ("logical_or", "logical_and"):
            lhs, rhs = arg_costs[0], arg_costs[1]
            return (lhs[0], _sat(lhs[1] + rhs[1])), None
        if oid == "conditional":
            size = _union(self.size(args[1]), self.size(args[2]))
            return _add(arg_costs[0], _union(arg_costs[1], arg_costs[2])), size
        if oid in ("add_string", "add_bytes", "add_list") and len(args) == 2:
            rsize = _add(self.size(args[0]), self.size(args[1]))
            if oid == "add_list":
                return _add((1, 1), arg_sum), rsize
            return _add(_mulf(rsize, _STRING_TRAVERSAL_COST_FACTOR), arg_sum), rsize
        if oid in ("less_string", "greater_string", "less_equals_string", "greater_equals_string",
                   "less_bytes", "greater_bytes", "less_equals_bytes", "greater_equals_bytes", "equals",
                   "not_equals"):
            lhs, rhs = self.size(args[0]), self.size(args[1])
            smallest_max = min(lhs[1], rhs[1])
            lo = 1 if smallest_max > 0 else 0
            return _add(_mulf((lo, smallest_max), _STRING_TRAVERSAL_COST_FACTOR), arg_sum), None
        return _add((1, 1), arg_sum), None

    def _library_call_cost(self, fn: str, oid: str, target: _AstNode | None,
                           args: list[_AstNode]) -> tuple[_Est, _Est | None] | None:
        """apiserver/pkg/cel/library/cost.go EstimateCallCost."""
        tf = _STRING_TRAVERSAL_COST_FACTOR
        if fn in ("isSorted", "sum", "max", "min", "indexOf", "lastIndexOf"):
            if target is None:
                return None
            elem = self._list_element_node(target)
            if elem is not None:
                el_cost: _Est = (1, 1)
                if elem.type.kind in ("string", "bytes"):
                    el_cost = _add(el_cost, _mulf(self.lib_size(elem), tf))
                return _mul(self.lib_size(target), el_cost), None
            return _mulf(self.lib_size(target), tf), None
        if fn == "url" and len(args) == 1:
            sz = self.lib_size(args[0])
            return _mulf(sz, tf), sz
        if fn in ("lowerAscii", "upperAscii", "substring", "trim") and target is not None:
            sz = self.lib_size(target)
            return _mulf(sz, tf), sz
        if fn == "replace" and target is not None and len(args) >= 2:
            sz = self.lib_size(target)
            to_replace = self.lib_size(args[0])
            replace_with = self.lib_size(args[1])
            if to_replace[0] == 0:
                cnt_max = sz[1] + 1 if sz[1] < _MAXU else sz[1]
                retained_max = sz[1]
            elif replace_with[1] <= to_replace[0]:
                cnt_max, retained_max = 0, sz[1]
            else:
                cnt_max, retained_max = math.ceil(sz[1] / to_replace[0]), 0
            if to_replace[1] == 0:
                cnt_min = sz[0] + 1 if sz[0] < _MAXU else sz[0]
                retained_min = sz[0]
            elif to_replace[1] <= replace_with[0]:
                cnt_min, retained_min = 0, sz[0]
            else:
                cnt_min, retained_min = math.ceil(sz[0] / to_replace[1]), 0
            size = _add(_mul((cnt_min, cnt_max), replace_with), (retained_min, retained_max))
            return _mulf(sz, 2 * tf), size
        if fn == "split" and target is not None:
            sz = self.lib_size(target)
            mx = sz[1]
            if len(args) > 1 and isinstance(args[1].expr, _Lit) and args[1].expr.lit_kind == "int":
                mx = int(args[1].expr.value)
            return _mulf(sz, 2 * tf), (0, max(mx, 0))
        if fn == "join" and target is not None:
            joined: _Est = (0, 0)
            list_size = self.lib_size(target)
            elem = self._list_element_node(target)
            if elem is not None:
                joined = _mul(list_size, self.lib_size(elem))
            if args:
                sep = self.lib_size(args[0])
                seps = (max(list_size[0] - 1, 0), max(list_size[1] - 1, 0) if list_size[1] < _MAXU else _MAXU)
                joined = _add(joined, _mul(sep, seps))
            return _mulf(joined, tf), joined
        if fn in ("find", "findAll") and target is not None and args:
            sz = self.lib_size(target)
            str_cost = _mulf(_add(sz, (1, 1)), tf)
            regex_cost = _mulf(self.lib_size(args[0]), _REGEX_STRING_LENGTH_COST_FACTOR)
            return _mul(str_cost, regex_cost), (0, sz[1])
        if fn in ("cidr", "isIP", "isCIDR", "quantity", "isQuantity") and args:
            return _mulf(self.lib_size(args[0]), tf), None
        if fn == "ip":
            if oid == "cidr_ip" or not args:
                return (1, 1), None
            return _mulf(self.lib_size(args[0]), tf), None
        if fn == "ip.isCanonical" and args:
            return _mulf(self.lib_size(args[0]), 2 * tf), None
        if fn in ("masked", "prefixLength", "family", "isUnspecified", "isLoopback", "isLinkLocalMulticast",
                  "isLinkLocalUnicast", "isGlobalUnicast"):
            return (1, 1), None
        if fn in ("containsIP", "containsCIDR") and target is not None and args:
            ip_cost = _mulf((8, 32), tf)
            if fn == "containsCIDR":
                ip_cost = _add(_add(ip_cost, _mulf((4, 16), tf)), (1, 1))
            if oid.endswith("_string"):
                ip_cost = _add(ip_cost, _mulf(self.lib_size(args[0]), tf))
            return ip_cost, None
        if fn in ("sign", "asInteger", "isInteger", "asApproximateFloat", "isGreaterThan", "isLessThan",
                  "compareTo", "add", "sub", "getScheme", "getHostname", "getHost", "getPort",
                  "getEscapedPath", "getQuery"):
            return (1, 1), None
        if fn == "_==_" and len(args) == 2:
            lt, rt = args[0].type, args[1].type
            if lt.kind == rt.kind and lt.kind in ("ip", "cidr", "quantity"):
                return (1, 1), None
            if lt.kind == rt.kind == "url":
                rs = args[1].computed_size()
                size = (1, 1) if rs is None else _union(rs, rs)
                return _mulf((1, size[1]), tf), None
        return None


def _estimate(root: _Node, checker: _Checker, decl: CelType | None) -> int:
    return _Coster(checker, decl).cost(root)[1]


def cost_error_message(cost_name: str, cost: int, limit: int) -> str:
    """apiextensions validation.go getCostErrorMessage."""
    factor_value = cost / limit
    if factor_value > 100.0:
        factor = "more than 100x"
    elif factor_value < 1.5:
        factor = f"{factor_value:f}x"
    else:
        factor = f"{factor_value:.1f}x"
    return (f"{cost_name} exceeds budget by factor of {factor} (try simplifying the rule, or adding maxItems, "
            "maxProperties, and maxLength where arrays, maps, and strings are declared)")


def multiply_with_overflow_guard(base: int, cardinality: int) -> int:
    if base == 0:
        return 0
    return min(base * cardinality, _MAXU)


# --------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------

def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool | CelUint)


def _is_num(v: Any) -> TypeGuard[int | float]:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _int(x: int) -> int:
    if not _INT64_MIN <= x <= _INT64_MAX:
        raise CelEvalError("integer overflow")
    return x


def _uint(x: int) -> CelUint:
    if not 0 <= x <= _UINT64_MAX:
        raise CelEvalError("unsigned integer overflow")
    return CelUint(x)


def _no_overload() -> CelEvalError:
    return CelEvalError("no such overload")


def _type_name(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, CelUint):
        return "uint"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "double"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bytes):
        return "bytes"
    if v is None:
        return "null_type"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "map"
    if isinstance(v, Duration):
        return "google.protobuf.Duration"
    if isinstance(v, Timestamp):
        return "google.protobuf.Timestamp"
    if isinstance(v, TypeValue):
        return "type"
    if isinstance(v, URLValue):
        return "kubernetes.URL"
    if isinstance(v, Quantity):
        return "kubernetes.Quantity"
    if isinstance(v, IPValue):
        return "net.IP"
    if isinstance(v, CIDRValue):
        return "net.CIDR"
    return "unknown"


def _num_eq(a: int | float, b: int | float) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        fa, fb = float(a), float(b)
        if math.isnan(fa) or math.isnan(fb):
            return False
        if math.isinf(fa) or math.isinf(fb):
            return fa == fb
        return Fraction(a) == Fraction(b)
    return int(a) == int(b)


def _hashable(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _map_list_key(el: Any, keys: Sequence[str]) -> Any:
    if not isinstance(el, dict):
        return ("?", id(el))
    return tuple(_hashable(el.get(k)) for k in keys)


def cel_equal(a: Any, b: Any) -> bool | CelErr:
    """CEL (heterogeneous) equality with the Kubernetes list-type semantics."""
    if isinstance(a, CelErr):
        return a
    if isinstance(b, CelErr):
        return b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_num(a) and _is_num(b):
        return _num_eq(a, b)
    if isinstance(a, list):
        if not isinstance(b, list):
            return False
        if len(a) != len(b):
            return False
        if isinstance(a, CelList) and a.list_type == "set":
            seen = {_hashable(x) for x in a}
            return all(_hashable(x) in seen for x in b)
        if isinstance(a, CelList) and a.list_type == "map" and a.map_keys:
            by_key = {_map_list_key(x, a.map_keys): x for x in a}
            for x in b:
                k = _map_list_key(x, a.map_keys)
                if k not in by_key:
                    return False
                r = cel_equal(by_key[k], x)
                if r is not True:
                    return r
            return True
        for x, y in zip(a, b, strict=True):
            r = cel_equal(x, y)
            if r is not True:
                return r
        return True
    if isinstance(a, dict):
        if not isinstance(b, dict) or len(a) != len(b):
            return False
        for k, v in a.items():
            if k not in b:
                return False
            r = cel_equal(v, b[k])
            if r is not True:
                return r
        return True
    if isinstance(a, Quantity) and isinstance(b, Quantity):
        return a.value == b.value
    if isinstance(a, URLValue) and isinstance(b, URLValue):
        return a.raw == b.raw
    if type(a) is not type(b):
        return False
    return bool(a == b)


def _compare(a: Any, b: Any) -> int:
    if _is_num(a) and _is_num(b):
        if (isinstance(a, float) and math.isnan(a)) or (isinstance(b, float) and math.isnan(b)):
            raise CelEvalError("NaN values cannot be ordered")
        fa = Fraction(a) if not (isinstance(a, float) and math.isinf(a)) else a
        fb = Fraction(b) if not (isinstance(b, float) and math.isinf(b)) else b
        return (fa > fb) - (fa < fb)
    for kind in (bool, str, bytes, Timestamp, Duration):
        if isinstance(a, kind) and isinstance(b, kind):
            return (a > b) - (a < b)  # type: ignore[operator]
    raise _no_overload()


def _list_add(a: list[Any], b: list[Any]) -> CelList:
    if isinstance(a, CelList) and a.list_type == "set":
        out = CelList(a, "set", from_schema=a.from_schema)
        seen = {_hashable(x) for x in a}
        for x in b:
            h = _hashable(x)
            if h not in seen:
                seen.add(h)
                out.append(x)
        return out
    if isinstance(a, CelList) and a.list_type == "map" and a.map_keys:
        out = CelList(a, "map", a.map_keys, from_schema=a.from_schema)
        index = {_map_list_key(x, a.map_keys): i for i, x in enumerate(out)}
        for x in b:
            k = _map_list_key(x, a.map_keys)
            if k in index:
                out[index[k]] = x
            else:
                index[k] = len(out)
                out.append(x)
        return out
    base = a if isinstance(a, CelList) else None
    return CelList([*a, *b], from_schema=bool(base and base.from_schema))


def _op_add(a: Any, b: Any) -> Any:
    if _is_int(a) and _is_int(b):
        return _int(a + b)
    if isinstance(a, CelUint) and isinstance(b, CelUint):
        return _uint(a + b)
    if isinstance(a, float) and isinstance(b, float):
        return a + b
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    if isinstance(a, bytes) and isinstance(b, bytes):
        return a + b
    if isinstance(a, list) and isinstance(b, list):
        return _list_add(a, b)
    if isinstance(a, Duration) and isinstance(b, Duration):
        return _check_duration(a.nanos + b.nanos)
    if isinstance(a, Timestamp) and isinstance(b, Duration):
        return _check_timestamp(a.nanos + b.nanos)
    if isinstance(a, Duration) and isinstance(b, Timestamp):
        return _check_timestamp(a.nanos + b.nanos)
    raise _no_overload()


def _op_sub(a: Any, b: Any) -> Any:
    if _is_int(a) and _is_int(b):
        return _int(a - b)
    if isinstance(a, CelUint) and isinstance(b, CelUint):
        return _uint(a - b)
    if isinstance(a, float) and isinstance(b, float):
        return a - b
    if isinstance(a, Duration) and isinstance(b, Duration):
        return _check_duration(a.nanos - b.nanos)
    if isinstance(a, Timestamp) and isinstance(b, Duration):
        return _check_timestamp(a.nanos - b.nanos)
    if isinstance(a, Timestamp) and isinstance(b, Timestamp):
        return _check_duration(a.nanos - b.nanos)
    raise _no_overload()


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _op_mul(a: Any, b: Any) -> Any:
    if _is_int(a) and _is_int(b):
        return _int(a * b)
    if isinstance(a, CelUint) and isinstance(b, CelUint):
        return _uint(a * b)
    if isinstance(a, float) and isinstance(b, float):
        return a * b
    raise _no_overload()


def _op_div(a: Any, b: Any) -> Any:
    if _is_int(a) and _is_int(b):
        if b == 0:
            raise CelEvalError("division by zero")
        if a == _INT64_MIN and b == -1:
            raise CelEvalError("integer overflow")
        return _trunc_div(a, b)
    if isinstance(a, CelUint) and isinstance(b, CelUint):
        if b == 0:
            raise CelEvalError("division by zero")
        return CelUint(a // b)
    if isinstance(a, float) and isinstance(b, float):
        if b == 0:
            if a == 0 or math.isnan(a):
                return math.nan
            return math.copysign(math.inf, a) * math.copysign(1.0, b)
        return a / b
    raise _no_overload()


def _op_mod(a: Any, b: Any) -> Any:
    if _is_int(a) and _is_int(b):
        if b == 0:
            raise CelEvalError("modulus by zero")
        if a == _INT64_MIN and b == -1:
            raise CelEvalError("integer overflow")
        return a - b * _trunc_div(a, b)
    if isinstance(a, CelUint) and isinstance(b, CelUint):
        if b == 0:
            raise CelEvalError("modulus by zero")
        return CelUint(a % b)
    raise _no_overload()


def _op_neg(a: Any) -> Any:
    if _is_int(a):
        return _int(-a)
    if isinstance(a, float):
        return -a
    raise _no_overload()


def _op_in(item: Any, container: Any) -> Any:
    if isinstance(container, list):
        err: CelErr | None = None
        for x in container:
            r = cel_equal(x, item)
            if r is True:
                return True
            if isinstance(r, CelErr) and err is None:
                err = r
        if err is not None:
            return err
        return False
    if isinstance(container, dict):
        if isinstance(item, str):
            return item in container
        if _is_num(item):
            return any(_is_num(k) and _num_eq(k, item) for k in container)
        try:
            return item in container
        except TypeError:
            return False
    raise _no_overload()


def _op_index(container: Any, index: Any) -> Any:
    if isinstance(container, list):
        if isinstance(index, float) and index.is_integer():
            index = int(index)
        if not _is_num(index) or isinstance(index, float):
            raise CelEvalError(f"unsupported index: {index}")
        i = int(index)
        if i < 0 or i >= len(container):
            if isinstance(container, CelList) and container.from_schema:
                raise CelEvalError(f"index out of bounds: {i}")
            raise CelEvalError(f"index '{i}' out of range in list size '{len(container)}'")
        return container[i]
    if isinstance(container, dict):
        if isinstance(index, str) and index in container:
            return container[index]
        if _is_num(index):
            for k, v in container.items():
                if _is_num(k) and _num_eq(k, index):
                    return v
        elif not isinstance(index, str | bool | None):
            raise _no_overload()
        elif index in container:
            return container[index]
        raise CelEvalError(f"no such key: {_fmt_key(index)}")
    raise _no_overload()


def _fmt_key(k: Any) -> str:
    if isinstance(k, bool):
        return "true" if k else "false"
    if isinstance(k, float):
        return go_format_float(k)
    return str(k)


def _size(v: Any) -> int:
    if isinstance(v, str | bytes | list | dict):
        return len(v)
    raise _no_overload()


_GO_SPACE: Final = frozenset("\t\n\v\f\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
                             "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def _go_trim_space(s: str) -> str:
    start, end = 0, len(s)
    while start < end and s[start] in _GO_SPACE:
        start += 1
    while end > start and s[end - 1] in _GO_SPACE:
        end -= 1
    return s[start:end]


def _ascii_case(s: str, upper: bool) -> str:
    return "".join((c.upper() if upper else c.lower()) if ord(c) < 128 else c for c in s)


def _index_of(s: str, sub: str, offset: int) -> int:
    if sub == "":
        return offset
    if offset < 0:
        raise CelEvalError(f"index out of range: {offset}")
    if offset >= len(s):
        return -1
    return s.find(sub, offset)


def _last_index_of(s: str, sub: str, offset: int) -> int:
    if sub == "":
        return offset
    if offset < 0:
        raise CelEvalError(f"index out of range: {offset}")
    if offset >= len(s):
        return -1
    off = min(offset, len(s) - len(sub))
    for i in range(off, -1, -1):
        if s[i:i + len(sub)] == sub:
            return i
    return -1


def _go_split(s: str, sep: str, n: int = -1) -> list[str]:
    if n == 0:
        return []
    if sep == "":
        chars = list(s)
        if n > 0 and len(chars) > n:
            return [*chars[:n - 1], "".join(chars[n - 1:])]
        return chars
    if n < 0:
        return s.split(sep)
    return s.split(sep, n - 1)


def _go_replace(s: str, old: str, new: str, n: int = -1) -> str:
    if n == 0:
        return s
    return s.replace(old, new, n if n > 0 else -1)


def _cel_quote(s: str) -> str:
    escapes = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               "\\": "\\\\", '"': '\\"'}
    return '"' + "".join(escapes.get(c, c) for c in s) + '"'


def _to_string(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return go_format_float(v)
    if isinstance(v, str):
        return v
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            raise CelEvalError("invalid UTF-8 in bytes, cannot convert to string") from None
    if isinstance(v, Timestamp | Duration | IPValue | CIDRValue):
        return str(v)
    raise _no_overload()


def _format_value(v: Any) -> str:
    """%s of string.format()."""
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return "[" + ", ".join(_format_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_format_value(k)}: {_format_value(x)}" for k, x in v.items()) + "}"
    if v is None:
        return "null"
    if isinstance(v, TypeValue):
        return v.name
    return _to_string(v)


def _string_format(fmt: str, args: list[Any]) -> str:
    out: list[str] = []
    i = 0
    argi = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        i += 1
        if i < len(fmt) and fmt[i] == "%":
            out.append("%")
            i += 1
            continue
        prec: int | None = None
        if i < len(fmt) and fmt[i] == ".":
            j = i + 1
            while j < len(fmt) and fmt[j].isdigit():
                j += 1
            prec = int(fmt[i + 1:j] or "0")
            i = j
        if i >= len(fmt):
            raise CelEvalError("could not parse formatting clause: unexpected end of string")
        verb = fmt[i]
        i += 1
        if argi >= len(args):
            raise CelEvalError(f"index {argi} out of range")
        arg = args[argi]
        argi += 1
        if verb == "s":
            out.append(_format_value(arg))
        elif verb == "d":
            if not isinstance(arg, int) or isinstance(arg, bool):
                raise CelEvalError("error during formatting: decimal clause can only be used on integers, "
                                   f"was given {_type_name(arg)}")
            out.append(str(int(arg)))
        elif verb in "fe":
            if not _is_num(arg):
                raise CelEvalError(f"error during formatting: fixed-point clause can only be used on doubles, "
                                   f"was given {_type_name(arg)}")
            out.append(f"{float(arg):.{6 if prec is None else prec}{verb}}")
        elif verb in "xXob":
            if isinstance(arg, str | bytes):
                data = arg.encode("utf-8") if isinstance(arg, str) else arg
                text = data.hex()
                out.append(text.upper() if verb == "X" else text)
            elif _is_num(arg) and not isinstance(arg, float):
                base = {"x": "x", "X": "X", "o": "o", "b": "b"}[verb]
                out.append(format(int(arg), base))
            else:
                raise CelEvalError(f"error during formatting: only integers, byte buffers, and strings can be "
                                   f"formatted as hex, was given {_type_name(arg)}")
        else:
            raise CelEvalError(f"could not parse formatting clause: unrecognized formatting clause \"{verb}\"")
    if argi < len(args):
        raise CelEvalError(f"too many arguments supplied to string.format (expected {argi}, got {len(args)})")
    return "".join(out)


def _parse_bool(s: str) -> bool:
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise CelEvalError(f'strconv.ParseBool: parsing {go_quote(s)}: invalid syntax')


def _convert(fn: str, v: Any) -> Any:
    if fn == "int":
        if _is_int(v):
            return v
        if isinstance(v, CelUint):
            return _int(int(v))
        if isinstance(v, float):
            if math.isnan(v) or math.isinf(v) or not (-(2.0**63) <= v < 2.0**63):
                raise CelEvalError("integer overflow")
            return _int(int(v))
        if isinstance(v, str):
            if not re.fullmatch(r"[+-]?[0-9]+", v):
                raise CelEvalError(f"strconv.ParseInt: parsing {go_quote(v)}: invalid syntax")
            n = int(v)
            if not _INT64_MIN <= n <= _INT64_MAX:
                raise CelEvalError(f"strconv.ParseInt: parsing {go_quote(v)}: value out of range")
            return n
        if isinstance(v, Timestamp):
            return v.nanos // 1_000_000_000
    elif fn == "uint":
        if isinstance(v, CelUint):
            return v
        if _is_int(v):
            return _uint(v)
        if isinstance(v, float):
            if math.isnan(v) or math.isinf(v) or not (0 <= v < 2.0**64):
                raise CelEvalError("unsigned integer overflow")
            return _uint(int(v))
        if isinstance(v, str):
            if not re.fullmatch(r"[+]?[0-9]+", v):
                raise CelEvalError(f"strconv.ParseUint: parsing {go_quote(v)}: invalid syntax")
            n = int(v)
            if n > _UINT64_MAX:
                raise CelEvalError(f"strconv.ParseUint: parsing {go_quote(v)}: value out of range")
            return CelUint(n)
    elif fn == "double":
        if isinstance(v, float):
            return v
        if _is_num(v):
            return float(v)
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                raise CelEvalError(f"strconv.ParseFloat: parsing {go_quote(v)}: invalid syntax") from None
    elif fn == "string":
        return _to_string(v)
    elif fn == "bytes":
        if isinstance(v, bytes):
            return v
        if isinstance(v, str):
            return v.encode("utf-8")
    elif fn == "bool":
        if isinstance(v, bool):
            return v
        if isinstance(v, str):
            return _parse_bool(v)
    elif fn == "duration":
        if isinstance(v, Duration):
            return v
        if isinstance(v, str):
            try:
                return _check_duration(parse_go_duration(v))
            except ValueError:
                raise CelEvalError("type conversion error from 'string' to 'google.protobuf.Duration'") from None
    elif fn == "timestamp":
        if isinstance(v, Timestamp):
            return v
        if isinstance(v, str):
            try:
                return _check_timestamp(parse_rfc3339(v))
            except ValueError:
                raise CelEvalError("type conversion error from 'string' to 'google.protobuf.Timestamp'") from None
        if _is_int(v):
            return _check_timestamp(v * 1_000_000_000)
    raise _no_overload()


def _ts_getter(fn: str, ts: Timestamp, tz: str | None) -> int:
    when, frac = _civil(ts, tz)
    if fn == "getFullYear":
        return when.year
    if fn == "getMonth":
        return when.month - 1
    if fn == "getDayOfYear":
        return when.timetuple().tm_yday - 1
    if fn == "getDayOfMonth":
        return when.day - 1
    if fn == "getDate":
        return when.day
    if fn == "getDayOfWeek":
        return (when.weekday() + 1) % 7
    if fn == "getHours":
        return when.hour
    if fn == "getMinutes":
        return when.minute
    if fn == "getSeconds":
        return when.second
    return frac // 1_000_000


def _dur_getter(fn: str, d: Duration) -> int:
    div = {"getHours": 3_600_000_000_000, "getMinutes": 60_000_000_000, "getSeconds": 1_000_000_000,
           "getMilliseconds": 1_000_000}[fn]
    return _trunc_div(d.nanos, div)


def _list_cmp(values: list[Any], fn: str) -> Any:
    if not values:
        raise CelEvalError(f"{fn} called on empty list")
    best = values[0]
    for v in values[1:]:
        c = _compare(best, v)
        if (fn == "min" and c == 1) or (fn == "max" and c == -1):
            best = v
    return best


def _list_sum(values: list[Any], zero: Any) -> Any:
    acc = zero
    for v in values:
        acc = _op_add(acc, v)
    return acc


_SUM_ZEROS: Final = {"int": 0, "uint": CelUint(0), "double": 0.0, "duration": Duration(0)}


def _url_escaped_path(u: URLValue) -> str:
    raw = u.raw_path
    if raw and urllib.parse.unquote(raw) == u.path and not re.search(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]", raw):
        return raw
    return urllib.parse.quote(u.path, safe="/!$&'()*+,;=:@")


def _url_query(u: URLValue) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in u.query.split("&") if u.query else []:
        if not part:
            continue
        k, _, v = part.partition("=")
        key = urllib.parse.unquote_plus(k)
        out.setdefault(key, CelList()).append(urllib.parse.unquote_plus(v))
    return out


def _quantity_int(q: Quantity) -> int:
    if q.value.denominator != 1 or not _INT64_MIN <= q.value.numerator <= _INT64_MAX:
        raise CelEvalError("cannot convert value to integer")
    return q.value.numerator


def _call_impl(fn: str, oids: list[str], args: list[Any], member: bool) -> Any:
    """Apply function `fn`; `args[0]` is the receiver for member calls."""
    a0: Any = args[0] if args else None
    if fn == "_==_":
        return cel_equal(args[0], args[1])
    if fn == "_!=_":
        r = cel_equal(args[0], args[1])
        return r if isinstance(r, CelErr) else not r
    if fn in ("_<_", "_<=_", "_>_", "_>=_"):
        c = _compare(args[0], args[1])
        return {"_<_": c < 0, "_<=_": c <= 0, "_>_": c > 0, "_>=_": c >= 0}[fn]
    if fn == "_+_":
        return _op_add(args[0], args[1])
    if fn == "_-_":
        return _op_sub(args[0], args[1])
    if fn == "_*_":
        return _op_mul(args[0], args[1])
    if fn == "_/_":
        return _op_div(args[0], args[1])
    if fn == "_%_":
        return _op_mod(args[0], args[1])
    if fn == "-_":
        return _op_neg(a0)
    if fn == "!_":
        if isinstance(a0, bool):
            return not a0
        raise _no_overload()
    if fn == "@in":
        return _op_in(args[0], args[1])
    if fn == "_[_]":
        return _op_index(args[0], args[1])
    if fn == "size":
        return _size(a0)
    if fn in ("int", "uint", "double", "string", "bytes", "bool", "duration", "timestamp") and len(args) == 1:
        if fn == "string" and isinstance(a0, IPValue | CIDRValue):
            return str(a0)
        return _convert(fn, a0)
    if fn == "dyn":
        return a0
    if fn == "type":
        return TypeValue(_type_name(a0))
    if fn == "matches":
        if not (isinstance(args[0], str) and isinstance(args[1], str)):
            raise _no_overload()
        try:
            return regex_search(args[1], args[0])
        except RegexError as exc:
            raise CelEvalError(str(exc)) from None
    if fn in ("contains", "startsWith", "endsWith"):
        if not (isinstance(args[0], str) and isinstance(args[1], str)):
            raise _no_overload()
        s, t = args[0], args[1]
        return t in s if fn == "contains" else (s.startswith(t) if fn == "startsWith" else s.endswith(t))
    if fn in ("getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek",
              "getHours", "getMinutes", "getSeconds", "getMilliseconds"):
        if isinstance(a0, Timestamp):
            tz = args[1] if len(args) > 1 else None
            return _ts_getter(fn, a0, tz)
        if isinstance(a0, Duration) and len(args) == 1 and fn in ("getHours", "getMinutes", "getSeconds",
                                                                  "getMilliseconds"):
            return _dur_getter(fn, a0)
        raise _no_overload()
    # strings extension
    if fn == "charAt" and isinstance(a0, str):
        i = int(args[1])
        if i < 0 or i > len(a0):
            raise CelEvalError(f"index out of range: {i}")
        return a0[i] if i < len(a0) else ""
    if fn in ("indexOf", "lastIndexOf") and isinstance(a0, str):
        sub = args[1]
        if fn == "indexOf":
            return _index_of(a0, sub, int(args[2]) if len(args) > 2 else 0)
        if len(args) > 2:
            return _last_index_of(a0, sub, int(args[2]))
        return len(a0) if sub == "" else _last_index_of(a0, sub, len(a0) - 1)
    if fn == "lowerAscii":
        return _ascii_case(a0, False)
    if fn == "upperAscii":
        return _ascii_case(a0, True)
    if fn == "trim":
        return _go_trim_space(a0)
    if fn == "replace":
        return _go_replace(a0, args[1], args[2], int(args[3]) if len(args) > 3 else -1)
    if fn == "split":
        return CelList(_go_split(a0, args[1], int(args[2]) if len(args) > 2 else -1))
    if fn == "substring":
        start = int(args[1])
        if len(args) == 2:
            if start < 0 or start > len(a0):
                raise CelEvalError(f"index out of range: {start}")
            return a0[start:]
        end = int(args[2])
        if start > end:
            raise CelEvalError(f"invalid substring range. start: {start}, end: {end}")
        if start < 0 or start > len(a0):
            raise CelEvalError(f"index out of range: {start}")
        if end < 0 or end > len(a0):
            raise CelEvalError(f"index out of range: {end}")
        return a0[start:end]
    if fn == "join":
        sep = args[1] if len(args) > 1 else ""
        for el in a0:
            if not isinstance(el, str):
                raise CelEvalError(f"join: invalid input: {el}")
        return sep.join(a0)
    if fn == "format":
        return _string_format(a0, list(args[1]))
    if fn == "strings.quote":
        return _cel_quote(a0)
    # sets
    if fn in ("sets.contains", "sets.equivalent", "sets.intersects"):
        left, right = args[0], args[1]

        def contains_all(xs: list[Any], ys: list[Any]) -> bool:
            return all(any(cel_equal(x, y) is True for x in xs) for y in ys)
        if fn == "sets.contains":
            return contains_all(left, right)
        if fn == "sets.equivalent":
            return contains_all(left, right) and contains_all(right, left)
        return any(cel_equal(x, y) is True for x in left for y in right)
    # lists library
    if fn == "isSorted" and isinstance(a0, list):
        return all(_compare(a0[i], a0[i + 1]) != 1 for i in range(len(a0) - 1))
    if fn == "sum" and isinstance(a0, list):
        zero: Any = 0
        for oid in oids:
            name = oid.split("_")[1]
            if name in _SUM_ZEROS:
                zero = _SUM_ZEROS[name]
                break
        if a0:
            first = a0[0]
            zero = {int: 0, CelUint: CelUint(0), float: 0.0, Duration: Duration(0)}.get(type(first), zero)
        return _list_sum(a0, zero)
    if fn in ("min", "max") and isinstance(a0, list):
        return _list_cmp(a0, fn)
    if fn in ("indexOf", "lastIndexOf") and isinstance(a0, list):
        rng = range(len(a0)) if fn == "indexOf" else range(len(a0) - 1, -1, -1)
        for i in rng:
            if cel_equal(a0[i], args[1]) is True:
                return i
        return -1
    # regex library
    if fn in ("find", "findAll") and isinstance(a0, str):
        try:
            if fn == "find":
                found = _regex_find_all(args[1], a0, 1)
                return found[0] if found else ""
            return CelList(_regex_find_all(args[1], a0, int(args[2]) if len(args) > 2 else -1))
        except RegexError as exc:
            raise CelEvalError(f"Illegal regex: {str(exc).removeprefix('error parsing regexp: ')}") from None
    # urls library
    if fn == "url":
        try:
            return parse_request_uri(a0)
        except CelEvalError as exc:
            raise CelEvalError(f"URL parse error during conversion from string: {exc.message}") from None
    if fn == "isURL":
        try:
            parse_request_uri(a0)
        except CelEvalError:
            return False
        return True
    if isinstance(a0, URLValue):
        if fn == "getScheme":
            return a0.scheme
        if fn == "getHost":
            return a0.host
        if fn == "getHostname":
            return a0.hostname()
        if fn == "getPort":
            return a0.port()
        if fn == "getEscapedPath":
            return _url_escaped_path(a0)
        if fn == "getQuery":
            return _url_query(a0)
    # quantity library
    if fn == "quantity":
        return parse_quantity(a0)
    if fn == "isQuantity":
        try:
            parse_quantity(a0)
        except CelEvalError:
            return False
        return True
    if isinstance(a0, Quantity):
        other: Any = args[1] if len(args) > 1 else 0
        if fn == "sign":
            return (a0.value > 0) - (a0.value < 0)
        if fn == "isInteger":
            return a0.value.denominator == 1 and _INT64_MIN <= a0.value.numerator <= _INT64_MAX
        if fn == "asInteger":
            return _quantity_int(a0)
        if fn == "asApproximateFloat":
            return float(a0.value)
        if fn in ("add", "sub"):
            delta = other.value if isinstance(other, Quantity) else Fraction(int(other))
            value = a0.value + delta if fn == "add" else a0.value - delta
            return Quantity(value, str(value))
        if fn in ("isLessThan", "isGreaterThan", "compareTo") and isinstance(other, Quantity):
            c = (a0.value > other.value) - (a0.value < other.value)
            return c if fn == "compareTo" else (c < 0 if fn == "isLessThan" else c > 0)
    # IP and CIDR libraries
    if fn == "isIP":
        try:
            parse_ip(a0)
        except CelEvalError:
            return False
        return True
    if fn == "ip" and isinstance(a0, str):
        return parse_ip(a0)
    if fn == "ip.isCanonical":
        return str(parse_ip(a0).addr) == a0
    if isinstance(a0, IPValue):
        addr = a0.addr
        if fn == "family":
            return addr.version
        if fn == "isUnspecified":
            return addr.is_unspecified
        if fn == "isLoopback":
            return addr.is_loopback
        if fn == "isLinkLocalMulticast":
            return addr.is_multicast and (addr in ipaddress.ip_network("224.0.0.0/24") if addr.version == 4
                                          else (int(addr) >> 112) & 0xFF0F == 0xFF02)
        if fn == "isLinkLocalUnicast":
            return addr.is_link_local and not addr.is_multicast
        if fn == "isGlobalUnicast":
            return not (addr.is_unspecified or addr.is_loopback or addr.is_multicast or addr.is_link_local
                        or (addr.version == 4 and int(addr) == 0xFFFFFFFF))
    if fn == "isCIDR":
        try:
            parse_cidr(a0)
        except CelEvalError:
            return False
        return True
    if fn == "cidr":
        return parse_cidr(a0)
    if isinstance(a0, CIDRValue):
        if fn == "ip":
            return IPValue(a0.addr)
        if fn == "masked":
            return CIDRValue(a0.network().network_address, a0.prefix)
        if fn == "prefixLength":
            return a0.prefix
        if fn == "containsIP":
            ip = parse_ip(args[1]) if isinstance(args[1], str) else args[1]
            return ip.addr.version == a0.addr.version and ip.addr in a0.network()
        if fn == "containsCIDR":
            other_c = parse_cidr(args[1]) if isinstance(args[1], str) else args[1]
            return (other_c.addr.version == a0.addr.version and other_c.prefix >= a0.prefix
                    and other_c.network().subnet_of(a0.network()))  # type: ignore[arg-type]
    raise _no_overload()


def _runtime_call_cost(fn: str, args: list[Any], result: Any) -> int:
    """Approximation of cel-go's actual cost plus library/cost.go CallCost."""
    def size(v: Any) -> int:
        return len(v) if isinstance(v, str | bytes | list | dict) else 1
    tf = _STRING_TRAVERSAL_COST_FACTOR
    if fn in ("matches", "find", "findAll") and len(args) >= 2:
        text, pattern = (args[0], args[1])
        return math.ceil((1 + size(text)) * tf) * math.ceil(size(pattern) * _REGEX_STRING_LENGTH_COST_FACTOR)
    if fn == "contains" and len(args) == 2:
        return max(1, math.ceil(size(args[0]) * tf) * math.ceil(size(args[1]) * tf))
    if fn in ("startsWith", "endsWith") and len(args) == 2:
        return max(1, math.ceil(size(args[1]) * tf))
    if fn in ("lowerAscii", "upperAscii", "substring", "trim", "url", "quantity", "isQuantity", "isIP",
              "isCIDR", "cidr") and args:
        return math.ceil(size(args[0]) * tf)
    if fn in ("replace", "split") and args:
        return math.ceil(size(args[0]) * 2 * tf)
    if fn == "join":
        return math.ceil(size(result) * 2 * tf)
    if fn in ("isSorted", "sum", "max", "min", "indexOf", "lastIndexOf") and args:
        v = args[0]
        if isinstance(v, list):
            return sum(math.ceil(size(x) * tf) if isinstance(x, str | bytes) else 1 for x in v)
        return math.ceil(size(v) * tf)
    if fn in ("_==_", "_!=_") and len(args) == 2 and isinstance(args[0], str | bytes):
        return max(1, math.ceil(min(size(args[0]), size(args[1])) * tf))
    if fn == "_+_" and len(args) == 2 and isinstance(args[0], str | bytes):
        return max(1, math.ceil((size(args[0]) + size(args[1])) * tf))
    if fn == "@in" and len(args) == 2 and isinstance(args[1], list):
        return max(1, len(args[1]))
    return 1


class _Evaluator:
    def __init__(self, overloads: dict[int, list[str]], activation: dict[str, Any], limit: int) -> None:
        self.overloads = overloads
        self.scopes: list[dict[str, Any]] = [activation]
        self.cost = 0
        self.limit = limit

    def charge(self, amount: int) -> None:
        self.cost += amount
        if self.cost > self.limit:
            raise _CostExceeded

    def ev(self, n: _Node) -> Any:
        if isinstance(n, _Lit):
            return n.value
        if isinstance(n, _Ident):
            self.charge(1)
            for scope in reversed(self.scopes):
                if n.name in scope:
                    return scope[n.name]
            if n.name in _TYPE_IDENTS:
                return TypeValue({"null_type": "null_type"}.get(n.name, n.name))
            return CelErr(f"no such attribute: {n.name}")
        if isinstance(n, _Select):
            v = self.ev(n.operand)
            if isinstance(v, CelErr):
                return v
            if n.test_only:
                if isinstance(v, dict):
                    return n.key in v and not isinstance(v[n.key], Opaque)
                return CelErr("no such overload")
            self.charge(1)
            if isinstance(v, dict):
                if n.key in v and not isinstance(v[n.key], Opaque):
                    return v[n.key]
                return CelErr(f"no such key: {n.key}")
            return CelErr("no such overload")
        if isinstance(n, _Call):
            return self._call(n)
        if isinstance(n, _ListLit):
            self.charge(_LIST_CREATE_BASE_COST)
            items = []
            for e in n.elems:
                v = self.ev(e)
                if isinstance(v, CelErr):
                    return v
                items.append(v)
            return CelList(items)
        if isinstance(n, _MapLit):
            self.charge(_MAP_CREATE_BASE_COST)
            out: dict[Any, Any] = {}
            for k, ve in n.entries:
                kv = self.ev(k)
                if isinstance(kv, CelErr):
                    return kv
                vv = self.ev(ve)
                if isinstance(vv, CelErr):
                    return vv
                hk = ("b", kv) if isinstance(kv, bool) else kv
                if hk in {(("b", x) if isinstance(x, bool) else x) for x in out}:
                    return CelErr(f"Failed with repeated key: {_fmt_key(kv)}")
                out[kv] = vv
            return out
        if isinstance(n, _Comp):
            return self._comp(n)
        raise AssertionError(n)

    def _comp(self, n: _Comp) -> Any:
        rng = self.ev(n.iter_range)
        if isinstance(rng, CelErr):
            return rng
        if isinstance(rng, list):
            items = list(rng)
        elif isinstance(rng, dict):
            items = [k for k, v in rng.items() if not isinstance(v, Opaque)]
        else:
            return CelErr("no such overload")
        accu = self.ev(n.accu_init)
        for item in items:
            self.scopes.append({n.iter_var: item, _ACCU: accu})
            try:
                cond = self.ev(n.cond)
                if cond is False:
                    break
                accu = self.ev(n.step)
            finally:
                self.scopes.pop()
        self.scopes.append({_ACCU: accu})
        try:
            return self.ev(n.result)
        finally:
            self.scopes.pop()

    def _call(self, n: _Call) -> Any:
        fn = n.fn
        if fn in ("_&&_", "_||_"):
            stop = fn == "_||_"
            left = self.ev(n.args[0])
            if left is stop:
                return stop
            right = self.ev(n.args[1])
            if right is stop:
                return stop
            if isinstance(left, bool) and isinstance(right, bool):
                return not stop
            if isinstance(left, CelErr):
                return left
            if isinstance(right, CelErr):
                return right
            return CelErr("no such overload")
        if fn == "_?_:_":
            cond = self.ev(n.args[0])
            if isinstance(cond, CelErr):
                return cond
            if cond is True:
                return self.ev(n.args[1])
            if cond is False:
                return self.ev(n.args[2])
            return CelErr("no such overload")
        if fn == "@not_strictly_false":
            v = self.ev(n.args[0])
            return v is not False
        values: list[Any] = []
        if n.target is not None:
            t = self.ev(n.target)
            if isinstance(t, CelErr):
                return t
            values.append(t)
        for a in n.args:
            v = self.ev(a)
            if isinstance(v, CelErr):
                return v
            values.append(v)
        try:
            result = _call_impl(fn, self.overloads.get(n.id, []), values, n.target is not None)
        except CelEvalError as exc:
            self.charge(1)
            return CelErr(exc.message)
        except (TypeError, ValueError, AttributeError, OverflowError):
            self.charge(1)
            return CelErr("no such overload")
        self.charge(_runtime_call_cost(fn, values, result))
        return result


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------

@dataclass
class RuleOutcome:
    """The result of one rule on one value.

    `status` is `passed`, `failed` (the rule returned false: `message` is what the server reports),
    `error` (evaluation failed: `message` is the full detail, e.g. `no such key: cpu evaluating rule: ...`)
    or `skipped` (a transition rule without an old value). `budget_exhausted` means the server would stop
    evaluating further rules for the object.
    """

    status: str
    message: str = ""
    cost: int = 0
    budget_exhausted: bool = False


@dataclass
class _Program:
    source: str
    ast: _Node
    overloads: dict[int, list[str]]
    max_cost: int
    uses_old_self: bool


def _compile_expression(source: str, self_type: CelType, *, expect: CelType, what: str,
                        decl_root: CelType | None) -> _Program:
    """Parse, check and cost one expression; raise CelCompileError worded like compilation.go."""
    try:
        ast = _parse(source)
    except _SyntaxError as exc:
        raise CelCompileError(f"{what}compilation failed: {_display_error(source, exc.pos, exc.message)}") \
            from None
    except RecursionError:
        raise CelCompileError(f"{what}compilation failed: ERROR: <input>:1:1: expression recursion limit "
                              "exceeded") from None
    checker = _Checker({"self": self_type, "oldSelf": self_type})
    with _DeepStack():
        out_type = checker.check(ast)
        if not checker.errors:
            checker.validate_literals(ast)
    if checker.errors:
        details = "\n".join(_display_error(source, pos, msg) for pos, msg in sorted(checker.errors,
                                                                                      key=lambda e: e[0]))
        raise CelCompileError(f"{what}compilation failed: {details}")
    if out_type.kind != expect.kind:
        if what:
            raise CelCompileError("messageExpression must evaluate to a string")
        raise CelCompileError("cel expression must evaluate to a bool")
    with _DeepStack():
        cost = _estimate(ast, checker, decl_root)
    return _Program(source, ast, checker.overloads, cost, "oldSelf" in checker.referenced)


def _evaluate_program(program: _Program, activation: dict[str, Any], limit: int) -> tuple[Any, int]:
    ev = _Evaluator(program.overloads, activation, limit)
    try:
        with _DeepStack():
            result = ev.ev(program.ast)
    except _CostExceeded:
        return _CostExceeded(), ev.cost
    except RecursionError:
        return CelErr("max recursion depth exceeded"), ev.cost
    return result, ev.cost


def rule_error_string(rule: dict[str, Any]) -> str:
    """validation.go ruleErrorString: the message if set, else the rule."""
    message = rule.get("message")
    if isinstance(message, str) and message:
        return message.strip()
    return str(rule.get("rule", "")).strip()


def rule_message_or_default(rule: dict[str, Any]) -> str:
    message = rule.get("message")
    if isinstance(message, str) and message:
        return message.strip()
    return f"failed rule: {rule_error_string(rule)}"


class CompiledRule:
    """One compiled `x-kubernetes-validations` entry of one schema node."""

    def __init__(self, rule: dict[str, Any], node_schema: dict[str, Any], is_resource_root: bool,
                 program: _Program, message_program: _Program | None, decl: CelType) -> None:
        self.rule = rule
        self.node_schema = node_schema
        self.is_resource_root = is_resource_root
        self._program = program
        self._message_program = message_program
        self.uses_old_self = program.uses_old_self
        self.max_cost = program.max_cost
        self.max_cardinality = max_cardinality(decl.min_size)
        self.message_expression_cost = message_program.max_cost if message_program is not None else None
        self.decl = decl

    @property
    def optional_old_self(self) -> bool:
        return bool(self.rule.get("optionalOldSelf"))

    def estimated_cost(self, enclosing_cardinality: int | None) -> int:
        """getExpressionCost: the rule's cost times how often it can run (`None` = unbounded ancestors)."""
        card = enclosing_cardinality if enclosing_cardinality is not None else self.max_cardinality
        return multiply_with_overflow_guard(self.max_cost, card)

    def estimated_message_expression_cost(self, enclosing_cardinality: int | None) -> int | None:
        if self.message_expression_cost is None:
            return None
        # compilation.go reports MessageExpressionMaxCost without multiplying by the cardinality
        return self.message_expression_cost

    def evaluate(self, self_value: Any, old_self: Any = MISSING, *,
                 budget: int = RUNTIME_CEL_COST_BUDGET) -> RuleOutcome:
        """Evaluate against JSON values (`old_self` MISSING or None: no correlated old value)."""
        has_old = old_self is not MISSING and old_self is not None
        if self.uses_old_self and not has_old:
            return RuleOutcome("skipped")
        if budget <= 0:
            return RuleOutcome("error", "validation failed due to running out of cost budget, no further "
                                        "validation rules will be run", 0, True)
        schema = self.node_schema
        activation: dict[str, Any] = {"self": to_cel(self_value, schema, self.is_resource_root)}
        if has_old:
            activation["oldSelf"] = to_cel(old_self, schema, self.is_resource_root)
        result, cost = _evaluate_program(self._program, activation, min(PER_CALL_LIMIT, max(budget, 0)) + 1)
        err_string = rule_error_string(self.rule)
        if isinstance(result, _CostExceeded):
            if cost > budget:
                return RuleOutcome("error", "validation failed due to running out of cost budget, no further "
                                            "validation rules will be run", cost, True)
            return RuleOutcome("error", "'operation cancelled: actual cost limit exceeded': no further validation "
                                        f"rules will be run due to call cost exceeds limit for rule: {err_string}",
                               cost, True)
        if cost > budget:
            return RuleOutcome("error", "validation failed due to running out of cost budget, no further "
                                        "validation rules will be run", cost, True)
        if isinstance(result, CelErr):
            if result.message.startswith("no such overload"):
                return RuleOutcome("error", f"'{result.message}': call arguments did not match a supported "
                                            f"operator, function or macro signature for rule: {err_string}", cost)
            return RuleOutcome("error", f"{result.message} evaluating rule: {err_string}", cost)
        if result is True:
            return RuleOutcome("passed", "", cost)
        message = rule_message_or_default(self.rule)
        if self._message_program is not None:
            msg_result, msg_cost = _evaluate_program(self._message_program, activation,
                                                     min(PER_CALL_LIMIT, max(budget - cost, 0)) + 1)
            cost += msg_cost
            if isinstance(msg_result, _CostExceeded) or cost > budget:
                return RuleOutcome("error", "messageExpression evaluation failed due to running out of cost budget, "
                                            "no further validation rules will be run", cost, True)
            if isinstance(msg_result, str):
                trimmed = _go_trim_space(msg_result)
                if trimmed and "\n" not in trimmed \
                        and len(trimmed.encode("utf-8")) <= MAX_EVALUATED_MESSAGE_EXPRESSION_SIZE_BYTES:
                    message = trimmed
        return RuleOutcome("failed", message, cost)


def compile_rule(rule: dict[str, Any], node_schema: dict[str, Any], *, is_resource_root: bool = False) -> CompiledRule:
    """Compile one validation rule for the schema node it is declared on.

    Raises CelCompileError with the detail kube-apiserver reports (for `rule` or `messageExpression`).
    """
    source = rule.get("rule")
    if not isinstance(source, str) or not source.strip():
        raise CelCompileError("rule is not specified", required=True)
    decl = schema_decl_type(node_schema, is_resource_root)
    if decl is None:
        raise CelCompileError("failed to convert to declType for CEL validation rules", field="internal")
    if rule.get("optionalOldSelf"):
        raise CelCompileError("compilation failed: optionalOldSelf (CEL optional types) is not implemented by "
                              "this API server emulator")
    program = _compile_expression(source, decl, expect=BOOL, what="", decl_root=decl)
    message_program: _Program | None = None
    msg_expr = rule.get("messageExpression")
    if isinstance(msg_expr, str) and msg_expr:
        try:
            message_program = _compile_expression(msg_expr, decl, expect=STRING, what="messageExpression ",
                                                  decl_root=decl)
        except CelCompileError as exc:
            err = CelCompileError(exc.message, field="messageExpression")
            err.compiled = CompiledRule(rule, node_schema, is_resource_root, program, None, decl)
            raise err from None
    return CompiledRule(rule, node_schema, is_resource_root, program, message_program, decl)


def evaluate_expression(source: str, self_value: Any = None, node_schema: dict[str, Any] | None = None, *,
                        old_self: Any = MISSING, is_resource_root: bool = False) -> Any:
    """Compile and evaluate a free-standing expression (for tests and tooling); return the CEL value.

    Without a schema `self` is `dyn`. Raises CelCompileError; returns CelErr for evaluation errors.
    """
    if node_schema is None:
        decl: CelType = DYN
        activation = {"self": _plain_to_cel(self_value)}
        if old_self is not MISSING:
            activation["oldSelf"] = _plain_to_cel(old_self)
    else:
        maybe = schema_decl_type(node_schema, is_resource_root)
        if maybe is None:
            raise CelCompileError("failed to convert to declType for CEL validation rules")
        decl = maybe
        activation = {"self": to_cel(self_value, node_schema, is_resource_root)}
        if old_self is not MISSING:
            activation["oldSelf"] = to_cel(old_self, node_schema, is_resource_root)
    try:
        ast = _parse(source)
    except _SyntaxError as exc:
        raise CelCompileError(f"compilation failed: {_display_error(source, exc.pos, exc.message)}") from None
    checker = _Checker({"self": decl, "oldSelf": decl})
    with _DeepStack():
        checker.check(ast)
        if not checker.errors:
            checker.validate_literals(ast)
    if checker.errors:
        raise CelCompileError("compilation failed: " + "\n".join(
            _display_error(source, p, m) for p, m in sorted(checker.errors, key=lambda e: e[0])))
    result, _ = _evaluate_program(_Program(source, ast, checker.overloads, 0, False), activation, PER_CALL_LIMIT)
    if isinstance(result, _CostExceeded):
        return CelErr("operation cancelled: actual cost limit exceeded")
    return result


def estimate_cost(source: str, node_schema: dict[str, Any], *, is_resource_root: bool = False) -> int:
    """The static cost estimate (before multiplying by cardinality) of a rule on `node_schema`."""
    return compile_rule({"rule": source}, node_schema, is_resource_root=is_resource_root).max_cost


def _plain_to_cel(value: Any) -> Any:
    if isinstance(value, list):
        return CelList(_plain_to_cel(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain_to_cel(v) for k, v in value.items()}
    return value


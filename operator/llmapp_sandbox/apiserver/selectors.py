"""Label and field selectors, parsed and matched as kube-apiserver v1.32 does it.

Reproduces, for the emulator:

* `k8s.io/apimachinery/pkg/labels/selector.go`: the lexer/parser of the label selector string syntax
  (`a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, comma = AND), with the
  key/value validation of `k8s.io/apimachinery/pkg/util/validation` and the exact error texts (the
  `<nil>:` prefix included: the parser validates keys against a nil `field.Path`).
* `k8s.io/apimachinery/pkg/apis/meta/v1/helpers.go` `LabelSelectorAsSelector` for `metav1.LabelSelector`
  objects (`matchLabels` / `matchExpressions`).
* `k8s.io/apimachinery/pkg/fields/selector.go`: the field selector syntax (`a=b`, `a==b`, `a!=b`, with
  `\\`, `\\,`, `\\=` escapes in values) and its errors.
* The per-kind field label conversion functions (`pkg/apis/*/v1/conversion.go`,
  `runtime.DefaultMetaV1FieldSelectorConversion`, the CRD converter of apiextensions-apiserver) that
  decide which fields a list/watch may select on, with their exact, kind-specific error texts.
* The `GetAttrs`/`ToSelectableFields` functions of `pkg/registry/*/strategy.go` (`field_values`).

The API server answers a selector it cannot parse, and a field it does not support, with
`400 BadRequest` whose message is the Go error text verbatim; `parse_label_selector` and
`parse_field_selector` raise exactly that `ApiError`. When a list request carries both selectors the
label selector is decoded first (ListOptions field order), so its error wins.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmapp_sandbox.apiserver.errors import ApiError
from llmapp_sandbox.apiserver.gofmt import go_quote

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelRequirement",
    "LabelSelector",
    "SelectorError",
    "field_values",
    "go_quote",
    "is_builtin_group",
    "label_selector_from_dict",
    "parse_field_selector",
    "parse_label_selector",
    "supported_field_labels",
]


class SelectorError(ValueError):
    """A selector the Go code would reject; `str()` is the Go error text."""


def bad_request(message: str) -> ApiError:
    """`errors.NewBadRequest(message)`: no details, reason BadRequest."""
    return ApiError(400, "BadRequest", message)


# --------------------------------------------------------------------------------------------------
# Go formatting helpers
# --------------------------------------------------------------------------------------------------

_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               "\\": "\\\\", '"': '\\"'}


def _aggregate(messages: Sequence[str]) -> str:
    """`utilerrors.NewAggregate(...).Error()`: one message bare, several deduplicated in `[a, b]`."""
    unique: list[str] = []
    for message in messages:
        if message not in unique:
            unique.append(message)
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


def _invalid(path: str, value: str, detail: str) -> str:
    """`field.Invalid(path, value, detail).Error()` for a string value."""
    return f"{path}: Invalid value: {go_quote(value)}: {detail}"


# --------------------------------------------------------------------------------------------------
# k8s.io/apimachinery/pkg/util/validation: label key and value syntax
# --------------------------------------------------------------------------------------------------

_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_RE = re.compile(f"^{_QNAME_FMT}$")
_QNAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', "
              "and must start and end with an alphanumeric character")
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                          "'-' or '.', and must start and end with an alphanumeric character")
_LABEL_VALUE_FMT = f"({_QNAME_FMT})?"
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE_FMT}$")
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                    "and must start and end with an alphanumeric character")


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """validation.RegexError, double spaces before `or` included (each example ends in `', `)."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    text = msg + " (e.g. "
    for i, example in enumerate(examples):
        if i > 0:
            text += " or "
        text += f"'{example}', "
    return text + f"regex used for validation is '{fmt}')"


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _utf8_len(value: str) -> int:
    """Go's len(string) counts bytes."""
    return len(value.encode("utf-8", "surrogatepass"))


def is_dns1123_subdomain(value: str) -> list[str]:
    errs: list[str] = []
    if _utf8_len(value) > 253:
        errs.append(_max_len_error(253))
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """validation.IsQualifiedName: `[prefix/]name`, prefix a DNS-1123 subdomain, name at most 63 chars."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + msg for msg in is_dns1123_subdomain(prefix))
    else:
        return ["a qualified name " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif _utf8_len(name) > 63:
        errs.append("name part " + _max_len_error(63))
    if not _QNAME_RE.match(name):
        errs.append("name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    errs: list[str] = []
    if _utf8_len(value) > 63:
        errs.append(_max_len_error(63))
    if not _LABEL_VALUE_RE.match(value):
        errs.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


# --------------------------------------------------------------------------------------------------
# Label selectors
# --------------------------------------------------------------------------------------------------

IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
EXISTS, DOES_NOT_EXIST, GREATER_THAN, LESS_THAN = "exists", "!", "gt", "lt"
_BINARY_OPERATORS = [IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN]
_INT64 = re.compile(r"^[+-]?[0-9]+$")


def _parse_int64(value: str) -> int | None:
    """strconv.ParseInt(value, 10, 64): sign and decimal digits only, within int64."""
    if not _INT64.match(value):
        return None
    number = int(value)
    return number if -(2**63) <= number < 2**63 else None


@dataclass(frozen=True)
class LabelRequirement:
    """One `labels.Requirement`; `values` sorted and deduplicated as `sets.String.List()` gives them."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GREATER_THAN, LESS_THAN):
            if self.key not in labels or len(self.values) != 1:
                return False
            have, want = _parse_int64(labels[self.key]), _parse_int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if op == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        if self.operator == DOES_NOT_EXIST:
            return "!" + self.key
        if self.operator == EXISTS:
            return self.key
        symbol = {EQUALS: "=", DOUBLE_EQUALS: "==", NOT_EQUALS: "!=", IN: " in ", NOT_IN: " notin ",
                  GREATER_THAN: ">", LESS_THAN: "<"}[self.operator]
        values = ",".join(sorted(self.values))
        if self.operator in (IN, NOT_IN):
            values = f"({values})"
        return f"{self.key}{symbol}{values}"


def _new_requirement(key: str, operator: str, values: Sequence[str], path: str | None = None) -> LabelRequirement:
    """labels.NewRequirement: validation errors aggregated like field.ErrorList.ToAggregate()."""
    errs: list[str] = []
    base = path or ""

    def child(name: str) -> str:
        return f"{base}.{name}" if base else name

    key_errs = is_qualified_name(key)
    if key_errs:
        errs.append(_invalid(child("key"), key, "; ".join(key_errs)))
    values_path = child("values")
    if operator in (IN, NOT_IN) and not values:
        errs.append(f"{values_path}: Invalid value: []string{{}}: "
                    "for 'in', 'notin' operators, values set can't be empty")
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS) and len(values) != 1:
        errs.append(f"{values_path}: Invalid value: {_go_string_slice(values)}: "
                    "exact-match compatibility requires one single value")
    elif operator in (EXISTS, DOES_NOT_EXIST) and values:
        errs.append(f"{values_path}: Invalid value: {_go_string_slice(values)}: "
                    "values set must be empty for exists and does not exist")
    elif operator in (GREATER_THAN, LESS_THAN):
        if len(values) != 1:
            errs.append(f"{values_path}: Invalid value: {_go_string_slice(values)}: "
                        "for 'Gt', 'Lt' operators, exactly one value is required")
        for i, value in enumerate(values):
            if _parse_int64(value) is None:
                errs.append(_invalid(f"{values_path}[{i}]", value,
                                     "for 'Gt', 'Lt' operators, the value must be an integer"))
    for i, value in enumerate(values):
        value_errs = is_valid_label_value(value)
        if value_errs:
            errs.append(_invalid(f"{values_path}[{i}][{key}]", value, "; ".join(value_errs)))
    if errs:
        raise SelectorError(_aggregate(errs))
    return LabelRequirement(key, operator, tuple(values))


def _go_string_slice(values: Sequence[str]) -> str:
    """`%#v` of a []string."""
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


@dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector: the AND of its requirements, sorted by key. `nothing` matches no object."""

    requirements: tuple[LabelRequirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        present = labels or {}
        return all(r.matches(present) for r in self.requirements)

    def empty(self) -> bool:
        return not self.nothing and not self.requirements

    def requires_exact_match(self, key: str) -> str | None:
        for requirement in self.requirements:
            if requirement.key == key:
                if requirement.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(requirement.values) == 1:
                    return requirement.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


# Lexer tokens (selector.go Token values; only identity matters here).
_ERROR, _EOS, _CLOSE, _COMMA, _NOT, _DEQ, _EQ, _GT, _ID, _IN, _LT, _NEQ, _NOTIN, _OPEN = range(14)
_STRING_TO_TOKEN = {")": _CLOSE, ",": _COMMA, "!": _NOT, "==": _DEQ, "=": _EQ, ">": _GT, "in": _IN, "<": _LT,
                    "!=": _NEQ, "notin": _NOTIN, "(": _OPEN}
_SPECIAL = set("=!(),><")
_WHITESPACE = set(" \t\r\n")


def _lex(selector: str) -> list[tuple[int, str]]:
    items: list[tuple[int, str]] = []
    pos, n = 0, len(selector)
    while True:
        while pos < n and selector[pos] in _WHITESPACE:
            pos += 1
        if pos >= n:
            items.append((_EOS, ""))
            return items
        if selector[pos] in _SPECIAL:
            buffer, last = "", (_ERROR, "")
            while pos < n and selector[pos] in _SPECIAL:
                candidate = buffer + selector[pos]
                if candidate in _STRING_TO_TOKEN:
                    buffer, last = candidate, (_STRING_TO_TOKEN[candidate], candidate)
                    pos += 1
                elif last[0] != _ERROR:
                    break
                else:
                    buffer = candidate
                    pos += 1
            items.append(last if last[0] != _ERROR else (_ERROR, f"error expected: keyword found '{buffer}'"))
            continue
        start = pos
        while pos < n and selector[pos] not in _SPECIAL and selector[pos] not in _WHITESPACE:
            pos += 1
        word = selector[start:pos]
        items.append((_STRING_TO_TOKEN.get(word, _ID), word))


class _LabelParser:
    def __init__(self, selector: str) -> None:
        self.items = _lex(selector)
        self.position = 0

    def _token(self, index: int, values: bool) -> tuple[int, str]:
        tok, lit = self.items[index]
        if values and tok in (_IN, _NOTIN):
            tok = _ID
        return tok, lit

    def lookahead(self, values: bool) -> tuple[int, str]:
        return self._token(self.position, values)

    def consume(self, values: bool) -> tuple[int, str]:
        self.position += 1
        return self._token(self.position - 1, values)

    def parse(self) -> list[LabelRequirement]:
        requirements: list[LabelRequirement] = []
        while True:
            tok, lit = self.lookahead(True)
            if tok in (_ID, _NOT):
                try:
                    requirements.append(self.parse_requirement())
                except SelectorError as err:
                    raise SelectorError(f"unable to parse requirement: {err}") from None
                tok, lit = self.consume(True)
                if tok == _EOS:
                    return requirements
                if tok == _COMMA:
                    tok2, lit2 = self.lookahead(True)
                    if tok2 not in (_ID, _NOT):
                        raise SelectorError(f"found '{lit2}', expected: identifier after ','")
                else:
                    raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            elif tok == _EOS:
                return requirements
            else:
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def parse_requirement(self) -> LabelRequirement:
        key, operator = self.parse_key_and_infer_operator()
        if operator in (EXISTS, DOES_NOT_EXIST):
            return _new_requirement(key, operator, [])
        operator = self.parse_operator()
        values = self.parse_values() if operator in (IN, NOT_IN) else self.parse_exact_value()
        return _new_requirement(key, operator, sorted(values))

    def parse_key_and_infer_operator(self) -> tuple[str, str]:
        operator = ""
        tok, literal = self.consume(True)
        if tok == _NOT:
            operator = DOES_NOT_EXIST
            tok, literal = self.consume(True)
        if tok != _ID:
            raise SelectorError(f"found '{literal}', expected: identifier")
        key_errs = is_qualified_name(literal)
        if key_errs:
            # validateLabelKey(literal, p.path) with a nil *field.Path: Path.String() is "<nil>".
            raise SelectorError(_invalid("<nil>", literal, "; ".join(key_errs)))
        if self.lookahead(True)[0] in (_EOS, _COMMA) and operator != DOES_NOT_EXIST:
            operator = EXISTS
        return literal, operator

    def parse_operator(self) -> str:
        tok, lit = self.consume(False)
        operators = {_IN: IN, _EQ: EQUALS, _DEQ: DOUBLE_EQUALS, _GT: GREATER_THAN, _LT: LESS_THAN, _NOTIN: NOT_IN,
                     _NEQ: NOT_EQUALS}
        if tok not in operators:
            raise SelectorError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        return operators[tok]

    def parse_values(self) -> set[str]:
        tok, lit = self.consume(True)
        if tok != _OPEN:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead(True)
        if tok in (_ID, _COMMA):
            values = self.parse_identifiers_list()
            if self.consume(True)[0] != _CLOSE:
                raise SelectorError(f"found '{lit}', expected: ')'")
            return values
        if tok == _CLOSE:
            self.consume(True)
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def parse_identifiers_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.consume(True)
            if tok == _ID:
                values.add(lit)
                tok2, lit2 = self.lookahead(True)
                if tok2 == _COMMA:
                    continue
                if tok2 == _CLOSE:
                    return values
                raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _COMMA:
                if not values:
                    values.add("")
                tok2, _ = self.lookahead(True)
                if tok2 == _CLOSE:
                    values.add("")
                    return values
                if tok2 == _COMMA:
                    self.consume(True)
                    values.add("")
                continue
            raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def parse_exact_value(self) -> set[str]:
        tok, _ = self.lookahead(True)
        if tok in (_EOS, _COMMA):
            return {""}
        tok, lit = self.consume(True)
        if tok == _ID:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def label_selector(text: str) -> LabelSelector:
    """labels.Parse; raises SelectorError with the Go error text."""
    requirements = _LabelParser(text).parse()
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


def parse_label_selector(text: str | None) -> LabelSelector:
    """The `labelSelector` query parameter: a syntax or validation error is a 400 BadRequest."""
    if not text:
        return LabelSelector()
    try:
        return label_selector(text)
    except SelectorError as err:
        raise bad_request(str(err)) from None


def label_selector_from_dict(selector: Mapping[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: None selects nothing, `{}` everything. Raises SelectorError."""
    if selector is None:
        return LabelSelector(nothing=True)
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return LabelSelector()
    requirements: list[LabelRequirement] = []
    for key, value in match_labels.items():
        requirements.append(_new_requirement(str(key), EQUALS, [str(value)]))
    operators = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}
    for expression in expressions:
        op = expression.get("operator")
        if op not in operators:
            raise SelectorError(f"{go_quote(str(op))} is not a valid label selector operator")
        requirements.append(_new_requirement(str(expression.get("key", "")), operators[op],
                                             [str(v) for v in expression.get("values") or []]))
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


# --------------------------------------------------------------------------------------------------
# Field selectors
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=" (also for "==") or "!="
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        have = fields.get(self.field, "")  # fields.Set.Get: a missing field reads as ""
        return have == self.value if self.operator == EQUALS else have != self.value

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
        return f"{self.field}{'=' if self.operator == EQUALS else '!='}{escaped}"


@dataclass(frozen=True)
class FieldSelector:
    """The AND of field requirements, in the sorted order the Go parser keeps them."""

    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements

    def requires_exact_match(self, field: str) -> str | None:
        for requirement in self.requirements:
            if requirement.field == field and requirement.operator == EQUALS:
                return requirement.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _split_terms(selector: str) -> list[str]:
    if not selector:
        return []
    terms, start, in_slash = [], 0, False
    for i, ch in enumerate(selector):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(selector[start:i])
            start = i + 1
    terms.append(selector[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def _unescape_value(value: str) -> str:
    if not any(c in value for c in "\\,="):
        return value
    out, in_slash = [], False
    for ch in value:
        if in_slash:
            if ch in "\\,=":
                out.append(ch)
            else:
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            # UnescapedRune formats the rune with %v: its code point as a decimal number.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def field_selector(text: str) -> FieldSelector:
    """fields.ParseSelector (no field label conversion); raises SelectorError with the Go error text."""
    requirements: list[FieldRequirement] = []
    for part in sorted(_split_terms(text)):  # Go sorts the raw terms before parsing them
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        lhs, op, rhs = split
        requirements.append(FieldRequirement(lhs, NOT_EQUALS if op == "!=" else EQUALS, _unescape_value(rhs)))
    return FieldSelector(tuple(requirements))


# Field label conversion functions of the built-in kinds, keyed by (group, kind):
# (accepted labels, aliases, error format with one %s/{} for the label).
_FIELD_LABEL_NOT_SUPPORTED = "field label not supported: {}"
_BUILTIN_FIELD_LABELS: dict[tuple[str, str], tuple[frozenset[str], dict[str, str], str]] = {
    # pkg/apis/core/v1/conversion.go (verified against the current source).
    ("", "Pod"): (frozenset({"metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy",
                             "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                             "status.podIP", "status.podIPs", "status.nominatedNodeName"}),
                  {"spec.host": "spec.nodeName"}, _FIELD_LABEL_NOT_SUPPORTED),
    ("", "Node"): (frozenset({"metadata.name", "spec.unschedulable"}), {}, _FIELD_LABEL_NOT_SUPPORTED),
    ("", "ReplicationController"): (frozenset({"metadata.name", "metadata.namespace", "status.replicas"}), {},
                                    _FIELD_LABEL_NOT_SUPPORTED),
    ("", "Event"): (frozenset({"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                               "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                               "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
                               "metadata.namespace", "metadata.name"}), {}, _FIELD_LABEL_NOT_SUPPORTED),
    ("", "Namespace"): (frozenset({"status.phase", "metadata.name"}), {}, _FIELD_LABEL_NOT_SUPPORTED),
    ("", "Secret"): (frozenset({"type", "metadata.namespace", "metadata.name"}), {}, _FIELD_LABEL_NOT_SUPPORTED),
    # Service: spec.clusterIP and spec.type since v1.31 (kubernetes#122541 / #123905).
    ("", "Service"): (frozenset({"metadata.namespace", "metadata.name", "spec.clusterIP", "spec.type"}), {},
                      _FIELD_LABEL_NOT_SUPPORTED),
    # pkg/apis/batch/v1/conversion.go: note its own wording.
    ("batch", "Job"): (frozenset({"metadata.name", "metadata.namespace", "status.successful"}), {},
                       'field label "{}" not supported for batchv1.Job'),
    # pkg/apis/certificates/v1/conversion.go (not re-read for this port; wording assumed like core's).
    ("certificates.k8s.io", "CertificateSigningRequest"): (frozenset({"metadata.name", "spec.signerName"}), {},
                                                           _FIELD_LABEL_NOT_SUPPORTED),
}
# Every other built-in kind (ConfigMap, ServiceAccount, Deployment, StatefulSet, ReplicaSet, Lease, Role, ...)
# has no conversion function of its own in its served version and falls back to
# runtime.DefaultMetaV1FieldSelectorConversion. (apps/v1beta* registered one for StatefulSet; apps/v1 is
# taken to register none, the stricter reading.)

_BUILTIN_GROUPS = frozenset({
    "", "apps", "batch", "autoscaling", "policy", "rbac.authorization.k8s.io", "networking.k8s.io",
    "storage.k8s.io", "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io", "admissionregistration.k8s.io",
    "apiextensions.k8s.io", "apiregistration.k8s.io", "scheduling.k8s.io", "node.k8s.io", "certificates.k8s.io",
    "authentication.k8s.io", "authorization.k8s.io", "flowcontrol.apiserver.k8s.io", "resource.k8s.io",
    "storagemigration.k8s.io", "internal.apiserver.k8s.io",
})

_CLUSTER_SCOPED_BUILTIN_KINDS = frozenset({
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "StorageClass", "CSIDriver", "CSINode", "VolumeAttachment", "PriorityClass", "RuntimeClass",
    "CertificateSigningRequest", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "APIService", "IngressClass",
    "FlowSchema", "PriorityLevelConfiguration", "ComponentStatus",
})


def is_builtin_group(group: str) -> bool:
    return group in _BUILTIN_GROUPS


def _selectable_field_label(json_path: str) -> str:
    """A CRD `selectableFields[].jsonPath` (`.spec.color`) as its field label (`spec.color`)."""
    return json_path[1:] if json_path.startswith(".") else json_path


def supported_field_labels(kind: str, group: str = "", *, cluster_scoped: bool = False,
                           selectable_fields: Iterable[str] = ()) -> frozenset[str]:
    """The field labels a list of this kind accepts (aliases such as Pod `spec.host` not included)."""
    if not is_builtin_group(group):
        labels = {"metadata.name"} | {_selectable_field_label(p) for p in selectable_fields}
        if not cluster_scoped:
            labels.add("metadata.namespace")
        return frozenset(labels)
    entry = _BUILTIN_FIELD_LABELS.get((group, kind))
    return entry[0] if entry else frozenset({"metadata.name", "metadata.namespace"})


def _convert_field_label(kind: str, group: str, label: str, cluster_scoped: bool,
                         selectable: Collection[str]) -> str:
    if not is_builtin_group(group):
        # apiextensions-apiserver delegatingCRConverter.ConvertFieldLabel (CustomResourceFieldSelectors is GA
        # and on in v1.32): metadata.name, metadata.namespace unless cluster scoped, and selectableFields.
        if label == "metadata.name" or (label == "metadata.namespace" and not cluster_scoped) or label in selectable:
            return label
        raise SelectorError(f"field label not supported: {label}")
    entry = _BUILTIN_FIELD_LABELS.get((group, kind))
    if entry is None:
        if label in ("metadata.name", "metadata.namespace"):
            return label
        raise SelectorError(f'{go_quote(label)} is not a known field selector: only "metadata.name", '
                            '"metadata.namespace"')
    accepted, aliases, error_format = entry
    if label in accepted:
        return label
    if label in aliases:
        return aliases[label]
    raise SelectorError(error_format.format(label))


def parse_field_selector(text: str | None, kind: str, group: str = "", *, cluster_scoped: bool = False,
                         selectable_fields: Iterable[str] = ()) -> FieldSelector:
    """The `fieldSelector` query parameter of a list/watch of `kind` in `group`.

    Syntax errors and unsupported fields are 400 BadRequest with the Go message. Labels are converted in
    the sorted order of the terms, so the first unsupported one in that order is the one reported.
    `selectable_fields` are a CRD version's `selectableFields[].jsonPath` values.
    """
    if not text:
        return FieldSelector()
    try:
        parsed = field_selector(text)
        selectable = {_selectable_field_label(p) for p in selectable_fields}
        converted = tuple(
            FieldRequirement(_convert_field_label(kind, group, r.field, cluster_scoped, selectable), r.operator,
                             r.value)
            for r in parsed.requirements
        )
    except SelectorError as err:
        raise bad_request(str(err)) from None
    return FieldSelector(converted)


# --------------------------------------------------------------------------------------------------
# Field values of stored objects (GetAttrs / ToSelectableFields)
# --------------------------------------------------------------------------------------------------


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    current: Any = obj
    for key in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def _text(value: Any) -> str:
    """A scalar as Go prints it into a fields.Set (`fmt.Sprint`/`strconv`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _group_of(obj: Mapping[str, Any]) -> str:
    api_version = str(obj.get("apiVersion") or "v1")
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def field_values(kind: str, obj: Mapping[str, Any], *, namespaced: bool | None = None,
                 selectable_fields: Iterable[str] = ()) -> dict[str, str]:
    """The fields.Set a field selector is matched against, for an object of `kind` (group from apiVersion).

    `namespaced` defaults to the built-in kind's scope, or for custom resources to whether the object
    has a namespace. `selectable_fields` are the CRD's `selectableFields[].jsonPath` values.
    """
    group = _group_of(obj)
    meta = obj.get("metadata") or {}
    if namespaced is None:
        if is_builtin_group(group):
            namespaced = kind not in _CLUSTER_SCOPED_BUILTIN_KINDS
        else:
            namespaced = bool(meta.get("namespace"))
    fields: dict[str, str] = {"metadata.name": _text(meta.get("name"))}
    if namespaced:
        fields["metadata.namespace"] = _text(meta.get("namespace"))
    if not is_builtin_group(group):
        for json_path in selectable_fields:
            label = _selectable_field_label(json_path)
            value = _get(obj, *label.split("."))
            fields[label] = "" if isinstance(value, Mapping | list) else _text(value)
        return fields
    spec: Mapping[str, Any] = obj.get("spec") or {}
    status: Mapping[str, Any] = obj.get("status") or {}
    if group == "" and kind == "Pod":
        pod_ips = status.get("podIPs") or []
        pod_ip = _text(pod_ips[0].get("ip")) if pod_ips and isinstance(pod_ips[0], Mapping) else _text(
            status.get("podIP"))
        fields.update({
            "spec.nodeName": _text(spec.get("nodeName")),
            "spec.restartPolicy": _text(spec.get("restartPolicy")),
            "spec.schedulerName": _text(spec.get("schedulerName")),
            "spec.serviceAccountName": _text(spec.get("serviceAccountName")),
            "spec.hostNetwork": "true" if spec.get("hostNetwork") else "false",
            "status.phase": _text(status.get("phase")),
            "status.podIP": pod_ip,
            "status.nominatedNodeName": _text(status.get("nominatedNodeName")),
        })
    elif group == "" and kind == "Event":
        involved: Mapping[str, Any] = obj.get("involvedObject") or {}
        source = _text(_get(obj, "source", "component")) or _text(obj.get("reportingComponent"))
        fields.update({
            "involvedObject.kind": _text(involved.get("kind")),
            "involvedObject.namespace": _text(involved.get("namespace")),
            "involvedObject.name": _text(involved.get("name")),
            "involvedObject.uid": _text(involved.get("uid")),
            "involvedObject.apiVersion": _text(involved.get("apiVersion")),
            "involvedObject.resourceVersion": _text(involved.get("resourceVersion")),
            "involvedObject.fieldPath": _text(involved.get("fieldPath")),
            "reason": _text(obj.get("reason")),
            "reportingComponent": _text(obj.get("reportingComponent")),
            "source": source,
            "type": _text(obj.get("type")),
        })
    elif group == "" and kind == "Secret":
        fields["type"] = _text(obj.get("type"))
    elif group == "" and kind == "Namespace":
        fields["status.phase"] = _text(status.get("phase"))
    elif group == "" and kind == "Node":
        fields["spec.unschedulable"] = "true" if spec.get("unschedulable") else "false"
    elif group == "" and kind == "ReplicationController":
        fields["status.replicas"] = _text(status.get("replicas") or 0)
    elif group == "" and kind == "Service":
        fields["spec.clusterIP"] = _text(spec.get("clusterIP"))
        fields["spec.type"] = _text(spec.get("type"))
    elif group == "batch" and kind == "Job":
        fields["status.successful"] = _text(status.get("succeeded") or 0)
    elif group == "certificates.k8s.io" and kind == "CertificateSigningRequest":
        fields["spec.signerName"] = _text(spec.get("signerName"))
    return fields

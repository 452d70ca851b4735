"""Kubernetes JSONPath templates (`k8s.io/client-go/util/jsonpath`), as printer columns and kubectl use them.

The API server evaluates a CRD's `additionalPrinterColumns[].jsonPath` by wrapping it in braces
(`{.status.phase}`), parsing it as a template and allowing missing keys; `kubectl wait
--for=jsonpath=...` and `-o jsonpath=...` use the same engine. This module follows client-go's
parser and evaluator, quirks included, so a column shows here what it shows on a real cluster:

- `.a.b`, `['a']`, `.a\\.b` (escaped dot), `[0]`, `[-1]`, `[1:3]`, `[*]`, `.*`, `[0,2]` (union),
  `..name` (recursive descent), filters `[?(@.type=="Ready")]` with `== != < > <= >=` and the
  existence form `[?(@.x)]`, string/int/float literals, text outside braces;
- a filter comparing values of different kinds (an integer with a float, a string with a number,
  anything with null) is an error, not false; so is a filter whose left side finds nothing
  (`can only compare one element at a time`), and a boolean literal (`true`), which client-go
  parses but cannot evaluate;
- `['a.b']` is the same as `.a.b` (client-go re-parses the key as a field path);
- indexing past the end is an error (`array index out of bounds`); a missing key is not, when
  missing keys are allowed (always, for printer columns);
- `range`/`end` are not supported here (printer columns and `kubectl wait` do not need them).

Map wildcards and recursive descent visit keys in insertion order (Go's order is random).

`FindResults` returns one list of values per top-level template node; a printer column's cell is
the first value of the first list (see `tables.py`). Values print the way Go's `fmt.Fprint` prints
decoded JSON (`go_sprint`): strings bare, `map[a:1 b:x]`, `[a b]`, floats as `%v` (`1e+06`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmapp_sandbox.apiserver.gofmt import go_sprint


class JSONPathError(ValueError):
    """A template that does not parse, or an evaluation error client-go would return."""


# -- nodes ---------------------------------------------------------------------------------------
@dataclass
class _Node:
    pass


@dataclass
class _ListNode(_Node):
    nodes: list[_Node] = field(default_factory=list)


@dataclass
class _TextNode(_Node):
    text: str


@dataclass
class _FieldNode(_Node):
    name: str


@dataclass
class _Param:
    value: int = 0
    known: bool = False
    derived: bool = False


@dataclass
class _ArrayNode(_Node):
    params: tuple[_Param, _Param, _Param]


@dataclass
class _FilterNode(_Node):
    left: _ListNode
    right: _ListNode
    operator: str


@dataclass
class _IntNode(_Node):
    value: int


@dataclass
class _FloatNode(_Node):
    value: float


@dataclass
class _BoolNode(_Node):
    value: bool


@dataclass
class _WildcardNode(_Node):
    pass


@dataclass
class _RecursiveNode(_Node):
    pass


@dataclass
class _UnionNode(_Node):
    nodes: list[_ListNode]


@dataclass
class _IdentifierNode(_Node):
    name: str


# -- parser (client-go util/jsonpath/parser.go) ----------------------------------------------------
_DICT_KEY = re.compile(r"^'([^']*)'$")
_SLICE = re.compile(r"^(-?\d*)(:-?\d*)?(:-?\d*)?$")
_FILTER = re.compile(r"^([^!<>=]+)([!<>=]+)(.+?)$", re.DOTALL)
_TERMINATORS = set(" \t\r\n.,[]$@{}")
_EOF = ""


def _is_alphanumeric(char: str) -> bool:
    return char == "_" or char.isalpha() or char.isdigit()


class _Parser:
    def __init__(self, text: str) -> None:
        self.input = text
        self.pos = 0
        self.start = 0
        self.root = _ListNode()

    # cursor helpers
    def _next(self) -> str:
        if self.pos >= len(self.input):
            return _EOF
        char = self.input[self.pos]
        self.pos += 1
        return char

    def _backup(self) -> None:
        self.pos -= 1

    def _peek(self) -> str:
        return self.input[self.pos] if self.pos < len(self.input) else _EOF

    def _consume(self) -> str:
        value = self.input[self.start:self.pos]
        self.start = self.pos
        return value

    # grammar
    def parse(self) -> _ListNode:
        self._parse_text(self.root)
        return self.root

    def _parse_text(self, cur: _ListNode) -> None:
        while True:
            if self.input.startswith("{", self.pos):
                if self.pos > self.start:
                    cur.nodes.append(_TextNode(self._consume()))
                self.pos += 1
                self._consume()
                action = _ListNode()
                cur.nodes.append(action)
                self._parse_inside_action(action)
                return
            if self._next() == _EOF:
                break
        if self.pos > self.start:
            cur.nodes.append(_TextNode(self._consume()))

    def _parse_inside_action(self, cur: _ListNode) -> None:
        while True:
            rest = self.input[self.pos:]
            if rest.startswith("}"):
                self.pos += 1
                self._consume()
                self._parse_text(self.root)
                return
            if rest.startswith("[?("):
                self._parse_filter(cur)
                continue
            if rest.startswith(".."):
                self._parse_recursive(cur)
                continue
            char = self._next()
            if char == _EOF or char in "\r\n":
                raise JSONPathError("unclosed action")
            if char in " @$":  # spaces, and the current object: nothing to record
                self._consume()
            elif char == "[":
                self._parse_array(cur)
            elif char in "\"'":
                self._parse_quote(cur, char)
            elif char == ".":
                self._parse_field(cur)
            elif char in "+-" or char.isdigit():
                self._backup()
                self._parse_number(cur)
            elif _is_alphanumeric(char):
                self._backup()
                self._parse_identifier(cur)
            else:
                raise JSONPathError(f"unrecognized character in action: {_unicode_repr(char)}")

    def _parse_identifier(self, cur: _ListNode) -> None:
        while True:
            char = self._next()
            if char == _EOF or char in _TERMINATORS:
                if char != _EOF:
                    self._backup()
                break
        value = self._consume()
        cur.nodes.append(_BoolNode(value == "true") if value in ("true", "false") else _IdentifierNode(value))

    def _parse_recursive(self, cur: _ListNode) -> None:
        if cur.nodes and isinstance(cur.nodes[-1], _RecursiveNode):
            raise JSONPathError("invalid multiple recursive descent")
        self.pos += 2
        self._consume()
        cur.nodes.append(_RecursiveNode())
        if _is_alphanumeric(self._peek()):
            self._parse_field(cur)

    def _parse_number(self, cur: _ListNode) -> None:
        if self._peek() in ("+", "-"):
            self._next()
        while True:
            char = self._next()
            if char == _EOF:
                break
            if char != "." and not char.isdigit():
                self._backup()
                break
        value = self._consume()
        if re.fullmatch(r"[+-]?\d+", value):
            cur.nodes.append(_IntNode(int(value)))
            return
        try:
            if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", value):
                raise ValueError(value)
            cur.nodes.append(_FloatNode(float(value)))
        except ValueError:
            raise JSONPathError(f"cannot parse number {value}") from None

    def _parse_array(self, cur: _ListNode) -> None:
        while True:
            char = self._next()
            if char in (_EOF, "\n"):
                raise JSONPathError("unterminated array")
            if char == "]":
                break
        text = self._consume()[1:-1]
        if text == "*":
            text = ":"
        parts = text.split(",")
        if len(parts) > 1:
            cur.nodes.append(_UnionNode([_parse_action(f"[{part.strip(' ')}]") for part in parts]))
            return
        key = _DICT_KEY.match(text)
        if key:
            cur.nodes.extend(_parse_action(f".{key.group(1)}").nodes)
            return
        match = _SLICE.match(text)
        if match is None:
            raise JSONPathError(f"invalid array index {text}")
        groups = [match.group(1) or "", match.group(2) or "", match.group(3) or ""]
        params = (_Param(), _Param(), _Param())
        for index, raw in enumerate(groups):
            if raw:
                if index > 0:
                    raw = raw[1:]
                if index > 0 and raw == "":
                    params[index].known = False
                else:
                    try:
                        params[index].value, params[index].known = int(raw), True
                    except ValueError:
                        raise JSONPathError(f"array index {raw} is not a number") from None
            elif index == 1:
                params[1].value, params[1].known, params[1].derived = params[0].value + 1, True, True
        cur.nodes.append(_ArrayNode(params))

    def _parse_filter(self, cur: _ListNode) -> None:
        self.pos += 3
        self._consume()
        begin = end = False
        pair = ""
        while True:
            char = self._next()
            if char in (_EOF, "\n"):
                raise JSONPathError("unterminated filter")
            if char in "\"'":
                if not begin:
                    begin, pair = True, char
                    continue
                if self.input[self.pos - 2] != "\\" and char == pair:
                    end = True
            elif char == ")" and begin == end:
                break
        if self._next() != "]":
            raise JSONPathError("unclosed array expect ]")
        text = self._consume()[:-2]
        match = _FILTER.match(text)
        if match is None:
            cur.nodes.append(_FilterNode(_parse_action(text), _ListNode(), "exists"))
        else:
            cur.nodes.append(_FilterNode(_parse_action(match.group(1)), _parse_action(match.group(3)),
                                         match.group(2)))

    def _parse_quote(self, cur: _ListNode, quote: str) -> None:
        while True:
            char = self._next()
            if char in (_EOF, "\n"):
                raise JSONPathError("unterminated quoted string")
            if char == quote and self.input[self.pos - 2] != "\\":
                break
        value = self._consume()
        cur.nodes.append(_TextNode(_unquote(value)))

    def _parse_field(self, cur: _ListNode) -> None:
        self._consume()
        while True:
            char = self._next()
            if char == _EOF:
                break
            if char == "\\":
                self._next()
            elif char in _TERMINATORS:
                self._backup()
                break
        value = self._consume()
        cur.nodes.append(_WildcardNode() if value == "*" else _FieldNode(value.replace("\\", "")))


def _parse_action(text: str) -> _ListNode:
    """parseAction: parse `{text}` and return the action's own node list."""
    root = _Parser("{" + text + "}").parse()
    first = root.nodes[0]
    assert isinstance(first, _ListNode)
    return first


def _unicode_repr(char: str) -> str:
    return f"U+{ord(char):04X} '{char}'"


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
            "'": "'", '"': '"'}


def _unquote(value: str) -> str:
    """UnquoteExtend: strconv.Unquote, for single or double quotes."""
    if len(value) < 2 or value[0] != value[-1] or value[0] not in "\"'":
        raise JSONPathError(f"unquote string {value} error invalid syntax")
    body, out, index = value[1:-1], [], 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        escape = body[index + 1:index + 2]
        if escape in _ESCAPES:
            out.append(_ESCAPES[escape])
            index += 2
        elif escape in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[escape]
            digits = body[index + 2:index + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise JSONPathError(f"unquote string {value} error invalid syntax")
            out.append(chr(int(digits, 16)))
            index += 2 + width
        else:
            raise JSONPathError(f"unquote string {value} error invalid syntax")
    return "".join(out)


# -- evaluation (client-go util/jsonpath/jsonpath.go) ----------------------------------------------
class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""What `first_value` returns when a path finds nothing (distinct from a JSON null)."""


def _go_type(value: Any) -> str:
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if isinstance(value, list | tuple):
        return "[]interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    return "interface {}"


def _kind(value: Any) -> str:
    """template.basicKind: the comparable kinds; anything else cannot be compared."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    raise JSONPathError("invalid type for comparison")


def _compare(operator: str, left: Any, right: Any) -> bool:
    left_kind, right_kind = _kind(left), _kind(right)
    if operator not in ("==", "!=", "<", ">", "<=", ">="):
        raise JSONPathError(f"unrecognized filter operator {operator}")
    if left_kind != right_kind:
        raise JSONPathError("incompatible types for comparison")
    if operator == "==":
        return bool(left == right)
    if operator == "!=":
        return bool(left != right)
    if left_kind == "bool":
        raise JSONPathError("invalid type for comparison")
    if operator == "<":
        return bool(left < right)
    if operator == ">":
        return bool(left > right)
    if operator == "<=":
        return bool(left <= right)
    return bool(left >= right)


class JSONPath:
    """A parsed template: `JSONPath("{.status.phase}").find_results(obj)`."""

    def __init__(self, template: str, *, allow_missing_keys: bool = True) -> None:
        self.template = template
        self.allow_missing_keys = allow_missing_keys
        self._root = _Parser(template).parse()

    def find_results(self, data: Any) -> list[list[Any]]:
        """One list of values per top-level node (text outside braces is a node too)."""
        return [self._walk([data], node) for node in self._root.nodes]

    def execute(self, data: Any) -> str:
        """What `kubectl -o jsonpath=...` prints: each node's values joined by spaces."""
        return "".join(self.print_results(values) for values in self.find_results(data))

    @staticmethod
    def print_results(values: Sequence[Any]) -> str:
        return " ".join(go_sprint(value) for value in values)

    # walkers
    def _walk(self, values: list[Any], node: _Node) -> list[Any]:
        if isinstance(node, _ListNode):
            return self._eval_list(values, node)
        if isinstance(node, _TextNode):
            return [node.text]
        if isinstance(node, _FieldNode):
            return self._eval_field(values, node)
        if isinstance(node, _ArrayNode):
            return self._eval_array(values, node)
        if isinstance(node, _FilterNode):
            return self._eval_filter(values, node)
        if isinstance(node, _IntNode | _FloatNode):
            return [node.value for _ in values]
        if isinstance(node, _WildcardNode):
            return [child for value in values for child in _children(value)]
        if isinstance(node, _RecursiveNode):
            return self._eval_recursive(values)
        if isinstance(node, _UnionNode):
            return [item for part in node.nodes for item in self._eval_list(values, part)]
        if isinstance(node, _IdentifierNode):
            if node.name in ("range", "end"):
                raise JSONPathError(f"{node.name} is not supported by this JSONPath evaluator")
            raise JSONPathError(f"unrecognized identifier {node.name}")
        if isinstance(node, _BoolNode):  # parsed, but client-go's walk has no case for it
            raise JSONPathError(f"unexpected Node {{{'true' if node.value else 'false'}}}")
        raise JSONPathError(f"unexpected Node {node}")

    def _eval_list(self, values: list[Any], node: _ListNode) -> list[Any]:
        for child in node.nodes:
            values = self._walk(values, child)
        return values

    def _eval_field(self, values: list[Any], node: _FieldNode) -> list[Any]:
        if not values:
            return []
        if node.name == "":
            return list(values)
        results = [value[node.name] for value in values
                   if isinstance(value, Mapping) and node.name in value]
        if not results and not self.allow_missing_keys:
            raise JSONPathError(f"{node.name} is not found")
        return results

    def _eval_array(self, values: list[Any], node: _ArrayNode) -> list[Any]:
        results: list[Any] = []
        for value in values:
            if value is None:
                continue
            if not isinstance(value, list | tuple):
                raise JSONPathError(f"{_go_type(value)} is not array or slice")
            length = len(value)
            start = node.params[0].value if node.params[0].known else 0
            if start < 0:
                start += length
            stop = node.params[1].value if node.params[1].known else length
            if stop < 0 or (stop == 0 and node.params[1].derived):
                stop += length
            if stop == start:
                continue
            if start >= length or start < 0:
                raise JSONPathError(f"array index out of bounds: index {start}, length {length}")
            if stop > length or stop < 0:
                raise JSONPathError(f"array index out of bounds: index {stop - 1}, length {length}")
            if start > stop:
                raise JSONPathError(f"starting index {start} is greater than ending index {stop}")
            step = node.params[2].value if node.params[2].known and node.params[2].value > 0 else 1
            results.extend(value[start:stop:step])
        return results

    def _eval_filter(self, values: list[Any], node: _FilterNode) -> list[Any]:
        results: list[Any] = []
        for value in values:
            if not isinstance(value, list | tuple):
                raise JSONPathError(f"{go_sprint(value)} is not array or slice and cannot be filtered")
            for item in value:
                if node.operator == "exists":
                    try:
                        found = self._eval_list([item], node.left)
                    except JSONPathError:
                        found = []
                    if found:
                        results.append(item)
                    continue
                lefts = self._eval_list([item], node.left)
                if len(lefts) != 1:
                    raise JSONPathError("can only compare one element at a time")
                rights = self._eval_list([item], node.right)
                if len(rights) != 1:
                    raise JSONPathError("can only compare one element at a time")
                if _compare(node.operator, lefts[0], rights[0]):
                    results.append(item)
        return results

    def _eval_recursive(self, values: list[Any]) -> list[Any]:
        results: list[Any] = []
        for value in values:
            children = list(_children(value))
            if children:
                results.append(value)
                results.extend(self._eval_recursive(children))
        return results


def _children(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        yield from value.values()
    elif isinstance(value, list | tuple):
        yield from value
    elif isinstance(value, str):
        yield from (ord(char) for char in value)  # Go indexes a string's bytes


# -- helpers for callers ---------------------------------------------------------------------------
_RELAXED = re.compile(r"^\{\.?([^{}]+)\}$|^\.?([^{}]+)$")


def relaxed_expression(expression: str) -> str:
    """kubectl's RelaxedJSONPathExpression: `a.b`, `.a.b`, `{a.b}` and `{.a.b}` all mean `{.a.b}`."""
    if not expression:
        return expression
    match = _RELAXED.match(expression)
    if match is None:
        raise JSONPathError("unexpected path string, expected a 'name1.name2' or '.name1.name2' or "
                            "'{name1.name2}' or '{.name1.name2}'")
    return "{." + (match.group(1) or match.group(2)) + "}"


def column_path(json_path: str) -> JSONPath:
    """A printer column's path, compiled as apiextensions' table convertor does: `{` + path + `}`."""
    try:
        return JSONPath("{" + json_path + "}", allow_missing_keys=True)
    except JSONPathError:
        raise JSONPathError(f"unrecognized column definition {json_path!r}") from None


def evaluate(expression: str, data: Any, *, allow_missing_keys: bool = True) -> list[Any]:
    """All values a path finds, in order. A bare path (`.a.b`) is wrapped in braces first."""
    template = expression if "{" in expression else "{" + expression + "}"
    results = JSONPath(template, allow_missing_keys=allow_missing_keys).find_results(data)
    return [value for values in results for value in values]


def first_value(path: JSONPath, data: Any) -> Any:
    """The printer-column reading: the first value of the first result, or MISSING (also on error)."""
    try:
        results = path.find_results(data)
    except JSONPathError:
        return MISSING
    if not results or not results[0]:
        return MISSING
    return results[0][0]


# -- Go's fmt.Fprint of decoded JSON -----------------------------------------------------------------

"""CEL of the emulated kube-apiserver: parsing, type checking, the Kubernetes libraries, runtime semantics, cost."""

from __future__ import annotations

from typing import Any

import pytest

from llmapp_sandbox.apiserver import cel
from llmapp_sandbox.apiserver.cel import (
    MISSING,
    CelCompileError,
    CelErr,
    compile_rule,
    cost_error_message,
    evaluate_expression,
)
from llmapp_sandbox.apiserver.gofmt import go_format_float, go_json, go_json_float, go_sharp_v

APP: dict[str, Any] = {
    "type": "object",
    "properties": {
        "cpu": {"type": "integer"},
        "memory": {"type": "integer"},
        "image": {"type": "string", "maxLength": 512},
        "env": {"type": "object", "maxProperties": 100, "additionalProperties": {"type": "string"}},
        "x-prop": {"type": "string"},
        "namespace": {"type": "string"},
        "a__b": {"type": "string"},
        "port": {"x-kubernetes-int-or-string": True},
        "vars": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def compile_error(rule: str, schema: dict[str, Any] = APP, **kwargs: Any) -> str:
    with pytest.raises(CelCompileError) as exc:
        compile_rule({"rule": rule, **kwargs}, schema)
    return exc.value.message


def outcome(rule: str, value: Any, schema: dict[str, Any] = APP, old: Any = MISSING, **kwargs: Any) -> cel.RuleOutcome:
    return compile_rule({"rule": rule, **kwargs}, schema).evaluate(value, old)


# --- the standard library and the Kubernetes/cel-go extensions ----------------------------------------

@pytest.mark.parametrize(("expr", "expected"), [
    ("1 + 2 * 3", 7), ("7 / 2", 3), ("-7 / 2", -3), ("-7 % 3", -1), ("'a' + 'b'", "ab"),
    ("[1, 2] + [3]", [1, 2, 3]), ("size('héllo')", 5), ("'hello'.size()", 5), ("1 < 1.5", True), ("1u < 2", True),
    ("dyn(1) == 1.0", True), ("type(1) == int", True), ("type('a') == string", True), ("null == null", True),
    ("'a' in ['a']", True), ("'k' in {'k': 1}", True), ("{'k': 1}['k']", 1), ("has({'a': 1}.a)", True),
    ("[1, 2, 3].exists_one(x, x > 2)", True), ("[1, 2, 3].filter(x, x > 1)", [2, 3]),
    ("[1, 2, 3].map(x, x > 1, x * 10)", [20, 30]), ("[[1], [2]].map(x, x[0])", [1, 2]),
    ("int('42')", 42), ("double(1)", 1.0), ("uint(1) == 1u", True), ("bool('true')", True), ("size(b'ab')", 2),
    ("string(1.5)", "1.5"), ("string(1e6)", "1e+06"), ("string(duration('1m'))", "60s"),
    ("string(timestamp('2024-01-02T03:04:05Z'))", "2024-01-02T03:04:05Z"),
    ("duration('1h30m') == duration('90m')", True), ("duration('1h').getMinutes()", 60),
    ("timestamp('2024-01-02T03:04:05Z').getFullYear()", 2024), ("timestamp('2024-01-02T03:04:05Z').getMonth()", 0),
    ("timestamp('2024-03-02T03:04:05Z').getDayOfMonth()", 1), ("timestamp('2024-03-02T03:04:05Z').getDate()", 2),
    ("timestamp('2024-01-02T03:04:05Z') + duration('1h') > timestamp('2024-01-02T03:04:05Z')", True),
    # cel-go strings extension v2
    ("'abc'.charAt(1)", "b"), ("'abc'.charAt(3)", ""), ("'abcabc'.indexOf('c')", 2), ("'abcabc'.indexOf('c', 3)", 5),
    ("'abcabc'.lastIndexOf('c')", 5), ("'abc'.lastIndexOf('')", 3), ("'ABC'.lowerAscii()", "abc"),
    ("'héllo'.upperAscii()", "HéLLO"), ("'aXa'.replace('a', 'b')", "bXb"), ("'aXa'.replace('a', 'b', 1)", "bXa"),
    ("'a,b,c'.split(',')", ["a", "b", "c"]), ("'a,b,c'.split(',', 2)", ["a", "b,c"]),
    ("'abc'.split('')", ["a", "b", "c"]),
    ("'abc'.substring(1)", "bc"), ("'abc'.substring(1, 2)", "b"), ("' x\\t'.trim()", "x"),
    ("['a', 'b'].join('-')", "a-b"), ("['a', 'b'].join()", "ab"), ("'%s is %d'.format(['x', 3])", "x is 3"),
    ("strings.quote('a\"b')", '"a\\"b"'),
    # Kubernetes lists library
    ("[3, 1, 2].min()", 1), ("[3, 1, 2].max()", 3), ("[1, 2, 3].sum()", 6), ("[1.5, 2.5].sum()", 4.0),
    ("[1, 2, 2].isSorted()", True), ("['b', 'a'].isSorted()", False), ("[1, 2, 2].indexOf(2)", 1),
    ("[1, 2, 2].lastIndexOf(2)", 2), ("[1].indexOf(3)", -1),
    # Kubernetes regex library (RE2)
    ("'abc123'.find('[0-9]+')", "123"), ("'abc'.find('[0-9]+')", ""),
    ("'a1b22c333'.findAll('[0-9]+')", ["1", "22", "333"]),
    ("'a1b22c333'.findAll('[0-9]+', 2)", ["1", "22"]),
    # Kubernetes urls library
    ("isURL('https://example.com:80/x?y=1')", True), ("isURL('example.com')", False), ("isURL('/relative/ok')", True),
    ("isURL('https://exa mple.com/')", False), ("url('https://example.com:8080/p?q=1').getHost()", "example.com:8080"),
    ("url('https://example.com:8080/p?q=1').getHostname()", "example.com"),
    ("url('https://example.com:8080/p?q=1').getPort()", "8080"), ("url('https://[::1]:80/').getHostname()", "::1"),
    ("url('https://example.com/a%20b').getEscapedPath()", "/a%20b"),
    ("url('HTTPS://example.com/').getScheme()", "https"),
    ("url('https://e.com/?a=1&a=2').getQuery()['a']", ["1", "2"]),
    # Kubernetes quantity, IP and CIDR libraries, cel-go sets
    ("quantity('1Gi').isGreaterThan(quantity('1G'))", True), ("quantity('500m').asApproximateFloat()", 0.5),
    ("quantity('2k').asInteger()", 2000), ("quantity('1') == quantity('1000m')", True), ("isQuantity('1.5Gi')", True),
    ("isQuantity('abc')", False), ("quantity('1Gi').compareTo(quantity('1Mi'))", 1),
    ("isIP('10.0.0.1')", True), ("isIP('10.0.0.256')", False), ("isIP('::ffff:1.2.3.4')", False),
    ("ip('10.0.0.1').family()", 4), ("ip('fe80::1').isLinkLocalUnicast()", True),
    ("ip('127.0.0.1').isLoopback()", True),
    ("ip.isCanonical('2001:db8::1')", True), ("ip.isCanonical('2001:DB8::1')", False),
    ("cidr('10.0.0.0/8').containsIP('10.1.2.3')", True), ("cidr('10.0.0.5/8').masked() == cidr('10.0.0.0/8')", True),
    ("cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16')", True), ("cidr('10.0.0.0/8').prefixLength()", 8),
    ("isCIDR('10.0.0.0/33')", False), ("sets.contains([1, 2, 3], [1, 2])", True), ("sets.intersects([1], [2])", False),
    ("sets.equivalent([1, 2], [2, 1, 1])", True),
    # matches: RE2, unanchored like Go's MatchString
    ("'abc'.matches('b')", True), ("'abc'.matches('^b')", False), ("matches('abc', 'c$')", True),
    ("'ab\\ncd'.matches('^cd')", False), ("'日本'.matches('^..$')", True),
])
def test_evaluates_like_cel_go(expr: str, expected: Any) -> None:
    got = evaluate_expression(expr)
    assert not isinstance(got, CelErr), got
    assert got == expected
    assert type(got) is type(expected) or (isinstance(expected, list) and isinstance(got, list))


@pytest.mark.parametrize(("expr", "message"), [
    ("[1][5]", "index '5' out of range in list size '1'"),
    ("{'a': 1}.b", "no such key: b"),
    ("9223372036854775807 + 1", "integer overflow"),
    ("-(-9223372036854775807 - 1)", "integer overflow"),
    ("1 / 0", "division by zero"),
    ("1 % 0", "modulus by zero"),
    ("int(1e20)", "integer overflow"),
    ("uint(-1)", "unsigned integer overflow"),
    ("int('x')", 'strconv.ParseInt: parsing "x": invalid syntax'),
    ("[0, 1].all(x, 1 / x == 1)", "division by zero"),
    ("[1].min() == [].min()", "min called on empty list"),
    ("'a'.matches(string(dyn('(')))", "error parsing regexp: missing closing ): `(`"),
    ("quantity('abc') == quantity('1')", cel._QUANTITY_ERR),
    ("'abc'.substring(2, 1)", "invalid substring range. start: 2, end: 1"),
    ("'abc'.charAt(9)", "index out of range: 9"),
])
def test_runtime_errors_are_worded_like_cel_go(expr: str, message: str) -> None:
    got = evaluate_expression(expr)
    assert isinstance(got, CelErr)
    assert got.message == message


def test_logical_operators_absorb_errors_commutatively() -> None:
    assert evaluate_expression("1 / 0 == 1 && false") is False
    assert evaluate_expression("false && 1 / 0 == 1") is False
    assert evaluate_expression("1 / 0 == 1 || true") is True
    assert evaluate_expression("[1, 2].all(x, x / 0 > 1) || true") is True
    assert evaluate_expression("[0, 1].exists(x, 1 / x == 1)") is True
    assert isinstance(evaluate_expression("1 / 0 == 1 || false"), CelErr)
    assert evaluate_expression("true ? 1 : 1 / 0") == 1


# --- compile errors as kube-apiserver prints them -------------------------------------------------------

def test_undefined_field_is_a_compile_error() -> None:
    assert compile_error("self.cpux == 1") == (
        "compilation failed: ERROR: <input>:1:5: undefined field 'cpux'\n | self.cpux == 1\n | ....^")


def test_undefined_field_inside_has_and_nested_objects() -> None:
    nested = {"type": "object", "properties": {"app": APP}}
    assert "undefined field 'cpux'" in compile_error("has(self.app.cpux)", nested)
    assert "undefined field 'bogus'" in compile_error("self.vars.bogus == 1")  # preserved fields are not visible
    compile_rule({"rule": "self.env.ANY == 'x'"}, APP)  # a map, not an object: any key selects


def test_unknown_function_and_variable_fail_compilation() -> None:
    assert compile_error("foo(self.cpu)") == (
        "compilation failed: ERROR: <input>:1:4: undeclared reference to 'foo' (in container '')\n"
        " | foo(self.cpu)\n | ...^")
    assert "undeclared reference to 'other' (in container '')" in compile_error("other.cpu == 1")
    assert "undeclared reference to 'reverse'" in compile_error("self.image.reverse() == ''")  # strings v3 only
    assert "undeclared reference to 'all'" in compile_error("self.env.all(k, v, k == v)")  # two-variable: 1.33


def test_type_errors_fail_compilation() -> None:
    assert compile_error("self.cpu + 'a' == 1") == (
        "compilation failed: ERROR: <input>:1:10: found no matching overload for '_+_' applied to '(int, string)'\n"
        " | self.cpu + 'a' == 1\n | .........^")
    assert "found no matching overload for '_==_' applied to '(int, double)'" in compile_error("self.cpu == 1.0")
    assert "found no matching overload for 'startsWith' applied to 'int.(string)'" in compile_error(
        "self.cpu.startsWith('1')")
    assert "type 'int' does not support field selection" in compile_error("self.cpu.x == 1")
    assert "cannot be range of a comprehension" in compile_error("self.cpu.all(x, x > 1)")
    assert compile_error("self.cpu") == "cel expression must evaluate to a bool"
    assert compile_error("self.port") == "cel expression must evaluate to a bool"  # dyn is not bool


def test_literal_validators() -> None:
    assert "invalid matches argument" in compile_error("self.image.matches('(?!x)')")
    assert "invalid duration argument" in compile_error("duration('1x') > duration('1s')")
    assert "invalid timestamp argument" in compile_error("timestamp('yesterday') > timestamp('2020-01-01T00:00:00Z')")
    assert "expected type 'int' but found 'string'" in compile_error("self.cpu in [1, 'a']")
    compile_rule({"rule": "'%s %d'.format(['a', 1]) != ''"}, APP)  # format() is exempt


def test_syntax_errors_and_reserved_words() -> None:
    assert compile_error("self.cpu ==").startswith("compilation failed: ERROR: <input>:1:")
    assert "reserved identifier: namespace" in compile_error("self.namespace == 'x'")
    assert "invalid argument to has() macro" in compile_error("has(self)")
    assert "argument must be a simple name" in compile_error("self.env.all(1, true)")


def test_unimplemented_libraries_fail_loudly() -> None:
    assert "not implemented by this API server emulator" in compile_error("optional.of(1).hasValue()")
    assert "not implemented by this API server emulator" in compile_error("format.dns1123Label().validate('a') != 1")


def test_property_names_are_escaped() -> None:
    assert outcome("self.x__dash__prop == 'v'", {"x-prop": "v"}).status == "passed"
    assert outcome("self.__namespace__ == 'ns'", {"namespace": "ns"}).status == "passed"
    assert outcome("self.a__underscores__b == 'v'", {"a__b": "v"}).status == "passed"
    assert cel.escape_property_name("a.b/c-d") == "a__dot__b__slash__c__dash__d"
    assert cel.escape_property_name("1abc") is None
    assert cel.escape_property_name("a b") is None


def test_root_exposes_only_name_and_generate_name_of_metadata() -> None:
    root = {"type": "object", "properties": {"spec": {"type": "object"}}}
    rule = compile_rule({"rule": "self.metadata.name.startsWith('x') && self.kind == 'K'"}, root, is_resource_root=True)
    assert rule.evaluate({"kind": "K", "metadata": {"name": "xy", "labels": {"a": "b"}}}).status == "passed"
    with pytest.raises(CelCompileError, match="undefined field 'labels'"):
        compile_rule({"rule": "has(self.metadata.labels)"}, root, is_resource_root=True)


# --- Kubernetes value semantics -------------------------------------------------------------------------

def test_missing_fields_are_no_such_key_and_has_works() -> None:
    result = outcome("self.cpu == 1", {}, message="cpu is wrong")
    assert result.status == "error"
    assert result.message == "no such key: cpu evaluating rule: cpu is wrong"
    assert outcome("self.cpu == 1", {}).message == "no such key: cpu evaluating rule: self.cpu == 1"
    assert outcome("!has(self.cpu) || self.cpu == 1", {}).status == "passed"
    assert outcome("has(self.env.A)", {"env": {"A": "x"}}).status == "passed"
    assert outcome("!has(self.env.B)", {"env": {"A": "x"}}).status == "passed"
    assert outcome("'A' in self.env", {"env": {"A": "x"}}).status == "passed"
    assert outcome("!has(self.cpu)", {"cpu": None}).status == "passed"  # null fields are absent


def test_int_or_string_is_dyn() -> None:
    rule = "type(self.port) == int ? self.port < 65536 : self.port.matches('^[0-9]+%$')"
    assert outcome(rule, {"port": 80}).status == "passed"
    assert outcome(rule, {"port": "50%"}).status == "passed"
    assert outcome(rule, {"port": "http"}).status == "failed"
    overload = outcome("self.port > 1", {"port": "x"})
    assert overload.status == "error"
    assert overload.message == ("'no such overload': call arguments did not match a supported operator, function or "
                                "macro signature for rule: self.port > 1")


def test_number_fields_are_doubles_and_formats_are_typed() -> None:
    schema = {"type": "object", "properties": {
        "n": {"type": "number"}, "t": {"type": "string", "format": "date-time"},
        "d": {"type": "string", "format": "duration"}, "b": {"type": "string", "format": "byte"}}}
    assert outcome("self.n == 1.0", {"n": 1}, schema).status == "passed"
    before_2030 = "self.t < timestamp('2030-01-01T00:00:00Z')"
    assert outcome(before_2030, {"t": "2024-05-01T10:00:00Z"}, schema).status == "passed"
    assert outcome("self.d == duration('1h')", {"d": "1h"}, schema).status == "passed"
    assert outcome("self.b == b'hi'", {"b": "aGk="}, schema).status == "passed"
    bad = outcome("self.t < timestamp('2030-01-01T00:00:00Z')", {"t": "nope"}, schema)
    assert bad.status == "error" and bad.message.startswith("Invalid date-time formatted string nope")


def test_list_type_set_and_map_semantics() -> None:
    sets = {"type": "object", "properties": {
        "s": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "m": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"],
              "items": {"type": "object", "properties": {"k": {"type": "string"}, "v": {"type": "integer"}}}}}}
    assert outcome("self.s == ['b', 'a']", {"s": ["a", "b"]}, sets).status == "passed"
    assert outcome("self.s + ['a', 'c'] == ['a', 'b', 'c']", {"s": ["a", "b"]}, sets).status == "passed"
    value = {"m": [{"k": "a", "v": 1}, {"k": "b", "v": 2}]}
    assert outcome("self.m == [self.m[1], self.m[0]]", value, sets).status == "passed"  # order-insensitive
    assert outcome("(self.m + [self.m[0]]).size() == 2", value, sets).status == "passed"
    assert isinstance(evaluate_expression("self[3]", [1], {"type": "array", "items": {"type": "integer"}}), CelErr)
    err = evaluate_expression("self[3]", [1], {"type": "array", "items": {"type": "integer"}})
    assert isinstance(err, CelErr) and err.message == "index out of bounds: 3"


def test_transition_rules() -> None:
    rule = compile_rule({"rule": "self == oldSelf", "message": "immutable"}, {"type": "string"})
    assert rule.uses_old_self
    assert rule.evaluate("a").status == "skipped"  # create: no old value
    assert rule.evaluate("a", "a").status == "passed"
    changed = rule.evaluate("b", "a")
    assert (changed.status, changed.message) == ("failed", "immutable")
    assert not compile_rule({"rule": "self.size() > 0"}, {"type": "string"}).uses_old_self


def test_messages_and_message_expressions() -> None:
    assert outcome("self.cpu > 1", {"cpu": 1}).message == "failed rule: self.cpu > 1"
    assert outcome("self.cpu > 1", {"cpu": 1}, message="  too small ").message == "too small"
    expr = outcome("self.cpu > 1", {"cpu": 1}, message="m", messageExpression="'cpu is ' + string(self.cpu)")
    assert expr.message == "cpu is 1"
    fallback = outcome("self.cpu > 1", {"cpu": 1}, message="m", messageExpression="'\\n'")
    assert fallback.message == "m"  # a message expression with line breaks falls back to message
    with pytest.raises(CelCompileError) as exc:
        compile_rule({"rule": "true", "messageExpression": "1"}, APP)
    assert (exc.value.field, exc.value.message) == ("messageExpression", "messageExpression must evaluate to a string")
    assert exc.value.compiled is not None


def test_runtime_cost_limit() -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    rule = compile_rule({"rule": "self.all(x, self.all(y, self.all(z, x + y + z >= 0)))"}, schema)
    result = rule.evaluate(list(range(120)))
    assert result.status == "error" and result.budget_exhausted
    assert result.message.startswith("'operation cancelled: actual cost limit exceeded': no further validation rules")
    small = rule.evaluate(list(range(5)), budget=10)
    assert small.message == ("validation failed due to running out of cost budget, no further validation rules "
                             "will be run")


# --- cost estimation ------------------------------------------------------------------------------------

def test_unbounded_list_is_rejected_and_bounded_one_accepted() -> None:
    items = {"type": "string", "maxLength": 63}
    unbounded = compile_rule({"rule": "self.all(x, x.matches('^[a-z]+$'))"}, {"type": "array", "items": items})
    # 1048575 items (3 MiB / 3 bytes), each (1 + 2 + 1 + 26 * 2) = 56 -> far over the 10,000,000 budget
    assert unbounded.max_cost == 1048575 * 56 + 2
    assert unbounded.estimated_cost(1) > cel.STATIC_ESTIMATED_COST_LIMIT
    bounded = compile_rule({"rule": "self.all(x, x.matches('^[a-z]+$'))"},
                           {"type": "array", "maxItems": 10, "items": items})
    assert bounded.max_cost == 10 * 56 + 2


def test_cost_of_map_keys_is_zero_sized_and_strings_are_four_bytes_per_rune() -> None:
    env = {"type": "object", "maxProperties": 100, "additionalProperties": {"type": "string"}}
    # map keys have no size in the estimator: matches costs ceil((0 + 1) * 0.1) * ceil(24 * 0.25) = 6, plus 1 for
    # `k`, 1 for `__result__ &&` and 2 for the loop condition: 10 per entry
    assert compile_rule({"rule": "self.all(k, k.matches('^[A-Za-z_][A-Za-z0-9_]*$'))"}, env).max_cost == 100 * 10 + 2
    # maxLength 512 -> 2048 bytes: startsWith is sized by its argument, contains multiplies both sizes
    assert compile_rule({"rule": "self.image.contains('ab')"}, APP).max_cost == 2 + 205 * 1
    assert compile_rule({"rule": "self.image.startsWith('ab')"}, APP).max_cost == 3


def test_enclosing_cardinality_multiplies_the_estimate() -> None:
    rule = compile_rule({"rule": "self.size() < 10"}, {"type": "string", "maxLength": 10})
    assert rule.estimated_cost(50) == rule.max_cost * 50
    # unbounded ancestors: how many minimal values fit into 3 MiB
    assert rule.estimated_cost(None) == rule.max_cost * (3 * 1024 * 1024 // 3)


def test_cost_error_message() -> None:
    assert cost_error_message("estimated rule cost", 85_983_150, 10_000_000) == (
        "estimated rule cost exceeds budget by factor of 8.6x (try simplifying the rule, or adding maxItems, "
        "maxProperties, and maxLength where arrays, maps, and strings are declared)")
    assert "factor of 1.200000x" in cost_error_message("c", 12, 10)
    assert "factor of more than 100x" in cost_error_message("c", 10_000, 10)


# --- Go formatting helpers ------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (1.5, "1.5"), (65535.0, "65535"), (1e6, "1e+06"), (123456.0, "123456"), (0.0001, "0.0001"), (0.00001, "1e-05"),
    (-2.5, "-2.5"), (1e21, "1e+21"), (float("inf"), "+Inf"),
])
def test_go_format_float(value: float, expected: str) -> None:
    assert go_format_float(value) == expected


def test_go_json_and_sharp_v() -> None:
    assert go_json_float(1e21) == "1e+21"
    assert go_json_float(1e-7) == "1e-7"
    assert go_json_float(3.0) == "3"
    assert go_json({"b": "<x>", "a": [1, 2.5, True, None]}) == '{"a":[1,2.5,true,null],"b":"\\u003cx\\u003e"}'
    assert go_sharp_v({"type": "Ready", "n": 1}) == 'map[string]interface {}{"n":1, "type":"Ready"}'


def test_regex_errors_are_worded_like_go() -> None:
    with pytest.raises(cel.RegexError) as exc:
        cel.compile_regex("^(?!foo)")
    assert str(exc.value) == "error parsing regexp: invalid or unsupported Perl syntax: `(?!`"
    with pytest.raises(cel.RegexError, match="missing closing ]"):
        cel.compile_regex("[a")
    assert cel.regex_search("b", "abc") and not cel.regex_search("^b", "abc")


def test_declared_metadata_name_bounds_the_root_estimate() -> None:
    rule = {"rule": "self.metadata.name.matches('^[a-z]+$')"}
    bare = compile_rule(rule, {"type": "object"}, is_resource_root=True)
    declared = compile_rule(rule, {"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"},
        "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 63},
                                                      "generateName": {"type": "string", "maxLength": 63}}}}},
        is_resource_root=True)
    assert bare.max_cost > 100 * declared.max_cost
    assert declared.max_cost == 3 + 26 * 2

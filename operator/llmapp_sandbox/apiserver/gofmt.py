"""Values printed the way Go prints them, so the emulator's messages read like the API server's:
%v of floats (strconv 'g'), %q of strings, %#v and fmt.Fprint of decoded JSON, and JSON as
encoding/json writes it (HTML characters escaped, map keys sorted). One place for all of them:
field errors (schema.py), CEL (cel.py), server-side apply (ssa.py), JSONPath cells (jsonpath.py)
and selectors (selectors.py) all print through here."""

from __future__ import annotations

import math
from typing import Any


def _float_digits(f: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of |f| and the decimal point position (0.DIGITS x 10^dp)."""
    text = repr(abs(f))
    mantissa, _, exp_text = text.partition("e")
    exp = int(exp_text) if exp_text else 0
    int_part, _, frac_part = mantissa.partition(".")
    if frac_part == "0":
        frac_part = ""
    digits = (int_part + frac_part).lstrip("0")
    lead_zeros = len(int_part + frac_part) - len((int_part + frac_part).lstrip("0"))
    dp = len(int_part) + exp - lead_zeros
    digits = digits.rstrip("0") or "0"
    return digits, dp


def _fmt_e(neg: bool, digits: str, dp: int) -> str:
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exp = dp - 1
    sign = "-" if exp < 0 else "+"
    return ("-" if neg else "") + mant + "e" + sign + f"{abs(exp):02d}"


def _fmt_f(neg: bool, digits: str, dp: int) -> str:
    if dp <= 0:
        body = "0." + "0" * (-dp) + digits
    elif dp >= len(digits):
        body = digits + "0" * (dp - len(digits))
    else:
        body = digits[:dp] + "." + digits[dp:]
    return ("-" if neg else "") + body


def go_format_float(f: float) -> str:
    """Go's `%v` / strconv.FormatFloat(f, 'g', -1, 64) for a float64."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    neg = math.copysign(1.0, f) < 0
    if f == 0:
        return "-0" if neg else "0"
    digits, dp = _float_digits(f)
    exp = dp - 1
    if exp < -4 or exp >= 6:
        return _fmt_e(neg, digits, dp)
    return _fmt_f(neg, digits, dp)


def go_json_float(f: float) -> str:
    """How Go's encoding/json writes a float64."""
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    neg = f < 0
    digits, dp = _float_digits(f)
    if abs(f) < 1e-6 or abs(f) >= 1e21:
        text = _fmt_e(neg, digits, dp)
        # encoding/json cleans e-09 to e-9
        if len(text) >= 4 and text[-4] == "e" and text[-3] == "-" and text[-2] == "0":
            text = text[:-2] + text[-1]
        return text
    return _fmt_f(neg, digits, dp)


def go_json(value: Any) -> str:
    """Compact JSON as Go's encoding/json writes it (HTML-escaping, sorted map keys)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_json_float(value)
    if isinstance(value, str):
        return go_json_string(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(go_json_string(str(k)) + ":" + go_json(value[k]) for k in sorted(value)) + "}"
    return go_json_string(str(value))


def go_json_string(s: str) -> str:
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or ch in "<>&" or code in (0x2028, 0x2029) or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code if code <= 0xFFFF else 0xFFFD:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_quote(s: str) -> str:
    """Go's %q / strconv.Quote for a string (printable runes kept, others escaped)."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\v":
            out.append("\\v")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif not ch.isprintable() and code > 0x7F:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_sharp_v(value: Any) -> str:
    """Go's %#v of a decoded JSON value (map[string]interface {}{...}, []interface {}{...})."""
    if value is None:
        return "interface {}(nil)"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_format_float(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(go_sharp_v(v) for v in value) + "}"
    if isinstance(value, dict):
        return "map[string]interface {}{" + ", ".join(
            f"{go_quote(str(k))}:{go_sharp_v(value[k])}" for k in sorted(value)) + "}"
    return go_quote(str(value))


def go_sprint(value: Any) -> str:
    """fmt.Fprint of a value decoded from JSON into interface{} (maps with sorted keys)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_format_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "map[" + " ".join(f"{key}:{go_sprint(value[key])}" for key in sorted(value)) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_sprint(item) for item in value) + "]"
    return str(value)

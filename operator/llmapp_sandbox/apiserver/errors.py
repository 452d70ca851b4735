"""Field errors and Status bodies in the shape kube-apiserver gives them.

A real API server reports invalid objects as a 422 `Status` whose message lists field errors
(`k8s.io/apimachinery/pkg/util/validation/field`): `spec.app.cpu: Unsupported value: 3: supported
values: "256", "512"`. kubectl prints that message verbatim, so the emulator words its errors the
same way and tests can match on them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_NO_VALUE = object()

# field.ErrorType strings, as ErrorType.String() prints them.
REQUIRED = "Required value"
INVALID = "Invalid value"
UNSUPPORTED = "Unsupported value"
FORBIDDEN = "Forbidden"
TOO_LONG = "Too long"
TOO_MANY = "Too many"
DUPLICATE = "Duplicate value"
NOT_FOUND = "Not found"
INTERNAL = "Internal error"
UNKNOWN_FIELD = "field not declared in schema"

# Types whose message carries no value (field.Error.ErrorBody).
_VALUELESS = {REQUIRED, FORBIDDEN, TOO_LONG, TOO_MANY, INTERNAL, UNKNOWN_FIELD}

# The `reason` a Status cause carries for each type (metav1.CauseType).
CAUSE_REASONS = {
    REQUIRED: "FieldValueRequired", INVALID: "FieldValueInvalid", UNSUPPORTED: "FieldValueNotSupported",
    FORBIDDEN: "FieldValueForbidden", TOO_LONG: "FieldValueTooLong", TOO_MANY: "FieldValueTooMany",
    DUPLICATE: "FieldValueDuplicate", NOT_FOUND: "FieldValueNotFound", INTERNAL: "InternalError",
    UNKNOWN_FIELD: "FieldValueInvalid",
}


def render_value(value: Any) -> str:
    """How field errors print a bad value: strings quoted, numbers bare, objects as their kind."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    if value is None:
        return "null"
    return json.dumps(str(value))


@dataclass(frozen=True)
class FieldError:
    """One field error. `path` uses the API server's notation: `spec.app.env[FOO]`, `spec.secrets[0].name`."""

    path: str
    type: str
    detail: str = ""
    value: Any = _NO_VALUE

    def body(self) -> str:
        text = self.type
        if self.type not in _VALUELESS and self.value is not _NO_VALUE:
            text += f": {render_value(self.value)}"
        if self.detail:
            text += f": {self.detail}"
        return text

    def render(self) -> str:
        return f"{self.path}: {self.body()}" if self.path else self.body()

    def cause(self) -> dict[str, str]:
        return {"reason": CAUSE_REASONS.get(self.type, "FieldValueInvalid"), "message": self.body(), "field": self.path}


def join_errors(errors: list[FieldError]) -> str:
    """`a: x` for one error, `[a: x, b: y]` for several (utilerrors.NewAggregate)."""
    rendered = [error.render() for error in errors]
    return rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"


class ApiError(Exception):
    """An error the server answers with a `Status` body."""

    def __init__(self, status: int, reason: str, message: str, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        status: dict[str, Any] = {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                                  "message": self.message, "reason": self.reason, "code": self.status}
        if self.details:
            status["details"] = self.details
        return status


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> ApiError:
    """422 Invalid, worded like the API server: `LLMApp.llmops.dev "rags" is invalid: …`."""
    qualified = f"{kind}.{group}" if group else kind
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {join_errors(errors)}',
                    {"name": name, "group": group, "kind": kind, "causes": [e.cause() for e in errors]})

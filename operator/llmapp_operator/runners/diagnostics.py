"""Terraform's failure output read into typed errors: lock info, error summaries, retry classes (pure)."""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass

from llmapp_operator.api.errors import PermanentError, TransientError
from llmapp_operator.obs.redaction import Redactor, shorten


@dataclass(frozen=True)
class LockInfo:
    """What Terraform writes into a state lock (the `.tflock` object, DynamoDB's `Info`) and
    prints in `Lock Info:` when it cannot take one."""

    id: str
    who: str = ""
    path: str = ""
    operation: str = ""
    created: datetime.datetime | None = None


# The lock's `Operation` for each step that takes one (Terraform 1.11: `backend.OperationType*`,
# `state-push` for `terraform state push`; destroy is an apply). Checked against the real CLI.
LOCK_OPERATIONS = {"plan": "OperationTypePlan", "apply": "OperationTypeApply",
                   "destroy": "OperationTypeApply", "state push": "state-push"}


def parse_lock_info(text: str) -> LockInfo | None:
    """The `Lock Info:` block of a lock conflict; the id line's first field is exactly `ID:`."""
    if "Lock Info:" not in text:
        return None
    fields: dict[str, str] = {}
    for line in text.split("Lock Info:", 1)[1].splitlines():
        match = re.match(r"^[\s│]*(ID|Who|Path|Operation|Created):\s*(.*)$", line)
        if match and match.group(1) not in fields:
            fields[match.group(1)] = match.group(2).strip()
    if "ID" not in fields:
        return None
    return LockInfo(id=fields["ID"], who=fields.get("Who", ""), path=fields.get("Path", ""),
                    operation=fields.get("Operation", ""), created=parse_lock_time(fields.get("Created", "")))


def parse_lock_document(text: str) -> LockInfo | None:
    """The JSON lock document in the backend: `{"ID", "Operation", "Who", "Created", "Path", ...}`."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("ID"), str):
        return None
    return LockInfo(id=document["ID"], who=str(document.get("Who", "")), path=str(document.get("Path", "")),
                    operation=str(document.get("Operation", "")),
                    created=parse_lock_time(str(document.get("Created", ""))))


def parse_lock_time(text: str) -> datetime.datetime | None:
    """Go's time formats Terraform uses for `Created`: RFC 3339 with nanoseconds in the document
    (`2026-12-01T10:36:15.039769239Z`), `2026-12-01 10:36:29.504179343 +0000 UTC` when printed."""
    match = re.match(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?", text.strip())
    if not match:
        return None
    day, clock, fraction, zone = match.groups()
    micros = (fraction or "0")[:6].ljust(6, "0")
    offset = (zone or "Z").replace("Z", "+0000").replace(":", "")
    try:
        return datetime.datetime.strptime(f"{day} {clock}.{micros} {offset}", "%Y-%m-%d %H:%M:%S.%f %z")
    except ValueError:
        return None


_PERMANENT_MARKERS = (
    "Invalid value for variable", "Invalid value for input variable", "Unsupported argument",
    "Missing required argument",
    "Reference to undeclared", "Unsupported block type", "Unsupported attribute",
    "Invalid reference", "Argument or block definition required", "Invalid expression",
    "No value for required variable", "Invalid variable", "Duplicate ",
)
_DENIED_MARKERS = (
    "AccessDenied", "not authorized to perform", "InvalidClientTokenId", "SignatureDoesNotMatch",
    "UnrecognizedClientException", "AuthorizationError",
)


def error_summary(stderr: str) -> str:
    """The first `Error:` paragraph of Terraform's human output, which names the problem."""
    lines = [line.rstrip() for line in stderr.splitlines()]
    for index, line in enumerate(lines):
        if line.lstrip("│ ").startswith("Error:"):
            paragraph = [line.lstrip("│ ")]
            for follow in lines[index + 1 : index + 8]:
                text = follow.lstrip("│ ").strip()
                if text:
                    paragraph.append(text)
            return " ".join(paragraph)
    tail = [line for line in lines if line.strip()]
    return " ".join(tail[-3:]) or "terraform failed without a message"


def classify_failure(step: str, stderr: str, redactor: Redactor) -> TransientError | PermanentError:
    message = shorten(redactor.redact(f"terraform {step}: {error_summary(stderr)}"))
    if "Error acquiring the state lock" in stderr:
        return TransientError(message, reason="StateLocked")
    if "Failed to save state" in stderr or "Failed to persist state" in stderr:
        # Terraform kept what it created in errored.tfstate; the next run pushes it first.
        return TransientError(message, reason="StateNotSaved")
    if "Saved plan is stale" in stderr:
        return TransientError(message, reason="StalePlan")
    if any(marker in stderr for marker in _DENIED_MARKERS):
        return PermanentError(message, reason="AccessDenied")
    if any(marker in stderr for marker in _PERMANENT_MARKERS):
        return PermanentError(message, reason="InvalidModuleInput")
    # Anything else (cloud API errors, throttling, eventual consistency, network) is retried
    # with backoff: the loop is never hot, and the message stays visible in status meanwhile.
    return TransientError(message, reason="TerraformFailed")



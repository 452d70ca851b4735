"""Terraform's failure output read into typed errors: lock info, error summaries, retry classes (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmapp_operator.api.errors import PermanentError, TransientError
from llmapp_operator.obs.redaction import Redactor, shorten


@dataclass(frozen=True)
class LockInfo:
    id: str
    who: str
    path: str


def parse_lock_info(text: str) -> LockInfo | None:
    """The `Lock Info:` block of a lock conflict; the id line's first field is exactly `ID:`."""
    if "Lock Info:" not in text:
        return None
    fields: dict[str, str] = {}
    for line in text.split("Lock Info:", 1)[1].splitlines():
        match = re.match(r"^[\s│]*(ID|Who|Path):\s*(.*)$", line)
        if match and match.group(1) not in fields:
            fields[match.group(1)] = match.group(2).strip()
    if "ID" not in fields:
        return None
    return LockInfo(id=fields["ID"], who=fields.get("Who", ""), path=fields.get("Path", ""))


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



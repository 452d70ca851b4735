"""Terraform's failure output read into typed errors: lock info, error summaries, retry classes (pure)."""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass

from llmapp_operator.api.errors import (
    CREDENTIALS_EXPIRED,
    CREDENTIALS_INVALID,
    CREDENTIALS_MISSING,
    QUOTA_EXCEEDED,
    PermanentError,
    TransientError,
)
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
_DENIED_MARKERS = ("AccessDenied", "not authorized to perform", "AuthorizationError", "UnauthorizedOperation")
# The provider's and the S3 backend's words when the credential chain found nothing.
_MISSING_CREDENTIALS_MARKERS = (
    "No valid credential sources found", "no valid credential sources for", "NoCredentialProviders",
    "failed to refresh cached credentials", "no EC2 IMDS role found",
)
_EXPIRED_CREDENTIALS_MARKERS = ("ExpiredToken", "security token included in the request is expired")
_INVALID_CREDENTIALS_MARKERS = (
    "InvalidClientTokenId", "InvalidAccessKeyId", "SignatureDoesNotMatch", "UnrecognizedClientException",
    "AuthFailure", "security token included in the request is invalid", "InvalidIdentityToken",
)
# `VpcLimitExceeded`, `LimitExceededException`, `ServiceQuotaExceededException`, `TooManyBuckets`;
# the rate limits among them (EC2's RequestLimitExceeded) are throttling and stay retried.
_QUOTA_CODE = re.compile(r"\b([A-Za-z]*LimitExceeded(?:Exception)?|ServiceQuotaExceededException|TooManyBuckets)\b")
_THROTTLING_CODES = {"RequestLimitExceeded", "BandwidthLimitExceeded"}
TERRAFORM_IDENTITY = (
    "Terraform acts as the pod's AWS identity (the operator's; the Job's with the job runner): IRSA (ServiceAccount "
    "annotation eks.amazonaws.com/role-arn), EKS Pod Identity, or AWS_* keys from a Secret (chart: envFrom, "
    "jobRunner.envSecret)"
)
NEXT_PASS = "then annotate llmops.dev/reconcile-requested-at or wait for the Stalled recheck"
MESSAGE_LIMIT = 600   # obs.redaction.shorten's default: what engine/reconcile.failed keeps

# CSI (colours, cursor) and OSC (titles, links) escapes; box drawing (U+2500-U+257F) frames each
# of Terraform's diagnostics (╷ │ ╵) even with -no-color.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_BOX_DRAWING = re.compile(r"[\u2500-\u257f]")


def plain_text(text: str) -> str:
    """Terminal output as plain text: no escape sequences, no box drawing."""
    return _BOX_DRAWING.sub("", ANSI_ESCAPE.sub("", text))


def error_summary(stderr: str) -> str:
    """The first `Error:` paragraph of Terraform's human output, which names the problem: up to the
    end of its box (╵), plain text on one line."""
    lines = [line.rstrip() for line in ANSI_ESCAPE.sub("", stderr).splitlines()]
    for index, line in enumerate(lines):
        if plain_text(line).strip().startswith("Error:"):
            paragraph = [plain_text(line).strip()]
            for follow in lines[index + 1 : index + 8]:
                if follow.lstrip().startswith("╵"):
                    break
                text = plain_text(follow).strip()
                if text:
                    paragraph.append(text)
            return " ".join(paragraph)
    tail = [plain_text(line).strip() for line in lines]
    return " ".join([line for line in tail if line][-3:]) or "terraform failed without a message"


def classify_failure(step: str, stderr: str, redactor: Redactor, *,
                     assumed_role: bool = False) -> TransientError | PermanentError:
    """Terraform's failure as the error a user can act on. `assumed_role`: the run had a tenant
    role's temporary credentials (cloud/sts.py), not the pod's own identity."""
    stderr = ANSI_ESCAPE.sub("", stderr)
    said = redactor.redact(f"terraform {step}: {error_summary(stderr)}")
    summary = shorten(said)

    def told(hint: str) -> str:
        """Terraform's words, cut so that what to do always fits in a status message (600)."""
        return f"{shorten(said, max(MESSAGE_LIMIT - len(hint) - 3, 160))} — {redactor.redact(hint)}"

    lock = parse_lock_info(stderr) if "Error acquiring the state lock" in stderr else None
    if lock is not None:   # held: Terraform prints the lock's info only when someone else holds it
        return TransientError(shorten(redactor.redact(lock_message(step, lock))), reason="StateLocked")
    if "Failed to save state" in stderr or "Failed to persist state" in stderr:
        # Terraform kept what it created in errored.tfstate; the next run pushes it first.
        return TransientError(summary, reason="StateNotSaved")
    if "Saved plan is stale" in stderr:
        return TransientError(summary, reason="StalePlan")
    if any(marker in stderr for marker in _EXPIRED_CREDENTIALS_MARKERS):
        if assumed_role:
            # The tenant role's session ran out during a long step: cloud/sts.py assumes the role
            # again (its cache renews 10 minutes before expiry), so the next run has fresh ones.
            return TransientError(told("the tenant role's session expired during the run; the next run assumes "
                                       "the role again. If this recurs, the step takes longer than the session: "
                                       "raise the tenant policy's role.sessionDurationSeconds (and the role's "
                                       "MaxSessionDuration)"),
                                  reason=CREDENTIALS_EXPIRED)
        return PermanentError(told(f"the AWS credentials have expired (static session keys: replace them, or use "
                                   f"IRSA or Pod Identity, which renew themselves). {TERRAFORM_IDENTITY}; "
                                   f"{NEXT_PASS}"), reason=CREDENTIALS_EXPIRED)
    if any(marker in stderr for marker in _MISSING_CREDENTIALS_MARKERS):
        return PermanentError(told(f"Terraform found no AWS credentials. {TERRAFORM_IDENTITY}; {NEXT_PASS}"),
                              reason=CREDENTIALS_MISSING)
    if any(marker in stderr for marker in _INVALID_CREDENTIALS_MARKERS):
        return PermanentError(told(f"AWS does not accept the credentials (unknown or deleted key, wrong secret). "
                                   f"{TERRAFORM_IDENTITY}; {NEXT_PASS}"), reason=CREDENTIALS_INVALID)
    quota = next((code for code in _QUOTA_CODE.findall(stderr) if code not in _THROTTLING_CODES), None)
    if quota is not None:
        return PermanentError(told(f"an AWS quota is reached ({quota}): retrying cannot help. Ask for an increase "
                                   f"(Service Quotas) or free capacity, {NEXT_PASS}"), reason=QUOTA_EXCEEDED)
    if any(marker in stderr for marker in _DENIED_MARKERS):
        return PermanentError(summary, reason="AccessDenied")
    if "Error acquiring the state lock" in stderr:   # no lock info: the backend did not answer
        return TransientError(summary, reason="StateLocked")
    if any(marker in stderr for marker in _PERMANENT_MARKERS):
        return PermanentError(summary, reason="InvalidModuleInput")
    # Anything else (cloud API errors, throttling, eventual consistency, network) is retried
    # with backoff: the loop is never hot, and the message stays visible in status meanwhile.
    return TransientError(summary, reason="TerraformFailed")


def lock_message(step: str, lock: LockInfo) -> str:
    """Who holds the state lock, for what and since when, and how to release it: never the state."""
    holder = lock.who or "an unknown holder"
    operation = f" for {lock.operation}" if lock.operation else ""
    since = f" since {lock.created.astimezone(datetime.UTC):%Y-%m-%d %H:%M:%S} UTC" if lock.created else ""
    where = f" on {lock.path}" if lock.path else ""
    return (f"terraform {step}: the state is locked by {holder}{operation}{since} (lock ID {lock.id}{where}); "
            "the operator retries while it is held and releases a lock of its own dead run itself. If that run "
            f"is gone for good, release it from a directory initialised with this backend (status.state): "
            f"terraform force-unlock -force {lock.id}")

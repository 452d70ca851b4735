"""How a failure retries: the two error kinds every module below reconcile raises.

The kopf handlers map them: TransientError -> kopf.TemporaryError(delay=...), PermanentError ->
a Stalled condition and no retry until the spec changes. Messages must already be free of secrets:
they reach status, Events and logs.
"""

from __future__ import annotations

# Reasons of the failures users hit most, named once (cloud/clients.py, runners/diagnostics.py and
# engine/worker.py raise them; the README's troubleshooting table says what to do about each).
CREDENTIALS_MISSING = "AwsCredentialsMissing"   # the credential chain found nothing: permanent
CREDENTIALS_EXPIRED = "AwsCredentialsExpired"   # permanent; a tenant role's session is retried
CREDENTIALS_INVALID = "AwsCredentialsInvalid"   # unknown key, wrong secret, refused web identity
QUOTA_EXCEEDED = "QuotaExceeded"                # an AWS quota (not a rate limit): permanent
INTERNAL_ERROR = "InternalError"                # an exception that is not a ReconcileError: retried


class ReconcileError(Exception):
    """Base of the operator's own errors. `reason` is a CamelCase condition reason."""

    reason: str = "ReconcileFailed"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class TransientError(ReconcileError):
    """Worth retrying as it is: throttling, a held lock, a network blip. `delay` in seconds."""

    reason = "TransientFailure"

    def __init__(self, message: str, *, reason: str | None = None, delay: float | None = None) -> None:
        super().__init__(message, reason=reason)
        self.delay = delay


class PermanentError(ReconcileError):
    """Retrying the same input cannot help: invalid spec, access denied, a broken module."""

    reason = "PermanentFailure"


class Waiting(TransientError):
    """Not a failure: something outside the operator has not happened yet (the first image from CI,
    tasks still starting). Looked at again after `delay`; reported as Normal, not as a Warning."""

    reason = "Waiting"

"""One redaction rule for everything that leaves the operator: logs, Events, status, errors.

Known secret values (from Secrets the operator read) are replaced wherever they appear, and
credential-shaped strings are masked even when nobody told us they were secret.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words and numbers

_PATTERNS = [
    re.compile(r"(AKIA|ASIA)[0-9A-Z]{16}"),                                  # AWS access key ids
    # Not inside a word: AWS's error code "ExpiredToken: The security token…" is no token value,
    # while session_token=… and x-amz-security-token: … are.
    re.compile(r"(?i)(?<![a-z])(aws_secret_access_key|secret_key|password|token)(\s*[=:]\s*)\S+"),
    re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}"),                               # GitHub tokens
    re.compile(r"github_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"sk-[A-Za-z0-9_-]{20,}"),                                    # OpenAI-style keys
]


class Redactor:
    """Thread-safe registry of secret values; `redact` masks all of them plus known patterns."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def register(self, values: Iterable[str]) -> None:
        with self._lock:
            self._values.update(v for v in values if v and len(v) >= MIN_SECRET_LENGTH)

    def redact(self, text: str) -> str:
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for value in values:
            text = text.replace(value, MASK)
        return redact_patterns(text)


def redact_patterns(text: str) -> str:
    for pattern in _PATTERNS:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
        else:
            text = pattern.sub(MASK, text)
    return text


def shorten(text: str, limit: int = 600) -> str:
    """Status messages stay readable in `kubectl describe`: keep the head, say what was cut."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[: limit - 20].rstrip() + f" … ({len(text) - limit + 20} chars cut)"


REDACTOR = Redactor()
"""The process-wide registry: the log filter and every status/Event writer use this one."""


class RedactingFilter(logging.Filter):
    """Attach to handlers so no log line (Kopf's included) carries a registered secret: the
    message, and the traceback and stack of the record too (an exception's text can hold a
    value). The record is rewritten in place, so every formatter after it sees redacted text."""

    _exceptions = logging.Formatter()

    def __init__(self, redactor: Redactor = REDACTOR) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._redactor.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Formatted now, redacted once; formatters use exc_text when it is set.
            record.exc_text = self._exceptions.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redactor.redact(record.stack_info)
        return True

"""Log set-up: text for terminals, or JSON lines for log pipelines, with secrets redacted.

JSON: one object per line with time, level, logger and message, plus the object's namespace,
name and uid when the line is about one (from `k8s_ref`, which Kopf's per-object logger sets and
the operator's own lines set the same way), and generation/step/outcome (plus phase, reason,
trigger and duration_seconds on the per-pass line) where known.

Kopf's per-event and per-tick success lines ("Handler 'observe' succeeded." for every watch
event, "Timer '…' succeeded.") say nothing the worker's own per-pass line does not, and drown it:
`KopfNoiseFilter` drops them. It drops nothing above INFO, so every failure Kopf logs stays.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
from typing import Any

from llmapp_operator.obs.redaction import RedactingFilter

_OBJECT_FIELDS = ("generation", "step", "outcome", "phase", "reason", "trigger", "duration_seconds")

# Verbatim from kopf/_core/actions/execution.py (`logger.info(f"{handler} succeeded.")`) with the
# `str(handler)` of kopf/_core/actions/execution.py (Handler '…') and _core/intents/handlers.py (Timer '…').
_KOPF_NOISE = re.compile(r"(Handler|Timer) '[^']*' succeeded\.")


class KopfNoiseFilter(logging.Filter):
    """Drops Kopf's INFO lines that repeat on every watch event or timer tick; keeps everything
    else Kopf says (warnings, errors, "Deletion is processed", start-up and shut-down lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO or not record.name.startswith("kopf"):
            return True
        return _KOPF_NOISE.fullmatch(record.getMessage()) is None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict):
            line.update({key: ref[key] for key in ("namespace", "name", "uid") if ref.get(key)})
        for key in _OBJECT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info or record.exc_text:
            # exc_text first: the redacting filter has put the redacted traceback there.
            line["error"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str)


def log_handler(log_format: str = "text", stream: Any = None) -> logging.Handler:
    """The operator's log handler: text or JSON lines, without Kopf's per-event success lines, and
    always behind the redacting filter; that filter rewrites the record itself, so every formatter
    sees the redacted text."""
    handler = logging.StreamHandler(stream)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(KopfNoiseFilter())
    handler.addFilter(RedactingFilter())
    return handler


def setup_logging(level: str = "INFO", log_format: str = "text") -> None:
    """One handler on the root logger (Kopf's loggers included), with both filters."""
    root = logging.getLogger()
    root.handlers[:] = [log_handler(log_format)]
    root.setLevel(level.upper())
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # its retry warnings are not for users

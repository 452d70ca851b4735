"""Log set-up: text for terminals, or JSON lines for log pipelines, with secrets redacted.

JSON: one object per line with time, level, logger and message, plus the object's namespace,
name and uid when the line is about one (from `k8s_ref`, which Kopf's per-object logger sets and
the operator's own lines set the same way), and generation/step/outcome where known.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

from llmapp_operator.obs.redaction import RedactingFilter

_OBJECT_FIELDS = ("generation", "step", "outcome")


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
    """The operator's log handler: text or JSON lines, always behind the redacting filter; the
    filter rewrites the record itself, so every formatter sees the redacted text."""
    handler = logging.StreamHandler(stream)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter())
    return handler


def setup_logging(level: str = "INFO", log_format: str = "text") -> None:
    """One handler on the root logger (Kopf's loggers included)."""
    root = logging.getLogger()
    root.handlers[:] = [log_handler(log_format)]
    root.setLevel(level.upper())
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # its retry warnings are not for users

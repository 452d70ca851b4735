"""JSON log lines: one object per line, object identity from Kopf's k8s_ref, secrets redacted."""

from __future__ import annotations

import io
import json
import logging

from llmapp_operator.obs.logs import JsonFormatter, setup_logging
from llmapp_operator.obs.redaction import REDACTOR


def test_json_line_carries_object_identity_and_step() -> None:
    record = logging.LogRecord("kopf.objects", logging.ERROR, __file__, 1, "Handler %s failed", ("x",), None)
    record.k8s_ref = {"namespace": "team-a", "name": "rags", "uid": "u-1", "apiVersion": "llmops.dev/v1alpha1"}
    record.generation, record.step = 3, "apply"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "Handler x failed" and line["level"] == "ERROR" and line["logger"] == "kopf.objects"
    assert (line["namespace"], line["name"], line["uid"], line["generation"], line["step"]) == (
        "team-a", "rags", "u-1", 3, "apply")
    assert line["time"].endswith("+00:00")


def test_setup_logging_json_redacts_registered_secrets() -> None:
    secret = "json-log-secret-9c2e77"
    REDACTOR.register([secret])
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        setup_logging("INFO", "json")
        stream = io.StringIO()
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        logging.getLogger("llmapp_operator").info("token is %s", secret, extra={"k8s_ref": {"name": "rags"}})
        line = json.loads(stream.getvalue().strip())
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    assert secret not in json.dumps(line)
    assert line["message"] == "token is ***" and line["name"] == "rags"

"""Pure parts of the runner: plan summaries, outputs, lock info, failure classification, redaction."""

from __future__ import annotations

import datetime
import logging

from llmapp_operator.api.errors import PermanentError, TransientError
from llmapp_operator.obs.redaction import MASK, RedactingFilter, Redactor, redact_patterns, shorten
from llmapp_operator.runners.base import public_outputs, summarize_plan
from llmapp_operator.runners.diagnostics import classify_failure, parse_lock_document, parse_lock_info

LOCK_ERROR = """
╷
│ Error: Error acquiring the state lock
│
│ Error message: operation error S3: PutObject, https response error StatusCode: 412, RequestID: abc
│ Lock Info:
│   ID:        5b3c0d8e-0000-4000-8000-000000000001
│   Path:      bucket/llmapp/ns/name/terraform.tfstate
│   Operation: OperationTypeApply
│   Who:       root@pod-1
│   Version:   1.11.4
│   Created:   2026-11-24 21:00:00.000 +0000 UTC
│   Info:
╵
"""


def test_plan_summary_counts_like_terraform() -> None:
    plan = {"resource_changes": [
        {"address": "a.x", "change": {"actions": ["create"]}},
        {"address": "a.y", "change": {"actions": ["update"]}},
        {"address": "a.z", "change": {"actions": ["delete", "create"]}},
        {"address": "a.w", "change": {"actions": ["no-op"]}},
        {"address": "a.v", "change": {"actions": ["delete"]}},
    ]}
    summary = summarize_plan(plan, has_changes=True)
    assert (summary.add, summary.change, summary.destroy, summary.replace) == (2, 1, 2, 1)
    assert ("a.z", "replace") in summary.resources and len(summary.resources) == 4


def test_sensitive_outputs_never_leave() -> None:
    outputs = {"url": {"value": "http://x", "sensitive": False}, "token": {"value": "s3cr3t", "sensitive": True}}
    assert public_outputs(outputs) == {"url": "http://x"}


def test_lock_info_uses_the_exact_id_field() -> None:
    info = parse_lock_info(LOCK_ERROR)
    assert info is not None
    assert info.id == "5b3c0d8e-0000-4000-8000-000000000001"   # not the RequestID
    assert info.who == "root@pod-1"
    assert info.path.endswith("llmapp/ns/name/terraform.tfstate")
    assert parse_lock_info("Error: something else") is None
    assert info.operation == "OperationTypeApply"
    assert info.created == datetime.datetime(2026, 11, 24, 21, 0, tzinfo=datetime.UTC)


def test_lock_document_as_terraform_stores_it() -> None:
    # The .tflock object (and DynamoDB's Info) as terraform 1.11.4 wrote it on moto.
    stored = ('{"ID":"f1ff7b0d-cad0-f9f3-ab8d-bc1e1b0ee30c","Operation":"OperationTypeApply","Info":"",'
              '"Who":"root@vm","Version":"1.11.4","Created":"2026-12-01T10:36:15.039769239Z",'
              '"Path":"bkt1/x/terraform.tfstate"}')
    lock = parse_lock_document(stored)
    assert lock is not None and lock.id == "f1ff7b0d-cad0-f9f3-ab8d-bc1e1b0ee30c" and lock.who == "root@vm"
    assert lock.created == datetime.datetime(2026, 12, 1, 10, 36, 15, 39769, tzinfo=datetime.UTC)
    printed = parse_lock_info("Lock Info:\n  ID: x\n  Operation: state-push\n"
                              "  Created:   2026-12-01 10:36:29.504179343 +0000 UTC\n")
    assert printed is not None and printed.operation == "state-push"
    assert printed.created == datetime.datetime(2026, 12, 1, 10, 36, 29, 504179, tzinfo=datetime.UTC)
    assert parse_lock_document("not json") is None and parse_lock_document('{"Who": "x"}') is None


def test_failure_classification() -> None:
    redactor = Redactor()
    assert isinstance(classify_failure("plan", LOCK_ERROR, redactor), TransientError)
    assert classify_failure("plan", LOCK_ERROR, redactor).reason == "StateLocked"
    denied = classify_failure("apply", "Error: creating VPC: AccessDenied: not authorized to perform", redactor)
    assert isinstance(denied, PermanentError) and denied.reason == "AccessDenied"
    bad = classify_failure("plan", "Error: Invalid value for variable\n  on x.tf", redactor)
    assert isinstance(bad, PermanentError)
    other = classify_failure("apply", "Error: creating ECS Service: ThrottlingException: Rate exceeded", redactor)
    assert isinstance(other, TransientError) and other.reason == "TerraformFailed"
    assert "ThrottlingException" in other.message


def test_failure_messages_are_redacted() -> None:
    redactor = Redactor()
    redactor.register(["hunter2-very-secret"])
    key_id = "AKIA" + "ABCDEFGHIJKLMNOP"  # access-key shaped, assembled so no credential-like literal is committed
    error = classify_failure("apply", f"Error: bad value hunter2-very-secret in {key_id}", redactor)
    assert "hunter2-very-secret" not in error.message and key_id not in error.message
    assert MASK in error.message


def test_redact_patterns_and_shorten() -> None:
    assert "ghp_" + "a" * 36 not in redact_patterns("token ghp_" + "a" * 36)
    assert redact_patterns("password=abc123") == f"password={MASK}"
    assert len(shorten("x" * 5000, 600)) <= 600


def test_log_filter_masks_registered_values(caplog) -> None:  # type: ignore[no-untyped-def]
    redactor = Redactor()
    redactor.register(["topsecretvalue"])
    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactingFilter(redactor))
    with caplog.at_level(logging.INFO, logger="test.redaction"):
        logger.info("value is %s", "topsecretvalue")
    assert "topsecretvalue" not in caplog.text and MASK in caplog.text

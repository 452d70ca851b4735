"""The secret values tests use, and the scan that proves none of them leaked.

Tests create their secret values with `secret_for_tests(...)`. After every integration test the
autouse `secrets_scan` fixture (tests/integration/conftest.py) collects what the operator left
behind: its log records (through the operator's own redacting filter, as in production), every
LLMApp (status, annotations) and Event in the API servers the test started, Terraform state and
lock objects in S3, and the files under the test's tmp_path (workspaces, operator process logs).
Any registered value, raw or base64-encoded, in any of them fails the test.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

SECRET_VALUES: set[str] = set()


def secret_for_tests(value: str) -> str:
    SECRET_VALUES.add(value)
    return value


def forms(value: str) -> set[str]:
    """How a value could show up: as is, or base64-encoded (as in a Secret's data)."""
    encoded = base64.b64encode(value.encode()).decode()
    return {value, encoded.rstrip("=")}


def leaks(texts: Iterable[tuple[str, str]]) -> list[str]:
    """`where` for every (where, text) that contains a registered secret in any form."""
    needles = {form for value in SECRET_VALUES for form in forms(value)}
    return [where for where, text in texts if any(needle in text for needle in needles)]

"""The leak scan used after every integration test finds a secret in any form it can take."""

from __future__ import annotations

import base64

from tests.secrets_scan import leaks, secret_for_tests


def test_scan_finds_raw_and_base64_values_and_names_where() -> None:
    value = secret_for_tests("scan-self-test-value-41d2")
    encoded = base64.b64encode(value.encode()).decode()
    found = leaks([("status", f"message: {value}"), ("secret data", encoded), ("clean", "nothing here"),
                   ("masked", "token=***")])
    assert found == ["status", "secret data"]

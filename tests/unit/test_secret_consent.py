"""Secrets by consent (kube/secrets.py): the annotation names the LLMApps that may read a Secret."""

from __future__ import annotations

import pytest

from llmapp_operator.kube.secrets import CONSENT_ANNOTATION, allows, not_allowed


@pytest.mark.parametrize(("value", "reader", "allowed"), [
    (None, "rags", False), ("", "rags", False), ("rags", "rags", True), ("chat, rags", "rags", True),
    ("rags-2", "rags", False), ("*", "anything", True), ("RAGS", "rags", False),
])
def test_only_the_named_apps_may_read(value: str | None, reader: str, allowed: bool) -> None:
    annotations = {} if value is None else {CONSENT_ANNOTATION: value}
    assert allows(annotations, reader) is allowed


def test_the_refusal_names_the_secret_the_app_and_the_fix() -> None:
    error = not_allowed("team-a", "db", "rags")
    assert error.reason == "SecretNotAllowed"
    assert error.message == ("Secret team-a/db does not allow LLMApp rags to read it: annotate it with "
                             "llmops.dev/allowed-llmapps=rags (or *)")

"""Secrets never reach the operator's log, tracebacks included, on Kopf's own logging path.

A teardown step fails with an exception whose text carries a secret value (as a cloud SDK's
error might quote a request): the worker logs it with its traceback; Kopf is told only its type
(Kopf would keep an exception's text in the object's progress annotation, which the secrets scan
of every test reads). Records Kopf's own loggers emit with a traceback go through the same
handler (obs/logs.log_handler), text and JSON, and neither may show the value.
"""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import replace
from typing import Any

import kopf
import pytest

from llmapp_operator.engine.reconcile import Deps
from llmapp_operator.obs.logs import log_handler
from llmapp_operator.obs.redaction import REDACTOR
from llmapp_sandbox.cluster import is_ready
from tests.conftest import needs_terraform
from tests.integration.conftest import NS, SandboxFactory, llmapp
from tests.secrets_scan import secret_for_tests

pytestmark = needs_terraform

SECRET = secret_for_tests("fake-value-quoted-by-an-sdk-error-0007")


class SecretsManagerQuotingASecret:
    """Deletes fail with an error message that quotes a secret value."""

    def __init__(self, real: Any) -> None:
        self.real = real

    async def sync(self, *args: Any, **kwargs: Any) -> Any:
        return await self.real.sync(*args, **kwargs)

    async def delete_all(self, region: str, owner: dict[str, str]) -> None:
        raise RuntimeError(f"secretsmanager refused the request body {{'SecretString': '{SECRET}'}}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def deps(deps: Deps) -> Deps:
    return replace(deps, app_secrets=SecretsManagerQuotingASecret(deps.app_secrets))


async def test_a_traceback_quoting_a_secret_is_logged_redacted(open_sandbox: SandboxFactory) -> None:
    REDACTOR.register([SECRET])   # as the operator does with every value it reads from a Secret
    text, lines = io.StringIO(), io.StringIO()
    handlers = [log_handler("text", text), log_handler("json", lines)]
    root = logging.getLogger()
    for handler in handlers:
        root.addHandler(handler)
    try:
        async with open_sandbox() as sandbox:
            await sandbox.client.create(llmapp())
            await sandbox.client.wait_for(NS, "rags", is_ready)
            await sandbox.client.delete(NS, "rags")
            for _ in range(200):
                if "Handler 'delete' failed temporarily" in text.getvalue():
                    break
                await asyncio.sleep(0.05)
    finally:
        for handler in handlers:
            root.removeHandler(handler)
    logged = text.getvalue()
    assert "teardown of team-a/rags failed unexpectedly" in logged            # the worker's line
    assert "Handler 'delete' failed temporarily: the teardown failed unexpectedly (RuntimeError)" in logged
    assert "Traceback" in logged and "secretsmanager refused the request body" in logged
    assert SECRET not in logged and SECRET not in lines.getvalue()
    assert '"error": "Traceback' in lines.getvalue()


def test_kopf_s_loggers_with_a_traceback_are_redacted_in_both_formats() -> None:
    """Kopf logs a handler's unexpected exception through its per-object logger (`kopf.objects`,
    a LoggerAdapter adding `k8s_ref`) with `exc_info`: the traceback is formatted after the
    message, so redacting the message alone would let the value through."""
    import kopf._core.actions.loggers as kopf_loggers

    REDACTOR.register([SECRET])
    body = {"metadata": {"namespace": NS, "name": "rags", "uid": "u-1"}}
    logger = kopf_loggers.ObjectLogger(body=body, settings=kopf.OperatorSettings())   # type: ignore[arg-type]
    for log_format in ("text", "json"):
        out = io.StringIO()
        handler = log_handler(log_format, out)
        logging.getLogger("kopf.objects").addHandler(handler)
        try:
            try:
                raise RuntimeError(f"request failed: token={SECRET}")
            except RuntimeError:
                logger.exception("Handler 'observe' failed with an exception. Will retry.")
        finally:
            logging.getLogger("kopf.objects").removeHandler(handler)
        written = out.getvalue()
        assert "Traceback" in written and "RuntimeError: request failed: token=" in written, written
        assert SECRET not in written

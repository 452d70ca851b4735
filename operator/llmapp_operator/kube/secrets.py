"""Read values from Kubernetes Secrets in the LLMApp's namespace (GitHub token, app secrets).

A missing Secret or key is reported by name, never by value, and retried with backoff: in GitOps
the Secret often arrives after the LLMApp (sealed-secrets, external-secrets), and Kopf does not
watch Secrets. Every value read is registered with the redactor before it is returned.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any, Protocol

from llmapp_operator.api.errors import PermanentError, TransientError
from llmapp_operator.obs.redaction import REDACTOR, Redactor


class SecretReader(Protocol):
    async def read(self, namespace: str, name: str, key: str) -> str: ...


class KubeSecrets:
    """Reads through the kubernetes client, configured by Kopf's login (login_via_client)."""

    def __init__(self, redactor: Redactor = REDACTOR) -> None:
        self.redactor = redactor

    async def read(self, namespace: str, name: str, key: str) -> str:
        value = await asyncio.to_thread(self._read_blocking, namespace, name, key)
        self.redactor.register([value])
        return value

    def _read_blocking(self, namespace: str, name: str, key: str) -> str:
        import kubernetes

        api = kubernetes.client.CoreV1Api()
        try:
            secret: Any = api.read_namespaced_secret(name, namespace, _request_timeout=10)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                raise TransientError(f"Secret {namespace}/{name} not found", reason="SecretNotFound") from None
            if exc.status in (401, 403):
                raise PermanentError(f"the operator may not read Secret {namespace}/{name} ({exc.status})",
                                     reason="SecretForbidden") from None
            raise TransientError(f"reading Secret {namespace}/{name} failed ({exc.status})",
                                 reason="SecretUnavailable") from None
        data = secret.data or {}
        if key not in data:
            raise TransientError(f"Secret {namespace}/{name} has no key {key!r}", reason="SecretKeyNotFound")
        return base64.b64decode(data[key]).decode()

"""Read values from Kubernetes Secrets in the LLMApp's namespace (GitHub token, app secrets).

A missing Secret or key is reported by name, never by value, and retried with backoff: in GitOps
the Secret often arrives after the LLMApp (sealed-secrets, external-secrets), and Kopf does not
watch Secrets. Every value read is registered with the redactor before it is returned.
"""

from __future__ import annotations

import base64
from typing import Protocol

from llmapp_operator.api.errors import PermanentError, TransientError
from llmapp_operator.kube.client import KubeClient, namespaced
from llmapp_operator.obs.redaction import REDACTOR, Redactor


class SecretReader(Protocol):
    async def read(self, namespace: str, name: str, key: str) -> str: ...


class KubeSecrets:
    """Reads through the operator's one Kubernetes client."""

    def __init__(self, redactor: Redactor = REDACTOR, client: KubeClient | None = None) -> None:
        self.redactor = redactor
        self.client = client or KubeClient()

    async def read(self, namespace: str, name: str, key: str) -> str:
        answer = await self.client.request("GET", namespaced("v1", namespace, "secrets", name))
        if answer.status == 404:
            raise TransientError(f"Secret {namespace}/{name} not found", reason="SecretNotFound")
        if answer.status in (401, 403):
            raise PermanentError(f"the operator may not read Secret {namespace}/{name} ({answer.status})",
                                 reason="SecretForbidden")
        if not answer.ok:
            raise TransientError(f"reading Secret {namespace}/{name} failed ({answer.status})",
                                 reason="SecretUnavailable")
        data = (answer.json() or {}).get("data") or {}
        if key not in data:
            raise TransientError(f"Secret {namespace}/{name} has no key {key!r}", reason="SecretKeyNotFound")
        value = base64.b64decode(data[key]).decode()
        self.redactor.register([value])
        return value

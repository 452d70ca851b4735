"""Read values from Kubernetes Secrets in the LLMApp's namespace (GitHub token, app secrets),
only from Secrets that consent to it (the `llmops.dev/allowed-llmapps` annotation names the app).

A missing Secret or key is reported by name, never by value, and retried with backoff: in GitOps
the Secret often arrives after the LLMApp (sealed-secrets, external-secrets), and Kopf does not
watch Secrets. Every value read is registered with the redactor before it is returned.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Protocol

from llmapp_operator.api.errors import PermanentError, TransientError
from llmapp_operator.kube.client import KubeClient, namespaced
from llmapp_operator.obs.redaction import REDACTOR, Redactor

CONSENT_ANNOTATION = "llmops.dev/allowed-llmapps"
"""On a Secret: the LLMApps of its namespace that may read it (comma-separated names, or `*`)."""


class SecretReader(Protocol):
    async def read(self, namespace: str, name: str, key: str, *, reader: str) -> str:
        """The value of `key`, for the LLMApp `reader` of the same namespace."""
        ...


def allows(annotations: Mapping[str, str] | None, reader: str) -> bool:
    """Secrets by consent: a Secret is read for an LLMApp only when it names it (or `*`). Whoever
    may create LLMApps in a namespace cannot make the operator read the namespace's other Secrets."""
    names = {name.strip() for name in str((annotations or {}).get(CONSENT_ANNOTATION, "")).split(",")}
    return "*" in names or reader in names


def not_allowed(namespace: str, name: str, reader: str) -> PermanentError:
    return PermanentError(f"Secret {namespace}/{name} does not allow LLMApp {reader} to read it: annotate it "
                          f"with {CONSENT_ANNOTATION}={reader} (or *)", reason="SecretNotAllowed")


class KubeSecrets:
    """Reads through the operator's one Kubernetes client."""

    def __init__(self, redactor: Redactor = REDACTOR, client: KubeClient | None = None) -> None:
        self.redactor = redactor
        self.client = client or KubeClient()

    async def read(self, namespace: str, name: str, key: str, *, reader: str) -> str:
        answer = await self.client.request("GET", namespaced("v1", namespace, "secrets", name))
        if answer.status == 404:
            raise TransientError(f"Secret {namespace}/{name} not found", reason="SecretNotFound")
        if answer.status in (401, 403):
            raise PermanentError(f"the operator may not read Secret {namespace}/{name} ({answer.status})",
                                 reason="SecretForbidden")
        if not answer.ok:
            raise TransientError(f"reading Secret {namespace}/{name} failed ({answer.status})",
                                 reason="SecretUnavailable")
        secret = answer.json() or {}
        if not allows((secret.get("metadata") or {}).get("annotations"), reader):
            raise not_allowed(namespace, name, reader)
        data = secret.get("data") or {}
        if key not in data:
            raise TransientError(f"Secret {namespace}/{name} has no key {key!r}", reason="SecretKeyNotFound")
        value = base64.b64decode(data[key]).decode()
        self.redactor.register([value])
        return value

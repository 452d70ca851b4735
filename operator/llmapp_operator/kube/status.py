"""The status subresource of LLMApps, written by the object's worker only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmapp_operator import GROUP, PLURAL, VERSION
from llmapp_operator.api.errors import TransientError
from llmapp_operator.api.status import undeclared
from llmapp_operator.kube.client import MERGE_PATCH, KubeClient, as_mapping, namespaced


class StatusClient:
    """Merge-patches status through the operator's one Kubernetes client."""

    def __init__(self, client: KubeClient | None = None) -> None:
        self.client = client or KubeClient()

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Write and return the object as the API server has it now (None: it is gone)."""
        stray = undeclared(status)
        if stray:   # the API server would prune them silently: a bug, refused loudly here
            raise ValueError(f"status fields the CRD does not declare: {', '.join(stray)}")
        answer = await self.client.request("PATCH", namespaced(f"{GROUP}/{VERSION}", namespace, PLURAL, name, "status"),
                                           body={"status": dict(status)}, content_type=MERGE_PATCH)
        if answer.status == 404:
            return None
        if not answer.ok:
            raise TransientError(f"status of {namespace}/{name} not written: {answer.status} {answer.message()}",
                                 reason="StatusNotWritten")
        return as_mapping(answer.json())

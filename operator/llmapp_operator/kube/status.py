"""The status subresource of LLMApps, written by the object's worker only."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from llmapp_operator import GROUP, PLURAL, VERSION


class StatusClient:
    """Merge-patches status through the kubernetes client (configured by Kopf's login)."""

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Write and return the object as the API server has it now (None: it is gone)."""
        return await asyncio.to_thread(self._patch, namespace, name, dict(status))

    @staticmethod
    def _patch(namespace: str, name: str, status: dict[str, Any]) -> Mapping[str, Any] | None:
        import kubernetes

        api = kubernetes.client.CustomObjectsApi()
        try:
            result = api.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, {"status": status}, _request_timeout=10)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return result if isinstance(result, Mapping) else None

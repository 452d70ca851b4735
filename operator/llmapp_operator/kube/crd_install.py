"""`install-crd`: create or update the LLMApp CRD in the current kube-context."""

from __future__ import annotations

from typing import Any

from llmapp_operator.api.crd import crd_manifest
from llmapp_operator.api.errors import TransientError
from llmapp_operator.kube.client import Answer, ClusterUnreachable, KubeClient, api_host, load_config

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"

__all__ = ["ClusterUnreachable", "install_crd"]


def install_crd(crd: dict[str, Any] | None = None, client: KubeClient | None = None) -> str:
    """Create or update the CRD in the current kube-context; one-line errors, no tracebacks."""
    load_config()
    crd = crd or crd_manifest()   # the models are the source; crds/llmapp.yaml is their rendering
    client = client or KubeClient(timeout=10)
    name = crd["metadata"]["name"]
    try:
        current = client.request_blocking("GET", f"{CRDS}/{name}")
        if current.status == 404:
            return _done(client.request_blocking("POST", CRDS, body=crd), f"created CRD {name}", name)
        if not current.ok:
            return _done(current, "", name)
        crd["metadata"]["resourceVersion"] = (current.json().get("metadata") or {}).get("resourceVersion")
        return _done(client.request_blocking("PUT", f"{CRDS}/{name}", body=crd), f"updated CRD {name}", name)
    except TransientError:
        raise ClusterUnreachable(f"Kubernetes API at {api_host()} is not reachable; check your kube-context") from None


def _done(answer: Answer, said: str, name: str) -> str:
    if not answer.ok:
        # The API server's own message says why (e.g. which schema rule failed).
        raise ClusterUnreachable(f"cannot install CRD {name}: {answer.status} {answer.reason}: {answer.message()}")
    return said

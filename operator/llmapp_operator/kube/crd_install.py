"""`install-crd`: create or update the LLMApp CRD in the current kube-context."""

from __future__ import annotations

from typing import Any

from llmapp_operator.api.crd import crd_manifest


class ClusterUnreachable(RuntimeError):
    pass


def server_message(body: str | bytes | None) -> str:
    """The `message` of the API server's Status body: it says why (e.g. which schema rule failed)."""
    import json

    try:
        status = json.loads(body or b"{}")
    except ValueError:
        return str(body or "")[:2000]
    return str(status.get("message") or "") if isinstance(status, dict) else ""


def install_crd(crd: dict[str, Any] | None = None) -> str:
    """Create or update the CRD in the current kube-context; one-line errors, no tracebacks."""
    import kubernetes
    import urllib3

    try:
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
    except (kubernetes.config.ConfigException, OSError) as exc:
        raise ClusterUnreachable(f"no Kubernetes configuration found ({exc}); "
                                 "set KUBECONFIG or run inside a cluster") from None
    crd = crd or crd_manifest()   # the models are the source; crds/llmapp.yaml is their rendering
    api = kubernetes.client.ApiextensionsV1Api()
    name = crd["metadata"]["name"]
    try:
        try:
            current = api.read_custom_resource_definition(name, _request_timeout=10)
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:
                raise
            api.create_custom_resource_definition(crd, _request_timeout=10)  # type: ignore[arg-type]
            return f"created CRD {name}"
        crd["metadata"]["resourceVersion"] = current.metadata.resource_version if current.metadata else None
        api.replace_custom_resource_definition(name, crd, _request_timeout=10)  # type: ignore[arg-type]
        return f"updated CRD {name}"
    except kubernetes.client.ApiException as exc:
        raise ClusterUnreachable(f"cannot install CRD {name}: {exc.status} {exc.reason}: "
                                 f"{server_message(exc.body)}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        host = kubernetes.client.Configuration.get_default_copy().host
        raise ClusterUnreachable(f"Kubernetes API at {host} is not reachable "
                                 f"({type(exc).__name__}); check your kube-context") from None



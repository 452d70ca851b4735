"""`install-crd`: create or update the LLMApp CRD in the current kube-context."""

from __future__ import annotations

import pathlib

from llmapp_operator.config import PACKAGE_DIR

CRD_PATH = pathlib.Path(
    next((str(p) for p in (PACKAGE_DIR.parent.parent / "crds" / "llmapp.yaml",
                           pathlib.Path("/opt/llmapp-operator/crds/llmapp.yaml")) if p.exists()),
         PACKAGE_DIR.parent.parent / "crds" / "llmapp.yaml")
)


class ClusterUnreachable(RuntimeError):
    pass


def install_crd(path: pathlib.Path = CRD_PATH) -> str:
    """Create or update the CRD in the current kube-context; one-line errors, no tracebacks."""
    import kubernetes
    import urllib3
    import yaml

    try:
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
    except (kubernetes.config.ConfigException, OSError) as exc:
        raise ClusterUnreachable(f"no Kubernetes configuration found ({exc}); "
                                 "set KUBECONFIG or run inside a cluster") from None
    crd = yaml.safe_load(path.read_text())
    api = kubernetes.client.ApiextensionsV1Api()
    name = crd["metadata"]["name"]
    try:
        try:
            current = api.read_custom_resource_definition(name, _request_timeout=10)
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:
                raise
            api.create_custom_resource_definition(crd, _request_timeout=10)
            return f"created CRD {name}"
        crd["metadata"]["resourceVersion"] = current.metadata.resource_version if current.metadata else None
        api.replace_custom_resource_definition(name, crd, _request_timeout=10)
        return f"updated CRD {name}"
    except kubernetes.client.ApiException as exc:
        raise ClusterUnreachable(f"cannot install CRD {name}: {exc.status} {exc.reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        host = kubernetes.client.Configuration.get_default_copy().host
        raise ClusterUnreachable(f"Kubernetes API at {host} is not reachable "
                                 f"({type(exc).__name__}); check your kube-context") from None



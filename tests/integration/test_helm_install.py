"""`helm install` for real: Helm's Go SDK (helm-python-sdk) installs the chart into the API emulator,
on a bare cluster with the default values and with the HA values, and with every knob turned on a
cluster that has the Prometheus Operator's ServiceMonitor CRD. A server dry-run is no proof (it
reported success for releases that then failed), so these run the install itself."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

import pytest
import yaml

from llmapp_operator.api.crd import crd_manifest
from llmapp_sandbox.apiserver.server import RunningApiServer, running_apiserver
from tests.chart_render import CHART

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (Helm's Go SDK) is needed to install the chart")

HA_VALUES = yaml.safe_load((CHART / "ci" / "ha-values.yaml").read_text())
FULL_VALUES = yaml.safe_load((CHART / "ci" / "full-values.yaml").read_text())
SHARDS_VALUES = yaml.safe_load((CHART / "ci" / "shards-values.yaml").read_text())
SERVICE_MONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
             "names": {"kind": "ServiceMonitor", "listKind": "ServiceMonitorList", "plural": "servicemonitors",
                       "singular": "servicemonitor"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True}}}]},
}


async def install(api: RunningApiServer, tmp_path: pathlib.Path, values: dict[str, Any], *,
                  name: str = "llmapp-operator") -> Any:
    config_path = api.write_kubeconfig(tmp_path / f"kubeconfig-{name}")

    def run() -> Any:
        with helm.Config(kubeconfig_path=str(config_path), namespace="llmapp-system") as config:
            return config.install(str(CHART), name, values, namespace="llmapp-system", create_namespace=True,
                                  timeout=60)

    return await asyncio.to_thread(run)


def kinds(api: RunningApiServer) -> set[tuple[str, str]]:
    found = set()
    for kind in api.server.store.served():
        for obj in api.server.store.items(kind):
            labels = obj["metadata"].get("labels") or {}
            if labels.get("app.kubernetes.io/managed-by") == "Helm":
                found.add((kind.kind, obj["metadata"]["name"]))
    return found


@pytest.mark.parametrize("values", [{}, HA_VALUES, SHARDS_VALUES], ids=["defaults", "ha", "shards"])
async def test_helm_install_on_a_bare_cluster(values: dict[str, Any], tmp_path: pathlib.Path) -> None:
    async with running_apiserver() as api:
        release = await install(api, tmp_path, values)
        assert release["status"] == "deployed", release
        installed = kinds(api)
        assert ("CustomResourceDefinition", "llmapps.llmops.dev") in installed
        shards = values.get("shards", 1)
        names = ["llmapp-operator"] if shards == 1 else [f"llmapp-operator-shard-{k}" for k in range(shards)]
        assert {name for kind, name in installed if kind == "Deployment"} == set(names)
        assert ("Role", "llmapp-operator-leader") in installed
        for name in names:
            deployment = api.server.get_object("deployments", "llmapp-system", name)
            assert deployment is not None and deployment["spec"]["replicas"] == values.get("replicas", 1)
        crd = api.server.get_object("customresourcedefinitions", None, "llmapps.llmops.dev")
        assert crd is not None and crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


async def test_helm_install_with_every_knob_on_a_cluster_with_the_prometheus_operator(tmp_path: pathlib.Path) -> None:
    async with running_apiserver([SERVICE_MONITOR_CRD]) as api:
        for namespace in ("team-a", "team-b", "llmapp-runs"):   # the watched ones and the job namespace
            api.server.create_object("namespaces", {"metadata": {"name": namespace}})
        api.server.apply_manifests([crd_manifest()])   # crds.install: false: the CRD is installed separately
        release = await install(api, tmp_path, FULL_VALUES, name="llmapp")
        assert release["status"] == "deployed", release
        assert ("ServiceMonitor", "llmapp") in kinds(api)


async def test_helm_refuses_a_crd_installed_outside_the_release(tmp_path: pathlib.Path) -> None:
    """What happens after `make install-crd` or `kubectl apply -f crds/`: Helm will not adopt it
    (docs/helm.md says to install with crds.install=false then)."""
    async with running_apiserver([crd_manifest()]) as api:
        with pytest.raises(helm.errors.HelmError, match="exists and cannot be imported into the current release"):
            await install(api, tmp_path, {})
        release = await install(api, tmp_path, {"crds": {"install": False}}, name="second")
        assert release["status"] == "deployed"


async def test_helm_refuses_a_release_with_an_object_of_a_kind_its_own_crd_defines(tmp_path: pathlib.Path) -> None:
    """The 0.1 chart's HA values shipped Kopf's peering CRD and a KopfPeering in one release: Helm maps
    every object before it creates any, so the install failed before creating anything."""
    chart = CHART.parent.parent / "tests" / "fixtures" / "charts" / "crd-and-object"
    async with running_apiserver() as api:
        config_path = api.write_kubeconfig(tmp_path / "kubeconfig")

        def run() -> Any:
            with helm.Config(kubeconfig_path=str(config_path), namespace="llmapp-system") as config:
                return config.install(str(chart), "peering", {}, namespace="llmapp-system", create_namespace=True)

        with pytest.raises(helm.errors.HelmError, match='no matches for kind "KopfPeering" in version "kopf.dev/v1"'):
            await asyncio.to_thread(run)
        assert api.server.get_object("customresourcedefinitions", None, "kopfpeerings.kopf.dev") is None

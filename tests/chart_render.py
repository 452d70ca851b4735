"""The Helm chart rendered by Helm's own engine (helm-python-sdk), cached per value set."""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import yaml

from tests.conftest import REPO

CHART = REPO / "charts" / "llmapp-operator"
RELEASE, RELEASE_NAMESPACE = "llmapp-operator", "llmapp-system"
RBAC_KINDS = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ServiceAccount"}


@functools.lru_cache(maxsize=16)
def _render(values_json: str, name: str) -> tuple[dict[str, Any], ...]:
    import helm_python as helm

    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(json.loads(values_json), name=name, namespace=RELEASE_NAMESPACE, is_install=True)
    return tuple(doc for text in manifests.values() for doc in yaml.safe_load_all(text) if doc)


def render(values: dict[str, Any] | None = None, name: str = RELEASE) -> list[dict[str, Any]]:
    return copy.deepcopy(list(_render(json.dumps(values or {}, sort_keys=True), name)))


def rbac_objects(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The chart's ServiceAccounts, Roles and bindings: what the operator and its Jobs may do."""
    return [doc for doc in render(values) if doc["kind"] in RBAC_KINDS]

"""Which tenant policy governs a namespace: the platform's policy file, and the namespace's labels.

The file (LLMAPP_TENANT_POLICIES, a ConfigMap the chart mounts) is read again whenever it changes
on disk, so a policy edit reaches the next pass without a restart (kubelet refreshes mounted
ConfigMaps within about a minute). A file that no longer parses keeps nothing running on a
guess: passes fail with TenantPolicyInvalid and retry until it is fixed. Namespace labels are read
only when a policy selects by label (RBAC: get namespaces).
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Protocol

import yaml

from llmapp_operator.api.errors import PermanentError, TransientError
from llmapp_operator.api.tenancy import TenantPolicies, TenantPolicy, single_tenant
from llmapp_operator.config import Settings
from llmapp_operator.kube.client import KubeClient


class TenantSource(Protocol):
    async def policy_for(self, namespace: str) -> TenantPolicy: ...


def read_policies(path: pathlib.Path) -> TenantPolicies:
    """The policy file, parsed and validated; a ValueError says what is wrong and where."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValueError(f"tenant policies {path} cannot be read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"tenant policies {path} are not YAML: {exc}") from None
    if isinstance(data, list):   # a bare list of policies is accepted too
        data = {"policies": data}
    return TenantPolicies.parse(data, str(path))


def policies_of(settings: Settings) -> TenantPolicies:
    """What governs this operator now: the file, or the single-tenant default without one."""
    if settings.tenant_policies is None:
        return single_tenant(settings)
    return read_policies(settings.tenant_policies)


class NamespaceLabels:
    def __init__(self, client: KubeClient | None = None) -> None:
        self.client = client or KubeClient()

    async def __call__(self, namespace: str) -> Mapping[str, str]:
        answer = await self.client.request("GET", f"/api/v1/namespaces/{namespace}")
        if answer.status in (401, 403):
            raise PermanentError(f"the operator may not read namespace {namespace} ({answer.status}), which its "
                                 "tenant policies select by label: grant it get on namespaces",
                                 reason="NamespaceForbidden")
        if not answer.ok:
            raise TransientError(f"reading namespace {namespace} failed ({answer.status})",
                                 reason="KubernetesApi")
        labels = ((answer.json() or {}).get("metadata") or {}).get("labels") or {}
        return {str(key): str(value) for key, value in labels.items()}


class PolicyFile:
    """The TenantSource of a running operator."""

    def __init__(self, settings: Settings, labels: NamespaceLabels | None = None) -> None:
        self.settings = settings
        self.labels = labels or NamespaceLabels()
        self._loaded: tuple[float, TenantPolicies] | None = None

    def current(self) -> TenantPolicies:
        path = self.settings.tenant_policies
        if path is None:
            return policies_of(self.settings)
        try:
            changed = path.stat().st_mtime
        except OSError:
            changed = -1.0
        if self._loaded is None or self._loaded[0] != changed:
            try:
                self._loaded = (changed, read_policies(path))
            except ValueError as exc:
                raise TransientError(str(exc), reason="TenantPolicyInvalid") from None
        return self._loaded[1]

    async def policy_for(self, namespace: str) -> TenantPolicy:
        policies = self.current()
        labels = await self.labels(namespace) if policies.uses_labels else {}
        return policies.select(namespace, labels)

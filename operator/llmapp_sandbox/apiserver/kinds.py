"""The resources the emulator serves: the built-in kinds the operator, kubectl and Helm touch, and
the kinds that CustomResourceDefinitions add while it runs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = frozenset({"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"})


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    verbs: frozenset[str] = ALL_VERBS
    schema: dict[str, Any] | None = None             # a CRD version's openAPIV3Schema; None for built-ins
    printer_columns: tuple[Mapping[str, Any], ...] = ()
    crd: str | None = None                            # the CRD that defines it
    has_generation: bool = True                       # metadata.generation is kept (most kinds)
    storage_version: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`llmapps.llmops.dev`, `secrets`: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def is_custom(self) -> bool:
        return self.crd is not None


def _k(group: str, version: str, plural: str, kind: str, *, namespaced: bool = True, short: Iterable[str] = (),
       sub: Iterable[str] = (), verbs: frozenset[str] = ALL_VERBS, generation: bool = True,
       categories: Iterable[str] = ()) -> Kind:
    return Kind(group, version, plural, kind, namespaced, kind.lower(), tuple(short), tuple(categories),
                frozenset(sub), verbs, has_generation=generation)


BUILTINS: tuple[Kind, ...] = (
    _k("", "v1", "namespaces", "Namespace", namespaced=False, short=["ns"], sub=["status", "finalize"]),
    _k("", "v1", "secrets", "Secret"),
    _k("", "v1", "configmaps", "ConfigMap", short=["cm"]),
    _k("", "v1", "events", "Event", short=["ev"]),
    _k("", "v1", "serviceaccounts", "ServiceAccount", short=["sa"], sub=["token"]),
    _k("", "v1", "services", "Service", short=["svc"], sub=["status"], categories=["all"]),
    _k("", "v1", "pods", "Pod", short=["po"], sub=["status", "log"], categories=["all"]),
    _k("apps", "v1", "deployments", "Deployment", short=["deploy"], sub=["status", "scale"], categories=["all"]),
    _k("batch", "v1", "jobs", "Job", sub=["status"], categories=["all"]),
    _k("coordination.k8s.io", "v1", "leases", "Lease"),
    _k("events.k8s.io", "v1", "events", "Event", short=["ev"]),
    _k("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short=["pdb"], sub=["status"]),
    _k("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short=["netpol"]),
    _k("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _k("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _k("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    _k("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    _k("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False,
       short=["crd", "crds"], sub=["status"]),
    _k("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", namespaced=False,
       verbs=frozenset({"create"})),
)

# Names the API server checks as DNS-1123 labels rather than subdomains.
LABEL_NAMED = frozenset({"namespaces", "services"})


def kinds_of_crd(crd: Mapping[str, Any]) -> list[Kind]:
    """The served versions of an apiextensions.k8s.io/v1 CustomResourceDefinition."""
    spec = crd["spec"]
    names = spec["names"]
    kinds = []
    for version in spec.get("versions", []):
        if not version.get("served", True):
            continue
        kinds.append(Kind(
            group=spec["group"], version=version["name"], plural=names["plural"], kind=names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            singular=names.get("singular") or names["kind"].lower(),
            short_names=tuple(names.get("shortNames") or ()), categories=tuple(names.get("categories") or ()),
            subresources=frozenset(version.get("subresources") or {}) & {"status", "scale"},
            schema=(version.get("schema") or {}).get("openAPIV3Schema"),
            printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
            crd=crd["metadata"]["name"], storage_version=bool(version.get("storage")),
        ))
    return kinds

"""The resources a plan leaves behind, read once from `terraform show -json` (pure)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Resource:
    address: str
    module: str          # "" for the root module
    type: str
    after: Mapping[str, Any]


def resources_after(plan: Mapping[str, Any]) -> list[Resource]:
    """Managed resources that will exist after the plan (created, updated, replaced or unchanged)."""
    found = []
    for change in plan.get("resource_changes") or ():
        actions = list((change.get("change") or {}).get("actions") or ())
        if change.get("mode", "managed") != "managed" or actions == ["delete"]:
            continue
        after = (change.get("change") or {}).get("after") or {}
        found.append(Resource(str(change.get("address", "")), str(change.get("module_address", "")),
                              str(change.get("type", "")), after if isinstance(after, Mapping) else {}))
    return found


def blocks(value: Any) -> Iterator[Mapping[str, Any]]:
    """Nested blocks appear as lists of objects in plan JSON."""
    for item in value if isinstance(value, list) else ():
        if isinstance(item, Mapping):
            yield item


# -- policy ---------------------------------------------------------------------------------------


"""docs/stack.md has one row for every spec field the CRD declares, naming real stack variables."""

from __future__ import annotations

import pathlib
import re
from collections.abc import Iterator
from typing import Any

import yaml

from llmapp_operator.config import Settings
from llmapp_operator.runners.modules import load_module

REPO = pathlib.Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| `spec\.(?P<field>[A-Za-z.]+)` \| (?P<variables>[^|]+) \|")


def leaves(schema: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[str]:
    properties = schema.get("properties")
    if not properties:
        yield ".".join(path)
        return
    for name, child in properties.items():
        yield from leaves(child, (*path, name))


def spec_fields() -> list[str]:
    crd = yaml.safe_load((REPO / "crds" / "llmapp.yaml").read_text())
    return list(leaves(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]))


def rows() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for line in (REPO / "docs" / "stack.md").read_text().splitlines():
        match = ROW.match(line)
        if match:
            assert match["field"] not in found, f"two rows for spec.{match['field']}"
            found[match["field"]] = set(re.findall(r"`([a-z_]+)`", match["variables"]))
    return found


def test_every_crd_field_has_exactly_one_row() -> None:
    fields, documented = spec_fields(), rows()
    assert "app.rollout" in fields and "app.desiredCount" in fields
    assert sorted(set(fields) - set(documented)) == [], "spec fields without a row in docs/stack.md"
    assert sorted(set(documented) - set(fields)) == [], "rows in docs/stack.md for fields the CRD lacks"


def test_the_rows_name_the_stack_s_own_variables_and_leave_out_only_the_operator_s() -> None:
    declared = set(load_module("stack", Settings().modules).variables)
    named = set().union(*rows().values())
    assert named <= declared, f"not stack variables: {sorted(named - declared)}"
    # What no row names is set by the operator or the platform, never by a spec field.
    assert declared - named == {"name", "permissions_boundary_arn"}


def test_desired_count_is_no_terraform_input() -> None:
    assert rows()["app.desiredCount"] == set()
    assert "desired_count" not in load_module("stack", Settings().modules).variables

"""The LLMApp CustomResourceDefinition, generated from the spec and status models (pure).

One source of truth: `api/spec.py` and `api/status.py` say each field's type, bounds, default,
description and CEL rules; this module turns pydantic's JSON Schema into a structural OpenAPI v3
schema as apiextensions.k8s.io/v1 wants it, and `make crd` writes it to crds/llmapp.yaml (a test
fails when the file and the models differ).

Structural schemas differ from JSON Schema in ways a real API server enforces at CRD admission:
no `$ref`, no `anyOf` for optional fields (absent is optional), no `additionalProperties: false`
(pruning and strict field validation do that work), no `title`, and `metadata` may carry nothing
but its type. The conversion below does exactly these steps and fails loudly on anything else.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from pydantic import BaseModel

from llmapp_operator import GROUP, KIND, PLURAL, VERSION
from llmapp_operator.api.spec import LLMAppSpec
from llmapp_operator.api.status import LLMAppStatus

SINGULAR = "llmapp"
SHORT_NAMES = ["llma"]
CATEGORIES = ["all", "llmops"]

PRINTER_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase",
     "description": "Where the reconcile loop is (Pending, Planning, Applying, Ready, Failed, Deleting, Suspended)."},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
     "description": "The Ready condition's status."},
    {"name": "URL", "type": "string", "jsonPath": ".status.url",
     "description": "Public URL of the app (the load balancer)."},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
     "description": "Time since the object was created."},
]

# JSON Schema keywords that mean the same in a structural schema; everything else is refused.
_KEPT = {"type", "description", "default", "enum", "format", "pattern", "minLength", "maxLength", "minimum",
         "maximum", "minItems", "maxItems", "minProperties", "maxProperties", "required", "multipleOf"}


class SchemaError(ValueError):
    """The models use a JSON Schema construct that has no structural equivalent."""


def _describe(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def structural(node: dict[str, Any], defs: dict[str, Any], path: str = "") -> dict[str, Any]:
    """One JSON Schema node (pydantic's output) as a structural OpenAPI v3 node."""
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[1]]
        merged = {**target, **node}   # the field's own description and extensions win over the class's
        if "x-kubernetes-validations" in target and "x-kubernetes-validations" in node:
            merged["x-kubernetes-validations"] = target["x-kubernetes-validations"] + node["x-kubernetes-validations"]
        return structural(merged, defs, path)
    if "anyOf" in node:
        options = [option for option in node.pop("anyOf") if option.get("type") != "null"]
        if len(options) != 1:
            raise SchemaError(f"{path}: a union of {len(options)} types has no structural form")
        merged = {**options[0], **node}
        if merged.get("default", ...) is None:
            del merged["default"]   # absent is the structural way to say "not set"
        return structural(merged, defs, path)
    if "allOf" in node:
        (only,) = node.pop("allOf")
        return structural({**only, **node}, defs, path)
    node.pop("title", None)
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]
    if node.get("additionalProperties") is True:   # dict[str, Any]: free-form, kept as written
        del node["additionalProperties"]
        node["x-kubernetes-preserve-unknown-fields"] = True
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out["properties"] = {name: structural(child, defs, f"{path}.{name}") for name, child in value.items()}
        elif key == "items":
            out["items"] = structural(value, defs, f"{path}[]")
        elif key == "additionalProperties":
            out["additionalProperties"] = structural(value, defs, f"{path}{{}}")
        elif key == "description":
            out["description"] = _describe(value)
        elif key.startswith("x-kubernetes-") or key in _KEPT:
            out[key] = copy.deepcopy(value)
        else:
            raise SchemaError(f"{path}: JSON Schema keyword {key!r} has no structural form")
    if "type" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        raise SchemaError(f"{path}: no type")
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out \
            and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["x-kubernetes-preserve-unknown-fields"] = True   # a free-form object (status.outputs)
    return {key: out[key] for key in sorted(out, key=_key_order)}


_ORDER = ("type", "description", "default", "required")


def _key_order(key: str) -> tuple[int, str]:
    """Readable YAML: type and description first, then bounds, then children, then extensions."""
    if key in _ORDER:
        return _ORDER.index(key), ""
    if key in ("properties", "items", "additionalProperties"):
        return 20, key
    if key.startswith("x-kubernetes-"):
        return 30, key
    return 10, key


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    defs = schema.pop("$defs", {})
    return structural(schema, defs, "")


def open_api_schema() -> dict[str, Any]:
    spec = model_schema(LLMAppSpec)
    status = model_schema(LLMAppStatus)
    status.pop("required", None)
    return {
        "type": "object",
        "description": "An LLM app (a containerised RAG/chat app) deployed to AWS ECS Fargate behind an ALB, with "
                       "its GitHub environment prepared for the app's own CI/CD.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this "
                                                            "representation of an object."},
            "kind": {"type": "string", "description": "Kind is a string value representing the REST resource "
                                                      "this object represents."},
            # The API server owns metadata's schema: a description (or anything but the type) is refused.
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def crd_manifest() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": KIND, "listKind": f"{KIND}List", "plural": PLURAL, "singular": SINGULAR,
                      "shortNames": list(SHORT_NAMES), "categories": list(CATEGORIES)},
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": copy.deepcopy(PRINTER_COLUMNS),
                "schema": {"openAPIV3Schema": open_api_schema()},
            }],
        },
    }

"""Patch formats the API server accepts (pure): JSON merge patch (RFC 7386), JSON patch (RFC 6902)
and, for built-in kinds only, a strategic merge patch close enough for what kubectl sends."""

from __future__ import annotations

import copy
from typing import Any

from llmapp_sandbox.apiserver.errors import ApiError

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
APPLY_CBOR = "application/apply-patch+cbor"
PATCH_TYPES = (MERGE, JSON_PATCH, STRATEGIC, APPLY)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# Lists of built-in kinds that a strategic merge patch merges by key (the rest are replaced).
_MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
               "volumeMounts": "mountPath", "ports": "containerPort", "imagePullSecrets": "name",
               "finalizers": None, "ownerReferences": "uid"}
_DIRECTIVES = ("$setElementOrder/", "$deleteFromPrimitiveList/", "$retainKeys", "$patch")


def strategic_merge_patch(target: Any, patch: Any, key: str = "") -> Any:
    """A strategic merge patch as kubectl sends them for built-in kinds: a merge patch whose keyed
    lists (containers by name, env by name, …) merge item by item. Directives other than
    `$patch: delete` on list items are ignored (a documented gap)."""
    if isinstance(patch, list) and isinstance(target, list) and _MERGE_KEYS.get(key):
        merge_key = _MERGE_KEYS[key]
        merged = [copy.deepcopy(item) for item in target]
        for item in patch:
            if not isinstance(item, dict) or merge_key not in item:
                merged.append(copy.deepcopy(item))
                continue
            index = next((i for i, old in enumerate(merged) if isinstance(old, dict)
                          and old.get(merge_key) == item[merge_key]), None)
            if item.get("$patch") == "delete":
                if index is not None:
                    del merged[index]
            elif index is None:
                merged.append(strategic_merge_patch({}, item))
            else:
                merged[index] = strategic_merge_patch(merged[index], item)
        return merged
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if name.startswith(_DIRECTIVES):
            continue
        if value is None:
            result.pop(name, None)
        else:
            result[name] = strategic_merge_patch(result.get(name), value, name)
    return result


def _pointer(path: str) -> list[str]:
    if path and not path.startswith("/"):
        raise ApiError(422, "Invalid", f"JSON pointer {path!r} must start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]] if path else []


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for part in parts:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                                           f"doc is missing path: {path!r}") from None
    return node


def _index(container: list[Any], part: str, path: str, *, adding: bool) -> int:
    if part == "-" and adding:
        return len(container)
    try:
        index = int(part)
    except ValueError:
        raise ApiError(422, "Invalid", f"invalid array index {part!r} in {path!r}") from None
    if index < 0 or index > len(container) - (0 if adding else 1):
        raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                                       f"index out of range at {path!r}")
    return index


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 (add, remove, replace, move, copy, test); a failed `test` answers 422 as the real
    server does (Kopf's finalizer patches rely on it)."""
    if not isinstance(operations, list):
        raise ApiError(400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ApiError(422, "Invalid", "the server rejected our request: a JSON-patch operation needs op and path")
        kind, path = op["op"], op["path"]
        parts = _pointer(path)
        if kind == "test":
            if _walk(doc, parts, path) != op.get("value"):
                raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                                               f"testing value {path} failed: test failed")
            continue
        if kind in ("move", "copy"):
            source_path = op.get("from", "")
            value = copy.deepcopy(_walk(doc, _pointer(source_path), source_path))
            if kind == "move":
                doc = json_patch(doc, [{"op": "remove", "path": source_path}])
            doc = json_patch(doc, [{"op": "add", "path": path, "value": value}])
            continue
        if not parts:
            if kind in ("add", "replace"):
                doc = copy.deepcopy(op.get("value"))
                continue
            raise ApiError(422, "Invalid", "cannot remove the whole document")
        parent = _walk(doc, parts[:-1], path)
        last = parts[-1]
        if kind == "add":
            if isinstance(parent, list):
                parent.insert(_index(parent, last, path, adding=True), copy.deepcopy(op.get("value")))
            elif isinstance(parent, dict):
                parent[last] = copy.deepcopy(op.get("value"))
            else:
                raise ApiError(422, "Invalid", f"doc is missing path: {path!r}")
        elif kind in ("replace", "remove"):
            if isinstance(parent, list):
                index = _index(parent, last, path, adding=False)
            elif isinstance(parent, dict) and last in parent:
                index = None
            else:
                raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                                               f"{kind} operation does not apply: doc is missing path: {path!r}")
            if kind == "remove":
                del parent[last if index is None else index]
            else:
                parent[last if index is None else index] = copy.deepcopy(op.get("value"))
        else:
            raise ApiError(422, "Invalid", f"unexpected kind of JSON-patch operation: {kind!r}")
    return doc

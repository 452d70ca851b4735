"""Protobuf request bodies, for the few built-in kinds clients send that way.

client-go's typed clients write built-in objects as protobuf (`Content-Type:
application/vnd.kubernetes.protobuf`): `kubectl create namespace`, `kubectl create secret`, and
Helm's release storage (a Secret per release revision) and `--create-namespace`. The body is
the `k8s\\x00` magic, then a runtime.Unknown{typeMeta, raw}, where raw is the object's message
(k8s.io/api/core/v1/generated.proto). This decodes Namespace, Secret and ConfigMap with the
ObjectMeta fields clients set; any other kind answers 415 (the emulator's documented gap), so
nothing is silently dropped. Responses are JSON: clients accept it (their Accept lists it).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

from llmapp_sandbox.apiserver.errors import ApiError

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
Fields = list[tuple[int, int, Any]]   # (field number, wire type, value)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _text(value: bytes) -> str:
    return value.decode()


def _map(entries: list[bytes], value: Callable[[bytes], Any]) -> dict[str, Any]:
    out = {}
    for entry in entries:
        key, item = "", b""
        for number, _, raw in _fields(entry):
            if number == 1:
                key = _text(raw)
            elif number == 2:
                item = raw
        out[key] = value(item)
    return out


def _grouped(data: bytes) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = {}
    for number, _, value in _fields(data):
        grouped.setdefault(number, []).append(value)
    return grouped


def _owner_reference(data: bytes) -> dict[str, Any]:
    fields = _grouped(data)
    ref: dict[str, Any] = {}
    for number, name in ((5, "apiVersion"), (1, "kind"), (3, "name"), (4, "uid")):
        if number in fields:
            ref[name] = _text(fields[number][-1])
    for number, name in ((6, "controller"), (7, "blockOwnerDeletion")):
        if number in fields:
            ref[name] = bool(fields[number][-1])
    return ref


def _object_meta(data: bytes) -> dict[str, Any]:
    fields = _grouped(data)
    meta: dict[str, Any] = {}
    for number, name in ((1, "name"), (2, "generateName"), (3, "namespace"), (6, "resourceVersion")):
        if number in fields and fields[number][-1]:
            meta[name] = _text(fields[number][-1])
    if 11 in fields:
        meta["labels"] = _map(fields[11], _text)
    if 12 in fields:
        meta["annotations"] = _map(fields[12], _text)
    if 13 in fields:
        meta["ownerReferences"] = [_owner_reference(raw) for raw in fields[13]]
    if 14 in fields:
        meta["finalizers"] = [_text(raw) for raw in fields[14]]
    return meta


def _secret(fields: dict[int, list[Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if 2 in fields:
        obj["data"] = _map(fields[2], lambda raw: base64.b64encode(raw).decode())
    if 3 in fields:
        obj["type"] = _text(fields[3][-1])
    if 4 in fields:
        obj["stringData"] = _map(fields[4], _text)
    if 5 in fields:
        obj["immutable"] = bool(fields[5][-1])
    return obj


def _config_map(fields: dict[int, list[Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if 2 in fields:
        obj["data"] = _map(fields[2], _text)
    if 3 in fields:
        obj["binaryData"] = _map(fields[3], lambda raw: base64.b64encode(raw).decode())
    if 4 in fields:
        obj["immutable"] = bool(fields[4][-1])
    return obj


def _namespace(fields: dict[int, list[Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if 2 in fields:
        spec = _grouped(fields[2][-1])
        obj["spec"] = {"finalizers": [_text(raw) for raw in spec.get(1, [])]}
    return obj


_KINDS: dict[tuple[str, str], Callable[[dict[int, list[Any]]], dict[str, Any]]] = {
    ("v1", "Secret"): _secret, ("v1", "ConfigMap"): _config_map, ("v1", "Namespace"): _namespace}


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf request body as the JSON object it stands for; 415 for a kind this cannot read."""
    if not body.startswith(MAGIC):
        raise ApiError(400, "BadRequest", "provided object is not a protobuf-encoded Kubernetes object")
    try:
        unknown = _grouped(body[len(MAGIC):])
        type_meta = _grouped(unknown.get(1, [b""])[-1])
        api_version = _text(type_meta.get(1, [b""])[-1])
        kind = _text(type_meta.get(2, [b""])[-1])
        decoder = _KINDS.get((api_version, kind))
        if decoder is None:
            raise ApiError(415, "UnsupportedMediaType", f"the API emulator reads protobuf bodies of Namespace, Secret "
                                                        f"and ConfigMap only, not {api_version}/{kind}: send JSON")
        fields = _grouped(unknown.get(2, [b""])[-1])
        obj = {"apiVersion": api_version, "kind": kind, "metadata": _object_meta(fields.get(1, [b""])[-1])}
        obj.update(decoder(fields))
        return obj
    except (IndexError, ValueError, UnicodeDecodeError):
        raise ApiError(400, "BadRequest", "the body of the request was in an unknown format") from None

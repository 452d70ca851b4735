"""Server-side sharded list and watch (KEP-5866, alpha in Kubernetes 1.36, feature gate off by default).

What a server with the gate on does with `?shardSelector=`, from k8s.io/apiserver/pkg/sharding and
k8s.io/apimachinery/pkg/sharding (v0.36.0):

- the selector is `shardRange(<field>, '<start>', '<end>')`, several joined by `||`; only
  `object.metadata.uid` and `object.metadata.namespace` are fields; bounds are 0x-hex, the range is
  [start, end), and the upper bound may be 0x10000000000000000 (2^64);
- the hash is the 64-bit FNV-1a of the field's value, the same on every API server;
- a list response says it was filtered by echoing the selector in `metadata.shardInfo.selector`.

A server without the feature (1.32, or the gate off) ignores the unknown parameter: the list is
whole and carries no shardInfo. The emulator is that server unless `sharded_list_watch` is set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmapp_sandbox.apiserver.errors import ApiError

FIELDS = ("object.metadata.uid", "object.metadata.namespace")
TOP = 1 << 64
_FNV_OFFSET, _FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3
_RANGE = re.compile(r"\s*shardRange\(\s*([A-Za-z.]+)\s*,\s*'(0x[0-9a-fA-F]+)'\s*,\s*'(0x[0-9a-fA-F]+)'\s*\)\s*")


def fnv1a_64(value: str) -> int:
    digest = _FNV_OFFSET
    for byte in value.encode():
        digest = ((digest ^ byte) * _FNV_PRIME) % TOP
    return digest


@dataclass(frozen=True)
class ShardRange:
    field: str
    start: int
    end: int

    def matches(self, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        value = str(meta.get("uid" if self.field.endswith(".uid") else "namespace") or "")
        return self.start <= fnv1a_64(value) < self.end


@dataclass(frozen=True)
class ShardSelector:
    ranges: tuple[ShardRange, ...] = ()
    text: str = ""

    def empty(self) -> bool:
        return not self.ranges

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return not self.ranges or any(r.matches(obj) for r in self.ranges)


def parse_shard_selector(text: str | None) -> ShardSelector:
    """The `shardSelector` parameter of a server with the feature on: a bad one is a 400."""
    if not text:
        return ShardSelector()
    ranges = []
    for part in text.split("||"):
        match = _RANGE.fullmatch(part)
        if match is None:
            raise ApiError(400, "BadRequest", f"invalid shard selector {text!r}: only shardRange() joined by || "
                                              "is supported")
        name, start, end = match.group(1), int(match.group(2), 16), int(match.group(3), 16)
        if name not in FIELDS:
            raise ApiError(400, "BadRequest", f"invalid shard selector {text!r}: unsupported field path {name!r}, "
                                              f"supported: {', '.join(FIELDS)}")
        if not 0 <= start < end <= TOP:
            raise ApiError(400, "BadRequest", f"invalid shard selector {text!r}: the range must satisfy "
                                              "0 <= start < end <= 0x10000000000000000")
        ranges.append(ShardRange(name, start, end))
    return ShardSelector(tuple(ranges), text)

"""Which operator shard owns an LLMApp: pure rules, shared by the watch selectors and the assignment.

The chart's `shards: N` runs N Deployments, shard 0 … N-1; each watches only its own objects, so
every object is handled by exactly one of them:

- by label (the default; any Kubernetes version): the `llmops.dev/shard` label names the shard.
  Shard k > 0 watches `llmops.dev/shard=k`; shard 0, the default shard, watches
  `llmops.dev/shard notin (1, …, N-1)`: objects without the label, with `0`, or with a value no
  shard has (a typo, or a shard removed by a smaller N) all land there, so none is missed. Changing
  the label moves the object: the API server tells the old shard's watch DELETED and the new one's
  ADDED (the label-selector watch semantics), and the new shard finds it settled.
- by uid (Kubernetes 1.36 with the ShardedListAndWatch gate): `shardRange(object.metadata.uid, …)`
  splits the 64-bit FNV-1a hash space into N equal ranges, filtered by the API server itself.

The default shard gives an unlabelled object the label of the uid range it falls in (when
assignment is on), so objects spread over the shards by the same ranges in both modes.
"""

from __future__ import annotations

from collections.abc import Mapping

SHARD_LABEL = "llmops.dev/shard"
HASH_SPACE = 1 << 64
_FNV_OFFSET, _FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3


def fnv1a_64(value: str) -> int:
    """The hash the API server's shardRange() uses (k8s.io/apimachinery/pkg/sharding.HashField)."""
    digest = _FNV_OFFSET
    for byte in value.encode():
        digest = ((digest ^ byte) * _FNV_PRIME) % HASH_SPACE
    return digest


def bounds(shard: int, shards: int) -> tuple[int, int]:
    """[start, end) of the shard's part of the hash space: N equal ranges, the last one ending at 2^64."""
    return HASH_SPACE * shard // shards, HASH_SPACE * (shard + 1) // shards


def uid_range_selector(shard: int, shards: int) -> str:
    start, end = bounds(shard, shards)
    return f"shardRange(object.metadata.uid, '0x{start:016x}', '0x{end:016x}')"


def label_selector(shard: int, shards: int) -> str | None:
    """The shard's label selector; None: one shard watches everything."""
    if shards <= 1:
        return None
    if shard == 0:
        return f"{SHARD_LABEL} notin ({','.join(str(k) for k in range(1, shards))})"
    return f"{SHARD_LABEL}={shard}"


def by_uid(uid: str, shards: int) -> int:
    """The shard whose uid range holds this uid."""
    return fnv1a_64(uid) * shards // HASH_SPACE


def owner(labels: Mapping[str, str] | None, shards: int) -> int:
    """The shard that watches an object with these labels (label mode)."""
    value = (labels or {}).get(SHARD_LABEL)
    # The string must match exactly, as the selectors compare strings ("01" is not shard 1).
    return int(value) if value in {str(k) for k in range(1, shards)} else 0


def assignment(labels: Mapping[str, str] | None, uid: str, shards: int) -> int | None:
    """The shard the default shard hands an unlabelled object to; None: it stays (it has a label,
    or its uid range is the default shard's own, which needs no write)."""
    if shards <= 1 or SHARD_LABEL in (labels or {}):
        return None
    target = by_uid(uid, shards)
    return target or None

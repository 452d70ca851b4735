"""Sharding's two calls to the API server: the start-up check that it filters by uid range, and
the label the default shard gives an unlabelled object (the rules are in api/shards.py)."""

from __future__ import annotations

from llmapp_operator import GROUP, PLURAL, VERSION
from llmapp_operator.api.shards import SHARD_LABEL, uid_range_selector
from llmapp_operator.kube.client import MERGE_PATCH, KubeClient, as_mapping, namespaced


class ShardingUnsupported(RuntimeError):
    """The API server ignores shardSelector: every uid-range shard would see every object."""


async def require_server_sharding(client: KubeClient, shard: int, shards: int, namespace: str | None) -> None:
    """A server that applies a shard selector says so in the list's `metadata.shardInfo`; one that
    does not know the parameter (before 1.36, or the ShardedListAndWatch gate off) ignores it."""
    selector = uid_range_selector(shard, shards)
    base = namespaced(f"{GROUP}/{VERSION}", namespace, PLURAL) if namespace else f"/apis/{GROUP}/{VERSION}/{PLURAL}"
    answer = await client.request("GET", base, query=[("limit", "1"), ("shardSelector", selector)])
    if not answer.ok:
        raise ShardingUnsupported(f"could not check server-side sharding: {answer.status} {answer.message()}")
    meta = as_mapping((as_mapping(answer.json()) or {}).get("metadata")) or {}
    if as_mapping(meta.get("shardInfo")) is None:
        raise ShardingUnsupported(
            "LLMAPP_SHARD_BY=uid needs server-side sharded list and watch (Kubernetes 1.36+ with the "
            "ShardedListAndWatch feature gate); this API server ignores shardSelector, so every shard would "
            "reconcile every object. Use shardBy: label (the default) instead.")


class ShardLabels:
    """Writes the `llmops.dev/shard` label (a metadata merge patch: no new generation, no pass)."""

    def __init__(self, client: KubeClient | None = None) -> None:
        self.client = client or KubeClient()

    async def assign(self, namespace: str, name: str, uid: str, shard: int) -> bool:
        """True when the label is on; False when the object is gone or was replaced (the uid is the
        patch's precondition: a new object of the same name gets its own assignment)."""
        body = {"metadata": {"uid": uid, "labels": {SHARD_LABEL: str(shard)}}}
        answer = await self.client.request("PATCH", namespaced(f"{GROUP}/{VERSION}", namespace, PLURAL, name),
                                           body=body, content_type=MERGE_PATCH)
        return answer.ok

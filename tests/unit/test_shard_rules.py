"""Which shard owns an LLMApp (api/shards.py), checked against the API server's own rules: the
label selectors through the emulator's selector parser (k8s.io/apimachinery/pkg/labels), the
uid ranges through its shardRange() filter, FNV-1a against the published test vectors."""

from __future__ import annotations

import random
import uuid

import pytest

from llmapp_operator.api import shards
from llmapp_sandbox.apiserver import sharding as server_sharding
from llmapp_sandbox.apiserver.errors import ApiError
from llmapp_sandbox.apiserver.selectors import parse_label_selector

_RANDOM = random.Random(7)
UIDS = [str(uuid.UUID(int=_RANDOM.getrandbits(128))) for _ in range(2000)]


@pytest.mark.parametrize(("value", "digest"), [
    ("", 0xCBF29CE484222325), ("a", 0xAF63DC4C8601EC8C), ("foobar", 0x85944171F73967E8)])
def test_the_hash_is_fnv1a_64_as_the_api_server_computes_it(value: str, digest: int) -> None:
    assert shards.fnv1a_64(value) == digest == server_sharding.fnv1a_64(value)


@pytest.mark.parametrize("count", [1, 2, 3, 7, 64])
def test_the_uid_ranges_cover_the_hash_space_without_gaps_or_overlaps(count: int) -> None:
    ranges = [shards.bounds(k, count) for k in range(count)]
    assert ranges[0][0] == 0 and ranges[-1][1] == 1 << 64
    assert all(ranges[k][1] == ranges[k + 1][0] for k in range(count - 1))
    # What the API server would select for each shard: every uid in exactly one, the one by_uid names.
    selectors = [server_sharding.parse_shard_selector(shards.uid_range_selector(k, count)) for k in range(count)]
    for uid in UIDS[:300]:
        owners = [k for k, selector in enumerate(selectors) if selector.matches({"metadata": {"uid": uid}})]
        assert owners == [shards.by_uid(uid, count)]


LABELS = [None, {}, {"app": "x"}, {shards.SHARD_LABEL: "0"}, {shards.SHARD_LABEL: "1"}, {shards.SHARD_LABEL: "2"},
          {shards.SHARD_LABEL: "9"}, {shards.SHARD_LABEL: "01"}, {shards.SHARD_LABEL: ""},
          {shards.SHARD_LABEL: "shard-1"}]


@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("labels", LABELS, ids=repr)
def test_every_object_is_watched_by_exactly_one_shard_the_one_owner_names(count: int, labels: dict[str, str] | None
                                                                          ) -> None:
    matching = [k for k in range(count)
                if parse_label_selector(shards.label_selector(k, count)).matches(labels or {})]
    assert matching == [shards.owner(labels, count)]


def test_one_shard_watches_everything() -> None:
    assert shards.label_selector(0, 1) is None
    assert shards.owner({shards.SHARD_LABEL: "3"}, 1) == 0


def test_the_default_shard_hands_unlabelled_objects_to_the_shard_of_their_uid_range() -> None:
    handed = [shards.assignment(None, uid, 3) for uid in UIDS]
    assert {target for target in handed if target is not None} == {1, 2}
    assert all(target == shards.by_uid(uid, 3) for uid, target in zip(UIDS, handed, strict=True) if target)
    # About a third stays (its range is the default shard's own): no write for those.
    assert 0.28 < handed.count(None) / len(UIDS) < 0.38
    # A label, whatever its value, is the user's (or an earlier assignment's) choice.
    assert shards.assignment({shards.SHARD_LABEL: "0"}, UIDS[0], 3) is None
    assert shards.assignment(None, UIDS[0], 1) is None


@pytest.mark.parametrize("text", [
    "shardRange(object.metadata.name, '0x0', '0x10')", "shardRange(object.metadata.uid, '0x10', '0x10')",
    "shardRange(object.metadata.uid, '0x0', '0x20000000000000000')", "uid < 5",
    "shardRange(object.metadata.uid, '0x0', '0x8000000000000000') && shardRange(object.metadata.uid, '0x0', '0x1')"])
def test_the_emulator_refuses_a_shard_selector_the_api_server_refuses(text: str) -> None:
    with pytest.raises(ApiError) as raised:
        server_sharding.parse_shard_selector(text)
    assert raised.value.status == 400


def test_ranges_joined_by_or_select_their_union() -> None:
    union = server_sharding.parse_shard_selector(
        f"{shards.uid_range_selector(0, 4)} || {shards.uid_range_selector(3, 4)}")
    for uid in UIDS[:200]:
        assert union.matches({"metadata": {"uid": uid}}) == (shards.by_uid(uid, 4) in (0, 3))

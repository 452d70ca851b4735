"""The API emulator fails where a real kube-apiserver v1.32 fails, over HTTP as clients meet it.

Each test is one behaviour docs/fidelity.md lists (with its source). The messages asserted are the
real server's, so a test here that passes against the emulator and fails against a real cluster is
a fidelity bug."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import aiohttp
import pytest
import yaml

from llmapp_operator.api.crd import crd_manifest
from llmapp_sandbox.apiserver.server import RunningApiServer, running_apiserver
from tests.conftest import REPO

CRD = yaml.safe_load((REPO / "crds" / "llmapp.yaml").read_text())
NS = "team-a"
PATH = f"/apis/llmops.dev/v1alpha1/namespaces/{NS}/llmapps"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
SPEC = {"environment": "dev", "aws": {"region": "us-east-1"}, "github": {"repository": "acme/rags"}}


def app(name: str = "a", **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "llmops.dev/v1alpha1", "kind": "LLMApp",
                           "metadata": {"name": name, **extra.pop("metadata", {})}, "spec": copy.deepcopy(SPEC)}
    obj["spec"].update(extra.pop("spec", {}))
    obj.update(extra)
    return obj


class Client:
    def __init__(self, api: RunningApiServer, session: aiohttp.ClientSession, token: str | None = None) -> None:
        self.api, self.session = api, session
        self.token = token or api.admin_token

    async def __call__(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
                       query: str = "") -> tuple[int, Any, aiohttp.ClientResponse]:
        data = None if body is None else (body if isinstance(body, str) else json.dumps(body))
        headers = {"Content-Type": content_type, "Authorization": f"Bearer {self.token}"}
        url = f"{self.api.url}{path}{'?' + query if query else ''}"
        async with self.session.request(method, url, data=data, headers=headers) as response:
            text = await response.text()
            if "watch=true" in query:
                return response.status, text, response   # a stream of JSON lines
            return response.status, json.loads(text) if text.strip().startswith("{") else text, response


@pytest.fixture
async def server():  # type: ignore[no-untyped-def]
    async with running_apiserver([CRD], namespaces=[NS]) as api, aiohttp.ClientSession() as session:
        yield Client(api, session)


# -- CRD admission ----------------------------------------------------------------------------------
async def test_crd_admission_refuses_a_described_metadata_and_a_rule_its_default_breaks(server: Client) -> None:
    old = yaml.safe_load((REPO / "tests" / "fixtures" / "crds" / "llmapp-v0.1.yaml").read_text())
    status, body, _ = await server("POST", CRDS, {**old, "metadata": {"name": "llmapps.llmops.dev"}})
    assert status == 422 and body["reason"] == "Invalid"
    assert ("spec.validation.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other "
            "than name and generateName, but metadata is implicitly specified") in body["message"]
    assert ("spec.validation.openAPIV3Schema.properties[spec].properties[app].default: Invalid value: \"object\": "
            "no such key: cpu evaluating rule: cpu/memory is not a valid Fargate task size") in body["message"]


async def test_crd_admission_compiles_cel_and_checks_patterns(server: Client) -> None:
    crd = copy.deepcopy(CRD)
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["x-kubernetes-validations"] = [{"rule": "self.nosuchfield == 1", "message": "x"}]
    spec["properties"]["environment"]["pattern"] = "^(?!prod)"
    crd["metadata"]["name"] = "llmapps.llmops.dev"
    status, body, _ = await server("PUT", f"{CRDS}/llmapps.llmops.dev",
                                   {**crd, "metadata": {**crd["metadata"], "resourceVersion": await rv(server)}})
    assert status == 422
    assert "undefined field 'nosuchfield'" in body["message"]
    assert "must be a valid regular expression" in body["message"]


async def rv(server: Client) -> str:
    _, current, _ = await server("GET", f"{CRDS}/llmapps.llmops.dev")
    return str(current["metadata"]["resourceVersion"])


async def test_a_created_crd_is_established_and_served(server: Client) -> None:
    _, crd, _ = await server("GET", f"{CRDS}/llmapps.llmops.dev")
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    status, resources, _ = await server("GET", "/apis/llmops.dev/v1alpha1")
    assert status == 200 and {r["name"] for r in resources["resources"]} == {"llmapps", "llmapps/status"}


# -- custom resources: defaulting, pruning, validation ------------------------------------------------
async def test_defaults_are_filled_on_create_and_unknown_fields_pruned_warned_or_refused(server: Client) -> None:
    status, body, response = await server("POST", PATH, app(spec={"bogus": 1}, status={"phase": "x"}))
    assert status == 201 and "bogus" not in body["spec"] and "status" not in body
    assert body["spec"]["app"]["cpu"] == 1024 and body["spec"]["network"]["vpcCidr"] == "10.0.0.0/16"
    assert 'unknown field \\"spec.bogus\\"' in response.headers["Warning"]   # the default is Warn
    status, body, _ = await server("POST", PATH, app("b", spec={"bogus": 1}), query="fieldValidation=Strict")
    assert status == 400 and body["message"] == 'strict decoding error: unknown field "spec.bogus"'
    status, body, _ = await server("PATCH", f"{PATH}/a/status", {"status": {"phase": "Ready", "kopf": {"x": 1}}},
                                   content_type="application/merge-patch+json")
    assert status == 200 and body["status"] == {"phase": "Ready"}   # undeclared status fields are pruned


async def test_defaults_of_a_newer_crd_are_filled_on_read(server: Client) -> None:
    await server("POST", PATH, app())
    crd = copy.deepcopy(CRD)
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["note"] = {
        "type": "string", "default": "added later"}
    crd["metadata"]["resourceVersion"] = await rv(server)
    assert (await server("PUT", f"{CRDS}/llmapps.llmops.dev", crd))[0] == 200
    _, body, _ = await server("GET", f"{PATH}/a")
    assert body["spec"]["note"] == "added later"


async def test_schema_and_cel_errors_are_422_in_the_api_server_s_words(server: Client) -> None:
    status, body, _ = await server("POST", PATH, app(spec={"app": {"cpu": 256, "memory": 4096},
                                                           "network": {"azCount": 9}}))
    assert status == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith('LLMApp.llmops.dev "a" is invalid: [')
    assert "spec.network.azCount: Invalid value: 9: spec.network.azCount in body should be less than or equal to 6" \
        in body["message"]
    assert "spec.app.memory: Invalid value: \"object\": cpu/memory is not a valid Fargate task size" in body["message"]
    assert {c["field"] for c in body["details"]["causes"]} == {"spec.network.azCount", "spec.app.memory"}


async def test_transition_rules_make_identity_fields_immutable(server: Client) -> None:
    await server("POST", PATH, app())
    status, body, _ = await server("PATCH", f"{PATH}/a", {"spec": {"aws": {"region": "eu-west-1"}}},
                                   content_type="application/merge-patch+json")
    assert status == 422 and "spec.aws.region is immutable" in body["message"]
    status, body, _ = await server("PATCH", f"{PATH}/a", {"spec": {"terraform": {"module": "other"}}},
                                   content_type="application/merge-patch+json")
    assert status == 422 and "spec.terraform.module is immutable" in body["message"]


async def test_unchanged_invalid_values_ratchet_on_update(server: Client) -> None:
    """An object stored under a looser CRD stays writable where the update does not touch the bad value
    (validation ratcheting, on by default since 1.30): Kopf can still add its finalizer."""
    loose = copy.deepcopy(CRD)
    del loose["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["app"][
        "x-kubernetes-validations"]
    loose["metadata"]["resourceVersion"] = await rv(server)
    await server("PUT", f"{CRDS}/llmapps.llmops.dev", loose)
    assert (await server("POST", PATH, app(spec={"app": {"cpu": 256, "memory": 8192}})))[0] == 201
    strict = copy.deepcopy(CRD)
    strict["metadata"]["resourceVersion"] = await rv(server)
    await server("PUT", f"{CRDS}/llmapps.llmops.dev", strict)
    status, _, _ = await server("PATCH", f"{PATH}/a", {"metadata": {"finalizers": ["llmops.dev/teardown"]}},
                                content_type="application/merge-patch+json")
    assert status == 200
    status, body, _ = await server("PATCH", f"{PATH}/a", {"spec": {"app": {"memory": 16384}}},
                                   content_type="application/merge-patch+json")
    assert status == 422 and "not a valid Fargate task size" in body["message"]


# -- metadata, sizes, generation, finalizers -----------------------------------------------------------
async def test_annotations_over_256_kib_and_objects_over_1_5_mib_are_refused(server: Client) -> None:
    status, body, _ = await server("POST", PATH, app(metadata={"annotations": {"big": "x" * (256 * 1024)}}))
    assert status == 422
    assert "metadata.annotations: Too long: may not be more than 262144 bytes" in body["message"]
    big = {f"k{i}": "x" * 200_000 for i in range(4)}
    status, body, _ = await server("POST", "/api/v1/namespaces/team-a/configmaps",
                                   {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {
                                       **big, **{f"j{i}": "y" * 200_000 for i in range(4)}}})
    assert status == 413 and body["message"] == "etcdserver: request is too large"


async def test_generation_moves_with_the_spec_only_and_on_delete_with_finalizers(server: Client) -> None:
    _, created, _ = await server("POST", PATH, app(metadata={"finalizers": ["x.io/y"]}))
    assert created["metadata"]["generation"] == 1
    merge = "application/merge-patch+json"
    _, same, _ = await server("PATCH", f"{PATH}/a", {"spec": {"app": {"cpu": 1024}}}, content_type=merge)
    assert same["metadata"]["generation"] == 1   # the default's own value: no change
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    _, labelled, _ = await server("PATCH", f"{PATH}/a", {"metadata": {"labels": {"x": "y"}}}, content_type=merge)
    assert labelled["metadata"]["generation"] == 1
    _, changed, _ = await server("PATCH", f"{PATH}/a", {"spec": {"app": {"desiredCount": 3}}}, content_type=merge)
    assert changed["metadata"]["generation"] == 2
    status, deleting, _ = await server("DELETE", f"{PATH}/a")
    assert status == 200 and deleting["metadata"]["deletionTimestamp"] and deleting["metadata"]["generation"] == 3
    status, body, _ = await server("PATCH", f"{PATH}/a", {"metadata": {"finalizers": ["x.io/y", "x.io/z"]}},
                                   content_type=merge)
    assert status == 422 and "no new finalizers can be added if the object is being deleted" in body["message"]
    await server("PATCH", f"{PATH}/a", {"metadata": {"finalizers": None}}, content_type=merge)
    assert (await server("GET", f"{PATH}/a"))[0] == 404


async def test_patch_types_a_custom_resource_accepts(server: Client) -> None:
    await server("POST", PATH, app())
    status, body, _ = await server("PATCH", f"{PATH}/a", {"spec": {"suspend": True}},
                                   content_type="application/strategic-merge-patch+json")
    assert status == 415 and "application/merge-patch+json" in body["message"]
    status, body, _ = await server("PATCH", f"{PATH}/a", [{"op": "test", "path": "/metadata/resourceVersion",
                                                           "value": "0"}], content_type="application/json-patch+json")
    assert status == 422
    applied = yaml.safe_dump(app(spec={"suspend": True}))
    status, body, _ = await server("PATCH", f"{PATH}/a", applied, content_type="application/apply-patch+yaml",
                                   query="fieldManager=argocd-controller&force=true")
    assert status == 200 and body["spec"]["suspend"] is True
    assert any(m["manager"] == "argocd-controller" and m["operation"] == "Apply"
               for m in body["metadata"]["managedFields"])
    status, body, _ = await server("PATCH", f"{PATH}/a", applied, content_type="application/apply-patch+yaml")
    assert status in (400, 422) and "fieldManager" in body["message"]


async def test_status_subresource_separates_spec_and_status_writes(server: Client) -> None:
    _, created, _ = await server("POST", PATH, app())
    merge = "application/merge-patch+json"
    _, patched, _ = await server("PATCH", f"{PATH}/a/status", {"status": {"phase": "Ready"}, "spec": {"suspend": True}},
                                 content_type=merge)
    assert patched["status"] == {"phase": "Ready"} and patched["spec"]["suspend"] is False
    assert patched["metadata"]["generation"] == 1
    _, patched, _ = await server("PATCH", f"{PATH}/a", {"spec": {"suspend": True}, "status": {"phase": "X"}},
                                 content_type=merge)
    assert patched["metadata"]["generation"] == 2 and patched["status"] == {"phase": "Ready"}
    assert (await server("POST", PATH, app()))[0] == 409
    assert (await server("POST", PATH, app(metadata={"generateName": "gen-"}) | {"metadata": {
        "generateName": "gen-"}}))[0] == 201


# -- namespaces ---------------------------------------------------------------------------------------
async def test_namespaces_must_exist_and_a_terminating_one_takes_nothing_new(server: Client) -> None:
    status, body, _ = await server("POST", "/apis/llmops.dev/v1alpha1/namespaces/nowhere/llmapps", app())
    assert status == 404 and body["message"] == 'namespaces "nowhere" not found'
    await server("POST", PATH, app(metadata={"finalizers": ["x.io/hold"]}))
    await server("DELETE", f"/api/v1/namespaces/{NS}")
    _, ns, _ = await server("GET", f"/api/v1/namespaces/{NS}")
    assert ns["status"]["phase"] == "Terminating"
    status, body, _ = await server("POST", PATH, app("b"))
    assert status == 403 and body["details"]["causes"][0]["reason"] == "NamespaceTerminating"
    assert "because it is being terminated" in body["message"]
    _, held, _ = await server("GET", f"{PATH}/a")
    assert held["metadata"]["deletionTimestamp"]   # deleted by the namespace, held by its finalizer
    await server("PATCH", f"{PATH}/a", {"metadata": {"finalizers": None}}, content_type="application/merge-patch+json")
    assert (await server("GET", f"/api/v1/namespaces/{NS}"))[0] == 404   # empty: finalized and gone


async def test_namespaces_carry_their_name_as_a_label(server: Client) -> None:
    """Set by the server on create and update, whatever the client sends (tenant policies select on it)."""
    status, created, _ = await server("POST", "/api/v1/namespaces", {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team-b", "labels": {"tier": "gold", "kubernetes.io/metadata.name": "lies"}}})
    assert status == 201
    assert created["metadata"]["labels"] == {"tier": "gold", "kubernetes.io/metadata.name": "team-b"}
    await server("PATCH", "/api/v1/namespaces/team-b", {"metadata": {"labels": {"kubernetes.io/metadata.name": None}}},
                 content_type="application/merge-patch+json")
    _, read, _ = await server("GET", "/api/v1/namespaces/team-b")
    assert read["metadata"]["labels"]["kubernetes.io/metadata.name"] == "team-b"


# -- lists and watches ----------------------------------------------------------------------------------
async def test_watch_replays_what_happened_after_the_list_and_filters_by_field(server: Client) -> None:
    await server("POST", PATH, app())
    _, listing, _ = await server("GET", PATH)
    since = listing["metadata"]["resourceVersion"]
    await server("POST", PATH, app("b"))   # between LIST and WATCH
    await server("POST", PATH, app("c"))
    _, text, _ = await server("GET", PATH, query=f"watch=true&resourceVersion={since}&timeoutSeconds=1"
                                                 "&fieldSelector=metadata.name%3Db")
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "b")]
    status, body, _ = await server("GET", PATH, query="fieldSelector=spec.environment%3Ddev")
    assert status == 400 and body["message"] == "field label not supported: spec.environment"


async def test_a_label_selector_watch_reports_objects_leaving_and_entering_as_deleted_and_added(
        server: Client) -> None:
    """What moving an LLMApp between shards relies on (watch.go's filtered watch semantics)."""
    await server("POST", PATH, app("a", metadata={"labels": {"llmops.dev/shard": "1"}}))
    _, listing, _ = await server("GET", PATH, query="labelSelector=llmops.dev%2Fshard%3D1")
    since = listing["metadata"]["resourceVersion"]
    merge = "application/merge-patch+json"
    await server("PATCH", f"{PATH}/a", {"metadata": {"labels": {"llmops.dev/shard": "2"}}}, content_type=merge)
    await server("PATCH", f"{PATH}/a", {"metadata": {"labels": {"llmops.dev/shard": "1"}}}, content_type=merge)
    _, text, _ = await server("GET", PATH, query=f"watch=true&resourceVersion={since}&timeoutSeconds=1"
                                                 "&labelSelector=llmops.dev%2Fshard%3D1")
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    # Leaving: DELETED with the object as it was (convertToWatchEvent sends the previous object).
    assert [(e["type"], e["object"]["metadata"]["labels"]["llmops.dev/shard"]) for e in events] == [
        ("DELETED", "1"), ("ADDED", "1")]
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) > int(since)


async def test_a_write_with_another_uid_is_refused_as_the_api_server_refuses_it(server: Client) -> None:
    """How the default shard's label write (kube/shards.py) fails for a replaced object."""
    await server("POST", PATH, app("a"))
    status, body, _ = await server("PATCH", f"{PATH}/a", {"metadata": {"uid": "not-its-uid", "labels": {"x": "1"}}},
                                   content_type="application/merge-patch+json")
    assert status == 422 and body["reason"] == "Invalid"
    assert "metadata.uid: Invalid value: \"not-its-uid\": field is immutable" in body["message"]
    _, stored, _ = await server("GET", f"{PATH}/a")
    assert "labels" not in stored["metadata"]


SHARD_0_OF_2 = "shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')"


@pytest.mark.parametrize("sharded", [False, True], ids=["1.32", "1.36-gate-on"])
async def test_shard_selectors_filter_only_where_the_feature_exists(sharded: bool) -> None:
    from urllib.parse import quote

    from llmapp_operator.api.shards import by_uid

    async with running_apiserver([CRD], namespaces=[NS], sharded_list_watch=sharded) as api, \
            aiohttp.ClientSession() as session:
        server = Client(api, session)
        uids = {}
        for n in range(16):
            _, created, _ = await server("POST", PATH, app(f"a{n}"))
            uids[created["metadata"]["name"]] = created["metadata"]["uid"]
        mine = {name for name, uid in uids.items() if by_uid(uid, 2) == 0}
        assert 0 < len(mine) < 16
        _, listing, _ = await server("GET", PATH, query=f"shardSelector={quote(SHARD_0_OF_2)}")
        listed = {item["metadata"]["name"] for item in listing["items"]}
        _, text, _ = await server("GET", PATH, query=f"watch=true&timeoutSeconds=1&shardSelector={quote(SHARD_0_OF_2)}")
        watched = {json.loads(line)["object"]["metadata"]["name"] for line in text.splitlines() if line.strip()}
        _, version, _ = await server("GET", "/version")
        if sharded:   # filtered, and the list says so
            assert listed == watched == mine
            assert listing["metadata"]["shardInfo"] == {"selector": SHARD_0_OF_2}
            assert version["minor"] == "36"
            status, _, _ = await server("GET", PATH, query="shardSelector=" + quote("shardRange(object.metadata.name, "
                                                                                      "'0x0', '0x1')"))
            assert status == 400
        else:         # an unknown parameter: ignored, the whole collection, no shardInfo
            assert listed == watched == set(uids)
            assert "shardInfo" not in listing["metadata"]
            assert version["minor"] == "32"


async def test_watches_send_bookmarks_when_asked(server: Client) -> None:
    server.api.server.bookmark_seconds = 0.2
    _, text, _ = await server("GET", PATH, query="watch=true&allowWatchBookmarks=true&timeoutSeconds=1")
    types = [json.loads(line)["type"] for line in text.splitlines() if line.strip()]
    assert types and set(types) == {"BOOKMARK"}
    _, text, _ = await server("GET", PATH, query="watch=true&timeoutSeconds=1")
    assert text.strip() == ""


async def test_a_watch_from_a_compacted_revision_gets_410_gone(server: Client) -> None:
    await server("POST", PATH, app())
    server.api.server.expire_history()
    _, text, _ = await server("GET", PATH, query="watch=true&resourceVersion=1&timeoutSeconds=1")
    event = json.loads(text.splitlines()[0])
    assert event["type"] == "ERROR" and event["object"]["code"] == 410


# -- authorization -------------------------------------------------------------------------------------
async def test_rbac_is_enforced_per_service_account_token_with_the_real_message() -> None:
    async with running_apiserver([crd_manifest()], namespaces=[NS], rbac=True) as api, \
            aiohttp.ClientSession() as session:
        admin = Client(api, session)
        api.server.apply_manifests([
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r", "namespace": NS},
             "rules": [{"apiGroups": ["llmops.dev"], "resources": ["llmapps"], "verbs": ["get", "create", "patch"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "r", "namespace": NS}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                                      "kind": "Role", "name": "r"},
             "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": "ops"}]}])
        operator = Client(api, session, api.server.tokens.mint_service_account_token("ops", "op"))
        assert (await operator("POST", PATH, app()))[0] == 201
        status, body, _ = await operator("PATCH", f"{PATH}/a/status", {"status": {"phase": "x"}},
                                         content_type="application/merge-patch+json")
        assert status == 403 and body["message"] == (
            'llmapps.llmops.dev "a" is forbidden: User "system:serviceaccount:ops:op" cannot patch resource '
            '"llmapps/status" in API group "llmops.dev" in the namespace "team-a"')
        assert (await operator("GET", "/apis/llmops.dev/v1alpha1/namespaces/other/llmapps/a"))[0] == 403
        assert (await operator("GET", "/apis"))[0] == 200     # discovery: every authenticated user
        assert (await admin("GET", f"{PATH}/a"))[0] == 200
        anonymous = Client(api, session, "not-a-token")
        assert (await anonymous("GET", "/apis"))[0] == 401


async def test_owner_references_permission_enforcement_on_block_owner_deletion() -> None:
    async with running_apiserver(namespaces=[NS], rbac=True, owner_references_enforcement=True) as api, \
            aiohttp.ClientSession() as session:
        rules = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
                 {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]}]
        api.server.apply_manifests([
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r", "namespace": NS},
             "rules": rules},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "r", "namespace": NS}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                                      "kind": "Role", "name": "r"},
             "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": NS}]}])
        client = Client(api, session, api.server.tokens.mint_service_account_token(NS, "op"))
        job = api.server.create_object("jobs", {"apiVersion": "batch/v1", "kind": "Job",
                                                "metadata": {"name": "j", "namespace": NS}, "spec": {}})

        def configmap(block: bool) -> dict[str, Any]:
            ref = {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": job["metadata"]["uid"],
                   "controller": True, "blockOwnerDeletion": block}
            return {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": f"c{int(block)}", "ownerReferences": [ref]}, "data": {}}

        status, body, _ = await client("POST", f"/api/v1/namespaces/{NS}/configmaps", configmap(True))
        assert status == 403 and ("cannot set blockOwnerDeletion if an ownerReference refers to a resource you "
                                  "can't set finalizers on") in body["message"]
        assert (await client("POST", f"/api/v1/namespaces/{NS}/configmaps", configmap(False)))[0] == 201


async def test_owned_objects_are_collected_when_their_owner_goes(server: Client) -> None:
    _, owner, _ = await server("POST", PATH, app())
    ref = {"apiVersion": "llmops.dev/v1alpha1", "kind": "LLMApp", "name": "a", "uid": owner["metadata"]["uid"]}
    await server("POST", f"/api/v1/namespaces/{NS}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "owned", "ownerReferences": [ref]}})
    await server("DELETE", f"{PATH}/a")
    await asyncio.sleep(0)
    assert (await server("GET", f"/api/v1/namespaces/{NS}/configmaps/owned"))[0] == 404


async def test_lists_page_with_limit_and_continue(server: Client) -> None:
    for name in ("a", "b", "c"):
        await server("POST", PATH, app(name))
    _, first, _ = await server("GET", PATH, query="limit=2")
    assert [o["metadata"]["name"] for o in first["items"]] == ["a", "b"]
    assert first["metadata"]["remainingItemCount"] == 1
    _, rest, _ = await server("GET", PATH, query=f"limit=2&continue={first['metadata']['continue']}")
    assert [o["metadata"]["name"] for o in rest["items"]] == ["c"] and "continue" not in rest["metadata"]


async def test_token_requests_and_access_reviews() -> None:
    async with running_apiserver(namespaces=[NS], rbac=True) as api, aiohttp.ClientSession() as session:
        admin = Client(api, session)
        await admin("POST", f"/api/v1/namespaces/{NS}/serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                                                          "metadata": {"name": "bot"}})
        status, minted, _ = await admin("POST", f"/api/v1/namespaces/{NS}/serviceaccounts/bot/token",
                                        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest"})
        assert status == 201
        bot = Client(api, session, minted["status"]["token"])
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "spec": {"resourceAttributes": {"verb": "list", "resource": "secrets", "namespace": NS}}}
        status, answer, _ = await bot("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review)
        assert status == 201 and answer["status"]["allowed"] is False
        _, answer, _ = await admin("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review)
        assert answer["status"]["allowed"] is True

"""The chart's `shards: 2` as two operator processes against the API emulator, each configured
from its own rendered Deployment (LLMAPP_SHARD*, the Lease name), under the chart's RBAC:

- label mode (any Kubernetes; the emulator says 1.32): the default shard labels each new object
  with the shard of its uid range; every object is applied exactly once, by its own shard, and
  none is missed; moving a Ready object to the other shard (a label change) hands it over with
  no second Terraform run, and its next spec change is applied by the new shard;
- uid mode: on a 1.36 server with the feature on, each shard gets only its uid range from the
  API server itself and no label is written; on a 1.32 server the operator refuses to start.
"""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

from llmapp_operator.api.shards import SHARD_LABEL, by_uid
from llmapp_operator.config import Settings
from llmapp_sandbox.apiserver.server import RunningApiServer, running_apiserver
from llmapp_sandbox.cluster import ApiClient, is_ready
from tests.chart_render import RELEASE, RELEASE_NAMESPACE, rbac_objects, render
from tests.conftest import needs_terraform
from tests.integration.conftest import CRD, NS, TerraformLog, llmapp
from tests.integration.operator_process import OperatorProcess

pytestmark = needs_terraform
SHARD_ENV = ("LLMAPP_SHARDS", "LLMAPP_SHARD", "LLMAPP_SHARD_BY", "LLMAPP_SHARD_ASSIGN", "LLMAPP_LEADER_ELECTION",
             "LLMAPP_LEADER_ELECTION_NAME", "LLMAPP_LEADER_ELECTION_NAMESPACE")


def shard_settings(values: dict[str, Any], base: Settings) -> list[Settings]:
    """One Settings per rendered Deployment: its shard variables, the test's everything else."""
    found = []
    for deployment in (doc for doc in render(values) if doc["kind"] == "Deployment"):
        env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        fields = {name.removeprefix("LLMAPP_").lower(): env[name] for name in SHARD_ENV}
        found.append(Settings.model_validate({**base.model_dump(), **fields, "lease_retry_seconds": 0.5,
                                              "lease_renew_deadline_seconds": 2.0, "lease_duration_seconds": 3.0}))
    return found


def runs(log: TerraformLog, uid: str, step: str) -> int:
    lines = log.path.read_text().splitlines() if log.path.exists() else []
    return sum(1 for line in lines if uid in line and line.split()[1] == step)


async def start_shards(api: RunningApiServer, values: dict[str, Any], base: Settings,
                       tmp_path: pathlib.Path) -> list[OperatorProcess]:
    api.server.apply_manifests(rbac_objects(values))
    token = api.server.tokens.mint_service_account_token(RELEASE_NAMESPACE, RELEASE)
    processes = []
    for settings in shard_settings(values, base):
        process = OperatorProcess(settings.updated(workdir=tmp_path / f"shard-{settings.shard}"), api, tmp_path,
                                  token=token, name=f"shard-{settings.shard}")
        await process.start()
        processes.append(process)
    return processes


async def test_two_label_shards_split_the_objects_and_a_move_costs_no_terraform_run(
        settings: Settings, terraform_log: TerraformLog, tmp_path: pathlib.Path) -> None:
    values = {"shards": 2, "watchNamespaces": [NS]}
    async with running_apiserver([CRD], namespaces=[NS], rbac=True, owner_references_enforcement=True) as api:
        client = ApiClient(api.url, token=api.admin_token)
        processes = await start_shards(api, values, settings.updated(namespaces=(NS,)), tmp_path)
        try:
            leases = {lease["metadata"]["name"]: lease["spec"]["holderIdentity"]
                      for lease in api.server.list_objects("leases", RELEASE_NAMESPACE)}
            assert leases == {f"{RELEASE}-shard-0": "shard-0", f"{RELEASE}-shard-1": "shard-1"}
            uids = {}
            for n in range(8):
                uids[f"app-{n}"] = (await client.create(llmapp(f"app-{n}")))["metadata"]["uid"]
            expected = {name: by_uid(uid, 2) for name, uid in uids.items()}
            assert set(expected.values()) == {0, 1}, "pick names whose uids fall in both ranges"
            for name in uids:
                await client.wait_for(NS, name, is_ready, timeout=120)
            await asyncio.sleep(1.0)   # time for any second handling to show
            for name, uid in uids.items():
                obj = await client.get(NS, name)
                labels = obj["metadata"].get("labels") or {}
                # Handed over by uid range: shard 1's objects carry its label, shard 0's need no write.
                assert labels.get(SHARD_LABEL) == ("1" if expected[name] == 1 else None), name
                assert (runs(terraform_log, uid, "plan"), runs(terraform_log, uid, "apply")) == (1, 1), name
                handled_in = [p.log_path.name for p in processes if f"{NS}/{name} generation 1: Ready" in
                              p.log_path.read_text()]
                assert handled_in == [f"shard-{expected[name]}.log"], name

            # Move a Ready object from shard 1 to shard 0 (a value no shard has goes to the default).
            moving = next(name for name, shard in expected.items() if shard == 1)
            await client.patch(NS, moving, {"metadata": {"labels": {SHARD_LABEL: "7"}}})
            await asyncio.sleep(3.0)
            assert runs(terraform_log, uids[moving], "plan") == 1, "the new shard planned a settled object"
            # Its next spec change is the new shard's to apply.
            await client.patch(NS, moving, {"spec": {"app": {"containerPort": 8080}}})
            await client.wait_for(NS, moving, lambda o: is_ready(o) and o["status"].get("observedGeneration") == 2,
                                  timeout=120)
            assert runs(terraform_log, uids[moving], "apply") == 2
            assert f"{NS}/{moving} generation 2: Ready" in processes[0].log_path.read_text()
            assert f"{NS}/{moving} generation 2" not in processes[1].log_path.read_text()
            assert not api.server.denied, f"RBAC refused: {api.server.denied}"
        finally:
            for process in processes:
                await process.stop()


async def test_uid_shards_are_filtered_by_a_1_36_server_and_refused_by_a_1_32_one(
        settings: Settings, terraform_log: TerraformLog, tmp_path: pathlib.Path) -> None:
    values = {"shards": 2, "watchNamespaces": [NS], "sharding": {"by": "uid"}}
    base = settings.updated(namespaces=(NS,))
    async with running_apiserver([CRD], namespaces=[NS], rbac=True, sharded_list_watch=True) as api:
        client = ApiClient(api.url, token=api.admin_token)
        processes = await start_shards(api, values, base, tmp_path)
        try:
            uids = {}
            for n in range(6):
                uids[f"app-{n}"] = (await client.create(llmapp(f"app-{n}")))["metadata"]["uid"]
            for name in uids:
                await client.wait_for(NS, name, is_ready, timeout=120)
            await asyncio.sleep(1.0)
            for name, uid in uids.items():
                obj = await client.get(NS, name)
                assert SHARD_LABEL not in (obj["metadata"].get("labels") or {}), "uid mode writes no label"
                assert runs(terraform_log, uid, "apply") == 1, name
                shard = by_uid(uid, 2)
                assert f"{NS}/{name} generation 1: Ready" in processes[shard].log_path.read_text()
                assert f"{NS}/{name} generation" not in processes[1 - shard].log_path.read_text()
        finally:
            for process in processes:
                await process.stop()

    async with running_apiserver([CRD], namespaces=[NS], rbac=True) as api:   # 1.32: shardSelector ignored
        api.server.apply_manifests(rbac_objects(values))
        token = api.server.tokens.mint_service_account_token(RELEASE_NAMESPACE, RELEASE)
        refused = OperatorProcess(shard_settings(values, base)[0].updated(workdir=tmp_path / "refused"), api,
                                  tmp_path, token=token, name="refused")
        await refused.start(wait=False)
        assert refused.process is not None
        assert await asyncio.wait_for(refused.process.wait(), 60) == 2
        text = refused.log_path.read_text()
        assert "ignores shardSelector" in text and "Traceback" not in text
        assert api.server.request_counts[("WATCH", "llmapps", None)] == 0


def test_shard_settings_come_from_the_rendered_chart(settings: Settings) -> None:
    """The test's processes get exactly the chart's shard variables (and so would a Pod)."""
    rendered = shard_settings({"shards": 2}, settings)
    assert [(s.shards, s.shard, s.lease_name) for s in rendered] == [
        (2, 0, f"{RELEASE}-shard-0"), (2, 1, f"{RELEASE}-shard-1")]

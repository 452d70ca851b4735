"""`make bench`: side-by-side measurements that print ratios (this machine is shared and noisy).

1. overhead    — kubectl-apply-to-Ready through the operator vs a bare `terraform init && plan -out
                 && apply && output -json` of the same module and S3 backend, median of N each.
2. scale       — 2,000 and 10,000 objects created at once, Terraform and the state bucket replaced by
                 instant stand-ins, the operator in its own process, against a minimal Kopf operator
                 (benchmarks/floor_operator.py, `kopf run`) in rounds interleaved floor, operator,
                 floor, operator, …: the median ratio and its spread, peak RSS and RSS per object
                 above the floor, LLMApp writes per object.
3. restart     — 10,000 Ready objects, the real operator (LocalRunner, boto3) started on them:
                 Terraform processes (must be 0), cloud requests counted at moto (must be 0),
                 Kubernetes requests per object counted at the API server, time until quiet.
4. concurrency — M objects with real Terraform, global bound 1 vs 4: speed-up and the highest
                 number of runs in flight ever seen (must never exceed the bound).
5. shards      — the same 10,000 objects handled by one replica and by two label shards,
                 interleaved: each object applied exactly once, none missed, the time ratio.
6. drift       — every object's drift check due at once: drift plans in flight never above the
                 bound, and spec changes made during the storm served ahead of it.

Everything runs on 127.0.0.1: the Kubernetes API emulator, moto, the real terraform binary.
A full run (no --only) writes its table to docs/benchmarks.md with the command and the date.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import yaml
from instant import InstantBackend, InstantRecords, InstantRunner

from llmapp_operator.config import Settings
from llmapp_operator.kopf_app.wiring import build_deps
from llmapp_operator.runners.gate import RunGate
from llmapp_sandbox.apiserver.server import RunningApiServer, running_apiserver
from llmapp_sandbox.cloud import running_moto, sandbox_aws_env
from llmapp_sandbox.cluster import ApiClient, is_ready, running_operator, use_kubeconfig

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRD = yaml.safe_load((ROOT / "crds" / "llmapp.yaml").read_text())
SANDBOX = ROOT / "terraform" / "sandbox"
NS = "bench"


def llmapp(name: str) -> dict[str, Any]:
    return {"apiVersion": "llmops.dev/v1alpha1", "kind": "LLMApp", "metadata": {"name": name, "namespace": NS},
            "spec": {"environment": "dev", "aws": {"region": "us-east-1"}, "github": {"repository": "acme/rags"},
                     "terraform": {"module": "sandbox"}}}


@dataclass
class Env:
    api: RunningApiServer
    client: ApiClient
    settings: Settings


@contextlib.asynccontextmanager
async def environment(workdir: pathlib.Path, endpoint: str, bucket: str) -> AsyncIterator[Env]:
    settings = Settings().updated(namespaces=(NS,), workdir=workdir, state_bucket=bucket, metrics_port=None,
                                  modules={"stack": ROOT / "terraform" / "stack", "sandbox": SANDBOX},
                                  aws_endpoint_url=endpoint, liveness_endpoint=None, retry_base_seconds=0.5,
                                  retry_max_seconds=5, app_health=False, service_control=False)
    async with running_apiserver([CRD], namespaces=[NS]) as api:
        use_kubeconfig(api.write_kubeconfig(workdir / "kubeconfig", NS))
        yield Env(api=api, client=ApiClient(api.url), settings=settings)


async def wait_ready(client: ApiClient, name: str, timeout: float = 120) -> None:
    await client.wait_for(NS, name, is_ready, timeout=timeout, interval=0.005)


# -- 1. overhead ----------------------------------------------------------------------------------

def bare_terraform(workdir: pathlib.Path, endpoint: str, bucket: str, index: int) -> float:
    """The same module and backend, driven by a shell script; returns wall seconds."""
    work = workdir / f"bare-{index}"
    shutil.copytree(SANDBOX, work, symlinks=False)
    backend = (f'bucket = "{bucket}"\nkey = "bare/{index}/terraform.tfstate"\nregion = "us-east-1"\n'
               f'use_lockfile = true\nendpoints = {{ s3 = "{endpoint}" }}\nuse_path_style = true\n'
               "skip_credentials_validation = true\nskip_requesting_account_id = true\n")
    (work / "backend.tfbackend").write_text(backend)
    (work / "vars.tfvars.json").write_text(json.dumps({
        "name": f"bare-{index}", "environment": "dev", "aws_region": "us-east-1",
        "github_repository": "acme/rags", "github_environment": "dev"}))
    script = ("set -e; terraform init -input=false -no-color -backend-config=backend.tfbackend >/dev/null; "
              "terraform plan -input=false -no-color -out=tfplan -var-file=vars.tfvars.json >/dev/null; "
              "terraform apply -input=false -no-color tfplan >/dev/null; terraform output -json >/dev/null")
    started = time.perf_counter()
    subprocess.run(["bash", "-c", script], cwd=work, check=True)
    return time.perf_counter() - started


async def overhead(workdir: pathlib.Path, endpoint: str, runs: int) -> dict[str, float]:
    operator_times, bare_times = [], []
    async with environment(workdir, endpoint, "bench-overhead") as env:
        deps = build_deps(env.settings)
        async with running_operator(env.settings, deps):
            await env.client.create(llmapp("warm-up"))  # bucket bootstrap and plugin cache once
            await wait_ready(env.client, "warm-up")
            for index in range(runs):  # interleaved, so drift on a shared machine hits both alike
                bare_times.append(await asyncio.to_thread(bare_terraform, workdir, endpoint, "bench-overhead", index))
                started = time.perf_counter()
                await env.client.create(llmapp(f"app-{index}"))
                await wait_ready(env.client, f"app-{index}")
                operator_times.append(time.perf_counter() - started)
    op, bare = statistics.median(operator_times), statistics.median(bare_times)
    return {"operator_median_s": op, "bare_median_s": bare, "ratio": op / bare, "added_ms": (op - bare) * 1000}


# -- processes ------------------------------------------------------------------------------------

def _peak_rss_mb(pid: int) -> float:
    """VmHWM: the kernel's own high-water mark of the process's resident set."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _ours_ready(obj: dict[str, Any]) -> bool:
    return is_ready(obj)


def _floor_ready(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("phase") == "Ready"


def _base_env(api: RunningApiServer, workdir: pathlib.Path) -> dict[str, str]:
    kubeconfig = api.write_kubeconfig(workdir / "kubeconfig", NS)
    return {**os.environ, "KUBECONFIG": str(kubeconfig), "LLMAPP_NAMESPACES": NS,
            "LLMAPP_WORKDIR": str(workdir / "work"), "LLMAPP_LIVENESS_ENDPOINT": "", "LLMAPP_METRICS_PORT": "",
            "LLMAPP_APP_HEALTH": "false", "LLMAPP_SERVICE_CONTROL": "false", "LLMAPP_MODULES": f"sandbox={SANDBOX}",
            "PYTHONPATH": str(ROOT / "benchmarks")}


@dataclass
class Process:
    name: str
    process: asyncio.subprocess.Process
    log: Any

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
        self.log.close()


async def _start(api: RunningApiServer, workdir: pathlib.Path, name: str, command: list[str],
                 env: dict[str, str]) -> Process:
    log = (workdir / f"{name}.log").open("wb")
    process = await asyncio.create_subprocess_exec(*command, env=env, stdout=log, stderr=log)
    return Process(name, process, log)


async def _until_watching(api: RunningApiServer, processes: list[Process], workdir: pathlib.Path) -> None:
    while api.server.request_counts[("WATCH", "llmapps", None)] < len(processes):
        for p in processes:
            if p.process.returncode is not None:
                raise RuntimeError(f"{p.name} exited early; see {workdir / (p.name + '.log')}")
        await asyncio.sleep(0.02)


async def _until(predicate: Any, interval: float, limit: float, what: str) -> None:
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > limit:
            raise RuntimeError(f"{what} after {limit:.0f} s")
        await asyncio.sleep(interval)


async def _until_quiet(api: RunningApiServer, seconds: float = 2.0) -> float:
    """Wait until the API server saw no request for `seconds`; returns when the last one came."""
    last_total, last_change = -1, time.perf_counter()
    while time.perf_counter() - last_change < seconds:
        total = sum(api.server.request_counts.values())
        if total != last_total:
            last_total, last_change = total, time.perf_counter()
        await asyncio.sleep(0.05)
    return last_change


def _create_all(api: RunningApiServer, objects: int) -> list[str]:
    return [api.server.create_object("llmapps", llmapp(f"app-{index}"))["metadata"]["uid"]
            for index in range(objects)]


# -- 2. scale, 5. shards: one round --------------------------------------------------------------------

async def scale_round(workdir: pathlib.Path, objects: int, which: str, *, shards: int = 1) -> dict[str, Any]:
    """N objects created at once; the operator (or the floor, or `shards` operator shards) in its
    own process(es), so that RSS is theirs. Time until every object is Ready."""
    workdir.mkdir(parents=True, exist_ok=True)
    async with running_apiserver([CRD], namespaces=[NS]) as api:
        env = _base_env(api, workdir)
        applies = workdir / "applies.log"
        if which == "operator":
            command = [sys.executable, str(ROOT / "benchmarks" / "scale_operator.py")]
            ready = _ours_ready
        else:
            command = [sys.executable, "-m", "kopf", "run", "--standalone", "--quiet", "-n", NS,
                       str(ROOT / "benchmarks" / "floor_operator.py")]
            ready = _floor_ready
        processes = []
        try:
            for shard in range(shards):
                shard_env = {**env, "BENCH_APPLY_LOG": str(applies), "LLMAPP_SHARDS": str(shards),
                             "LLMAPP_SHARD": str(shard), "LLMAPP_WORKDIR": str(workdir / f"work-{shard}")}
                processes.append(await _start(api, workdir, f"{which}-{shard}", command, shard_env))
            await _until_watching(api, processes, workdir)
            api.server.reset_counts()
            started = time.perf_counter()
            for index in range(objects):
                api.server.create_object("llmapps", llmapp(f"app-{index}"))
                if index % 100 == 99:
                    await asyncio.sleep(0)  # let the watch stream flush as a real server would
            poll = 0.05 if objects <= 2000 else 0.2
            await _until(lambda: all(ready(obj) for obj in api.server.peek_objects("llmapps", NS)), poll, 1800,
                         f"{which}: not every object Ready")
            elapsed = time.perf_counter() - started
            rss = [_peak_rss_mb(p.process.pid) for p in processes]
        finally:
            for p in processes:
                await p.stop()
        counts = api.server.request_counts
        writes = sum(n for (verb, plural, _), n in counts.items()
                     if plural == "llmapps" and verb in ("PATCH", "PUT", "POST"))
        events = sum(n for (verb, plural, _), n in counts.items() if plural == "events" and verb == "POST")
        uids = [obj["metadata"]["uid"] for obj in api.server.peek_objects("llmapps", NS)]
        lines = [line.split() for line in applies.read_text().splitlines()] if applies.exists() else []
        applied = collections.Counter(uid for uid, _ in lines)
        shards_of: dict[str, set[str]] = collections.defaultdict(set)
        for uid, shard in lines:
            shards_of[uid].add(shard)
        return {"objects": objects, "seconds": elapsed, "peak_rss_mb": sum(rss), "rss_per_process_mb": rss,
                "writes_per_object": writes / objects, "events_per_object": events / objects,
                "applied_once": sum(1 for uid in uids if applied[uid] == 1),
                "applied_twice": sum(1 for uid in uids if applied[uid] > 1),
                "missed": sum(1 for uid in uids if applied[uid] == 0),
                "by_two_shards": sum(1 for uid in uids if len(shards_of[uid]) > 1)}


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


async def scale(workdir: pathlib.Path, sizes: list[int], rounds: int, log: Any) -> dict[int, dict[str, Any]]:
    """Floor, operator, floor, operator, …: a busy moment hits one round of each, not one side."""
    results: dict[int, dict[str, Any]] = {}
    for objects in sizes:
        rows: dict[str, list[dict[str, Any]]] = {"floor": [], "operator": []}
        for index in range(rounds):
            for which in ("floor", "operator"):
                row = await scale_round(workdir / f"scale-{objects}-{index}-{which}", objects, which)
                rows[which].append(row)
                log(f"  {objects} objects, round {index + 1}/{rounds}, {which}: {row['seconds']:.1f} s, "
                    f"peak RSS {row['peak_rss_mb']:.0f} MB")
        ratios = [o["seconds"] / f["seconds"] for o, f in zip(rows["operator"], rows["floor"], strict=True)]
        op_rss = statistics.median(r["peak_rss_mb"] for r in rows["operator"])
        floor_rss = statistics.median(r["peak_rss_mb"] for r in rows["floor"])
        results[objects] = {
            "rounds": rounds, "operator": spread([r["seconds"] for r in rows["operator"]]),
            "floor": spread([r["seconds"] for r in rows["floor"]]), "ratio": spread(ratios),
            "ratio_of_medians": statistics.median(r["seconds"] for r in rows["operator"])
            / statistics.median(r["seconds"] for r in rows["floor"]),
            "operator_rss_mb": op_rss, "floor_rss_mb": floor_rss,
            "kb_per_object": (op_rss - floor_rss) * 1024 / objects,
            "writes_per_object": statistics.median(r["writes_per_object"] for r in rows["operator"]),
            "floor_writes_per_object": statistics.median(r["writes_per_object"] for r in rows["floor"]),
            "missed": max(r["missed"] for r in rows["operator"]),
        }
    return results


async def shards_bench(workdir: pathlib.Path, objects: int, rounds: int, log: Any) -> dict[str, Any]:
    """One replica vs two label shards (the default shard hands half the objects over) on the same
    N objects, interleaved; every object must be applied exactly once, none missed."""
    rows: dict[str, list[dict[str, Any]]] = {"one": [], "two": []}
    for index in range(rounds):
        for which, count in (("one", 1), ("two", 2)):
            row = await scale_round(workdir / f"shards-{index}-{which}", objects, "operator", shards=count)
            rows[which].append(row)
            log(f"  {objects} objects, round {index + 1}/{rounds}, {count} shard(s): {row['seconds']:.1f} s; "
                f"applied once {row['applied_once']}, twice {row['applied_twice']}, missed {row['missed']}")
    ratios = [one["seconds"] / two["seconds"] for one, two in zip(rows["one"], rows["two"], strict=True)]
    return {"objects": objects, "rounds": rounds, "one": spread([r["seconds"] for r in rows["one"]]),
            "two": spread([r["seconds"] for r in rows["two"]]), "speedup": spread(ratios),
            "exactly_once": all(r["applied_once"] == objects for r in rows["one"] + rows["two"]),
            "twice": sum(r["applied_twice"] for r in rows["two"]), "missed": sum(r["missed"] for r in rows["two"]),
            "by_two_shards": sum(r["by_two_shards"] for r in rows["two"]),
            "rss_two_mb": statistics.median(r["peak_rss_mb"] for r in rows["two"]),
            "rss_one_mb": statistics.median(r["peak_rss_mb"] for r in rows["one"])}


# -- 3. restart -----------------------------------------------------------------------------------

TERRAFORM_WRAPPER = """#!/bin/sh
echo "$@" >> {log}
exec {terraform} "$@"
"""


async def restart(workdir: pathlib.Path, objects: int, log: Any) -> dict[str, Any]:
    """N Ready objects (made by the instant operator), then the real operator started on them:
    Terraform processes (a wrapper counts them), cloud requests (counted at moto), Kubernetes
    requests per object (counted at the API server), time until the API server goes quiet."""
    workdir.mkdir(parents=True, exist_ok=True)
    cloud: collections.Counter[str] = collections.Counter()
    with running_moto(cloud) as endpoint:
        async with running_apiserver([CRD], namespaces=[NS]) as api:
            env = _base_env(api, workdir)
            seeding = await _start(api, workdir, "seeding", [sys.executable, str(ROOT / "benchmarks" /
                                                                                "scale_operator.py")], env)
            try:
                await _until_watching(api, [seeding], workdir)
                _create_all(api, objects)
                await _until(lambda: all(is_ready(o) for o in api.server.peek_objects("llmapps", NS)), 0.2, 1800,
                             "seeding: not every object Ready")
            finally:
                await seeding.stop()
            log(f"  {objects} objects Ready; starting the real operator on them …")
            terraform_log = workdir / "terraform.log"
            wrapper = workdir / "terraform"
            wrapper.write_text(TERRAFORM_WRAPPER.format(log=terraform_log, terraform=shutil.which("terraform")))
            wrapper.chmod(0o755)
            api.server.reset_counts()
            cloud.clear()
            real_env = {**env, "LLMAPP_AWS_ENDPOINT_URL": endpoint, "LLMAPP_TERRAFORM_BINARY": str(wrapper),
                        "LLMAPP_APP_HEALTH": "true", "LLMAPP_SERVICE_CONTROL": "true",
                        "LLMAPP_STATE_BUCKET": "bench-restart"}
            started = time.perf_counter()
            real = await _start(api, workdir, "restarted", [sys.executable, "-m", "llmapp_operator", "run",
                                                            "--skip-crd"], real_env)
            try:
                await _until_watching(api, [real], workdir)
                watching = time.perf_counter()
                quiet = await _until_quiet(api)
                rss = _peak_rss_mb(real.process.pid)
            finally:
                await real.stop()
            counts = dict(api.server.request_counts)
    processes = len(terraform_log.read_text().splitlines()) if terraform_log.exists() else 0
    llmapp_requests = sum(n for (_, plural, _), n in counts.items() if plural == "llmapps")
    return {"objects": objects, "terraform_processes": processes, "cloud_requests": sum(cloud.values()),
            "cloud_by_service": dict(cloud), "kube_requests_per_object": sum(counts.values()) / objects,
            "llmapp_requests_per_object": llmapp_requests / objects,
            "writes_per_object": sum(n for (verb, plural, _), n in counts.items()
                                     if plural == "llmapps" and verb in ("PATCH", "PUT")) / objects,
            "seconds_to_quiet": quiet - started, "seconds_watching_to_quiet": quiet - watching, "peak_rss_mb": rss}


# -- 6. drift budget ------------------------------------------------------------------------------

async def drift_budget(workdir: pathlib.Path, objects: int, runs: int, log: Any) -> dict[str, Any]:
    """Every object's drift check due at the same moment (plans take 50 ms), then spec changes of
    five objects in the middle of the storm: drift plans in flight never above the bound, the spec
    changes served ahead of the queue."""
    from llmapp_operator.engine import worker

    schedulers: list[worker.Scheduler] = []
    original = worker.Scheduler.__init__

    def keep(self: worker.Scheduler, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        schedulers.append(self)

    workdir.mkdir(parents=True, exist_ok=True)
    settings = Settings().updated(namespaces=(NS,), workdir=workdir, metrics_port=None, liveness_endpoint=None,
                                  modules={"sandbox": SANDBOX}, app_health=False, service_control=False,
                                  max_concurrent_runs=runs,
                                  drift_concurrency="25%", progress_delay_seconds=60)
    runner = InstantRunner(plan_seconds=0.05)
    gate = RunGate(runs, settings.drift_slots)
    deps = replace(build_deps(settings), runner=runner, backend=InstantBackend(), gate=gate, records=InstantRecords())
    worker.Scheduler.__init__ = keep  # type: ignore[method-assign]
    try:
        async with running_apiserver([CRD], namespaces=[NS]) as api:
            use_kubeconfig(api.write_kubeconfig(workdir / "kubeconfig", NS))
            client = ApiClient(api.url)
            async with running_operator(settings, deps):
                _create_all(api, objects)
                await _until(lambda: all(is_ready(o) for o in api.server.peek_objects("llmapps", NS)), 0.1, 900,
                             "drift: not every object Ready")
                scheduler = schedulers[-1]
                # Kopf's watch trails the creation burst by seconds (its events are still being
                # consumed when the last status lands): the storm starts once the operator has seen
                # every object as it is stored, so the spec changes measure the drift queue, not that.
                await _until(lambda: _caught_up(scheduler, api), 0.1, 900, "drift: the watch did not catch up")
                plans_before = runner.plans
                now = time.monotonic()
                for uid, state in list(scheduler.objects.items()):   # all due at once
                    state.due[worker.Reason.DRIFT] = now
                    scheduler.poke(uid)
                most_running, most_waiting = 0, 0
                storm = time.perf_counter()
                latencies: list[float] = []

                async def spec_change(name: str) -> None:
                    started = time.perf_counter()
                    await client.patch(NS, name, {"spec": {"app": {"containerPort": 8080}}})
                    await client.wait_for(NS, name, lambda o: is_ready(o) and o["status"].get(
                        "observedGeneration") == 2, timeout=300, interval=0.01)
                    latencies.append(time.perf_counter() - started)

                changes: list[asyncio.Task[None]] = []
                # Until the storm is over: every object checked (a drift check folded into its object's
                # spec change plans once for both) and the gate idle.
                while not changes or not all(c.done() for c in changes) or gate.drift_waiting or \
                        gate.drift_in_flight or runner.plans - plans_before < objects:
                    most_running = max(most_running, gate.drift_in_flight)
                    most_waiting = max(most_waiting, gate.drift_waiting)
                    if not changes and time.perf_counter() - storm > 1.0:
                        changes = [asyncio.create_task(spec_change(f"app-{n * 97 % objects}")) for n in range(5)]
                    await asyncio.sleep(0.005)
                await asyncio.gather(*changes)
                duration = time.perf_counter() - storm
    finally:
        worker.Scheduler.__init__ = original  # type: ignore[method-assign]
    log(f"  {objects} drift checks in {duration:.1f} s, at most {gate.max_drift_in_flight} at once")
    return {"objects": objects, "runs": runs, "bound": settings.drift_slots, "max_drift_in_flight":
            gate.max_drift_in_flight, "sampled_running": most_running, "most_waiting": most_waiting,
            "seconds": duration, "spec_change": spread(latencies), "max_in_flight": gate.max_in_flight}


def _caught_up(scheduler: Any, api: RunningApiServer) -> bool:
    seen = {uid: (state.body.get("metadata") or {}).get("resourceVersion") for uid, state in scheduler.objects.items()}
    return all(seen.get(o["metadata"]["uid"]) == o["metadata"]["resourceVersion"]
               for o in api.server.peek_objects("llmapps", NS))


# -- 4. concurrency -------------------------------------------------------------------------------

async def concurrency(workdir: pathlib.Path, endpoint: str, objects: int, bound: int) -> dict[str, float]:
    async with environment(workdir / f"bound-{bound}", endpoint, f"bench-bound-{bound}") as env:
        settings = env.settings.updated(max_concurrent_runs=bound)
        deps = replace(build_deps(settings), gate=RunGate(bound))
        async with running_operator(settings, deps):
            started = time.perf_counter()
            await asyncio.gather(*(env.client.create(llmapp(f"app-{i}")) for i in range(objects)))
            for i in range(objects):
                await wait_ready(env.client, f"app-{i}", timeout=600)
            elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "max_in_flight": deps.gate.max_in_flight, "bound": bound}


# -- report ---------------------------------------------------------------------------------------

def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _s(stats: dict[str, float], unit: str = " s", digits: int = 1) -> str:
    return f"{stats['median']:.{digits}f}{unit} ({stats['min']:.{digits}f}–{stats['max']:.{digits}f})"


def report_rows(results: dict[str, Any]) -> list[str]:
    rows = []
    if "overhead" in results:
        o = results["overhead"]
        rows.append(
            f"| 1. apply→Ready vs bare terraform (median of {results['runs']}) "
            f"| operator {o['operator_median_s'] * 1000:.0f} ms, bare {o['bare_median_s'] * 1000:.0f} ms, "
            f"**{o['added_ms']:+.0f} ms added** | {o['ratio']:.2f}× "
            f"| ≤ 300 ms added: {_verdict(o['added_ms'] <= 300)} |")
    for objects, r in sorted((results.get("scale") or {}).items()):
        ratio_ok = r["ratio"]["median"] <= 1.3
        rows.append(
            f"| 2. {objects} objects to Ready vs a minimal Kopf operator, instant runner, {r['rounds']} interleaved "
            f"rounds | operator {_s(r['operator'])}, floor {_s(r['floor'])}; peak RSS {r['operator_rss_mb']:.0f} MB "
            f"(floor {r['floor_rss_mb']:.0f} MB), **{r['kb_per_object']:.1f} KB/object above the floor**; LLMApp "
            f"writes/object {r['writes_per_object']:.2f} (floor {r['floor_writes_per_object']:.2f}); missed "
            f"{r['missed']} | {_s(r['ratio'], '×', 2)} "
            f"| ≤ 1.3×{' at 10,000' if objects >= 10000 else ''}: {_verdict(ratio_ok)}; ≤ 30 KB/object: "
            f"{_verdict(r['kb_per_object'] <= 30)} |")
    if "restart" in results:
        r = results["restart"]
        cloud = ", ".join(f"{k} {v}" for k, v in sorted(r["cloud_by_service"].items())) or "none"
        rows.append(
            f"| 3. restart on {r['objects']} Ready objects (the real operator: LocalRunner, boto3 at moto) "
            f"| {r['terraform_processes']} Terraform processes; {r['cloud_requests']} cloud requests ({cloud}); "
            f"{r['kube_requests_per_object']:.3f} Kubernetes requests/object ({r['writes_per_object']:.3f} LLMApp "
            f"writes); quiet {r['seconds_to_quiet']:.1f} s after the start ({r['seconds_watching_to_quiet']:.1f} s "
            f"after its watch began); peak RSS {r['peak_rss_mb']:.0f} MB | — "
            f"| 0 Terraform: {_verdict(r['terraform_processes'] == 0)}; 0 cloud: {_verdict(r['cloud_requests'] == 0)}; "
            f"≤ 1.2 requests/object: {_verdict(r['kube_requests_per_object'] <= 1.2)} |")
    if "bound1" in results:
        c1, c4 = results["bound1"], results["bound4"]
        rows.append(
            f"| 4. {results['objects']} objects, real Terraform, bound 1 vs 4 "
            f"| {c1['seconds']:.1f} s vs {c4['seconds']:.1f} s; max in flight {c1['max_in_flight']} / "
            f"{c4['max_in_flight']} | {c1['seconds'] / c4['seconds']:.2f}× speed-up "
            f"| bound never exceeded: {_verdict(c1['max_in_flight'] <= 1 and c4['max_in_flight'] <= 4)} |")
    if "shards" in results:
        r = results["shards"]
        rows.append(
            f"| 5. {r['objects']} objects, two label shards vs one replica, {r['rounds']} interleaved rounds "
            f"| one {_s(r['one'])}, two {_s(r['two'])}; applied exactly once: {'all' if r['exactly_once'] else 'NO'}"
            f" (twice {r['twice']}, by both shards {r['by_two_shards']}, missed {r['missed']}); "
            f"peak RSS two shards {r['rss_two_mb']:.0f} MB in all, one "
            f"{r['rss_one_mb']:.0f} MB | {_s(r['speedup'], '×', 2)} speed-up "
            f"| each object once, by one shard, none missed: "
            f"{_verdict(r['exactly_once'] and not r['twice'] and not r['missed'] and not r['by_two_shards'])} |")
    if "drift" in results:
        r = results["drift"]
        rows.append(
            f"| 6. drift budget: {r['objects']} drift checks due at once, {r['runs']} run slots, 50 ms plans "
            f"| at most {r['max_drift_in_flight']} drift plans at once (bound {r['bound']}), up to "
            f"{r['most_waiting']} waiting; all done in {r['seconds']:.1f} s; 5 spec changes in the storm Ready in "
            f"{_s(r['spec_change'], ' s', 2)} | — "
            f"| bound never exceeded: {_verdict(r['max_drift_in_flight'] <= r['bound'])}; spec changes not "
            f"starved: {_verdict(r['spec_change']['max'] < r['seconds'] / 4)} |")
    return rows


def report(results: dict[str, Any], command: str) -> str:
    terraform = subprocess.run(["terraform", "version"], capture_output=True, text=True).stdout.splitlines()[0]
    lines = [
        f"## {datetime.date.today().isoformat()} — `{command}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {terraform}.",
        "",
        "| benchmark | measured (same run) | ratio | target |",
        "|---|---|---|---|",
        *report_rows(results),
        "",
    ]
    return "\n".join(lines)


BENCHMARKS = ("overhead", "scale", "restart", "concurrency", "shards", "drift")


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    selected = [name for name in BENCHMARKS if name in args.only]
    with tempfile.TemporaryDirectory(prefix="llmapp-bench-") as tmp, sandbox_aws_env(), running_moto() as endpoint:
        workdir = pathlib.Path(tmp)
        results: dict[str, Any] = {"runs": args.runs, "objects": args.objects}
        step = lambda name, text: print(f"{selected.index(name) + 1}/{len(selected)} {name}: {text}", flush=True)  # noqa: E731
        say = lambda text: print(text, flush=True)  # noqa: E731
        if "overhead" in selected:
            step("overhead", f"{args.runs} operator runs and {args.runs} bare runs, interleaved …")
            results["overhead"] = await overhead(workdir / "overhead", endpoint, args.runs)
        if "scale" in selected:
            step("scale", f"{args.scale} objects, {args.rounds} rounds of the Kopf floor and the operator …")
            results["scale"] = await scale(workdir, args.scale, args.rounds, say)
        if "restart" in selected:
            step("restart", f"{args.restart} Ready objects, the real operator started on them …")
            results["restart"] = await restart(workdir / "restart", args.restart, say)
        if "concurrency" in selected:
            step("concurrency", f"{args.objects} objects with bound 1, then 4 …")
            results["bound1"] = await concurrency(workdir, endpoint, args.objects, 1)
            results["bound4"] = await concurrency(workdir, endpoint, args.objects, 4)
        if "shards" in selected:
            step("shards", f"{args.shards} objects, one replica vs two shards, {args.shard_rounds} round(s) …")
            results["shards"] = await shards_bench(workdir, args.shards, args.shard_rounds, say)
        if "drift" in selected:
            step("drift", f"{args.drift} drift checks due at once …")
            results["drift"] = await drift_budget(workdir / "drift", args.drift, 8, say)
        return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--objects", type=int, default=20)
    parser.add_argument("--scale", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--restart", type=int, default=10000)
    parser.add_argument("--shards", type=int, default=10000)
    parser.add_argument("--shard-rounds", type=int, default=1, help="rounds of one replica vs two shards")
    parser.add_argument("--drift", type=int, default=1000)
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument("--output", type=pathlib.Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--json", type=pathlib.Path, help="also write the raw figures here")
    args = parser.parse_args()
    if shutil.which("terraform") is None:
        print("bench: terraform is not on PATH", file=sys.stderr)
        return 2
    # An empty CLI config silences Terraform's warning about a missing one (both sides alike).
    empty = pathlib.Path(tempfile.gettempdir()) / "llmapp-bench-terraformrc"
    empty.touch()
    os.environ["TF_CLI_CONFIG_FILE"] = str(empty)
    results = asyncio.run(main_async(args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    command = ("make bench  # python benchmarks/bench.py " + " ".join(sys.argv[1:])).strip()
    text = report(results, command.strip())
    print("\n" + text)
    if set(args.only) != set(BENCHMARKS):
        return 0  # a partial run is for looking, not for the record
    args.output.parent.mkdir(parents=True, exist_ok=True)
    header = "# Benchmarks\n\nLatest run first. Ratios come from one run, side by side; see benchmarks/bench.py.\n\n"
    old = args.output.read_text().split("\n", 4)[-1] if args.output.exists() else ""
    args.output.write_text(header + text + "\n" + (old if old.startswith("## ") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

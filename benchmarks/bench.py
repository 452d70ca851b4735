"""`make bench`: side-by-side measurements that print ratios (this machine is shared and noisy).

1. overhead    — kubectl-apply-to-Ready through the operator vs a bare `terraform init && plan -out
                 && apply && output -json` of the same module and S3 backend, median of N each.
2. resync      — N Ready objects, operator restarted: Terraform processes started (must be 0) and
                 Kubernetes API requests per object, counted at the API server.
3. scale       — K objects created at once, Terraform and the state bucket replaced by instant
                 stand-ins, the operator in its own process: time until all are Ready divided by the
                 same for a minimal Kopf operator (benchmarks/floor_operator.py, `kopf run`), the
                 operator's peak RSS, and LLMApp writes per object.
4. concurrency — M objects with real Terraform, global bound 1 vs 4: speed-up and the highest
                 number of runs in flight ever seen (must never exceed the bound).

Everything runs on 127.0.0.1: the Kubernetes API emulator, moto, the real terraform binary.
A full run (no --only) writes its table to docs/benchmarks.md with the command and the date.
"""

from __future__ import annotations

import argparse
import asyncio
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
from instant import InstantRunner

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
                                  retry_max_seconds=5, app_health=False)
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


# -- 2. resync ------------------------------------------------------------------------------------

async def resync(workdir: pathlib.Path, endpoint: str, objects: int) -> dict[str, float]:
    async with environment(workdir, endpoint, "bench-resync") as env:
        seeding = replace(build_deps(env.settings), runner=InstantRunner())
        async with running_operator(env.settings, seeding):
            await asyncio.gather(*(env.client.create(llmapp(f"app-{i}")) for i in range(objects)))
            for i in range(objects):
                await wait_ready(env.client, f"app-{i}")
        env.api.server.reset_counts()
        real = build_deps(env.settings)  # the real LocalRunner: any Terraform process would count
        started = time.perf_counter()
        async with running_operator(env.settings, real):
            # Kopf handles every object once on resume; wait until the API goes quiet.
            quiet_since, last = time.perf_counter(), -1
            while time.perf_counter() - quiet_since < 1.0:
                total = sum(env.api.server.request_counts.values())
                if total != last:
                    quiet_since, last = time.perf_counter(), total
                await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        counts = env.api.server.request_counts
        llmapp_requests = sum(n for (_, plural, _), n in counts.items() if plural == "llmapps")
        writes = sum(n for (verb, plural, _), n in counts.items() if plural == "llmapps" and verb in ("PATCH", "PUT"))
        return {"objects": objects, "terraform_processes": real.runner.processes_started,
                "llmapp_requests_per_object": llmapp_requests / objects, "writes_per_object": writes / objects,
                "all_requests": sum(counts.values()), "seconds": elapsed}


# -- 3. scale --------------------------------------------------------------------------------------

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


async def scale(workdir: pathlib.Path, objects: int, which: str) -> dict[str, float]:
    """N objects created at once; the operator runs in its own process (its RSS is its own)."""
    workdir.mkdir(parents=True, exist_ok=True)
    async with running_apiserver([CRD], namespaces=[NS]) as api:
        kubeconfig = api.write_kubeconfig(workdir / "kubeconfig", NS)
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "LLMAPP_NAMESPACES": NS,
               "LLMAPP_WORKDIR": str(workdir / "work"), "LLMAPP_LIVENESS_ENDPOINT": "", "LLMAPP_METRICS_PORT": "",
               "LLMAPP_APP_HEALTH": "false", "LLMAPP_MODULES": f"sandbox={SANDBOX}",
               "PYTHONPATH": str(ROOT / "benchmarks")}
        if which == "operator":
            command = [sys.executable, str(ROOT / "benchmarks" / "scale_operator.py")]
            ready = _ours_ready
        else:
            command = [sys.executable, "-m", "kopf", "run", "--standalone", "--quiet", "-n", NS,
                       str(ROOT / "benchmarks" / "floor_operator.py")]
            ready = _floor_ready
        log = (workdir / f"{which}.log").open("wb")
        process = await asyncio.create_subprocess_exec(*command, env=env, stdout=log, stderr=log)
        try:
            while api.server.request_counts[("WATCH", "llmapps", None)] == 0:  # watching: ready to go
                if process.returncode is not None:
                    raise RuntimeError(f"{which} exited early; see {workdir / (which + '.log')}")
                await asyncio.sleep(0.02)
            api.server.reset_counts()
            started = time.perf_counter()
            for index in range(objects):
                api.server.create_object("llmapps", llmapp(f"app-{index}"))
                if index % 100 == 99:
                    await asyncio.sleep(0)  # let the watch stream flush as a real server would
            done = 0
            while done < objects:
                await asyncio.sleep(0.05)
                done = sum(1 for obj in api.server.peek_objects("llmapps", NS) if ready(obj))
                if time.perf_counter() - started > 900:
                    raise RuntimeError(f"{which}: only {done}/{objects} Ready after 900 s")
            elapsed = time.perf_counter() - started
            rss = _peak_rss_mb(process.pid)
        finally:
            process.terminate()
            await process.wait()
            log.close()
        counts = api.server.request_counts
        writes = sum(n for (verb, plural, _), n in counts.items()
                     if plural == "llmapps" and verb in ("PATCH", "PUT", "POST"))
        events = sum(n for (verb, plural, _), n in counts.items() if plural == "events" and verb == "POST")
        return {"objects": objects, "seconds": elapsed, "peak_rss_mb": rss,
                "writes_per_object": writes / objects, "events_per_object": events / objects}


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


def report_rows(results: dict[str, Any]) -> list[str]:
    rows = []
    if "overhead" in results:
        o = results["overhead"]
        rows.append(
            f"| 1. apply→Ready vs bare terraform (median of {results['runs']}) "
            f"| operator {o['operator_median_s'] * 1000:.0f} ms, bare {o['bare_median_s'] * 1000:.0f} ms, "
            f"**{o['added_ms']:+.0f} ms added** | {o['ratio']:.2f}× "
            f"| ≤ 300 ms added: {_verdict(o['added_ms'] <= 300)} |")
    if "resync" in results:
        r = results["resync"]
        rows.append(
            f"| 2. resync of {r['objects']} Ready objects (restart) | {r['terraform_processes']} Terraform processes, "
            f"{r['llmapp_requests_per_object']:.2f} LLMApp API requests/object ({r['writes_per_object']:.2f} writes), "
            f"{r['all_requests']} requests in all, quiet after {r['seconds']:.1f} s | — "
            f"| 0 processes: {_verdict(r['terraform_processes'] == 0)}; "
            f"≤ 2 requests/object: {_verdict(r['llmapp_requests_per_object'] <= 2)} |")
    if "scale_operator" in results:
        ours, floor = results["scale_operator"], results["scale_floor"]
        ratio = ours["seconds"] / floor["seconds"]
        rows.append(
            f"| 3. {ours['objects']} objects to Ready, instant runner, vs a minimal Kopf operator "
            f"| operator {ours['seconds']:.1f} s, floor {floor['seconds']:.1f} s; peak RSS "
            f"{ours['peak_rss_mb']:.0f} MB (floor {floor['peak_rss_mb']:.0f} MB); LLMApp writes/object "
            f"{ours['writes_per_object']:.2f} (floor {floor['writes_per_object']:.2f}), Events/object "
            f"{ours['events_per_object']:.2f} | {ratio:.2f}× | ≤ 1.5×: {_verdict(ratio <= 1.5)}; "
            f"≤ 300 MB: {_verdict(ours['peak_rss_mb'] <= 300)}; "
            f"≤ 4 writes: {_verdict(ours['writes_per_object'] <= 4)} |")
    if "bound1" in results:
        c1, c4 = results["bound1"], results["bound4"]
        rows.append(
            f"| 4. {results['objects']} objects, real Terraform, bound 1 vs 4 "
            f"| {c1['seconds']:.1f} s vs {c4['seconds']:.1f} s; max in flight {c1['max_in_flight']} / "
            f"{c4['max_in_flight']} | {c1['seconds'] / c4['seconds']:.2f}× speed-up "
            f"| bound never exceeded: {_verdict(c1['max_in_flight'] <= 1 and c4['max_in_flight'] <= 4)} |")
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


BENCHMARKS = ("overhead", "resync", "scale", "concurrency")


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    selected = [name for name in BENCHMARKS if name in args.only]
    with tempfile.TemporaryDirectory(prefix="llmapp-bench-") as tmp, sandbox_aws_env(), running_moto() as endpoint:
        workdir = pathlib.Path(tmp)
        results: dict[str, Any] = {"runs": args.runs, "objects": args.objects}
        step = lambda name, text: print(f"{selected.index(name) + 1}/{len(selected)} {name}: {text}", flush=True)  # noqa: E731
        if "overhead" in selected:
            step("overhead", f"{args.runs} operator runs and {args.runs} bare runs, interleaved …")
            results["overhead"] = await overhead(workdir / "overhead", endpoint, args.runs)
        if "resync" in selected:
            step("resync", f"{args.resync} Ready objects, operator restart …")
            results["resync"] = await resync(workdir / "resync", endpoint, args.resync)
        if "scale" in selected:
            step("scale", f"{args.scale} objects, the minimal Kopf floor, then the operator (own processes) …")
            results["scale_floor"] = await scale(workdir / "scale-floor", args.scale, "floor")
            results["scale_operator"] = await scale(workdir / "scale-operator", args.scale, "operator")
        if "concurrency" in selected:
            step("concurrency", f"{args.objects} objects with bound 1, then 4 …")
            results["bound1"] = await concurrency(workdir, endpoint, args.objects, 1)
            results["bound4"] = await concurrency(workdir, endpoint, args.objects, 4)
        return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--resync", type=int, default=200)
    parser.add_argument("--objects", type=int, default=20)
    parser.add_argument("--scale", type=int, default=2000)
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument("--output", type=pathlib.Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    if shutil.which("terraform") is None:
        print("bench: terraform is not on PATH", file=sys.stderr)
        return 2
    # An empty CLI config silences Terraform's warning about a missing one (both sides alike).
    empty = pathlib.Path(tempfile.gettempdir()) / "llmapp-bench-terraformrc"
    empty.touch()
    os.environ["TF_CLI_CONFIG_FILE"] = str(empty)
    results = asyncio.run(main_async(args))
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

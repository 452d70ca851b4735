"""`terraform init` in the local runner: one at a time per plugin cache, the module's lock file used
read-only, pre-installed registry modules used without a download. Real terraform, moto's S3.

HashiCorp's CLI config docs: "The plugin cache directory is not guaranteed to be concurrency safe."
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import time

import pytest

from llmapp_operator.api.errors import ReconcileError, TransientError
from llmapp_operator.api.workspace import BackendConfig, Workspace
from llmapp_operator.cloud.state import StateBackend
from llmapp_operator.config import Settings
from llmapp_operator.runners.local import PLUGIN_CACHE_LOCK, LocalRunner, plugin_cache_lock
from llmapp_operator.runners.modules import load_module
from tests.integration.conftest import TerraformLog
from tests.provider_mirror import add_stand_in_provider, cli_config_for, requiring, terraform_platform

pytestmark = pytest.mark.asyncio

INIT_PAUSE = 0.5  # the wrapper waits this long before each init: two unserialised inits overlap


def timing_wrapper(folder: pathlib.Path, log: pathlib.Path, lock_file: pathlib.Path, inner: str) -> pathlib.Path:
    """`inner` (the tests' logging terraform wrapper) behind a script that logs when each init
    starts and ends and whether the plugin cache lock was held meanwhile (`flock -n` fails then)."""
    probe = (f"if flock -n '{lock_file}' true; then held=free; else held=held; fi"
             if shutil.which("flock") else "held=unknown")
    script = folder / "terraform-timed"
    script.write_text(f"""#!/bin/sh
if [ "$2" = init ]; then
  echo "start $(date +%s.%N) $1" >> '{log}'
  {probe}
  sleep {INIT_PAUSE}
  '{inner}' "$@"; rc=$?
  echo "end $(date +%s.%N) $1 $held" >> '{log}'
  exit $rc
fi
exec '{inner}' "$@"
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def intervals(log: pathlib.Path) -> list[tuple[float, float, str]]:
    """(start, end, lock state) of each finished init, by workspace."""
    starts: dict[str, float] = {}
    found = []
    for line in log.read_text().splitlines():
        kind, at, chdir, *held = line.split()
        if kind == "start":
            starts[chdir] = float(at)
        else:
            found.append((starts.pop(chdir), float(at), held[0]))
    return sorted(found)


def timed(settings: Settings, tmp_path: pathlib.Path, name: str = "timed") -> tuple[Settings, pathlib.Path]:
    log = tmp_path / f"{name}.log"
    workdir = tmp_path / name
    wrapper = timing_wrapper(tmp_path, log, workdir / "plugin-cache" / PLUGIN_CACHE_LOCK, settings.terraform_binary)
    return settings.updated(workdir=workdir, terraform_binary=str(wrapper)), log


async def workspace(settings: Settings, uid: str, module: str = "sandbox",
                    modules: dict[str, pathlib.Path] | None = None) -> Workspace:
    backend = BackendConfig(bucket=settings.state_bucket, key=f"init-lock/{uid}/terraform.tfstate",
                            region="us-east-1", endpoint_url=settings.aws_endpoint_url)
    await StateBackend(settings.aws_endpoint_url).ensure(backend)
    return Workspace(uid=uid, directory=settings.workdir / "workspaces" / uid,
                     module=load_module(module, modules or settings.modules), tfvars={}, backend=backend,
                     timeout_seconds=120, lock_timeout_seconds=0, digest="digest")


class LockHolder:
    """Another process holding the plugin cache lock until `release()`."""

    def __init__(self, lock_file: pathlib.Path) -> None:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import fcntl, sys, time\n"
             f"f = open({str(lock_file)!r}, 'a'); fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True)\n"
             "sys.stdin.readline(); print(time.time(), flush=True)"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "held"

    def release(self) -> float:
        """When the holder let go (it exits right after: exiting drops the lock)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        released = float(self.process.stdout.readline())
        self.process.wait(10)
        return released

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


async def test_concurrent_inits_sharing_a_plugin_cache_take_turns(settings: Settings, tmp_path: pathlib.Path) -> None:
    shared, log = timed(settings, tmp_path)
    # Two runners (as two operator processes would be) and two objects in one of them, one cache.
    one, other = LocalRunner(shared), LocalRunner(shared)
    spaces = [await workspace(shared, f"uid-{i}") for i in range(3)]
    await asyncio.gather(one.init(spaces[0]), one.init(spaces[1]), other.init(spaces[2]))

    runs = intervals(log)
    assert len(runs) == 3
    for (_, end, _), (start, _, _) in zip(runs, runs[1:], strict=False):
        assert start >= end, f"inits overlapped: {runs}"
    if shutil.which("flock"):
        assert {held for _, _, held in runs} == {"held"}   # terraform ran while the lock was taken
    for ws in spaces:
        assert (ws.module_dir / ".terraform" / "terraform.tfstate").exists()   # initialised: S3 backend


async def test_without_a_shared_cache_the_same_inits_overlap(settings: Settings, tmp_path: pathlib.Path) -> None:
    """The control: the harness does see overlapping inits when nothing serialises them."""
    first, log = timed(settings, tmp_path, "first")
    second = first.updated(workdir=tmp_path / "second")   # its own plugin cache, same log
    await asyncio.gather(LocalRunner(first).init(await workspace(first, "a")),
                         LocalRunner(second).init(await workspace(second, "b")))
    (start_a, end_a, _), (start_b, _, _) = intervals(log)
    assert start_b < end_a


async def test_init_waits_for_a_lock_another_process_holds_without_blocking_the_loop(
        settings: Settings, tmp_path: pathlib.Path) -> None:
    timed_settings, log = timed(settings, tmp_path)
    ws = await workspace(timed_settings, "waiting")
    holder = LockHolder(timed_settings.plugin_cache_dir / PLUGIN_CACHE_LOCK)
    try:
        task = asyncio.create_task(LocalRunner(timed_settings).init(ws))
        ticks = 0
        for _ in range(20):   # 1 s: the loop keeps running while init waits
            await asyncio.sleep(0.05)
            ticks += 1
        assert ticks == 20 and not task.done()
        assert not log.exists()   # terraform has not started
        released = holder.release()
        await asyncio.wait_for(task, 60)
    finally:
        holder.stop()
    [(start, _, _)] = intervals(log)
    assert start >= released


async def test_a_cancelled_or_timed_out_wait_leaves_the_cache_unlocked(tmp_path: pathlib.Path) -> None:
    cache = tmp_path / "plugin-cache"
    holder = LockHolder(cache / PLUGIN_CACHE_LOCK)
    try:
        with pytest.raises(TransientError) as busy:
            async with plugin_cache_lock(cache, 0.3):
                pytest.fail("the lock was taken while another process held it")
        assert busy.value.reason == "PluginCacheBusy"

        async def wait() -> None:
            async with plugin_cache_lock(cache, 60):
                pytest.fail("the lock was taken while another process held it")

        waiting = asyncio.create_task(wait())
        await asyncio.sleep(0.3)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        holder.release()
    finally:
        holder.stop()
    started = time.monotonic()
    async with plugin_cache_lock(cache, 1):
        assert time.monotonic() - started < 0.5   # free at once: nothing left behind
    # ...and free for other processes once released (checked with a fresh process).
    lock_file = str(cache / PLUGIN_CACHE_LOCK)
    code = f"import fcntl; f = open({lock_file!r}, 'a'); fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)"
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert probe.returncode == 0, probe.stderr


# -- the module's lock file, with the image's CLI config and a stand-in provider ---------------
@pytest.fixture
def mirrored(settings: Settings, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The image's CLI config (from the Dockerfile) over a mirror holding a stand-in hashicorp/time."""
    mirror = tmp_path / "mirror"
    add_stand_in_provider(mirror, "time", "0.13.1", terraform_platform())
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(cli_config_for(mirror, tmp_path / "terraformrc")))
    timed_settings, _ = timed(settings, tmp_path)
    return timed_settings


async def test_a_lock_file_beside_the_module_is_used_read_only(mirrored: Settings, tmp_path: pathlib.Path,
                                                               terraform_log: TerraformLog) -> None:
    module = requiring(tmp_path / "needs-time", {"hashicorp/time": ">= 0.13"}, backend=True)
    modules = {"needs-time": module}
    runner = LocalRunner(mirrored)

    # No lock file shipped: terraform picks from the mirror and writes the workspace's own.
    first = await workspace(mirrored, "unlocked", "needs-time", modules)
    await runner.init(first)
    written = first.module_dir / ".terraform.lock.hcl"
    assert 'provider "registry.terraform.io/hashicorp/time"' in written.read_text()
    assert "-lockfile=readonly" not in terraform_log.path.read_text()

    # Shipped: copied into the workspace and used read-only; the provider comes linked from the cache.
    shutil.copy(written, module / ".terraform.lock.hcl")
    locked = await workspace(mirrored, "locked", "needs-time", modules)
    await runner.init(locked)
    assert f"-chdir={locked.module_dir} init" in terraform_log.path.read_text().splitlines()[-1]
    assert "-lockfile=readonly" in terraform_log.path.read_text().splitlines()[-1]
    assert (locked.module_dir / ".terraform.lock.hcl").read_bytes() == (module / ".terraform.lock.hcl").read_bytes()
    platform_dir = next((locked.module_dir / ".terraform" / "providers").rglob(terraform_platform()))
    assert platform_dir.is_symlink()
    assert pathlib.Path(os.readlink(platform_dir)).is_relative_to(mirrored.plugin_cache_dir)

    # A shipped lock file that does not record what the module needs is an error, never rewritten.
    (module / ".terraform.lock.hcl").write_text("# no providers recorded\n")
    stale = await workspace(mirrored, "stale", "needs-time", modules)
    with pytest.raises(ReconcileError) as refused:
        await runner.init(stale)
    assert "Provider dependency changes detected" in str(refused.value) or "read-only" in str(refused.value)
    assert (stale.module_dir / ".terraform.lock.hcl").read_text() == "# no providers recorded\n"


# -- registry modules installed beside the module (the image's `terraform get`) ----------------
# A registry host that never resolves (RFC 2606 `.invalid`): with or without a network, nothing can
# be downloaded, so only the installed copy can satisfy init. Terraform treats registry.terraform.io
# sources the same way (a `terraform-aws-modules/vpc/aws` call was checked by hand, offline).
MODULE_CALL = """module "vpc" {
  source  = "registry.invalid/acme/vpc/aws"
  version = "6.6.0"
}

output "from_module" {
  value = module.vpc.answer
}

terraform {
  backend "s3" {}
}
"""
MANIFEST = ('{"Modules":[{"Key":"","Source":"","Dir":"."},{"Key":"vpc","Source":'
            '"registry.invalid/acme/vpc/aws","Version":"6.6.0","Dir":".terraform/modules/vpc"}]}')


async def test_pre_installed_registry_modules_are_used_without_a_download(
        settings: Settings, tmp_path: pathlib.Path) -> None:
    module = tmp_path / "calls-registry"
    module.mkdir()
    (module / "main.tf").write_text(MODULE_CALL)
    modules = {"calls-registry": module}
    runner = LocalRunner(settings)

    # Not installed: init goes to the registry, which cannot answer.
    with pytest.raises(ReconcileError):
        await runner.init(await workspace(settings, "not-installed", "calls-registry", modules))

    # Installed beside the module, as `terraform get` leaves it: copied in, nothing downloaded.
    installed = module / ".terraform" / "modules"
    (installed / "vpc").mkdir(parents=True)
    (installed / "vpc" / "main.tf").write_text('output "answer" {\n  value = 42\n}\n')
    (installed / "modules.json").write_text(MANIFEST)
    ws = await workspace(settings, "installed", "calls-registry", modules)
    await runner.init(ws)
    assert (ws.module_dir / ".terraform" / "modules" / "vpc" / "main.tf").exists()
    assert not (ws.module_dir / ".terraform" / "modules.partial").exists()
    summary = await runner.plan(ws)
    assert summary.has_changes   # the output from the installed module is planned

    # A newer tree beside the module replaces the workspace's copy on the next init.
    (installed / "vpc" / "main.tf").write_text('output "answer" {\n  value = 43\n}\n')
    (installed / "modules.json").write_text(MANIFEST.replace('"Dir":"."', '"Dir": "."'))
    await runner.init(ws)
    assert "43" in (ws.module_dir / ".terraform" / "modules" / "vpc" / "main.tf").read_text()

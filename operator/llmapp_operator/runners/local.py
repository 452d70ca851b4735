"""The local runner: Terraform as a child process of the operator.

Each step runs `terraform` in its own process group with `-input=false -no-color`, a clean
environment (only what the run needs), a per-step timeout and a shared plugin cache (one `init` at a
time per cache directory, across processes; see `plugin_cache_lock`). Timeouts and
cancellation interrupt the whole group (SIGTERM, so Terraform can release its state lock, then
SIGKILL) and never leave an orphan behind. Every message that leaves this module is redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from llmapp_operator.api.errors import TransientError
from llmapp_operator.api.workspace import Workspace
from llmapp_operator.cloud.state import PlanStore, StateLocks
from llmapp_operator.cloud.sts import IDENTITY_VARIABLES, RoleSessions
from llmapp_operator.config import Settings
from llmapp_operator.obs import metrics
from llmapp_operator.obs.redaction import REDACTOR, Redactor
from llmapp_operator.review.checkov import (
    checkov_arguments,
    default_skips,
    read_report,
    read_waivers,
    with_findings,
)
from llmapp_operator.review.verdict import review_plan
from llmapp_operator.runners.base import Outputs, PlanSummary, plan_file_id, public_outputs, summarize_plan
from llmapp_operator.runners.diagnostics import (
    LOCK_OPERATIONS,
    LockInfo,
    classify_failure,
    parse_lock_document,
    parse_lock_info,
)
from llmapp_operator.runners.modules import copy_module

PLAN_FILE = "tfplan"
TFVARS_FILE = "terraform.tfvars.json"
BACKEND_FILE = "backend.tfbackend"
ERRORED_STATE_FILE = "errored.tfstate"  # where terraform keeps state it failed to save remotely
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
UNRELEASED_LOCK_MARKER = "Error releasing the state lock"
JOURNAL_DIR = "runs"  # one <pid>.json per terraform process while it runs
LOCK_POLL_SECONDS = 0.2  # how often a run's own lock is looked for, until it is seen
LOCK_CLOCK_SLACK_SECONDS = 1.0  # Terraform's clock is ours (same host); this covers rounding
DEPENDENCY_LOCK_FILE = ".terraform.lock.hcl"  # shipped beside a module: init uses it read-only
INSTALLED_MODULES = pathlib.Path(".terraform", "modules")  # a module's pre-installed registry modules
PLUGIN_CACHE_LOCK = ".llmapp-init.lock"  # in the plugin cache directory: held by the one init running
PLUGIN_CACHE_POLL_SECONDS = 0.1

@dataclass(frozen=True)
class Completed:
    code: int
    stdout: str
    stderr: str


class LocalRunner:
    """Runs terraform as a child process of the operator, one workspace directory per object."""

    def __init__(self, settings: Settings, redactor: Redactor = REDACTOR, plans: PlanStore | None = None) -> None:
        self.settings = settings
        self.redactor = redactor
        self.plans = plans or PlanStore(settings.aws_endpoint_url)
        self.locks = StateLocks(settings.aws_endpoint_url)
        self.roles = RoleSessions(settings.state_region, settings.aws_endpoint_url)
        self.processes_started = 0
        self._hostname = socket.gethostname()

    # -- the protocol ------------------------------------------------------------------------
    async def init(self, ws: Workspace) -> None:
        locked = await asyncio.to_thread(self._prepare, ws)
        args = ["init", "-input=false", "-no-color", "-reconfigure", f"-backend-config=../{BACKEND_FILE}"]
        if locked:  # the module ships its lock file: exactly those providers and checksums, never updated
            args.append("-lockfile=readonly")
        async with plugin_cache_lock(self.settings.plugin_cache_dir, ws.timeout_seconds):
            await self._run(ws, "init", args)

    async def plan(self, ws: Workspace) -> PlanSummary:
        await self._push_errored_state(ws)
        done = await self._run(
            ws, "plan",
            ["plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={PLAN_FILE}",
             f"-var-file=../{TFVARS_FILE}", *self._lock_args(ws)],
            ok_codes=(0, 2),
        )
        shown = await self._run(ws, "show", ["show", "-json", "-no-color", PLAN_FILE])
        document = json.loads(shown.stdout)
        summary = summarize_plan(document, has_changes=done.code == 2)
        review = review_plan(document, ws.review) if ws.review is not None else None
        if review is not None and ws.review is not None and self.settings.checkov:
            review = with_findings(review, await self._checkov(ws, shown.stdout, document), ws.review.policy_skip)
        return replace(summary, plan_id=plan_file_id(ws.module_dir / PLAN_FILE), review=review)

    async def _checkov(self, ws: Workspace, plan_json: str, document: Any) -> tuple[str, ...]:
        """Checkov on the plan JSON, when the image has it (LLMAPP_CHECKOV), with the module's own
        waivers as --skip-check. Fails closed (review/checkov.py): a run that did not check the plan
        is PolicyCheckFailed, never "no findings". The JSON may hold sensitive values: it lives in the
        private workspace only while Checkov reads it."""
        skip = default_skips(read_waivers(ws.module.path), ws.tfvars)
        path = ws.directory / "tfplan.json"
        path.write_text(plan_json)
        try:
            process = await asyncio.create_subprocess_exec(
                str(self.settings.checkov), *checkov_arguments(path, skip), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=self._environment(),
                start_new_session=True)
            try:
                stdout, stderr = await asyncio.wait_for(process.communicate(), ws.timeout_seconds)
            except (TimeoutError, asyncio.CancelledError):
                await asyncio.shield(self._stop_group(process))
                raise
        except TimeoutError:
            raise TransientError(f"checkov did not finish within {ws.timeout_seconds}s and was stopped; "
                                 "the plan was not checked", reason="PolicyCheckFailed") from None
        except OSError as exc:  # no such file, not executable
            raise TransientError(f"checkov could not be started ({exc.strerror or type(exc).__name__}: "
                                 f"LLMAPP_CHECKOV={self.settings.checkov}); the plan was not checked",
                                 reason="PolicyCheckFailed") from None
        finally:
            path.unlink(missing_ok=True)
        lines = [line for line in ANSI_ESCAPE.sub("", stderr.decode(errors="replace")).splitlines() if line.strip()]
        tail = self.redactor.redact(lines[-1].strip())[:200] if lines else ""
        return read_report(process.returncode, stdout, document, stderr_tail=tail)

    async def apply(self, ws: Workspace, plan: PlanSummary) -> Outputs:
        if plan.has_changes:
            saved = ws.module_dir / PLAN_FILE
            if not saved.exists() or plan_file_id(saved) != plan.plan_id:
                # An approved plan from an earlier pass (or another replica): the stored copy.
                await self.plans.fetch(ws.backend, plan.plan_id, saved)
            await self._run(ws, "apply", ["apply", "-input=false", "-no-color",
                                          *self._lock_args(ws), PLAN_FILE])
        return await self.output(ws)

    async def keep(self, ws: Workspace, plan: PlanSummary) -> None:
        """Store a plan that waits for approval beside the state: the pod may be gone by then."""
        await self.plans.put(ws.backend, plan.plan_id, ws.module_dir / PLAN_FILE)

    async def output(self, ws: Workspace) -> Outputs:
        done = await self._run(ws, "output", ["output", "-json", "-no-color"])
        return public_outputs(json.loads(done.stdout or "{}"))

    async def destroy(self, ws: Workspace) -> None:
        await self._push_errored_state(ws)
        if ws.keep_on_destroy:
            await self._forget_kept(ws)
        await self._run(ws, "destroy", ["destroy", "-auto-approve", "-input=false", "-no-color",
                                        f"-var-file=../{TFVARS_FILE}", *self._lock_args(ws)])

    async def _forget_kept(self, ws: Workspace) -> None:
        """What the module keeps on destroy leaves the state first (and so stays in AWS). A resumed
        teardown finds it gone already: only addresses still in the state are removed."""
        listed = (await self._run(ws, "state", ["state", "list", "-no-color"])).stdout.split()
        present = [address for address in ws.keep_on_destroy
                   if any(line == address or line.startswith((f"{address}.", f"{address}[")) for line in listed)]
        if present:
            await self._run(ws, "state", ["state", "rm", "-no-color", *self._lock_args(ws), *present])

    async def forget(self, uid: str) -> None:
        """A deleted object's workspace (module copy, plan files, journal): nothing there is needed
        once its record is gone, and the operator's emptyDir is not infinite."""
        await asyncio.to_thread(shutil.rmtree, self.settings.workdir / "workspaces" / uid, True)

    # -- workspace files ---------------------------------------------------------------------
    def _prepare(self, ws: Workspace) -> bool:
        """The workspace's files; True when the module ships a dependency lock file."""
        ws.directory.mkdir(parents=True, exist_ok=True)
        self.settings.plugin_cache_dir.mkdir(parents=True, exist_ok=True)
        copy_module(ws.module.path, ws.module_dir)
        _copy_installed_modules(ws.module.path, ws.module_dir)
        (ws.directory / TFVARS_FILE).write_text(json.dumps(ws.tfvars, indent=2, sort_keys=True))
        (ws.directory / BACKEND_FILE).write_text(ws.backend.as_tfbackend())
        return _copy_lock_file(ws.module.path, ws.module_dir)

    def _lock_args(self, ws: Workspace) -> list[str]:
        return [f"-lock-timeout={ws.lock_timeout_seconds}s"]

    def _environment(self) -> dict[str, str]:
        env = {name: os.environ[name] for name in self.settings.passthrough_env if name in os.environ}
        env.update(
            PATH=os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            HOME=str(self.settings.workdir),
            TF_IN_AUTOMATION="1",
            TF_INPUT="0",
            TF_PLUGIN_CACHE_DIR=str(self.settings.plugin_cache_dir),
            CHECKPOINT_DISABLE="1",
            TF_CLI_CONFIG_FILE=os.environ.get("TF_CLI_CONFIG_FILE", "/dev/null"),
        )
        return env

    async def _terraform_environment(self, ws: Workspace) -> dict[str, str]:
        """A tenant's runs (provider and state backend alike) act as the role its policy names,
        and as nothing else: the runner's own credentials do not reach Terraform."""
        env = self._environment()
        if ws.role is not None:
            for name in IDENTITY_VARIABLES:
                env.pop(name, None)
            env.update(await self.roles.env_for(ws.role))
        return env

    # -- processes ---------------------------------------------------------------------------
    async def _run(
        self, ws: Workspace, step: str, args: Sequence[str], *, ok_codes: Sequence[int] = (0,),
        recover_lock: bool = True,
    ) -> Completed:
        done = await self._spawn(ws, step, args)
        if done.code in ok_codes:
            return done
        lock = parse_lock_info(done.stderr)
        if lock is not None and recover_lock and await self._recover_lock(ws, lock):
            return await self._run(ws, step, args, ok_codes=ok_codes, recover_lock=False)
        raise classify_failure(step, done.stderr, self.redactor, assumed_role=ws.role is not None)

    async def _spawn(self, ws: Workspace, step: str, args: Sequence[str]) -> Completed:
        process = await asyncio.create_subprocess_exec(
            self.settings.terraform_binary, f"-chdir={ws.module_dir}", *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=await self._terraform_environment(ws),
            cwd=str(ws.directory),
            start_new_session=True,  # own process group: we can stop terraform and its children
        )
        self.processes_started += 1
        started_at = time.time()
        self._write_journal(ws, step, process.pid, started_at)
        watcher = (asyncio.create_task(self._note_own_lock(ws, step, process.pid, started_at))
                   if step in LOCK_OPERATIONS else None)
        started = time.monotonic()
        step_seconds = metrics.TERRAFORM_STEP_SECONDS
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), ws.timeout_seconds)
        except TimeoutError:
            step_seconds.labels(step=step, outcome="timeout").observe(time.monotonic() - started)
            await asyncio.shield(self._stop_group(process))
            self._end_journal(ws, process.pid, process.returncode, "")
            raise TransientError(
                f"terraform {step} did not finish within {ws.timeout_seconds}s and was stopped",
                reason="TerraformTimeout",
            ) from None
        except asyncio.CancelledError:
            await asyncio.shield(self._stop_group(process))
            self._end_journal(ws, process.pid, process.returncode, "")
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
        # `plan -detailed-exitcode` exits 2 when there are changes: a success too.
        outcome = "ok" if process.returncode == 0 or (step == "plan" and process.returncode == 2) else "error"
        step_seconds.labels(step=step, outcome=outcome).observe(time.monotonic() - started)
        # Some subcommands (state push, force-unlock) have no -no-color: strip colours here once.
        error_text = ANSI_ESCAPE.sub("", stderr.decode(errors="replace"))
        self._end_journal(ws, process.pid, process.returncode, error_text)
        return Completed(process.returncode or 0, stdout.decode(errors="replace"), error_text)

    async def _stop_group(self, process: asyncio.subprocess.Process) -> None:
        """SIGTERM lets Terraform stop gracefully and release the lock; SIGKILL if it will not."""
        for sig, grace in ((signal.SIGTERM, self.settings.kill_grace_seconds), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                await asyncio.wait_for(process.wait(), grace)
                break
            except TimeoutError:
                continue
        # Children that ignored SIGTERM (provisioners) go with the group's SIGKILL.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    # -- state that Terraform could not save -----------------------------------------------
    async def _push_errored_state(self, ws: Workspace) -> None:
        """When the backend was unreachable at the end of a run, Terraform wrote the resources it
        had created to errored.tfstate instead. Planning from the stale remote state would create
        them again, so the saved copy is pushed first (Terraform itself refuses a push whose
        lineage differs or whose serial is older). Kept on disk until a push succeeds."""
        errored = ws.module_dir / ERRORED_STATE_FILE
        if not errored.exists():
            return
        await self._run(ws, "state push", ["state", "push", *self._lock_args(ws), ERRORED_STATE_FILE])
        errored.rename(errored.with_name(f"{ERRORED_STATE_FILE}.pushed-{int(time.time())}"))

    # -- state-lock recovery -----------------------------------------------------------------
    # Each terraform process is journaled in <workspace>/runs/<pid>.json: host, pid, step, the
    # lock operation it takes, when it started, and (noted while it runs) the id of the lock it
    # took. The entry is removed when the process ends and released its lock; it stays when the
    # process died by a signal or could not release the lock, and when the operator itself died
    # with it. Such an entry is the proof that a specific dead run of ours may hold the lock.
    def _write_journal(self, ws: Workspace, step: str, pid: int, started_at: float) -> None:
        record = {"host": self._hostname, "pid": pid, "step": step, "operation": LOCK_OPERATIONS.get(step, ""),
                  "started": started_at, "state": ws.backend.key, "lock_id": None}
        journal = ws.directory / JOURNAL_DIR
        journal.mkdir(exist_ok=True)
        (journal / f"{pid}.json").write_text(json.dumps(record))

    def _journal_entries(self, ws: Workspace) -> list[tuple[pathlib.Path, dict[str, Any]]]:
        """This host's journal entries for this object's state."""
        entries = []
        for entry in sorted((ws.directory / JOURNAL_DIR).glob("*.json")):
            try:
                record = json.loads(entry.read_text())
            except (OSError, ValueError):
                continue
            ours = isinstance(record, dict) and record.get("host") == self._hostname
            if ours and record.get("state") == ws.backend.key:
                entries.append((entry, record))
        return entries

    async def _note_own_lock(self, ws: Workspace, step: str, pid: int, started_at: float) -> None:
        """Look for the lock this run takes and write its id into the run's entry: a lock taken
        on this host, for this operation, created after the run started, is the run's own."""
        entry = ws.directory / JOURNAL_DIR / f"{pid}.json"
        while True:
            lock = parse_lock_document(await self.locks.held(ws.backend) or "")
            if (lock is not None and lock.created is not None and lock.who.endswith("@" + self._hostname)
                    and lock.operation == LOCK_OPERATIONS[step]
                    and lock.created.timestamp() >= started_at - LOCK_CLOCK_SLACK_SECONDS):
                with contextlib.suppress(OSError, ValueError):
                    record = json.loads(entry.read_text())
                    record["lock_id"] = lock.id
                    entry.write_text(json.dumps(record))
                # This run holds the lock, so whatever lock an earlier dead run left is gone: its
                # entry proves nothing any more and must not match a later lock.
                for other, other_record in self._journal_entries(ws):
                    if other != entry and not _process_alive(int(other_record.get("pid", 0))):
                        other.unlink(missing_ok=True)
                return
            await asyncio.sleep(LOCK_POLL_SECONDS)

    def _end_journal(self, ws: Workspace, pid: int, returncode: int | None, error_text: str) -> None:
        entry = ws.directory / JOURNAL_DIR / f"{pid}.json"
        if returncode is not None and returncode >= 0 and UNRELEASED_LOCK_MARKER not in error_text:
            entry.unlink(missing_ok=True)
            return
        # Killed (by us after a timeout, or by the kernel) or the lock release failed: the entry
        # stays as evidence, with when the run ended so that later locks are never mistaken for it.
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(entry.read_text())
            record["ended"] = time.time()
            entry.write_text(json.dumps(record))

    def _own_dead_run(self, ws: Workspace, lock: LockInfo) -> list[pathlib.Path] | None:
        """The journal entries to retire if `lock` is provably a dead run's of ours, else None.

        Never while a run of ours for this object is alive. The lock must be this host's, for
        this state; then a dead entry must name it: by the id noted while it ran, or (when the run
        died before its lock was seen) by the operation and a creation time inside the run's life.
        """
        entries = self._journal_entries(ws)
        if any(_process_alive(int(record.get("pid", 0))) for _, record in entries):
            return None
        if not lock.who.endswith("@" + self._hostname) or not lock.path.endswith(ws.backend.key):
            return None
        for _, record in entries:
            if record.get("lock_id"):
                if record["lock_id"] == lock.id:
                    return [entry for entry, _ in entries]
                continue
            if not lock.operation or lock.operation != record.get("operation") or lock.created is None:
                continue
            started = float(record.get("started", 0))
            ended = float(record.get("ended") or time.time())
            created = lock.created.timestamp()
            if started - LOCK_CLOCK_SLACK_SECONDS <= created <= ended + LOCK_CLOCK_SLACK_SECONDS:
                return [entry for entry, _ in entries]
        return None

    async def _recover_lock(self, ws: Workspace, lock: LockInfo) -> bool:
        """Force-unlock only a lock that a specific dead run of this operator took on this object.
        Any other lock (another replica, a human, a live run) is left alone: StateLocked retries."""
        retire = self._own_dead_run(ws, lock)
        if retire is None:
            return False
        done = await self._spawn(ws, "force-unlock", ["force-unlock", "-force", lock.id])
        if done.code != 0:
            return False
        for entry in retire:
            entry.unlink(missing_ok=True)
        return True


# -- init: the module's lock file, its pre-installed modules, the plugin cache ------------------
def _copy_lock_file(source: pathlib.Path, target: pathlib.Path) -> bool:
    """The module's `.terraform.lock.hcl` into the workspace copy, when it ships one."""
    lock = source / DEPENDENCY_LOCK_FILE
    if not lock.is_file():
        return False
    content = lock.read_bytes()
    copy = target / DEPENDENCY_LOCK_FILE
    if not copy.is_file() or copy.read_bytes() != content:
        copy.write_bytes(content)
    return True


def _copy_installed_modules(source: pathlib.Path, target: pathlib.Path) -> None:
    """Registry modules installed beside the module (the image runs `terraform get` at build time)
    go into the workspace as they are: `terraform init` then finds each call recorded in
    `.terraform/modules/modules.json` at a version its constraint allows and downloads nothing.
    Copied, not linked: init rewrites the manifest, and the image's copy is read-only."""
    manifest = source / INSTALLED_MODULES / "modules.json"
    if not manifest.is_file():
        return
    installed = target / INSTALLED_MODULES
    current = installed / "modules.json"
    if current.is_file() and current.read_bytes() == manifest.read_bytes():
        return
    # Into a sibling first, then renamed: a copy cut short never looks complete to the next init.
    partial = installed.with_name(installed.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source / INSTALLED_MODULES, partial, symlinks=True)
    shutil.rmtree(installed, ignore_errors=True)
    partial.rename(installed)


@contextlib.asynccontextmanager
async def plugin_cache_lock(cache_dir: pathlib.Path, timeout_seconds: float) -> AsyncIterator[None]:
    """Exclusive use of a shared TF_PLUGIN_CACHE_DIR for one `terraform init`.

    HashiCorp's CLI configuration docs (Provider Plugin Cache): "The plugin cache directory is not
    guaranteed to be concurrency safe. The provider installer's behavior in environments with
    multiple terraform init calls is undefined." So inits that share a cache directory take turns,
    whichever process they run in (replicas on one volume, several runners): an flock(2) on a file in
    that directory, through a descriptor of its own per init (flock excludes other descriptors of
    the same process too) that is not inherited by terraform. The kernel drops it when the holder
    dies, so a killed process never leaves the cache locked. Waiting polls with LOCK_NB from the
    event loop, which never blocks and leaves nothing behind when the wait is cancelled; after
    `timeout_seconds` the wait gives up as a transient error."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Read-only is enough for flock: any process that may read the cache can take turns.
    fd = os.open(cache_dir / PLUGIN_CACHE_LOCK, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TransientError(
                        f"another terraform init held the plugin cache {cache_dir} for {timeout_seconds}s",
                        reason="PluginCacheBusy") from None
                await asyncio.sleep(PLUGIN_CACHE_POLL_SECONDS)
        yield
    finally:
        os.close(fd)  # releases the lock


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) still answers kill(0); it holds no lock any more.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True

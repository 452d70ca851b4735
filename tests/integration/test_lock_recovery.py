"""State-lock recovery with the real terraform and the real S3 lock file on moto.

A lock is force-unlocked only when a specific dead run of ours took it: the id the runner noted
while that run held it, or (died before it was seen) its operation and a creation time inside the
run's life. Never while a run of ours for the object is alive, never for a lock of another host.
"""

from __future__ import annotations

import asyncio
import datetime
import getpass
import json
import os
import signal
import socket
import time
from typing import Any

import pytest

from llmapp_operator.api.workspace import state_key
from llmapp_operator.engine.reconcile import Deps, Previous, converge
from llmapp_operator.runners.local import JOURNAL_DIR
from tests.conftest import needs_terraform
from tests.integration.test_reconcile_terraform import after, make_app

pytestmark = needs_terraform

WHO = f"{getpass.getuser()}@{socket.gethostname()}"


def lock_document(path: str, *, lock_id: str, created: float, operation: str = "OperationTypeApply",
                  who: str = WHO) -> bytes:
    stamp = datetime.datetime.fromtimestamp(created, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    return json.dumps({"ID": lock_id, "Operation": operation, "Info": "", "Who": who, "Version": "1.11.4",
                       "Created": stamp, "Path": path}).encode()


def dead_pid() -> int:
    """A pid that no process has: a child that already exited and was reaped."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


class Fixture:
    def __init__(self, deps: Deps, s3: Any, settings: Any) -> None:
        self.deps, self.s3, self.settings = deps, s3, settings
        self.app = make_app()
        self.key = state_key(settings.state_key_prefix, "team-a", "rags")
        self.journal = settings.workdir / "workspaces" / self.app.ref.uid / JOURNAL_DIR

    def put_lock(self, **lock: Any) -> None:
        self.s3.put_object(Bucket=self.settings.state_bucket, Key=self.key + ".tflock",
                           Body=lock_document(f"{self.settings.state_bucket}/{self.key}", **lock))

    def locked(self) -> bool:
        try:
            self.s3.head_object(Bucket=self.settings.state_bucket, Key=self.key + ".tflock")
            return True
        except self.s3.exceptions.ClientError:
            return False

    def journal_entry(self, pid: int, *, started: float, lock_id: str | None = None, ended: float | None = None,
                      step: str = "apply", operation: str = "OperationTypeApply") -> None:
        self.journal.mkdir(parents=True, exist_ok=True)
        (self.journal / f"{pid}.json").write_text(json.dumps({
            "host": socket.gethostname(), "pid": pid, "step": step, "operation": operation, "started": started,
            "state": self.key, "lock_id": lock_id, "ended": ended}))

    async def converge_again(self) -> Any:
        return await converge(make_app(app={"healthCheckPath": "/healthz"}, generation=2), self.deps, self.previous)

    async def first(self) -> None:
        result = await converge(self.app, self.deps, Previous())
        assert result.error is None, result.report.message
        self.previous = after(Previous(), result)


@pytest.fixture
async def fx(deps: Deps, s3: Any, settings: Any) -> Fixture:
    """The object applied once: its state and its run journal exist."""
    applied = Fixture(deps, s3, settings)
    await applied.first()
    return applied


async def test_terraform_killed_holding_the_lock_is_recovered_by_its_noted_id(deps: Deps, fx: Fixture,
                                                                              tmp_path) -> None:
    """The real thing: terraform SIGKILLed in the middle of an apply holds the lock; the runner had
    noted that lock's id in the run's journal entry, so the next pass unlocks exactly it."""
    marker = tmp_path / "hold"
    marker.touch()
    held = make_app(terraform={"module": "slow-apply", "vars": {"hold_marker": str(marker)}}, generation=2)
    run = asyncio.create_task(converge(held, deps, fx.previous))
    for _ in range(600):
        if (tmp_path / "hold.reached").exists():
            break
        await asyncio.sleep(0.05)
    assert (tmp_path / "hold.reached").exists(), "the apply never reached the held resource"
    entries = [json.loads(p.read_text()) for p in fx.journal.glob("*.json")]
    for _ in range(50):  # the runner notes the lock id within a poll or two of taking it
        entries = [json.loads(p.read_text()) for p in fx.journal.glob("*.json")]
        if any(e.get("lock_id") for e in entries):
            break
        await asyncio.sleep(0.1)
    apply_entry = next(e for e in entries if e["step"] == "apply")
    lock = json.loads(fx.s3.get_object(Bucket=fx.settings.state_bucket, Key=fx.key + ".tflock")["Body"].read())
    assert apply_entry["lock_id"] == lock["ID"] and lock["Operation"] == "OperationTypeApply"

    os.killpg(apply_entry["pid"], signal.SIGKILL)  # terraform dies as the kernel's OOM killer would kill it
    killed = await run
    assert killed.error is not None and fx.locked()
    assert json.loads((fx.journal / f"{apply_entry['pid']}.json").read_text())["ended"] is not None

    marker.unlink()
    recovered = await converge(held, deps, fx.previous)
    assert recovered.error is None, recovered.report.message
    assert not fx.locked() and list(fx.journal.glob("*.json")) == []


async def test_a_lock_of_this_host_without_a_dead_run_is_left_alone(fx: Fixture) -> None:
    fx.put_lock(lock_id="11111111-0000-4000-8000-000000000001", created=time.time())
    blocked = await fx.converge_again()
    assert blocked.report.reason == "StateLocked" and fx.locked()


async def test_a_dead_run_does_not_vouch_for_a_lock_with_another_id(fx: Fixture) -> None:
    now = time.time()
    fx.journal_entry(dead_pid(), started=now - 5, lock_id="22222222-0000-4000-8000-00000000aaaa", ended=now - 4)
    fx.put_lock(lock_id="22222222-0000-4000-8000-00000000bbbb", created=now - 4.5)
    blocked = await fx.converge_again()
    assert blocked.report.reason == "StateLocked" and fx.locked()


async def test_a_dead_run_without_a_noted_id_matches_by_operation_and_lifetime(fx: Fixture) -> None:
    now = time.time()
    pid = dead_pid()
    # Created after the run ended: not that run's lock.
    fx.journal_entry(pid, started=now - 60, ended=now - 50)
    fx.put_lock(lock_id="33333333-0000-4000-8000-000000000001", created=now - 20)
    assert (await fx.converge_again()).report.reason == "StateLocked"
    # Another operation than the run's: not its lock either.
    fx.put_lock(lock_id="33333333-0000-4000-8000-000000000002", created=now - 55, operation="OperationTypePlan")
    assert (await fx.converge_again()).report.reason == "StateLocked"
    # Same operation, taken during the run's life: the dead run's, recovered.
    fx.put_lock(lock_id="33333333-0000-4000-8000-000000000003", created=now - 55)
    recovered = await fx.converge_again()
    assert recovered.error is None, recovered.report.message
    assert not fx.locked() and not (fx.journal / f"{pid}.json").exists()


async def test_never_while_a_run_of_ours_for_the_object_is_alive(fx: Fixture) -> None:
    now = time.time()
    fx.journal_entry(dead_pid(), started=now - 5, lock_id="44444444-0000-4000-8000-000000000001", ended=now - 4)
    fx.put_lock(lock_id="44444444-0000-4000-8000-000000000001", created=now - 4.5)
    live = await asyncio.create_subprocess_exec("sleep", "30")
    try:
        fx.journal_entry(live.pid, started=now - 1, step="plan", operation="OperationTypePlan")
        assert (await fx.converge_again()).report.reason == "StateLocked" and fx.locked()
    finally:
        live.kill()
        await live.wait()
    (fx.journal / f"{live.pid}.json").unlink()
    recovered = await fx.converge_again()
    assert recovered.error is None, recovered.report.message


async def test_a_lock_taken_on_another_host_is_never_ours(fx: Fixture) -> None:
    now = time.time()
    fx.journal_entry(dead_pid(), started=now - 5, lock_id="55555555-0000-4000-8000-000000000001", ended=now - 4)
    fx.put_lock(lock_id="55555555-0000-4000-8000-000000000001", created=now - 4.5, who="root@another-pod")
    assert (await fx.converge_again()).report.reason == "StateLocked" and fx.locked()

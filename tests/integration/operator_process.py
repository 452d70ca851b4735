"""The operator as its own process (`python -m llmapp_operator run`), so a test can SIGKILL it
the way a node failure or an OOM kill would, Terraform children included, and start it again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import signal
import sys

from llmapp_operator.config import Settings
from llmapp_sandbox.apiserver.server import RunningApiServer


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, found through /proc (Terraform runs in its own session)."""
    children: dict[int, list[int]] = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


class OperatorProcess:
    def __init__(self, settings: Settings, api: RunningApiServer, workdir: pathlib.Path, *,
                 token: str | None = None, name: str = "operator") -> None:
        """`token`: the identity it runs as (default: the administrator); `name` tells replicas apart."""
        self.kubeconfig = api.write_kubeconfig(workdir / f"{name}-kubeconfig", settings.namespaces[0], token=token)
        self.env = {**os.environ, **settings.to_env(secrets=True), "KUBECONFIG": str(self.kubeconfig), "POD_NAME": name}
        self.api = api
        self.log_path = workdir / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.lives = 0

    async def start(self, *, wait: bool = True) -> None:
        """Start a new life and wait until it watches LLMApps (it is then serving); `wait=False` for a
        replica that stands by for the leader Lease."""
        watches = self.api.server.request_counts[("WATCH", "llmapps", None)]
        with self.log_path.open("ab") as log:
            log.write(f"--- operator life {self.lives + 1} ---\n".encode())
            log.flush()
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "llmapp_operator", "--log-level", "DEBUG", "run", "--skip-crd",
                env=self.env, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        self.lives += 1
        if not wait:
            return
        for _ in range(1500):
            if self.api.server.request_counts[("WATCH", "llmapps", None)] > watches:
                return
            if self.process.returncode is not None:
                raise AssertionError(f"operator exited with {self.process.returncode}: {self.log_tail()}")
            await asyncio.sleep(0.02)
        raise AssertionError(f"operator never started watching: {self.log_tail()}")

    async def kill(self) -> None:
        """SIGKILL the operator and every process it started, as a node failure would."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGSTOP)  # frozen: it starts nothing new while we look
        for pid in descendants(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        """A graceful stop (SIGTERM), then SIGKILL for anything left."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 15)
        except TimeoutError:
            await self.kill()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

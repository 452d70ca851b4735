"""Plays the Job controller and kubelet for the API emulator (it has neither).

For each Job the operator creates, the player picks a fate. `run` does what the pod would do: it
runs the real `llmapp-operator job-step` command (a separate process: real terraform on the S3
backend in moto) on the request ConfigMap the operator created, which writes the result ConfigMap
through the API; then the Job is marked Complete or Failed from the exit code, as the Job
controller would. `deadline`, `evict` and `crash` end the Job the way Kubernetes does in those
cases, with no result. `hold` leaves it running until the test calls `play(job, "resume")`.
`sigterm` runs the pod and, once `sigterm_when` exists, stops it as the kubelet stops a pod that
is deleted or drained: SIGTERM, then SIGKILL after the pod's terminationGracePeriodSeconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from llmapp_operator.runners.job import REQUEST_KEY
from tests.integration.conftest import NS, Sandbox

# Operator settings that send every Terraform step to a Job, polled quickly.
JOB_SETTINGS = {"default_runner": "job", "job_image": "registry.example/llmapp-operator:test",
                "job_poll_seconds": 0.05, "job_env_secret": "aws-credentials"}


@dataclass
class JobPlayer:
    """The Job controller and kubelet, as far as the runner can tell."""

    sandbox: Sandbox
    workdir: pathlib.Path
    fates: list[str] = field(default_factory=list)   # for the next Jobs, in order; then `default`
    default: str = "run"
    played: list[tuple[str, str]] = field(default_factory=list)   # (job name, fate)
    sigterm_when: pathlib.Path | None = None   # for `sigterm`: the file that says "now"
    exits: dict[str, int] = field(default_factory=dict)   # job name -> the pod process's exit code
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def jobs(self) -> list[dict[str, Any]]:
        return self.sandbox.api.server.list_objects("jobs", NS)

    async def watch(self) -> None:
        seen: set[str] = set()
        while True:
            for job in self.jobs():
                name = job["metadata"]["name"]
                if name not in seen:
                    seen.add(name)
                    fate = self.fates.pop(0) if self.fates else self.default
                    self.played.append((name, fate))
                    task = asyncio.create_task(self.play(job, fate))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            await asyncio.sleep(0.02)

    async def play(self, job: dict[str, Any], fate: str) -> None:
        name = job["metadata"]["name"]
        await self._job_status(name, {"active": 1, "startTime": "2026-11-25T00:00:00Z"})
        pod = await self._pod(job) if fate != "resume" else f"{name}-x7k2p"
        if fate == "hold":
            return  # stays active until the test plays it on (Kopf cancels tasks left at its exit)
        if fate in ("run", "resume", "sigterm"):
            code = await self._run_pod(job, stop_when=self.sigterm_when if fate == "sigterm" else None)
            self.exits[name] = code
            await self._finish(name, succeeded=code == 0)
        elif fate == "deadline":
            await self._finish(name, succeeded=False, reason="DeadlineExceeded",
                               message="Job was active longer than specified deadline")
        elif fate == "evict":
            await self._pod_status(pod, {"phase": "Failed", "reason": "Evicted",
                                         "message": "The node was low on resource: memory."})
            await self._finish(name, succeeded=False, reason="BackoffLimitExceeded",
                               message="Job has reached the specified backoff limit")
        elif fate == "crash":
            self.sandbox.api.server.pod_logs[(NS, pod)] = (
                "starting terraform plan\nError: exec format error: /usr/local/bin/terraform\n")
            await self._pod_status(pod, {"phase": "Failed"})
            await self._finish(name, succeeded=False, reason="BackoffLimitExceeded",
                               message="Job has reached the specified backoff limit")

    async def _run_pod(self, job: dict[str, Any], *, stop_when: pathlib.Path | None = None) -> int:
        """The container: its env from the Job, the request from the mounted ConfigMap."""
        name = job["metadata"]["name"]
        request = None
        for _ in range(200):  # the operator creates the request right after the Job
            request = self.sandbox.api.server.get_object("configmaps", NS, name)
            if request is not None:
                break
            if self.sandbox.api.server.get_object("jobs", NS, name) is None:
                return 1   # the Job was deleted before its pod could start
            await asyncio.sleep(0.02)
        assert request is not None, f"no request ConfigMap for Job {name}"
        directory = self.workdir / name
        directory.mkdir(parents=True)
        (directory / REQUEST_KEY).write_text(request["data"][REQUEST_KEY])
        container = job["spec"]["template"]["spec"]["containers"][0]
        # The pod runs as the Job's ServiceAccount (its token, its Role), never as the operator.
        account = job["spec"]["template"]["spec"]["serviceAccountName"]
        server = self.sandbox.api.server
        assert server.get_object("serviceaccounts", NS, account) is not None, (
            f"the Job's ServiceAccount {NS}/{account} does not exist: its pod would never be created")
        kubeconfig = self.sandbox.api.write_kubeconfig(
            directory / "kubeconfig", NS, token=server.tokens.mint_service_account_token(NS, account))
        env = {**os.environ, **{item["name"]: item["value"] for item in container["env"]},
               "LLMAPP_WORKDIR": str(directory / "work"),   # the pod's emptyDir
               "KUBECONFIG": str(kubeconfig)}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "llmapp_operator", *container["args"][:-1], str(directory / REQUEST_KEY),
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        stopper = asyncio.create_task(self._stop_pod(process, job, stop_when)) if stop_when else None
        output, _ = await process.communicate()
        if stopper is not None:
            stopper.cancel()
        (directory / "pod.log").write_bytes(output)
        return process.returncode if process.returncode is not None else 0

    async def _stop_pod(self, process: asyncio.subprocess.Process, job: dict[str, Any], when: pathlib.Path) -> None:
        while not when.exists():
            await asyncio.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        grace = job["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            process.kill()

    async def _pod(self, job: dict[str, Any]) -> str:
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{job['metadata']['name']}-x7k2p", "namespace": NS,
                            "labels": {"job-name": job["metadata"]["name"]}},
               "spec": job["spec"]["template"]["spec"]}
        created = self.sandbox.api.server.create_object("pods", pod)
        return str(created["metadata"]["name"])

    async def _finish(self, name: str, *, succeeded: bool, reason: str = "", message: str = "") -> None:
        if succeeded:
            await self._job_status(name, {"active": 0, "succeeded": 1,
                                          "conditions": [{"type": "Complete", "status": "True"}]})
        else:
            await self._job_status(name, {"active": 0, "failed": 1, "conditions": [
                {"type": "Failed", "status": "True", "reason": reason, "message": message}]})

    async def _job_status(self, name: str, status: dict[str, Any]) -> None:
        client = self.sandbox.client
        await client._call("PATCH", client._path(NS, f"{name}/status", plural="jobs", group="batch", version="v1"),
                           {"status": status}, "application/merge-patch+json")

    async def _pod_status(self, name: str, status: dict[str, Any]) -> None:
        client = self.sandbox.client
        await client._call("PATCH", client._path(NS, f"{name}/status", plural="pods", group=None, version="v1"),
                           {"status": status}, "application/merge-patch+json")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


@contextlib.asynccontextmanager
async def playing(sandbox: Sandbox, tmp_path: pathlib.Path, **kwargs: Any) -> AsyncIterator[JobPlayer]:
    player = JobPlayer(sandbox, tmp_path / "pods", **kwargs)
    watcher = asyncio.create_task(player.watch())
    try:
        yield player
    finally:
        watcher.cancel()
        with contextlib.suppress(BaseException):
            await watcher
        await player.stop()

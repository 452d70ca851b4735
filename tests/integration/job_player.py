"""Plays the Job controller and kubelet for the API emulator (it has neither).

For each Job the operator creates, the player picks a fate. `run` does what the pod would do: it
runs the real `llmapp-operator job-step` command (a separate process: real terraform on the S3
backend in moto) on the request ConfigMap the operator created, which writes the result ConfigMap
through the API; then the Job is marked Complete or Failed from the exit code, as the Job
controller would. `deadline`, `evict` and `crash` end the Job the way Kubernetes does in those
cases, with no result. `hold` leaves it running until the test calls `play(job, "resume")`.
`sigterm` runs the pod and, once `sigterm_when` exists, stops it as the kubelet stops a pod that
is deleted or drained: SIGTERM, then SIGKILL after the pod's terminationGracePeriodSeconds.
`tamper` edits the request ConfigMap before the pod starts (a destroy of another tenant's state,
the MAC left as it was); `forge` writes a result without the key and marks the Job Complete.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import pathlib
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from llmapp_operator.runners.job import MAC_SUFFIX, REQUEST_KEY
from tests.integration.conftest import JOB_NS, SIGNING_KEY, SIGNING_SECRET, Sandbox

# Operator settings that send every Terraform step to a Job (in the release namespace, never the
# tenant's), polled quickly; the key is the one open_sandbox stores in the signing Secret.
JOB_SETTINGS = {"default_runner": "job", "job_image": "registry.example/llmapp-operator:test",
                "job_poll_seconds": 0.05, "job_env_secret": "aws-credentials", "job_namespace": JOB_NS,
                "job_signing_key": SIGNING_KEY, "job_signing_secret": SIGNING_SECRET}


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
        return self.sandbox.api.server.list_objects("jobs", JOB_NS)

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
        elif fate == "tamper":   # someone edits the request before the pod reads it; the MAC stays
            await self._tamper(job)
            code = await self._run_pod(job)
            self.exits[name] = code
            await self._finish(name, succeeded=code == 0)
        elif fate == "forge":    # someone writes the result instead of the pod, and the Job "succeeds"
            await self._forge(job)
            await self._finish(name, succeeded=True)
        elif fate == "deadline":
            await self._finish(name, succeeded=False, reason="DeadlineExceeded",
                               message="Job was active longer than specified deadline")
        elif fate == "evict":
            await self._pod_status(pod, {"phase": "Failed", "reason": "Evicted",
                                         "message": "The node was low on resource: memory."})
            await self._finish(name, succeeded=False, reason="BackoffLimitExceeded",
                               message="Job has reached the specified backoff limit")
        elif fate == "crash":
            self.sandbox.api.server.pod_logs[(JOB_NS, pod)] = (
                "starting terraform plan\nError: exec format error: /usr/local/bin/terraform\n")
            await self._pod_status(pod, {"phase": "Failed"})
            await self._finish(name, succeeded=False, reason="BackoffLimitExceeded",
                               message="Job has reached the specified backoff limit")

    async def _run_pod(self, job: dict[str, Any], *, stop_when: pathlib.Path | None = None) -> int:
        """The container: its env from the Job, the request from the mounted ConfigMap."""
        name = job["metadata"]["name"]
        request = None
        namespace = job["metadata"]["namespace"]
        for _ in range(200):  # the operator creates the request right after the Job
            request = self.sandbox.api.server.get_object("configmaps", namespace, name)
            if request is not None:
                break
            if self.sandbox.api.server.get_object("jobs", namespace, name) is None:
                return 1   # the Job was deleted before its pod could start
            await asyncio.sleep(0.02)
        assert request is not None, f"no request ConfigMap for Job {name}"
        directory = self.workdir / name
        directory.mkdir(parents=True)
        for key, text in request["data"].items():   # a ConfigMap volume mounts every key
            (directory / key).write_text(text)
        assert (directory / (REQUEST_KEY + MAC_SUFFIX)).exists(), "the operator's request carries its MAC"
        container = job["spec"]["template"]["spec"]["containers"][0]
        # The pod runs as the Job's ServiceAccount (its token, its Role), never as the operator.
        account = job["spec"]["template"]["spec"]["serviceAccountName"]
        server = self.sandbox.api.server
        assert server.get_object("serviceaccounts", namespace, account) is not None, (
            f"the Job's ServiceAccount {namespace}/{account} does not exist: its pod would never be created")
        kubeconfig = self.sandbox.api.write_kubeconfig(
            directory / "kubeconfig", namespace, token=server.tokens.mint_service_account_token(namespace, account))
        env = {**os.environ, **self._container_env(container, namespace),
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

    async def _request_map(self, job: dict[str, Any]) -> dict[str, Any]:
        for _ in range(200):
            found = self.sandbox.api.server.get_object("configmaps", job["metadata"]["namespace"],
                                                       job["metadata"]["name"])
            if found is not None:
                return found
            await asyncio.sleep(0.02)
        raise AssertionError(f"no request ConfigMap for Job {job['metadata']['name']}")

    async def _tamper(self, job: dict[str, Any]) -> None:
        """Point the request at another tenant's state and make it a destroy."""
        configmap = await self._request_map(job)
        request = json.loads(configmap["data"][REQUEST_KEY])
        request["step"] = "destroy"
        request["backend"] = {**request["backend"], "key": "llmapp/team-b/victim/terraform.tfstate"}
        configmap["data"][REQUEST_KEY] = json.dumps(request, sort_keys=True)
        self.sandbox.api.server.update_object("configmaps", configmap)

    async def _forge(self, job: dict[str, Any]) -> None:
        """A result that answers the request field for field, but not written with the key."""
        request = json.loads((await self._request_map(job))["data"][REQUEST_KEY])
        forged = {"step": request["step"], "uid": request["uid"], "digest": request["digest"],
                  "nonce": request["nonce"], "ok": True, "error": None, "plan": None,
                  "outputs": {"url": "http://attacker.example", "ecs_service_name": "someone-else"}}
        self.sandbox.api.server.create_object("configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"{job['metadata']['name']}-result", "namespace": job["metadata"]["namespace"]},
            "data": {"result.json": json.dumps(forged), "result.json.hmac": "0" * 64}})

    def _container_env(self, container: dict[str, Any], namespace: str) -> dict[str, str]:
        """What the kubelet gives the container: values, Secret keys and the downward API. A
        Secret or key that is missing keeps a real pod from starting (CreateContainerConfigError)."""
        env: dict[str, str] = {}
        for item in container["env"]:
            source = item.get("valueFrom") or {}
            if "value" in item:
                env[item["name"]] = item["value"]
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                secret = self.sandbox.api.server.get_object("secrets", namespace, ref["name"])
                assert secret is not None and ref["key"] in (secret.get("data") or {}), (
                    f"Secret {namespace}/{ref['name']} (key {ref['key']}) is missing: the pod would not start")
                env[item["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
            elif source.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
                env[item["name"]] = namespace
        return env

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
               "metadata": {"name": f"{job['metadata']['name']}-x7k2p", "namespace": job["metadata"]["namespace"],
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
        await client._call("PATCH", client._path(JOB_NS, f"{name}/status", plural="jobs", group="batch", version="v1"),
                           {"status": status}, "application/merge-patch+json")

    async def _pod_status(self, name: str, status: dict[str, Any]) -> None:
        client = self.sandbox.client
        await client._call("PATCH", client._path(JOB_NS, f"{name}/status", plural="pods", group=None, version="v1"),
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
